package provider

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"net/url"
	"testing"
	"time"
)

func TestRetriesAreOnlyForFailuresRetryingCanFixWithinTheDeadline(t *testing.T) {
	far, cancelFar := context.WithTimeout(context.Background(), time.Minute)
	defer cancelFar()
	near, cancelNear := context.WithTimeout(context.Background(), time.Second)
	defer cancelNear()
	resp := func(ctx context.Context, status int, header ...string) *http.Response {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://kv.vault.azure.net/secrets/a/", nil)
		h := http.Header{}
		for i := 0; i+1 < len(header); i += 2 {
			h.Set(header[i], header[i+1])
		}
		return &http.Response{StatusCode: status, Request: req, Header: h}
	}
	tests := []struct {
		name string
		resp *http.Response
		err  error
		want bool
	}{
		{"a 503 with time left is retried", resp(far, 503), nil, true},
		{"a 429 with time left is retried", resp(far, 429), nil, true},
		{"a 429 asking for a short wait is retried", resp(far, 429, "Retry-After", "2"), nil, true},
		{"a 429 asking for a longer wait than a retry's is reported", resp(far, 429, "Retry-After", "10"), nil, false},
		{"a 503 asking for a longer wait in milliseconds is reported", resp(far, 503, "retry-after-ms", "9000"), nil, false},
		{"a 503 close to the deadline is reported", resp(near, 503), nil, false},
		{"a 404 is reported", resp(far, 404), nil, false},
		{"a 403 is reported", resp(far, 403), nil, false},
		{"a refused connection is retried", nil, &net.OpError{Op: "dial", Err: errors.New("connection refused")}, true},
		{"a name that does not exist is reported", nil, &net.OpError{Op: "dial", Err: &net.DNSError{Name: "kv.vault.azure.net", IsNotFound: true}}, false},
		{"a temporary DNS failure is retried", nil, &net.OpError{Op: "dial", Err: &net.DNSError{Name: "kv.vault.azure.net", IsTemporary: true}}, true},
		{"a name an HTTPS proxy could not resolve is reported", nil, &url.Error{Op: "Get", URL: "https://kv.vault.azure.net/", Err: errors.New("dial tcp: lookup kv.vault.azure.net: no such host")}, false},
		{"a temporary DNS failure behind an HTTPS proxy is retried", nil, &url.Error{Op: "Get", URL: "https://kv.vault.azure.net/", Err: errors.New("dial tcp: lookup kv.vault.azure.net on 10.96.0.10:53: server misbehaving")}, true},
		{"a certificate that does not verify is reported", nil, &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := shouldRetry(tt.resp, tt.err); got != tt.want {
				t.Errorf("shouldRetry = %v, want %v", got, tt.want)
			}
		})
	}
}
