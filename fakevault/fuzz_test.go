package fakevault_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/kvsync/kvsync/fakevault"
	"github.com/kvsync/kvsync/fakevault/entra"
	"github.com/kvsync/kvsync/fakevault/keyvault"
)

// FuzzHandler sends arbitrary requests to the server's handler, for the
// login host and for a vault, with arbitrary bearer tokens and client
// assertions: it must never panic, and must always answer a valid status
// with a JSON body when it answers an error from a service.
func FuzzHandler(f *testing.F) {
	srv, err := fakevault.NewServer(fakevault.Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { srv.Close() })
	issuer, err := entra.NewIssuer("https://issuer.example")
	if err != nil {
		f.Fatal(err)
	}
	if err := srv.Entra().TrustIssuer(issuer.URL(), issuer.PublicKey()); err != nil {
		f.Fatal(err)
	}
	vault, err := srv.CreateVault(keyvault.VaultConfig{Name: "fuzz"})
	if err != nil {
		f.Fatal(err)
	}
	if _, err := vault.SetSecret("s", "kvsync-canary-fuzz", nil); err != nil {
		f.Fatal(err)
	}
	token, err := srv.Entra().IssueAccessToken(fakevault.DefaultTenantID, fakevault.DefaultClientID, "https://vault.azure.net")
	if err != nil {
		f.Fatal(err)
	}
	assertion, err := issuer.Assertion("system:serviceaccount:ns:sa", entra.TokenExchangeAudience, 600e9)
	if err != nil {
		f.Fatal(err)
	}
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {fakevault.DefaultClientID}, "scope": {"https://vault.azure.net/.default"},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {assertion}}.Encode()
	seeds := []struct {
		login                     bool
		method, path, query, body string
		authorization             string
	}{
		{true, "POST", "/" + fakevault.DefaultTenantID + "/oauth2/v2.0/token", "", form, ""},
		{true, "POST", "/" + fakevault.DefaultTenantID + "/oauth2/token", "", "grant_type=client_credentials&resource=https://vault.azure.net&client_secret=x", ""},
		{true, "GET", "/common/discovery/instance", "api-version=1.1&authorization_endpoint=https://login.microsoftonline.com/x/oauth2/v2.0/authorize", "", ""},
		{true, "GET", "/" + fakevault.DefaultTenantID + "/v2.0/.well-known/openid-configuration", "", "", ""},
		{true, "GET", "/common/discovery/keys", "", "", ""},
		{false, "GET", "/secrets/s/", "api-version=7.4", "", "Bearer " + token},
		{false, "GET", "/secrets/s/", "api-version=7.4", "", "Bearer " + assertion},
		{false, "PUT", "/secrets/t", "api-version=2026-04-01", `{"value":"v"}`, "Bearer e30.e30."},
		{false, "GET", "/secrets", "api-version=7.6&maxresults=1", "", "Basic Zm9vOmJhcg=="},
	}
	for _, s := range seeds {
		f.Add(s.login, s.method, s.path, s.query, s.body, s.authorization)
	}
	handler := srv.Handler()
	f.Fuzz(func(t *testing.T, login bool, method, path, query, body, authorization string) {
		host := "fuzz.vault.azure.net"
		if login {
			host = fakevault.LoginHost
		}
		if method == "" {
			method = "GET"
		}
		req := &http.Request{
			Method: method, URL: &url.URL{Scheme: "https", Host: host, Path: path, RawQuery: query}, Host: host,
			Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, RemoteAddr: "127.0.0.1:50000",
			Header: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Authorization": {authorization}},
			Body:   io.NopCloser(strings.NewReader(body)),
		}
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req.WithContext(context.Background()))
		if rec.Code < 200 || rec.Code > 599 {
			t.Fatalf("status %d", rec.Code)
		}
		if rec.Code >= 500 && rec.Code != http.StatusNotImplemented {
			t.Fatalf("%s %s answered %d: %s", method, path, rec.Code, rec.Body)
		}
		if rec.Code >= 400 && rec.Body.Len() > 0 && strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") && !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("%s %s answered invalid JSON: %q", method, path, rec.Body)
		}
		if strings.Contains(rec.Body.String(), "kvsync-canary-fuzz") && !(method == "GET" && !login) {
			t.Fatalf("%s %s leaked the secret value", method, path)
		}
	})
}
