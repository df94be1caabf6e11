package fakevault

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// AdminClient calls the admin API of a fakevault binary (or of any
// Server's AdminHandler), as the conformance suite and the sim do.
type AdminClient struct {
	// URL is the admin API's base, e.g. http://127.0.0.1:8081.
	URL  string
	HTTP *http.Client
}

// NewAdminClient returns a client of the admin API at url, with a 10 s
// timeout per call.
func NewAdminClient(url string) *AdminClient {
	return &AdminClient{URL: strings.TrimSuffix(url, "/"), HTTP: &http.Client{Timeout: 10 * time.Second}}
}

// Do sends in as a JSON body (when not nil) and decodes a 2xx answer's body
// into out (when not nil). Any other answer is an error carrying the API's
// message.
func (c *AdminClient) Do(method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		raw, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, c.URL+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("reaching fakevault's admin API: %w", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(raw, &e) == nil && e.Error != "" {
			return fmt.Errorf("%s %s: %d: %s", method, path, resp.StatusCode, e.Error)
		}
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, strings.TrimSpace(string(raw)))
	}
	if out != nil && len(raw) > 0 {
		return json.Unmarshal(raw, out)
	}
	return nil
}
