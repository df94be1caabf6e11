package provider

import (
	"errors"
	"net"
	"net/url"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
)

func TestALookupFailureIsADNSFailureWhetherTheProviderOrItsHTTPSProxyResolved(t *testing.T) {
	get := func(err error) error {
		return &url.Error{Op: "Get", URL: "https://kv.vault.azure.net/secrets/db", Err: err}
	}
	for _, tt := range []struct {
		name string
		err  error
		want string
	}{
		{"the provider's own dial", get(&net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "kv.vault.azure.net", IsNotFound: true}}),
			"DNS lookup of kv.vault.azure.net failed (no such host)"},
		{"a proxy's refusal in its resolver's words", get(errors.New("dial tcp: lookup kv.vault.azure.net: no such host")),
			"DNS lookup of kv.vault.azure.net failed (no such host)"},
		{"a proxy's refusal naming its DNS server", get(errors.New("dial tcp: lookup kv.vault.azure.net on 10.96.0.10:53: server misbehaving")),
			"DNS lookup of kv.vault.azure.net failed (server misbehaving)"},
	} {
		code, msg := classify(tt.err)
		if code != codes.Unavailable || !strings.HasPrefix(msg, tt.want) {
			t.Errorf("%s: classify = %s %q, want Unavailable %q", tt.name, code, msg, tt.want)
		}
	}
	if code, msg := classify(get(errors.New("Bad Gateway"))); code != codes.Unknown || strings.Contains(msg, "DNS") {
		t.Errorf("a proxy's refusal without a cause: classify = %s %q, want Unknown, not DNS", code, msg)
	}
}
