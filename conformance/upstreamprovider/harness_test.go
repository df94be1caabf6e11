package upstreamprovider

import (
	"context"
	"encoding/json"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"
	"sigs.k8s.io/secrets-store-csi-driver/provider/v1alpha1"

	"github.com/kvsync/kvsync/fakevault"
	"github.com/kvsync/kvsync/fakevault/entra"
	"github.com/kvsync/kvsync/fakevault/keyvault"
)

const (
	tenantID  = "0e1f2a3b-0000-4000-8000-00000000ab01"
	clientID  = "0e1f2a3b-0000-4000-8000-00000000cd01"
	namespace = "payments"
	saName    = "workload"
	vaultName = "contoso"
)

// harness is the double served over an in-memory gRPC connection, reaching
// a fakevault over real TLS through the real Azure SDK clients, with a
// workload identity federated with one ServiceAccount and granted Key Vault
// Certificate User (read access to secrets, keys and certificates) on one
// vault.
type harness struct {
	fake   *fakevault.Server
	issuer *entra.Issuer
	vault  *keyvault.Vault
	client v1alpha1.CSIDriverProviderClient
	// clock is the fake's and the issuer's clock.
	clock *clock
}

// clock is the real time plus an offset that tests advance, so that vault
// objects get distinct creation times without waiting.
type clock struct{ offset atomic.Int64 }

func (c *clock) Now() time.Time { return time.Now().Add(time.Duration(c.offset.Load())) }

// Advance moves the clock forward by d.
func (c *clock) Advance(d time.Duration) { c.offset.Add(int64(d)) }

func newHarness(t *testing.T, opts Options) *harness {
	t.Helper()
	clk := &clock{}
	fake, err := fakevault.NewServer(fakevault.Options{Now: clk.Now})
	must(t, err)
	t.Cleanup(func() { fake.Close() })
	issuer, err := entra.NewIssuer("https://oidc.kvsync.test/cluster")
	must(t, err)
	issuer.Now = clk.Now
	must(t, fake.Entra().AddTenant(tenantID))
	must(t, fake.Entra().TrustIssuer(issuer.URL(), issuer.PublicKey()))
	must(t, fake.Entra().AddApplication(tenantID, entra.Application{ClientID: clientID, ObjectID: clientID,
		FederatedCredentials: []entra.FederatedCredential{{Issuer: issuer.URL(), Subject: "system:serviceaccount:" + namespace + ":" + saName}}}))
	vault, err := fake.CreateVault(keyvault.VaultConfig{Name: vaultName, TenantID: tenantID,
		RoleAssignments: []keyvault.RoleAssignment{{PrincipalID: clientID, Role: keyvault.RoleCertificateUser}}})
	must(t, err)

	if opts.Transport == nil {
		opts.Transport = fake.HTTPClient()
	}
	lis := bufconn.Listen(1 << 20)
	gs := grpc.NewServer()
	v1alpha1.RegisterCSIDriverProviderServer(gs, New(opts))
	served := make(chan error, 1)
	go func() { served <- gs.Serve(lis) }()
	conn, err := grpc.NewClient("passthrough:///upstream-double",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	must(t, err)
	t.Cleanup(func() {
		conn.Close()
		gs.Stop()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return &harness{fake: fake, issuer: issuer, vault: vault, client: v1alpha1.NewCSIDriverProviderClient(conn), clock: clk}
}

// attributes returns the mount attributes the driver passes for a
// SecretProviderClass listing the objects YAML entries, with a fresh
// ServiceAccount token, overrides applied ("" deletes an attribute).
func (h *harness) attributes(t *testing.T, objects []string, overrides map[string]string) map[string]string {
	t.Helper()
	token, err := h.issuer.Assertion("system:serviceaccount:"+namespace+":"+saName, WorkloadIdentityAudience, 10*time.Minute)
	must(t, err)
	tokens, err := json.Marshal(map[string]map[string]string{WorkloadIdentityAudience: {"token": token, "expirationTimestamp": h.clock.Now().Add(10 * time.Minute).Format(time.RFC3339)}})
	must(t, err)
	attrs := map[string]string{
		"keyvaultName":                             vaultName,
		"tenantID":                                 tenantID,
		"clientID":                                 clientID,
		"objects":                                  objectsParameter(objects),
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

// objectsParameter renders YAML entries as the objects parameter: an array
// of YAML strings.
func objectsParameter(objects []string) string {
	var b strings.Builder
	b.WriteString("array:\n")
	for _, o := range objects {
		b.WriteString("  - |\n")
		for _, line := range strings.Split(strings.TrimSpace(o), "\n") {
			b.WriteString("    " + strings.TrimSpace(line) + "\n")
		}
	}
	return b.String()
}

// mount calls Mount over gRPC as the driver does (no node-publish secrets,
// permission 0644) and returns the response and its files by path.
func (h *harness) mount(t *testing.T, attrs map[string]string) (map[string]*v1alpha1.File, *v1alpha1.MountResponse, error) {
	t.Helper()
	return h.mountRequest(t, &v1alpha1.MountRequest{Attributes: marshal(t, attrs), Secrets: "{}", Permission: "420"})
}

func (h *harness) mountRequest(t *testing.T, req *v1alpha1.MountRequest) (map[string]*v1alpha1.File, *v1alpha1.MountResponse, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := h.client.Mount(ctx, req)
	if err != nil {
		return nil, nil, err
	}
	files := map[string]*v1alpha1.File{}
	for _, f := range resp.GetFiles() {
		files[f.GetPath()] = f
	}
	return files, resp, nil
}

func marshal(t *testing.T, v any) string {
	t.Helper()
	raw, err := json.Marshal(v)
	must(t, err)
	return string(raw)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
