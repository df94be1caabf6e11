package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"sigs.k8s.io/secrets-store-csi-driver/provider/v1alpha1"

	"github.com/kvsync/kvsync/fakevault"
	"github.com/kvsync/kvsync/fakevault/entra"
	"github.com/kvsync/kvsync/fakevault/keyvault"
	"github.com/kvsync/kvsync/provider"
)

func TestParseFlagsRefusesBadInputWithAClearError(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--socket-dir="}, "--socket-dir"},
		{[]string{"--mount-timeout=10ms"}, "--mount-timeout"},
		{[]string{"--log-level=loud"}, "log-level"},
		{[]string{"extra"}, "unexpected arguments"},
	} {
		if _, err := parseFlags(tt.args, io.Discard); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("parseFlags(%q) = %v, want an error naming %s", tt.args, err, tt.want)
		}
	}
}

// TestTheBinaryReachesTheFakeWithOnlyProxyAndCAEnvironment runs the provider
// binary as a separate process with production defaults: the only thing
// pointing it at the fake is HTTPS_PROXY and SSL_CERT_FILE.
func TestTheBinaryReachesTheFakeWithOnlyProxyAndCAEnvironment(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	const tenant, client, canary = "0e1f2a3b-0000-4000-8000-00000000aa02", "0e1f2a3b-0000-4000-8000-00000000cc02", "kvsync-canary-provider-bin"
	fake, err := fakevault.NewServer(fakevault.Options{})
	must(t, err)
	t.Cleanup(func() { fake.Close() })
	issuer, err := entra.NewIssuer("https://oidc.kvsync.test/bin")
	must(t, err)
	must(t, fake.Entra().AddTenant(tenant))
	must(t, fake.Entra().TrustIssuer(issuer.URL(), issuer.PublicKey()))
	must(t, fake.Entra().AddApplication(tenant, entra.Application{ClientID: client, ObjectID: client,
		FederatedCredentials: []entra.FederatedCredential{{Issuer: issuer.URL(), Subject: "system:serviceaccount:ns:sa"}}}))
	vault, err := fake.CreateVault(keyvault.VaultConfig{Name: "binvault", TenantID: tenant,
		RoleAssignments: []keyvault.RoleAssignment{{PrincipalID: client, Role: keyvault.RoleSecretsUser}}})
	must(t, err)
	_, err = vault.SetSecret("db-password", canary, nil)
	must(t, err)
	proxy, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	ps := &http.Server{Handler: fake.ProxyHandler(), ReadHeaderTimeout: 5 * time.Second}
	go ps.Serve(proxy)
	t.Cleanup(func() { ps.Close() })

	dir := t.TempDir()
	bin := filepath.Join(dir, "kvsync-provider")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("building: %v\n%s", err, out)
	}
	caFile := filepath.Join(dir, "ca.pem")
	must(t, os.WriteFile(caFile, fake.CAPEM(), 0o644))
	sockDir, err := os.MkdirTemp("", "kvspb-")
	must(t, err)
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	httpAddr := freeAddr(t)
	logs := &strings.Builder{}
	cmd := exec.Command(bin, "--socket-dir", sockDir, "--http-addr", httpAddr, "--mount-timeout", "10s")
	cmd.Env = []string{"HTTPS_PROXY=http://" + proxy.Addr().String(), "SSL_CERT_FILE=" + caFile, "HOME=" + dir}
	cmd.Stderr = logs
	must(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("provider exited with %v after SIGTERM", err)
			}
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			t.Error("provider did not stop on SIGTERM")
		}
		if strings.Contains(logs.String(), canary) {
			t.Error("the provider logged a secret value")
		}
	})

	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + httpAddr + "/healthz")
		if err == nil && resp.StatusCode == http.StatusOK {
			resp.Body.Close()
			break
		}
		if err == nil {
			resp.Body.Close()
		}
		if time.Now().After(deadline) {
			t.Fatalf("provider not healthy: %v\n%s", err, logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}

	conn, err := grpc.NewClient("unix://"+filepath.Join(sockDir, provider.Name+".sock"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	must(t, err)
	defer conn.Close()
	assertion, err := issuer.Assertion("system:serviceaccount:ns:sa", provider.TokenAudience, 10*time.Minute)
	must(t, err)
	attrs, _ := json.Marshal(map[string]string{
		"keyvaultName": "binvault", "tenantID": tenant, "clientID": client,
		"objects":                                  "array:\n  - |\n    objectName: db-password\n    objectType: secret\n",
		"csi.storage.k8s.io/pod.namespace":         "ns",
		"csi.storage.k8s.io/serviceAccount.name":   "sa",
		"csi.storage.k8s.io/serviceAccount.tokens": `{"api://AzureADTokenExchange":{"token":"` + assertion + `"}}`,
	})
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	resp, err := v1alpha1.NewCSIDriverProviderClient(conn).Mount(ctx, &v1alpha1.MountRequest{Attributes: string(attrs), Secrets: "{}", Permission: "420"})
	if err != nil {
		t.Fatalf("Mount: %v\n%s", err, logs.String())
	}
	if len(resp.Files) != 1 || string(resp.Files[0].Contents) != canary {
		t.Errorf("Mount returned %d files, not the secret", len(resp.Files))
	}
	metrics, err := http.Get("http://" + httpAddr + "/metrics")
	must(t, err)
	body, _ := io.ReadAll(metrics.Body)
	metrics.Body.Close()
	if !strings.Contains(string(body), `kvsync_provider_mounts_total{result="OK"} 1`) {
		t.Errorf("metrics do not count the Mount:\n%s", body)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	defer l.Close()
	return l.Addr().String()
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
