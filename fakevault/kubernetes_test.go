package fakevault_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/kvsync/kvsync/fakevault"
	"github.com/kvsync/kvsync/fakevault/entra"
	"github.com/kvsync/kvsync/fakevault/keyvault"
)

// TestAKubernetesServiceAccountTokenIsExchangedForAVaultToken runs the
// workload identity chain on a real API server: a TokenRequest for a
// ServiceAccount, verified by the fake Entra ID against the keys the API
// server publishes, exchanged for a token the vault accepts.
func TestAKubernetesServiceAccountTokenIsExchangedForAVaultToken(t *testing.T) {
	if testing.Short() {
		t.Skip("starts envtest")
	}
	env := &envtest.Environment{}
	// Entra ID accepts only RS256 client assertions; envtest's default
	// ServiceAccount signing key is ECDSA. Use an RSA key, as AKS does.
	keyFile := filepath.Join(t.TempDir(), "sa.key")
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	must(t, err)
	der, err := x509.MarshalPKCS8PrivateKey(key)
	must(t, err)
	must(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600))
	args := env.ControlPlane.GetAPIServer().Configure()
	args.Set("service-account-key-file", keyFile)
	args.Set("service-account-signing-key-file", keyFile)
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("starting envtest (is KUBEBUILDER_ASSETS set? `make test` sets it): %v", err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	kube, err := kubernetes.NewForConfig(cfg)
	must(t, err)
	ctx := context.Background()

	raw, err := kube.RESTClient().Get().AbsPath("/.well-known/openid-configuration").DoRaw(ctx)
	must(t, err)
	var discovery struct {
		Issuer string `json:"issuer"`
	}
	must(t, json.Unmarshal(raw, &discovery))
	jwks, err := kube.RESTClient().Get().AbsPath("/openid/v1/jwks").DoRaw(ctx)
	must(t, err)

	_, err = kube.CoreV1().ServiceAccounts("default").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "workload"}}, metav1.CreateOptions{})
	must(t, err)
	tr, err := kube.CoreV1().ServiceAccounts("default").CreateToken(ctx, "workload", &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		Audiences: []string{entra.TokenExchangeAudience}, ExpirationSeconds: ptr.To[int64](600),
	}}, metav1.CreateOptions{})
	must(t, err)

	srv := newServer(t, fakevault.Options{})
	const tenant, clientID = "55555555-5555-4555-8555-555555555555", "66666666-6666-4666-8666-666666666666"
	must(t, srv.Entra().AddTenant(tenant))
	must(t, srv.Entra().TrustIssuerJWKS(discovery.Issuer, jwks))
	must(t, srv.Entra().AddApplication(tenant, entra.Application{ClientID: clientID, ObjectID: clientID,
		FederatedCredentials: []entra.FederatedCredential{{Issuer: discovery.Issuer, Subject: "system:serviceaccount:default:workload"}}}))
	vault := createVault(t, srv, keyvault.VaultConfig{Name: "kube-kv", TenantID: tenant,
		RoleAssignments: []keyvault.RoleAssignment{{PrincipalID: clientID, Role: keyvault.RoleSecretsUser}}})
	must2(vault.SetSecret("api-key", canary, nil))

	tokenFile := filepath.Join(t.TempDir(), "token")
	must(t, os.WriteFile(tokenFile, []byte(tr.Status.Token), 0o600))
	cred, err := azidentity.NewWorkloadIdentityCredential(&azidentity.WorkloadIdentityCredentialOptions{
		ClientOptions: srv.ClientOptions(), TenantID: tenant, ClientID: clientID, TokenFilePath: tokenFile,
	})
	must(t, err)
	client, err := srv.ClientWith("kube-kv", cred)
	must(t, err)
	resp, err := client.GetSecret(ctx, "api-key", "", nil)
	if err != nil {
		t.Fatalf("GetSecret with a ServiceAccount token: %v", err)
	}
	if *resp.Value != canary {
		t.Error("GetSecret returned another value")
	}

	// A token of another ServiceAccount matches no federated credential.
	_, err = kube.CoreV1().ServiceAccounts("default").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "intruder"}}, metav1.CreateOptions{})
	must(t, err)
	other, err := kube.CoreV1().ServiceAccounts("default").CreateToken(ctx, "intruder", &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		Audiences: []string{entra.TokenExchangeAudience}, ExpirationSeconds: ptr.To[int64](600),
	}}, metav1.CreateOptions{})
	must(t, err)
	must(t, os.WriteFile(tokenFile, []byte(other.Status.Token), 0o600))
	cred, err = azidentity.NewWorkloadIdentityCredential(&azidentity.WorkloadIdentityCredentialOptions{
		ClientOptions: srv.ClientOptions(), TenantID: tenant, ClientID: clientID, TokenFilePath: tokenFile,
	})
	must(t, err)
	client, err = srv.ClientWith("kube-kv", cred)
	must(t, err)
	if _, err := client.GetSecret(ctx, "api-key", "", nil); !hasCode(err, "AADSTS70021") {
		t.Errorf("GetSecret with another ServiceAccount's token: %v, want AADSTS70021", err)
	}
}
