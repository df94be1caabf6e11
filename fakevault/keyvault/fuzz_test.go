package keyvault_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/kvsync/kvsync/fakevault/journal"
	"github.com/kvsync/kvsync/fakevault/keyvault"
)

// FuzzHandler sends arbitrary methods, paths, queries and bodies, with a
// token that passes, to a seeded vault and checks the handler never panics
// (a recovered panic would answer 500) and always answers JSON with a valid
// status.
func FuzzHandler(f *testing.F) {
	seeds := []struct{ method, path, query, body string }{
		{"GET", "/secrets/s/", "api-version=7.4", ""},
		{"GET", "/secrets/s/versions", "api-version=2026-04-01&maxresults=1", ""},
		{"PUT", "/secrets/new", "api-version=7.6", `{"value":"v","contentType":"c","tags":{"a":"b"},"attributes":{"enabled":false,"nbf":1,"exp":99999999999}}`},
		{"PATCH", "/secrets/s/", "api-version=7.6", `{"attributes":{"enabled":true},"tags":null}`},
		{"DELETE", "/secrets/s", "api-version=7.6", ""},
		{"GET", "/deletedsecrets", "api-version=7.6&$skiptoken=eyJOZXh0TWFya2VyIjoicyJ9", ""},
		{"POST", "/deletedsecrets/s/recover", "api-version=7.6", ""},
		{"DELETE", "/deletedsecrets/s", "api-version=7.6", ""},
		{"GET", "/certificates/tls/", "api-version=7.6", ""},
		{"GET", "/certificates/tls/policy", "api-version=7.6", ""},
		{"GET", "/keys/tls/versions", "api-version=2025-07-01", ""},
		{"GET", "/secrets/tls/", "api-version=2026-04-01&outContentType=application/x-pem-file", ""},
		{"GET", "//secrets/%2e%2e/x", "api-version=7.0", ""},
		{"PUT", "/secrets/a", "api-version=7.6", `{"value":`},
		{"BREW", "/", "", "\x00"},
	}
	for _, s := range seeds {
		f.Add(s.method, s.path, s.query, s.body)
	}
	ca, _ := testPKI(f)
	svc, err := keyvault.New(keyvault.Options{Verifier: stubVerifier{}, Journal: &journal.Journal{Limit: 64}, PageSize: 2})
	if err != nil {
		f.Fatal(err)
	}
	v, err := svc.CreateVault(keyvault.VaultConfig{Name: "fuzz", TenantID: tenantA, InterleaveEmptyPages: true,
		RoleAssignments: []keyvault.RoleAssignment{{PrincipalID: oidOwner, Role: "Key Vault Administrator"}}})
	if err != nil {
		f.Fatal(err)
	}
	for _, n := range []string{"s", "t", "u"} {
		if _, err := v.SetSecret(n, "value", nil); err != nil {
			f.Fatal(err)
		}
	}
	if _, err := v.CreateCertificate("tls", keyvault.CertificateOptions{CA: ca, KeyType: "EC-P256"}); err != nil {
		f.Fatal(err)
	}
	handler := svc.Handler()

	f.Fuzz(func(t *testing.T, method, path, query, body string) {
		if method == "" {
			method = "GET"
		}
		req := &http.Request{
			Method:     method,
			URL:        &url.URL{Scheme: "https", Host: "fuzz.vault.azure.net", Path: path, RawQuery: query},
			Host:       "fuzz.vault.azure.net",
			Proto:      "HTTP/1.1",
			ProtoMajor: 1,
			ProtoMinor: 1,
			Header:     http.Header{"Authorization": {"Bearer " + tokenOwner}, "Content-Type": {"application/json"}},
			Body:       io.NopCloser(strings.NewReader(body)),
			RemoteAddr: "192.0.2.10:50000",
		}
		req = req.WithContext(context.Background())
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		if rec.Code < 200 || rec.Code > 599 {
			t.Fatalf("status %d", rec.Code)
		}
		if rec.Code == http.StatusInternalServerError {
			t.Fatalf("500 (a recovered panic?) for %s %q %q: %s", method, path, query, rec.Body)
		}
		if rec.Code == http.StatusNoContent {
			if rec.Body.Len() != 0 {
				t.Fatalf("204 with a body")
			}
			return
		}
		if ct := rec.Header().Get("Content-Type"); ct != "application/json; charset=utf-8" {
			t.Fatalf("Content-Type %q", ct)
		}
		if !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("body is not JSON: %q", rec.Body)
		}
		if rec.Header().Get("x-ms-request-id") == "" {
			t.Fatalf("no request id")
		}
	})
}

// BenchmarkGetSecret measures GetSecret through azsecrets over TLS, in
// process: the whole pipeline of token check, RBAC and JSON on both ends.
func BenchmarkGetSecret(b *testing.B) {
	h := newHarness(b, func(o *keyvault.Options) { o.Now = time.Now; o.Journal = &journal.Journal{Limit: 1024} })
	v := h.vault(b, rbacVault("kv-bench"))
	if _, err := v.SetSecret("bench", strings.Repeat("x", 64), nil); err != nil {
		b.Fatal(err)
	}
	c, _ := h.secrets(b, v, tokenOwner)
	ctx := context.Background()
	if _, err := c.GetSecret(ctx, "bench", "", nil); err != nil { // challenge and handshake
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := c.GetSecret(ctx, "bench", "", nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}
