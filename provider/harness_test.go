package provider_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"sigs.k8s.io/secrets-store-csi-driver/provider/v1alpha1"

	"github.com/kvsync/kvsync/fakevault"
	"github.com/kvsync/kvsync/fakevault/entra"
	"github.com/kvsync/kvsync/fakevault/keyvault"
	"github.com/kvsync/kvsync/provider"
)

const (
	tenantID  = "0e1f2a3b-0000-4000-8000-00000000aa01"
	clientID  = "0e1f2a3b-0000-4000-8000-00000000cc01"
	namespace = "payments"
	saName    = "workload"
	vaultName = "contoso"
)

// harness is a provider serving on a real unix socket, reaching a fakevault
// over real TLS, with a workload identity federated with one ServiceAccount.
type harness struct {
	fake     *fakevault.Server
	issuer   *entra.Issuer
	vault    *keyvault.Vault
	client   v1alpha1.CSIDriverProviderClient
	socket   string
	registry *prometheus.Registry
	logs     *syncBuffer
}

type harnessOptions struct {
	// now is the clock of Entra ID, the vaults and the ServiceAccount
	// token issuer.
	now func() time.Time
	// tokenLifetime is the lifetime of the access tokens Entra ID issues;
	// zero means an hour.
	tokenLifetime time.Duration
	mountTimeout  time.Duration
	transport     func(*fakevault.Server) *http.Client
	// maxCachedIdentities, if not zero, bounds the provider's cached
	// identities and vault clients.
	maxCachedIdentities int
}

func newHarness(t *testing.T, o harnessOptions) *harness {
	t.Helper()
	fake, err := fakevault.NewServer(fakevault.Options{Now: o.now, TokenLifetime: o.tokenLifetime})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fake.Close() })
	issuer, err := entra.NewIssuer("https://oidc.kvsync.test/cluster")
	must(t, err)
	issuer.Now = o.now
	must(t, fake.Entra().AddTenant(tenantID))
	must(t, fake.Entra().TrustIssuer(issuer.URL(), issuer.PublicKey()))
	must(t, fake.Entra().AddApplication(tenantID, entra.Application{ClientID: clientID, ObjectID: clientID,
		FederatedCredentials: []entra.FederatedCredential{{Issuer: issuer.URL(), Subject: "system:serviceaccount:" + namespace + ":" + saName}}}))
	vault, err := fake.CreateVault(keyvault.VaultConfig{Name: vaultName, TenantID: tenantID,
		RoleAssignments: []keyvault.RoleAssignment{{PrincipalID: clientID, Role: keyvault.RoleCertificateUser}}})
	must(t, err)

	dir, err := os.MkdirTemp("", "kvsp-")
	must(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	httpClient := fake.HTTPClient()
	if o.transport != nil {
		httpClient = o.transport(fake)
	}
	reg := prometheus.NewRegistry()
	logs := &syncBuffer{}
	srv, err := provider.New(provider.Options{SocketDir: dir, MountTimeout: o.mountTimeout, Transport: httpClient, Registerer: reg,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	must(t, err)
	if o.maxCachedIdentities != 0 {
		provider.SetMaxCachedIdentities(srv, o.maxCachedIdentities)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, func() { close(ready) }) }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("Serve: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	conn, err := grpc.NewClient("unix://"+srv.SocketPath(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	must(t, err)
	t.Cleanup(func() { conn.Close() })
	return &harness{fake: fake, issuer: issuer, vault: vault, client: v1alpha1.NewCSIDriverProviderClient(conn), socket: srv.SocketPath(), registry: reg, logs: logs}
}

// attributes returns mount attributes for the objects YAML entries, as the
// controller passes them, with overrides applied ("" deletes).
func (h *harness) attributes(t *testing.T, objects []string, overrides map[string]string) map[string]string {
	t.Helper()
	token, err := h.issuer.Assertion("system:serviceaccount:"+namespace+":"+saName, provider.TokenAudience, 10*time.Minute)
	must(t, err)
	tokens, err := json.Marshal(map[string]map[string]string{provider.TokenAudience: {"token": token, "expirationTimestamp": time.Now().Add(10 * time.Minute).Format(time.RFC3339)}})
	must(t, err)
	var b strings.Builder
	b.WriteString("array:\n")
	for _, o := range objects {
		b.WriteString("  - |\n")
		for _, line := range strings.Split(strings.TrimSpace(o), "\n") {
			b.WriteString("    " + strings.TrimSpace(line) + "\n")
		}
	}
	attrs := map[string]string{
		"keyvaultName":                             vaultName,
		"tenantID":                                 tenantID,
		"clientID":                                 clientID,
		"objects":                                  b.String(),
		"csi.storage.k8s.io/pod.name":              "app",
		"csi.storage.k8s.io/pod.namespace":         namespace,
		"csi.storage.k8s.io/pod.uid":               "0000-uid",
		"csi.storage.k8s.io/serviceAccount.name":   saName,
		"csi.storage.k8s.io/serviceAccount.tokens": string(tokens),
	}
	for k, v := range overrides {
		if v == "" {
			delete(attrs, k)
		} else {
			attrs[k] = v
		}
	}
	return attrs
}

// mount calls Mount over the socket and returns the files by path.
func (h *harness) mount(t *testing.T, attrs map[string]string) (map[string]*v1alpha1.File, *v1alpha1.MountResponse, error) {
	t.Helper()
	raw, err := json.Marshal(attrs)
	must(t, err)
	resp, err := h.client.Mount(context.Background(), &v1alpha1.MountRequest{Attributes: string(raw), Secrets: "{}", Permission: "420"})
	if err != nil {
		return nil, nil, err
	}
	files := map[string]*v1alpha1.File{}
	for _, f := range resp.GetFiles() {
		files[f.GetPath()] = f
	}
	return files, resp, nil
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
