package keyvault_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azcertificates"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"github.com/kvsync/kvsync/fakevault/journal"
	"github.com/kvsync/kvsync/fakevault/keyvault"
	"github.com/kvsync/kvsync/fakevault/pki"
)

// Identities of the tests. Tokens are opaque strings the stub verifier
// maps to principals.
const (
	tenantA = "72f988bf-0000-4000-8000-00000000000a"
	tenantB = "96be4b7a-0000-4000-8000-00000000000b"

	oidApp1  = "6672ea07-0000-4000-8000-000000000001"
	appidApp = "e6f71349-0000-4000-8000-000000000001"
	oidApp2  = "6672ea07-0000-4000-8000-000000000002"
	oidOwner = "6672ea07-0000-4000-8000-0000000000ff"

	tokenApp1      = "token-app1"
	tokenApp2      = "token-app2"
	tokenOwner     = "token-owner"
	tokenExpired   = "expired"
	tokenNotYet    = "not-yet-valid"
	tokenGarbage   = "eyJhbGciOiJSUzI1NiJ9.eyJ4IjoxfQ.c2ln"
	tokenARM       = "token-arm-audience"
	tokenForeign   = "token-other-tenant"
	tokenV2Issuer  = "token-v2-issuer"
	vaultAudience  = "https://vault.azure.net"
	stsA           = "https://sts.windows.net/" + tenantA + "/"
	stsB           = "https://sts.windows.net/" + tenantB + "/"
	vaultScope     = "https://vault.azure.net/.default"
	challengeValue = `Bearer authorization="https://login.microsoftonline.com/` + tenantA + `", resource="https://vault.azure.net"`
)

// stubVerifier maps token strings to principals or errors.
type stubVerifier struct{}

func (stubVerifier) VerifyAccessToken(raw string) (keyvault.Principal, error) {
	p := func(oid string) keyvault.Principal {
		return keyvault.Principal{TenantID: tenantA, ObjectID: oid, AppID: appidApp, Audience: vaultAudience,
			Issuer: stsA, ExpiresAt: time.Now().Add(time.Hour)}
	}
	switch raw {
	case tokenApp1:
		return p(oidApp1), nil
	case tokenApp2:
		return p(oidApp2), nil
	case tokenOwner:
		return p(oidOwner), nil
	case tokenV2Issuer:
		q := p(oidApp1)
		q.Issuer = "https://login.microsoftonline.com/" + tenantA + "/v2.0"
		return q, nil
	case tokenARM:
		q := p(oidApp1)
		q.Audience = "https://management.azure.com/"
		return q, nil
	case tokenForeign:
		q := p(oidApp1)
		q.TenantID, q.Issuer = tenantB, stsB
		return q, nil
	case tokenExpired:
		return keyvault.Principal{}, fmt.Errorf("exp in the past: %w", keyvault.ErrTokenExpired)
	case tokenNotYet:
		return keyvault.Principal{}, fmt.Errorf("nbf in the future: %w", keyvault.ErrTokenNotYetValid)
	}
	return keyvault.Principal{}, fmt.Errorf("unknown token: %w", keyvault.ErrTokenInvalid)
}

// stubCredential hands out one opaque token and remembers what it was
// asked for.
type stubCredential struct {
	token string

	mu       sync.Mutex
	requests []policy.TokenRequestOptions
}

func (c *stubCredential) GetToken(_ context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.requests = append(c.requests, opts)
	return azcore.AccessToken{Token: c.token, ExpiresOn: time.Now().Add(time.Hour)}, nil
}

func (c *stubCredential) asked() []policy.TokenRequestOptions {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]policy.TokenRequestOptions(nil), c.requests...)
}

// harness is a fake Key Vault behind real TLS, reached by an http.Client
// that dials every *.vault.azure.net:443 to the test server.
type harness struct {
	svc     *keyvault.Service
	journal *journal.Journal
	ca      *pki.CA
	server  *httptest.Server
	client  *http.Client
	now     *fakeClock
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

var (
	sharedCAOnce sync.Once
	sharedCA     *pki.CA
	sharedLeaf   *pki.Leaf
	sharedErr    error
)

// testPKI returns a CA and a *.vault.azure.net leaf, made once per run.
func testPKI(t testing.TB) (*pki.CA, *pki.Leaf) {
	t.Helper()
	sharedCAOnce.Do(func() {
		sharedCA, sharedErr = pki.NewCA("kvsync fake test CA")
		if sharedErr == nil {
			sharedLeaf, sharedErr = sharedCA.Issue(pki.LeafOptions{DNSNames: []string{"*.vault.azure.net"}})
		}
	})
	if sharedErr != nil {
		t.Fatalf("making test PKI: %v", sharedErr)
	}
	return sharedCA, sharedLeaf
}

func newHarness(t testing.TB, tweak ...func(*keyvault.Options)) *harness {
	t.Helper()
	ca, leaf := testPKI(t)
	clock := &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	j := &journal.Journal{}
	opts := keyvault.Options{Verifier: stubVerifier{}, Now: clock.Now, Journal: j}
	for _, f := range tweak {
		f(&opts)
	}
	svc, err := keyvault.New(opts)
	if err != nil {
		t.Fatalf("keyvault.New: %v", err)
	}
	srv := httptest.NewUnstartedServer(svc.Handler())
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{leaf.TLSCertificate()}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	target := srv.Listener.Addr().String()
	var dialer net.Dialer
	transport := &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: ca.Pool()},
		ForceAttemptHTTP2: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, port, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			if port != "443" || !strings.HasSuffix(host, ".vault.azure.net") {
				return nil, fmt.Errorf("test transport: refusing to dial %s", addr)
			}
			return dialer.DialContext(ctx, network, target)
		},
	}
	t.Cleanup(transport.CloseIdleConnections)
	return &harness{svc: svc, journal: j, ca: ca, server: srv, client: &http.Client{Transport: transport}, now: clock}
}

// vault creates a vault in tenant A; by default RBAC with Key Vault
// Administrator for the owner, Secrets Officer for app1.
func (h *harness) vault(t testing.TB, cfg keyvault.VaultConfig) *keyvault.Vault {
	t.Helper()
	if cfg.TenantID == "" {
		cfg.TenantID = tenantA
	}
	v, err := h.svc.CreateVault(cfg)
	if err != nil {
		t.Fatalf("CreateVault(%q): %v", cfg.Name, err)
	}
	return v
}

func rbacVault(name string, assignments ...keyvault.RoleAssignment) keyvault.VaultConfig {
	return keyvault.VaultConfig{Name: name, RoleAssignments: append([]keyvault.RoleAssignment{
		{PrincipalID: oidOwner, Role: "Key Vault Administrator"},
	}, assignments...)}
}

func (h *harness) clientOptions() azcore.ClientOptions {
	return azcore.ClientOptions{Transport: h.client}
}

func (h *harness) secrets(t testing.TB, v *keyvault.Vault, token string) (*azsecrets.Client, *stubCredential) {
	t.Helper()
	cred := &stubCredential{token: token}
	c, err := azsecrets.NewClient(v.URL(), cred, &azsecrets.ClientOptions{ClientOptions: h.clientOptions()})
	if err != nil {
		t.Fatalf("azsecrets.NewClient: %v", err)
	}
	return c, cred
}

func (h *harness) keys(t testing.TB, v *keyvault.Vault, token string) *azkeys.Client {
	t.Helper()
	c, err := azkeys.NewClient(v.URL(), &stubCredential{token: token}, &azkeys.ClientOptions{ClientOptions: h.clientOptions()})
	if err != nil {
		t.Fatalf("azkeys.NewClient: %v", err)
	}
	return c
}

func (h *harness) certificates(t testing.TB, v *keyvault.Vault, token string) *azcertificates.Client {
	t.Helper()
	c, err := azcertificates.NewClient(v.URL(), &stubCredential{token: token}, &azcertificates.ClientOptions{ClientOptions: h.clientOptions()})
	if err != nil {
		t.Fatalf("azcertificates.NewClient: %v", err)
	}
	return c
}

// raw sends one HTTP request over the test TLS client.
func (h *harness) raw(t testing.TB, method, url, token, body string) (*http.Response, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatalf("NewRequest: %v", err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := h.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading body: %v", err)
	}
	return resp, b
}

// serviceError is the parsed error envelope of a failed SDK call.
type serviceError struct {
	Status    int
	Code      string
	Message   string
	InnerCode string
	Header    http.Header
}

func asServiceError(t testing.TB, err error) serviceError {
	t.Helper()
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		t.Fatalf("error %v is not an *azcore.ResponseError", err)
	}
	body, rerr := io.ReadAll(re.RawResponse.Body)
	if rerr != nil {
		t.Fatalf("reading error body: %v", rerr)
	}
	return parseEnvelope(t, re.StatusCode, re.RawResponse.Header, body)
}

func parseEnvelope(t testing.TB, status int, header http.Header, body []byte) serviceError {
	t.Helper()
	var env struct {
		Error struct {
			Code       string `json:"code"`
			Message    string `json:"message"`
			InnerError *struct {
				Code string `json:"code"`
			} `json:"innererror"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		t.Fatalf("error body %q is not the envelope: %v", body, err)
	}
	se := serviceError{Status: status, Code: env.Error.Code, Message: env.Error.Message, Header: header}
	if env.Error.InnerError != nil {
		se.InnerCode = env.Error.InnerError.Code
	}
	return se
}

func ptr[T any](v T) *T { return &v }

type journalEntry = journal.Entry
