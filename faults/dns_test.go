package faults_test

import (
	"context"
	"errors"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/kvsync/kvsync/faults"
)

func TestTheDNSServerResolvesTheFakesNamesWithDNSFaultsAndSendsBlockedVaultsToAnAddressTheNetworkDrops(t *testing.T) {
	inj, err := faults.New(faults.Options{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := faults.NewDNSServer(faults.DNSServerOptions{Injector: inj, Resolve: func(name string) (net.IP, bool) {
		if name == "login.microsoftonline.com" || name == "contoso.vault.azure.net" {
			return net.IPv4(127, 0, 0, 1), true
		}
		return nil, false
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	resolver := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, srv.Addr())
	}}
	lookup := func(host string) ([]string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		return resolver.LookupHost(ctx, host)
	}

	if addrs, err := lookup("contoso.vault.azure.net"); err != nil || !slices.Contains(addrs, "127.0.0.1") {
		t.Fatalf("lookup of a served name: %v, %v", addrs, err)
	}
	var dnsErr *net.DNSError
	if _, err := lookup("typo.vault.azure.net"); !errors.As(err, &dnsErr) || !dnsErr.IsNotFound {
		t.Errorf("lookup of an unknown name: %v, want NXDOMAIN", err)
	}
	tests := []struct {
		kind  faults.Kind
		check func([]string, error) bool
	}{
		{faults.DNSNXDomain, func(_ []string, err error) bool { return errors.As(err, &dnsErr) && dnsErr.IsNotFound }},
		{faults.DNSServFail, func(_ []string, err error) bool {
			return errors.As(err, &dnsErr) && !dnsErr.IsNotFound && !dnsErr.IsTimeout
		}},
		{faults.DNSTimeout, func(_ []string, err error) bool { return errors.As(err, &dnsErr) && dnsErr.IsTimeout }},
		{faults.DNSMisroute, func(addrs []string, err error) bool { return err == nil && slices.Contains(addrs, "10.255.0.4") }},
		{faults.TransportBlackhole, func(addrs []string, err error) bool { return err == nil && slices.Contains(addrs, "203.0.113.4") }},
		{faults.GatewayVaultBlocked, func(addrs []string, err error) bool { return err == nil && slices.Contains(addrs, "203.0.113.4") }},
		// A fault of the connection the DNS answer cannot carry leaves the
		// name resolving to the fake.
		{faults.TransportRefused, func(addrs []string, err error) bool { return err == nil && slices.Contains(addrs, "127.0.0.1") }},
	}
	for _, tt := range tests {
		t.Run(string(tt.kind), func(t *testing.T) {
			mustAdd(t, inj, faults.Fault{Name: "dns", Kind: tt.kind, Scope: faults.Scope{Vault: "contoso"}})
			if addrs, err := lookup("contoso.vault.azure.net"); !tt.check(addrs, err) {
				t.Errorf("with the fault: %v, %v", addrs, err)
			}
			if addrs, err := lookup("login.microsoftonline.com"); err != nil || !slices.Contains(addrs, "127.0.0.1") {
				t.Errorf("a name out of the fault's scope: %v, %v", addrs, err)
			}
			inj.Clear("dns")
			if addrs, err := lookup("contoso.vault.azure.net"); err != nil || !slices.Contains(addrs, "127.0.0.1") {
				t.Errorf("after clearing: %v, %v", addrs, err)
			}
		})
	}
}
