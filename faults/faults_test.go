package faults_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"github.com/kvsync/kvsync/fakevault"
	"github.com/kvsync/kvsync/fakevault/keyvault"
	"github.com/kvsync/kvsync/faults"
)

const canary = "kvsync-canary-faults"

// world is a fakevault with an injector on its seams, and an azsecrets
// client whose only path to the fake goes through them.
type world struct {
	fake   *fakevault.Server
	inj    *faults.Injector
	tr     *http.Transport
	client *azsecrets.Client
	cred   azcore.TokenCredential
}

func newWorld(t *testing.T, seed uint64) *world {
	t.Helper()
	fake, err := fakevault.NewServer(fakevault.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fake.Close() })
	inj, err := faults.New(faults.Options{Seed: seed, CA: fake.CA(), DNSTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	fake.Use(inj.Handler)
	for _, name := range []string{"contoso", "other"} {
		v, err := fake.CreateVault(keyvault.VaultConfig{Name: name})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{"db-password", "api-key"} {
			if _, err := v.SetSecret(s, canary, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	tr := fake.Transport()
	tr.DialContext = inj.Dialer(fake.DialContext)
	// Dials a fault holds (blackhole, misroute) end when the transport
	// closes, as they do when a real one is closed.
	t.Cleanup(tr.CloseIdleConnections)
	httpClient := &http.Client{Transport: tr}
	opts := azcore.ClientOptions{Transport: httpClient, Retry: policy.RetryOptions{MaxRetries: -1}}
	cred, err := azidentity.NewClientSecretCredential(fakevault.DefaultTenantID, fakevault.DefaultClientID, fakevault.DefaultClientSecret,
		&azidentity.ClientSecretCredentialOptions{ClientOptions: opts})
	if err != nil {
		t.Fatal(err)
	}
	client, err := azsecrets.NewClient(fakevault.VaultURL("contoso"), cred, &azsecrets.ClientOptions{ClientOptions: opts})
	if err != nil {
		t.Fatal(err)
	}
	return &world{fake: fake, inj: inj, tr: tr, client: client, cred: cred}
}

func (w *world) get(name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	resp, err := w.client.GetSecret(ctx, name, "", nil)
	if err == nil && *resp.Value != canary {
		return errors.New("wrong value")
	}
	return err
}

func TestEachKindHasItsObservableEffectAndClearingRestores(t *testing.T) {
	var (
		dnsErr  *net.DNSError
		respErr *azcore.ResponseError
		authErr *azidentity.AuthenticationFailedError
		certErr *tls.CertificateVerificationError
	)
	tests := []struct {
		fault faults.Fault
		check func(error) bool
	}{
		{faults.Fault{Kind: faults.DNSNXDomain, Scope: faults.Scope{Vault: "contoso"}},
			func(err error) bool { return errors.As(err, &dnsErr) && dnsErr.IsNotFound }},
		{faults.Fault{Kind: faults.DNSServFail, Scope: faults.Scope{Vault: "contoso"}},
			func(err error) bool {
				return errors.As(err, &dnsErr) && strings.Contains(err.Error(), "server misbehaving")
			}},
		{faults.Fault{Kind: faults.DNSTimeout, Scope: faults.Scope{Vault: "contoso"}},
			func(err error) bool { return errors.As(err, &dnsErr) && dnsErr.IsTimeout }},
		{faults.Fault{Kind: faults.DNSMisroute, Scope: faults.Scope{Vault: "contoso"}},
			// The connect to the unrouted address outlasts the caller's deadline.
			func(err error) bool { return errors.Is(err, context.DeadlineExceeded) }},
		{faults.Fault{Kind: faults.TransportRefused, Scope: faults.Scope{Host: "contoso.vault.azure.net"}},
			func(err error) bool { return strings.Contains(err.Error(), "connection refused") }},
		{faults.Fault{Kind: faults.TransportReset, Scope: faults.Scope{Vault: "contoso"}},
			func(err error) bool { return strings.Contains(err.Error(), "connection reset") }},
		{faults.Fault{Kind: faults.TransportBlackhole, Scope: faults.Scope{Vault: "contoso"}},
			func(err error) bool { return errors.Is(err, context.DeadlineExceeded) }},
		{faults.Fault{Kind: faults.TransportLatency, Latency: faults.Duration(5 * time.Second), Scope: faults.Scope{Vault: "contoso"}},
			func(err error) bool { return errors.Is(err, context.DeadlineExceeded) }},
		{faults.Fault{Kind: faults.TransportTLSUntrusted, Scope: faults.Scope{Vault: "contoso"}},
			func(err error) bool {
				return errors.As(err, &certErr) && strings.Contains(err.Error(), "unknown authority")
			}},
		{faults.Fault{Kind: faults.TransportTLSWrongName, Scope: faults.Scope{Vault: "contoso"}},
			func(err error) bool {
				return errors.As(err, &certErr) && strings.Contains(err.Error(), "wrong-host.example")
			}},
		{faults.Fault{Kind: faults.GatewayVaultBlocked},
			func(err error) bool { return errors.Is(err, context.DeadlineExceeded) }},
		{faults.Fault{Kind: faults.VaultError, Status: 403, Code: "Forbidden", InnerCode: "ForbiddenByFirewall", Scope: faults.Scope{Vault: "contoso"}},
			func(err error) bool {
				return errors.As(err, &respErr) && respErr.StatusCode == 403 && strings.Contains(err.Error(), "ForbiddenByFirewall")
			}},
		{faults.Fault{Kind: faults.VaultError, Status: 500, Code: "InternalServerError", Scope: faults.Scope{Object: "db-password"}},
			func(err error) bool { return errors.As(err, &respErr) && respErr.StatusCode == 500 }},
		{faults.Fault{Kind: faults.VaultThrottle, RetryAfter: faults.Duration(30 * time.Second)},
			func(err error) bool {
				return errors.As(err, &respErr) && respErr.StatusCode == 429 && respErr.ErrorCode == "Throttled"
			}},
		{faults.Fault{Kind: faults.VaultMalformed},
			func(err error) bool { return err != nil && !errors.As(err, &respErr) }},
		{faults.Fault{Kind: faults.VaultTruncated},
			func(err error) bool { return err != nil && strings.Contains(err.Error(), "EOF") }},
		{faults.Fault{Kind: faults.IdentityError, AADSTS: 70021},
			func(err error) bool { return errors.As(err, &authErr) && strings.Contains(err.Error(), "AADSTS70021") }},
		{faults.Fault{Kind: faults.IdentityUnavailable},
			func(err error) bool { return errors.As(err, &authErr) && strings.Contains(err.Error(), "503") }},
	}
	for _, tt := range tests {
		name := string(tt.fault.Kind) + "/" + tt.fault.Code
		t.Run(name, func(t *testing.T) {
			w := newWorld(t, 1)
			tt.fault.Name = "under-test"
			if err := w.inj.Add(tt.fault); err != nil {
				t.Fatal(err)
			}
			err := w.get("db-password")
			if err == nil || !tt.check(err) {
				t.Fatalf("with the fault: %v", err)
			}
			if strings.Contains(err.Error(), canary) {
				t.Error("the error holds the secret value")
			}
			if len(w.inj.Journal()) == 0 {
				t.Error("the injection was not journaled")
			}
			if !w.inj.Clear("under-test") {
				t.Fatal("Clear did not find the fault")
			}
			if err := w.get("db-password"); err != nil {
				t.Errorf("after clearing: %v", err)
			}
		})
	}
}

func TestScopeLimitsAFaultToItsVaultObjectAndIdentity(t *testing.T) {
	w := newWorld(t, 1)
	mustAdd(t, w.inj, faults.Fault{Name: "one-object", Kind: faults.VaultError, Status: 404, Code: "SecretNotFound", Scope: faults.Scope{Vault: "contoso", Object: "api-key"}})
	if err := w.get("db-password"); err != nil {
		t.Errorf("another object failed: %v", err)
	}
	if err := w.get("api-key"); err == nil || !strings.Contains(err.Error(), "SecretNotFound") {
		t.Errorf("the scoped object: %v", err)
	}
	w.inj.ClearAll()
	mustAdd(t, w.inj, faults.Fault{Name: "someone-else", Kind: faults.VaultError, Status: 403, Code: "Forbidden", InnerCode: "ForbiddenByRbac", Scope: faults.Scope{Identity: "11111111-0000-4000-8000-000000000000"}})
	if err := w.get("db-password"); err != nil {
		t.Errorf("a fault for another identity fired: %v", err)
	}
	mustAdd(t, w.inj, faults.Fault{Name: "us", Kind: faults.VaultError, Status: 403, Code: "Forbidden", InnerCode: "ForbiddenByRbac", Scope: faults.Scope{Identity: fakevault.DefaultClientID}})
	if err := w.get("db-password"); err == nil || !strings.Contains(err.Error(), "ForbiddenByRbac") {
		t.Errorf("a fault for the caller's identity: %v", err)
	}
}

func TestWhenBoundsAFault(t *testing.T) {
	w := newWorld(t, 1)
	if err := w.get("db-password"); err != nil { // warm the token
		t.Fatal(err)
	}
	mustAdd(t, w.inj, faults.Fault{Name: "third-and-fourth", Kind: faults.VaultThrottle, When: faults.When{After: 2, Count: 2}})
	var got []bool
	for range 6 {
		got = append(got, w.get("db-password") != nil)
	}
	want := []bool{false, false, true, true, false, false}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("failures = %v, want %v", got, want)
		}
	}
}

func TestTheSameSeedAndPlanGiveTheSameJournal(t *testing.T) {
	run := func(seed uint64) []string {
		w := newWorld(t, seed)
		if err := w.get("db-password"); err != nil {
			t.Fatal(err)
		}
		mustAdd(t, w.inj, faults.Fault{Name: "flaky-throttle", Kind: faults.VaultThrottle, When: faults.When{Probability: 0.5}})
		mustAdd(t, w.inj, faults.Fault{Name: "flaky-500", Kind: faults.VaultError, Status: 500, Code: "InternalServerError", When: faults.When{Probability: 0.5}})
		for _, name := range []string{"db-password", "api-key", "db-password", "api-key", "db-password", "api-key", "db-password", "api-key", "db-password", "api-key"} {
			_ = w.get(name)
		}
		var out []string
		for _, j := range w.inj.Journal() {
			out = append(out, j.Fault+"@"+j.Object)
		}
		return out
	}
	a, b, c := run(42), run(42), run(7)
	if strings.Join(a, ",") != strings.Join(b, ",") {
		t.Errorf("same seed, different journals:\n%v\n%v", a, b)
	}
	if len(a) == 0 || strings.Join(a, ",") == strings.Join(c, ",") {
		t.Errorf("the seed does not drive the decisions: %v vs %v", a, c)
	}
}

func TestTheGatewayBlocksOnlyVaultHosts(t *testing.T) {
	w := newWorld(t, 1)
	mustAdd(t, w.inj, faults.Fault{Name: "gateway", Kind: faults.GatewayVaultBlocked})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := w.cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://vault.azure.net/.default"}}); err != nil {
		t.Fatalf("Entra ID through the gateway: %v", err)
	}
	if err := w.get("db-password"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("the vault through the gateway: %v, want a timeout", err)
	}
}

func TestFaultsComposeAcrossLayers(t *testing.T) {
	w := newWorld(t, 3)
	if err := w.get("db-password"); err != nil {
		t.Fatal(err)
	}
	// DNS and transport faults apply to new connections, as they do for real.
	w.tr.CloseIdleConnections()
	mustAdd(t, w.inj, faults.Fault{Name: "dns-flap", Kind: faults.DNSServFail, Scope: faults.Scope{Vault: "contoso"}, When: faults.When{Count: 1}})
	mustAdd(t, w.inj, faults.Fault{Name: "throttle", Kind: faults.VaultThrottle, When: faults.When{Count: 1}})
	first, second, third := w.get("db-password"), w.get("db-password"), w.get("db-password")
	if first == nil || !strings.Contains(first.Error(), "server misbehaving") {
		t.Errorf("first: %v, want the DNS failure", first)
	}
	if second == nil || !strings.Contains(second.Error(), "Throttled") {
		t.Errorf("second: %v, want the throttle", second)
	}
	if third != nil {
		t.Errorf("third: %v, want success", third)
	}
	journal := w.inj.Journal()
	if len(journal) != 2 || journal[0].Fault != "dns-flap" || journal[0].Host != "contoso.vault.azure.net" || journal[1].Fault != "throttle" || journal[1].Object != "db-password" {
		t.Errorf("journal = %+v", journal)
	}
}

func TestFaultsAreReadFromYAMLAndValidated(t *testing.T) {
	list, err := faults.ParseYAML([]byte(`
- name: firewall
  kind: vault.error
  status: 403
  code: Forbidden
  innerCode: ForbiddenByFirewall
  scope: {vault: contoso}
- name: slow-vault
  kind: transport.latency
  latency: 2s
  jitter: 500ms
  when: {probability: 0.5, count: 3, for: 1m}
`))
	if err != nil || len(list) != 2 || list[1].Latency != faults.Duration(2*time.Second) || list[1].When.For != faults.Duration(time.Minute) {
		t.Fatalf("ParseYAML = %+v, %v", list, err)
	}
	for _, bad := range []string{
		"- {name: x, kind: vault.nonsense}",
		"- {kind: vault.throttle}",
		"- {name: x, kind: vault.error, status: 200, code: X}",
		"- {name: x, kind: identity.aadsts}",
		"- {name: x, kind: vault.throttle, when: {probability: 2}}",
		"- {name: x, kind: vault.throttle, unknown: 1}",
		"- {name: x, kind: vault.throttle}\n- {name: x, kind: vault.malformed}",
	} {
		if _, err := faults.ParseYAML([]byte(bad)); err == nil {
			t.Errorf("ParseYAML accepted %q", bad)
		}
	}
}

func mustAdd(t *testing.T, inj *faults.Injector, f faults.Fault) {
	t.Helper()
	if err := inj.Add(f); err != nil {
		t.Fatal(err)
	}
}

func TestTokensThatExpireEarlyAreRefusedByTheVault(t *testing.T) {
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	fake, err := fakevault.NewServer(fakevault.Options{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fake.Close() })
	inj, err := faults.New(faults.Options{Seed: 1, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	fake.Use(inj.Handler)
	v, err := fake.CreateVault(keyvault.VaultConfig{Name: "contoso"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.SetSecret("db-password", canary, nil); err != nil {
		t.Fatal(err)
	}
	client, err := fake.Client("contoso")
	if err != nil {
		t.Fatal(err)
	}
	get := func() error {
		_, err := client.GetSecret(context.Background(), "db-password", "", nil)
		return err
	}
	// Entra ID backdates iat by five minutes: tokens are 5m old when issued.
	mustAdd(t, inj, faults.Fault{Name: "short-lived", Kind: faults.IdentityEarlyExpiry, Latency: faults.Duration(6 * time.Minute)})
	if err := get(); err != nil {
		t.Fatalf("a fresh token: %v", err)
	}
	mu.Lock()
	now = now.Add(2 * time.Minute)
	mu.Unlock()
	if err := get(); err == nil || !strings.Contains(err.Error(), "TokenExpired") {
		t.Errorf("a token past its early expiry: %v, want 401 TokenExpired", err)
	}
	inj.Clear("short-lived")
	if err := get(); err != nil {
		t.Errorf("after clearing: %v", err)
	}
}
