package main

import (
	"fmt"
	"net/http"
	"net/url"

	"github.com/kvsync/kvsync/fakevault"
)

// admin is a client of fakevault's admin API, or of the provider fault
// injector's, which serves the same /faults routes.
type admin struct {
	*fakevault.AdminClient
}

func newAdmin(base string) admin { return admin{fakevault.NewAdminClient(base)} }

// secretPath is the admin path of a vault secret.
func secretPath(vault, name string) string {
	return "/vaults/" + url.PathEscape(vault) + "/secrets/" + url.PathEscape(name)
}

// setSecret adds a version to a vault secret.
func (a admin) setSecret(vault, name, value string) error {
	return a.Do(http.MethodPut, secretPath(vault, name), map[string]any{"value": value}, nil)
}

// versions lists a secret's versions, oldest first.
func (a admin) versions(vault, name string) ([]string, error) {
	var out []struct {
		Version string `json:"version"`
	}
	if err := a.Do(http.MethodGet, secretPath(vault, name)+"/versions", nil, &out); err != nil {
		return nil, err
	}
	versions := make([]string, len(out))
	for i, v := range out {
		versions[i] = v.Version
	}
	return versions, nil
}

// setLatestEnabled enables or disables the newest version of a secret.
func (a admin) setLatestEnabled(vault, name string, enabled bool) error {
	versions, err := a.versions(vault, name)
	if err != nil {
		return err
	}
	if len(versions) == 0 {
		return fmt.Errorf("secret %q of vault %q has no version", name, vault)
	}
	return a.Do(http.MethodPatch, secretPath(vault, name)+"/"+url.PathEscape(versions[len(versions)-1]), map[string]any{"enabled": enabled}, nil)
}

// deleteSecret deletes a secret and its versions.
func (a admin) deleteSecret(vault, name string) error {
	return a.Do(http.MethodDelete, secretPath(vault, name), nil, nil)
}
