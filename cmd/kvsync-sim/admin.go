package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// admin is a client of fakevault's admin API.
type admin struct {
	base   string
	client *http.Client
}

func newAdmin(base string) admin {
	return admin{base: strings.TrimSuffix(base, "/"), client: &http.Client{Timeout: 10 * time.Second}}
}

// do sends in as JSON (when not nil) and decodes the answer into out (when
// not nil); an answer other than 2xx is an error carrying the API's message.
func (a admin) do(method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		raw, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, a.base+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return fmt.Errorf("reaching fakevault's admin API (is the sim running? start it with make sim): %w", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(raw, &e) == nil && e.Error != "" {
			return fmt.Errorf("%s", e.Error)
		}
		return fmt.Errorf("%s %s: %s", method, path, resp.Status)
	}
	if out != nil && len(raw) > 0 {
		return json.Unmarshal(raw, out)
	}
	return nil
}

// secretPath is the admin path of a vault secret.
func secretPath(vault, name string) string {
	return "/vaults/" + url.PathEscape(vault) + "/secrets/" + url.PathEscape(name)
}

// setSecret adds a version to a vault secret.
func (a admin) setSecret(vault, name, value string) error {
	return a.do(http.MethodPut, secretPath(vault, name), map[string]any{"value": value}, nil)
}

// versions lists a secret's versions, oldest first.
func (a admin) versions(vault, name string) ([]string, error) {
	var out []struct {
		Version string `json:"version"`
	}
	if err := a.do(http.MethodGet, secretPath(vault, name)+"/versions", nil, &out); err != nil {
		return nil, err
	}
	versions := make([]string, len(out))
	for i, v := range out {
		versions[i] = v.Version
	}
	return versions, nil
}

// disableLatest disables a secret's newest version.
func (a admin) disableLatest(vault, name string) error {
	versions, err := a.versions(vault, name)
	if err != nil {
		return err
	}
	if len(versions) == 0 {
		return fmt.Errorf("secret %q of vault %q has no version", name, vault)
	}
	return a.do(http.MethodPatch, secretPath(vault, name)+"/"+url.PathEscape(versions[len(versions)-1]), map[string]any{"enabled": false}, nil)
}

// deleteSecret deletes a secret and its versions.
func (a admin) deleteSecret(vault, name string) error {
	return a.do(http.MethodDelete, secretPath(vault, name), nil, nil)
}
