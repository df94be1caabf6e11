package fakevault_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
	"k8s.io/utils/ptr"

	"github.com/kvsync/kvsync/fakevault"
	"github.com/kvsync/kvsync/fakevault/entra"
	"github.com/kvsync/kvsync/fakevault/journal"
	"github.com/kvsync/kvsync/fakevault/keyvault"
)

const canary = "kvsync-canary-fakevault-5e1d"

func newServer(t *testing.T, opts fakevault.Options) *fakevault.Server {
	t.Helper()
	srv, err := fakevault.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return srv
}

func createVault(t *testing.T, srv *fakevault.Server, cfg keyvault.VaultConfig) *keyvault.Vault {
	t.Helper()
	v, err := srv.CreateVault(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestClientReadsASecretAsTheDefaultIdentity(t *testing.T) {
	srv := newServer(t, fakevault.Options{})
	vault := createVault(t, srv, keyvault.VaultConfig{Name: "contoso"})
	version, err := vault.SetSecret("db-password", canary, nil)
	if err != nil {
		t.Fatal(err)
	}
	client, err := srv.Client("contoso")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.GetSecret(context.Background(), "db-password", "", nil)
	if err != nil {
		t.Fatalf("GetSecret: %v", err)
	}
	if *resp.Value != canary || resp.ID.Version() != version {
		t.Errorf("got version %s, want %s", resp.ID.Version(), version)
	}
	ops := map[string]bool{}
	for _, e := range srv.Journal().Entries() {
		ops[e.Service+"/"+e.Operation] = true
		if strings.Contains(fmt.Sprintf("%+v", e), canary) {
			t.Errorf("the journal holds the secret value: %+v", e)
		}
	}
	for _, want := range []string{"keyvault/GetSecret", "entra/Token"} {
		if !ops[want] {
			t.Errorf("journal has no %s entry: %v", want, ops)
		}
	}
}

func TestWorkloadIdentityReadsASecretWithAFederatedServiceAccountToken(t *testing.T) {
	srv := newServer(t, fakevault.Options{})
	const tenant, clientID = "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"
	issuer, err := entra.NewIssuer("https://kubernetes.default.svc.cluster.local")
	if err != nil {
		t.Fatal(err)
	}
	must(t, srv.Entra().AddTenant(tenant))
	must(t, srv.Entra().TrustIssuer(issuer.URL(), issuer.PublicKey()))
	must(t, srv.Entra().AddApplication(tenant, entra.Application{
		ClientID: clientID, ObjectID: clientID,
		FederatedCredentials: []entra.FederatedCredential{{Name: "app", Issuer: issuer.URL(), Subject: "system:serviceaccount:payments:workload"}},
	}))
	vault := createVault(t, srv, keyvault.VaultConfig{Name: "payments-kv", TenantID: tenant,
		RoleAssignments: []keyvault.RoleAssignment{{PrincipalID: clientID, Role: keyvault.RoleSecretsUser}}})
	if _, err := vault.SetSecret("api-key", canary, nil); err != nil {
		t.Fatal(err)
	}

	assertion, err := issuer.Assertion("system:serviceaccount:payments:workload", entra.TokenExchangeAudience, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	tokenFile := filepath.Join(t.TempDir(), "token")
	must(t, os.WriteFile(tokenFile, []byte(assertion), 0o600))
	cred, err := azidentity.NewWorkloadIdentityCredential(&azidentity.WorkloadIdentityCredentialOptions{
		ClientOptions: srv.ClientOptions(), TenantID: tenant, ClientID: clientID, TokenFilePath: tokenFile,
	})
	if err != nil {
		t.Fatal(err)
	}
	client, err := srv.ClientWith("payments-kv", cred)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.GetSecret(context.Background(), "api-key", "", nil)
	if err != nil {
		t.Fatalf("GetSecret: %v", err)
	}
	if *resp.Value != canary {
		t.Error("GetSecret returned another value")
	}
	if _, err := client.SetSecret(context.Background(), "api-key", azsecrets.SetSecretParameters{Value: ptr.To("x")}, nil); !hasCode(err, "ForbiddenByRbac") {
		t.Errorf("a Secrets User set a secret: %v", err)
	}
}

// staticToken is a credential that always presents the same token.
type staticToken string

func (s staticToken) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{Token: string(s), ExpiresOn: time.Now().Add(time.Hour)}, nil
}

func TestTokensAreRefusedByVaultsOfAnotherTenantAndWhenExpired(t *testing.T) {
	clock := &fakeClock{now: time.Now()}
	srv := newServer(t, fakevault.Options{Now: clock.Now})
	const otherTenant, otherApp = "33333333-3333-4333-8333-333333333333", "44444444-4444-4444-8444-444444444444"
	must(t, srv.Entra().AddTenant(otherTenant))
	must(t, srv.Entra().AddApplication(otherTenant, entra.Application{ClientID: otherApp, ObjectID: otherApp}))
	vault := createVault(t, srv, keyvault.VaultConfig{Name: "contoso"})
	must2(vault.SetSecret("db-password", canary, nil))

	foreign, err := srv.Entra().IssueAccessToken(otherTenant, otherApp, "https://vault.azure.net")
	must(t, err)
	admin, err := srv.Entra().IssueAccessToken(fakevault.DefaultTenantID, fakevault.DefaultClientID, "https://vault.azure.net")
	must(t, err)

	get := func(token string) error {
		client, err := srv.ClientWith("contoso", staticToken(token))
		must(t, err)
		_, err = client.GetSecret(context.Background(), "db-password", "", nil)
		return err
	}
	if err := get(foreign); !hasStatus(err, http.StatusUnauthorized) || !strings.Contains(err.Error(), "AKV10032") {
		t.Errorf("a token of another tenant: %v, want 401 AKV10032", err)
	}
	if err := get(admin); err != nil {
		t.Fatalf("a valid token: %v", err)
	}
	clock.Advance(2 * time.Hour)
	if err := get(admin); !hasStatus(err, http.StatusUnauthorized) || !strings.Contains(err.Error(), "TokenExpired") {
		t.Errorf("an expired token: %v, want 401 naming the expiry", err)
	}
}

func TestUnknownVaultNamesFailAsDNSLookupsDo(t *testing.T) {
	srv := newServer(t, fakevault.Options{})
	client, err := srv.Client("no-such-vault")
	must(t, err)
	_, err = client.GetSecret(context.Background(), "x", "", nil)
	var dnsErr *net.DNSError
	if !errors.As(err, &dnsErr) || !dnsErr.IsNotFound || !strings.Contains(err.Error(), "no-such-vault.vault.azure.net") {
		t.Errorf("GetSecret on an unknown vault: %v, want a no-such-host DNS error", err)
	}
	if _, err := srv.DialContext(context.Background(), "tcp", "login.microsoftonline.com:80"); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("dialing port 80: %v, want connection refused", err)
	}
}

func TestProxyTunnelsOnlyTheNamesTheServerServes(t *testing.T) {
	srv := newServer(t, fakevault.Options{})
	createVault(t, srv, keyvault.VaultConfig{Name: "contoso"})
	proxy := startProxy(t, srv)
	for _, tt := range []struct {
		target string
		want   string
	}{
		{"contoso.vault.azure.net:443", "HTTP/1.1 200 "},
		{"login.microsoftonline.com:443", "HTTP/1.1 200 "},
		{"example.com:443", "HTTP/1.1 502 dial tcp: lookup example.com: no such host\r\n"},
		{"other.vault.azure.net:443", "HTTP/1.1 502 dial tcp: lookup other.vault.azure.net: no such host\r\n"},
		{"login.microsoftonline.com:80", "HTTP/1.1 502 dial tcp: connect login.microsoftonline.com:80: connection refused\r\n"},
	} {
		conn, err := net.Dial("tcp", proxy)
		must(t, err)
		fmt.Fprintf(conn, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", tt.target, tt.target)
		line, err := bufio.NewReader(conn).ReadString('\n')
		conn.Close()
		if err != nil || !strings.HasPrefix(line, tt.want) {
			t.Errorf("CONNECT %s: %q (%v), want %q", tt.target, line, err, tt.want)
		}
	}
}

func TestAClientThroughTheProxySeesTheLookupFailureItsOwnDialWouldReport(t *testing.T) {
	srv := newServer(t, fakevault.Options{})
	proxy := startProxy(t, srv)
	client := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(&url.URL{Scheme: "http", Host: proxy})}}
	_, err := client.Get("https://no-such-vault.vault.azure.net/secrets/x")
	if want := `Get "https://no-such-vault.vault.azure.net/secrets/x": dial tcp: lookup no-such-vault.vault.azure.net: no such host`; err == nil || err.Error() != want {
		t.Errorf("GET through the proxy: %v, want %s", err, want)
	}
}

func TestAClientInAnotherProcessReachesTheFakeWithOnlyProxyAndCAEnvironment(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a separate program")
	}
	srv := newServer(t, fakevault.Options{})
	vault := createVault(t, srv, keyvault.VaultConfig{Name: "contoso"})
	must2(vault.SetSecret("db-password", canary, nil))
	proxy := startProxy(t, srv)

	dir := t.TempDir()
	bin := filepath.Join(dir, "proxyclient")
	build := exec.Command("go", "build", "-o", bin, "./testdata/proxyclient")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the client: %v\n%s", err, out)
	}
	caFile := filepath.Join(dir, "ca.pem")
	must(t, os.WriteFile(caFile, srv.CAPEM(), 0o644))

	cmd := exec.Command(bin, fakevault.DefaultTenantID, fakevault.DefaultClientID, fakevault.DefaultClientSecret, "contoso", "db-password")
	cmd.Env = []string{"HTTPS_PROXY=http://" + proxy, "SSL_CERT_FILE=" + caFile, "HOME=" + dir}
	out, err := cmd.Output()
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			t.Fatalf("client failed: %v\n%s", err, exit.Stderr)
		}
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(canary))
	if got := strings.TrimSpace(string(out)); got != hex.EncodeToString(sum[:]) {
		t.Errorf("client read a value with digest %s, want the canary's", got)
	}
	if n := len(srv.Journal().Filter(func(e journal.Entry) bool { return e.Operation == "GetSecret" && e.Status == 200 })); n != 1 {
		t.Errorf("journal has %d successful GetSecret entries, want 1", n)
	}
}

func startProxy(t *testing.T, srv *fakevault.Server) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	hs := &http.Server{Handler: srv.ProxyHandler(), ReadHeaderTimeout: 5 * time.Second}
	go hs.Serve(lis)
	t.Cleanup(func() { hs.Close() })
	return lis.Addr().String()
}

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func hasStatus(err error, status int) bool {
	var re *azcore.ResponseError
	return errors.As(err, &re) && re.StatusCode == status
}

func hasCode(err error, code string) bool {
	return err != nil && strings.Contains(err.Error(), code)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func must2[T any](_ T, err error) {
	if err != nil {
		panic(err)
	}
}

func TestClosingClientConnectionsMakesClientsDialAgain(t *testing.T) {
	srv := newServer(t, fakevault.Options{})
	vault := createVault(t, srv, keyvault.VaultConfig{Name: "contoso"})
	if _, err := vault.SetSecret("db-password", canary, nil); err != nil {
		t.Fatal(err)
	}
	var dials sync.Map // address -> *atomic.Int64
	tr := srv.Transport()
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		n, _ := dials.LoadOrStore(addr, new(atomic.Int64))
		n.(*atomic.Int64).Add(1)
		return srv.DialContext(ctx, network, addr)
	}
	t.Cleanup(tr.CloseIdleConnections)
	opts := azcore.ClientOptions{Transport: &http.Client{Transport: tr}}
	cred, err := azidentity.NewClientSecretCredential(fakevault.DefaultTenantID, fakevault.DefaultClientID, fakevault.DefaultClientSecret,
		&azidentity.ClientSecretCredentialOptions{ClientOptions: opts})
	if err != nil {
		t.Fatal(err)
	}
	client, err := azsecrets.NewClient(fakevault.VaultURL("contoso"), cred, &azsecrets.ClientOptions{ClientOptions: opts})
	if err != nil {
		t.Fatal(err)
	}
	get := func() {
		t.Helper()
		if _, err := client.GetSecret(context.Background(), "db-password", "", nil); err != nil {
			t.Fatalf("GetSecret: %v", err)
		}
	}
	vaultDials := func() int64 {
		n, ok := dials.Load("contoso." + fakevault.VaultDomain + ":443")
		if !ok {
			return 0
		}
		return n.(*atomic.Int64).Load()
	}
	get()
	get()
	if n := vaultDials(); n != 1 {
		t.Fatalf("%d dials for two reads on a kept-alive connection, want 1", n)
	}
	srv.CloseClientConnections()
	get()
	if n := vaultDials(); n != 2 {
		t.Errorf("%d dials after the connections were closed, want 2", n)
	}
}
