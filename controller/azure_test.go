package controller_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/secrets-store-csi-driver/provider/v1alpha1"

	spcv1 "github.com/kvsync/kvsync/api/secretsstore/v1"
	ssv1alpha1 "github.com/kvsync/kvsync/api/secretsync/v1alpha1"
	"github.com/kvsync/kvsync/fakevault"
	"github.com/kvsync/kvsync/fakevault/entra"
	"github.com/kvsync/kvsync/fakevault/journal"
	"github.com/kvsync/kvsync/fakevault/keyvault"
	"github.com/kvsync/kvsync/fakevault/pki"
	"github.com/kvsync/kvsync/faults"
	azureprovider "github.com/kvsync/kvsync/provider"
)

// azureTenant is the tenant of the suite's vaults and identities.
const azureTenant = "5f0c1d2e-0000-4000-8000-0000000000a1"

// azure is the suite's Azure world: fakevault, trusting envtest's
// ServiceAccount issuer, and kvsync's Azure provider on azure.sock.
var azure *azureWorld

type azureWorld struct {
	fake   *fakevault.Server
	faults *faults.Injector
	issuer string
}

func startAzureWorld(socketDir string) *azureWorld {
	GinkgoHelper()
	fake, err := fakevault.NewServer(fakevault.Options{})
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(fake.Close)
	Expect(fake.Entra().AddTenant(azureTenant)).To(Succeed())

	kube, err := kubernetes.NewForConfig(cfg)
	Expect(err).NotTo(HaveOccurred())
	raw, err := kube.RESTClient().Get().AbsPath("/.well-known/openid-configuration").DoRaw(context.Background())
	Expect(err).NotTo(HaveOccurred())
	var discovery struct {
		Issuer string `json:"issuer"`
	}
	Expect(json.Unmarshal(raw, &discovery)).To(Succeed())
	jwks, err := kube.RESTClient().Get().AbsPath("/openid/v1/jwks").DoRaw(context.Background())
	Expect(err).NotTo(HaveOccurred())
	Expect(fake.Entra().TrustIssuerJWKS(discovery.Issuer, jwks)).To(Succeed())

	// Faults sit on the fake's seams: its handler, and the dialer the
	// provider reaches it through.
	inj, err := faults.New(faults.Options{Seed: 1, CA: fake.CA(), DNSTimeout: time.Second})
	Expect(err).NotTo(HaveOccurred())
	fake.Use(inj.Handler)
	transport := fake.Transport()
	transport.DialContext = inj.Dialer(fake.DialContext)
	// Closing the idle connections also ends the dials still held by
	// blackhole faults, as on a real transport.
	DeferCleanup(transport.CloseIdleConnections)
	srv, err := azureprovider.New(azureprovider.Options{SocketDir: socketDir, MountTimeout: 3 * time.Second, Transport: &http.Client{Transport: transport},
		Logger: slog.New(slog.NewTextHandler(logs, nil))})
	Expect(err).NotTo(HaveOccurred())
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, func() { close(ready) }) }()
	Eventually(ready).Should(BeClosed())
	DeferCleanup(func() { cancel(); Expect(<-done).To(Succeed()) })
	return &azureWorld{fake: fake, faults: inj, issuer: discovery.Issuer}
}

// azureNamespace is one spec's slice of the world: a vault, an identity
// federated with ServiceAccount "workload" of the namespace, and a class.
type azureNamespace struct {
	ns       string
	clientID string
	vault    *keyvault.Vault
}

// namespace creates a namespace kvsync-<suite>-... with ServiceAccount
// workload, and sets it up.
func (w *azureWorld) namespace(ctx context.Context, suite string) azureNamespace {
	GinkgoHelper()
	n := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "kvsync-" + suite + "-", Labels: map[string]string{"kvsync.test/suite": suite}}}
	Expect(k8s.Create(ctx, n)).To(Succeed())
	Expect(k8s.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: n.Name, Name: "workload"}})).To(Succeed())
	return w.setup(n.Name)
}

// setup creates the spec's vault and identity; the identity may read
// secrets and certificates.
func (w *azureWorld) setup(ns string) azureNamespace {
	GinkgoHelper()
	clientID := uuid.NewString()
	Expect(w.fake.Entra().AddApplication(azureTenant, entra.Application{ClientID: clientID, ObjectID: clientID,
		FederatedCredentials: []entra.FederatedCredential{{Issuer: w.issuer, Subject: "system:serviceaccount:" + ns + ":workload"}}})).To(Succeed())
	vault, err := w.fake.CreateVault(keyvault.VaultConfig{Name: vaultName(ns), TenantID: azureTenant,
		RoleAssignments: []keyvault.RoleAssignment{{PrincipalID: clientID, Role: keyvault.RoleCertificateUser}}})
	Expect(err).NotTo(HaveOccurred())
	return azureNamespace{ns: ns, clientID: clientID, vault: vault}
}

// class creates SecretProviderClass "azure-kv" listing the objects.
func (a azureNamespace) class(ctx context.Context, objects ...string) {
	GinkgoHelper()
	a.classWith(ctx, map[string]string{}, objects...)
}

func (a azureNamespace) classWith(ctx context.Context, overrides map[string]string, objects ...string) {
	GinkgoHelper()
	params := map[string]string{"keyvaultName": a.vault.Name(), "tenantID": azureTenant, "clientID": a.clientID, "objects": objectsParameter(objects)}
	override(params, overrides)
	Expect(k8s.Create(ctx, &spcv1.SecretProviderClass{
		ObjectMeta: metav1.ObjectMeta{Namespace: a.ns, Name: "azure-kv"},
		Spec:       spcv1.SecretProviderClassSpec{Provider: "azure", Parameters: params},
	})).To(Succeed())
}

// partialSummary returns the items of the PartialSync summary in the
// latest condition of ss.
func partialSummary(ctx context.Context, ss *ssv1alpha1.SecretSync) []map[string]string {
	GinkgoHelper()
	var summary struct {
		Items []map[string]string `json:"items"`
	}
	msg := latestCondition(getSecretSync(ctx, ss)).Message
	Expect(json.Unmarshal([]byte(msg), &summary)).To(Succeed(), msg)
	return summary.Items
}

// objectsParameter renders objects entries as a class's objects
// parameter.
func objectsParameter(objects []string) string {
	var b strings.Builder
	b.WriteString("array:\n")
	for _, o := range objects {
		b.WriteString("  - |\n")
		for _, line := range strings.Split(o, "\n") {
			b.WriteString("    " + line + "\n")
		}
	}
	return b.String()
}

// override sets params to overrides, removing those overridden with "".
func override(params, overrides map[string]string) {
	for k, v := range overrides {
		if v == "" {
			delete(params, k)
		} else {
			params[k] = v
		}
	}
}

// secretSync returns a SecretSync of class azure-kv mapping targetKey ->
// sourcePath pairs.
func (a azureNamespace) secretSync(name string, pairs ...string) *ssv1alpha1.SecretSync {
	ss := &ssv1alpha1.SecretSync{
		ObjectMeta: metav1.ObjectMeta{Namespace: a.ns, Name: name},
		Spec: ssv1alpha1.SecretSyncSpec{ServiceAccountName: "workload", SecretProviderClassName: "azure-kv",
			SecretObject: ssv1alpha1.SecretObject{Type: "Opaque"}},
	}
	for i := 0; i+1 < len(pairs); i += 2 {
		ss.Spec.SecretObject.Data = append(ss.Spec.SecretObject.Data, ssv1alpha1.SecretObjectData{TargetKey: pairs[i], SourcePath: pairs[i+1]})
	}
	return ss
}

func (a azureNamespace) set(name, value string) string {
	GinkgoHelper()
	v, err := a.vault.SetSecret(name, value, nil)
	Expect(err).NotTo(HaveOccurred())
	return v
}

var _ = Describe("SecretSync with the Azure provider and fakevault", func() {
	var (
		ctx context.Context
		a   azureNamespace
	)

	BeforeEach(func() {
		ctx = context.Background()
		a = azure.namespace(ctx, "azure")
	})

	It("creates the Secret from the vault with workload identity, then rewrites it when the vault rotates", Label("reason:CreateSucceeded", "reason:UpdateValueChangeOrForceUpdateSucceeded"), func() {
		a.set("db-password", "kvsync-canary-az-1")
		a.class(ctx, "objectName: db-password\nobjectType: secret")
		ss := a.secretSync("app", "password", "db-password")
		Expect(k8s.Create(ctx, ss)).To(Succeed())
		SecretSyncMustHaveReason(ctx, ss, ssv1alpha1.ConditionTypeCreate, metav1.ConditionTrue, ssv1alpha1.ReasonCreateSucceeded)
		Expect(getSecret(ctx, a.ns, "app").Data).To(HaveKeyWithValue("password", []byte("kvsync-canary-az-1")))

		reasons := recordReasons(ctx, ss)
		a.set("db-password", "kvsync-canary-az-2")
		Eventually(reasons).Should(ContainElement("Update/" + ssv1alpha1.ReasonUpdateValueChangeOrForceUpdateSucceeded))
		Expect(getSecret(ctx, a.ns, "app").Data).To(HaveKeyWithValue("password", []byte("kvsync-canary-az-2")))
		Eventually(eventReasons(ctx, a.ns)).Should(ContainElement(ssv1alpha1.ReasonUpdateValueChangeOrForceUpdateSucceeded))
		Expect(eventReasons(ctx, a.ns)()).NotTo(ContainElement(ssv1alpha1.ReasonCreateSucceeded), "the first sync's success records no Event")

		By("exposing the outcome in metrics")
		Expect(metricValue("kvsync_sync_total", map[string]string{"reason": ssv1alpha1.ReasonCreateSucceeded})).To(BeNumerically(">", 0))
		Expect(metricValue("kvsync_secretsync_last_success_timestamp_seconds", map[string]string{"namespace": a.ns, "name": "app"})).
			To(BeNumerically(">=", float64(getSecretSync(ctx, ss).Status.LastSuccessfulSyncTime.Unix())))
		Expect(metricValue("kvsync_provider_mount_duration_seconds", map[string]string{"provider": "azure", "code": "OK"})).To(BeNumerically(">", 0))
	})

	It("writes the items that succeeded, keeps the previous value of a failed one and reports PartialSync with the JSON summary", Label("reason:PartialSync"), func() {
		a.set("a", "kvsync-canary-az-a1")
		b1 := a.set("b", "kvsync-canary-az-b1")
		a.class(ctx, "objectName: a\nobjectType: secret", "objectName: b\nobjectType: secret")
		ss := a.secretSync("app", "key-a", "a", "key-b", "b")
		Expect(k8s.Create(ctx, ss)).To(Succeed())
		SecretSyncMustHaveReason(ctx, ss, ssv1alpha1.ConditionTypeCreate, metav1.ConditionTrue, ssv1alpha1.ReasonCreateSucceeded)

		Expect(a.vault.SetSecretEnabled("b", b1, false)).To(Succeed())
		a.set("a", "kvsync-canary-az-a2")
		SecretSyncMustHaveReason(ctx, ss, ssv1alpha1.ConditionTypeUpdate, metav1.ConditionFalse, ssv1alpha1.ReasonPartialSync)
		Expect(getSecret(ctx, a.ns, "app").Data).To(Equal(map[string][]byte{"key-a": []byte("kvsync-canary-az-a2"), "key-b": []byte("kvsync-canary-az-b1")}))

		summary := partialSummary(ctx, ss)
		Expect(summary).To(HaveLen(2))
		Expect(summary[0]).To(Equal(map[string]string{"targetKey": "key-a", "sourcePath": "a", "status": "Succeeded"}))
		Expect(summary[1]).To(HaveKeyWithValue("targetKey", "key-b"))
		Expect(summary[1]).To(HaveKeyWithValue("status", "Failed"))
		Expect(summary[1]["error"]).To(ContainSubstring("SecretDisabled"))
	})

	It("reports PartialSync with each item's error when the provider answers any failure with one codes.Unknown error for the whole Mount, as the upstream Azure provider does", Label("reason:PartialSync"), func() {
		upstreamShaped.arm(a.ns)
		a.set("a", "kvsync-canary-az-a1")
		a.set("c", "kvsync-canary-az-c1")
		a.class(ctx, "objectName: a\nobjectType: secret", "objectName: b\nobjectType: secret", "objectName: c\nobjectType: secret")
		ss := a.secretSync("app", "key-a", "a", "key-b", "b", "key-c", "c")
		Expect(k8s.Create(ctx, ss)).To(Succeed())
		SecretSyncMustHaveReason(ctx, ss, ssv1alpha1.ConditionTypeCreate, metav1.ConditionFalse, ssv1alpha1.ReasonPartialSync)
		Expect(getSecret(ctx, a.ns, "app").Data).To(Equal(map[string][]byte{"key-a": []byte("kvsync-canary-az-a1"), "key-c": []byte("kvsync-canary-az-c1")}))
		summary := partialSummary(ctx, ss)
		Expect(summary).To(HaveLen(3))
		Expect(summary[0]).To(Equal(map[string]string{"targetKey": "key-a", "sourcePath": "a", "status": "Succeeded"}))
		Expect(summary[1]).To(And(HaveKeyWithValue("targetKey", "key-b"), HaveKeyWithValue("status", "Failed")))
		Expect(summary[1]["error"]).To(And(HavePrefix("failed to mount objects, error: "), ContainSubstring("SecretNotFound")))
		Expect(summary[2]).To(Equal(map[string]string{"targetKey": "key-c", "sourcePath": "c", "status": "Succeeded"}))
	})

	It("reports ProviderError and writes nothing when every item failed", Label("reason:ProviderError"), func() {
		a.class(ctx, "objectName: missing\nobjectType: secret")
		ss := a.secretSync("app", "k", "missing")
		Expect(k8s.Create(ctx, ss)).To(Succeed())
		SecretSyncMustHaveReason(ctx, ss, ssv1alpha1.ConditionTypeCreate, metav1.ConditionFalse, ssv1alpha1.ReasonProviderError)
		Expect(latestCondition(getSecretSync(ctx, ss)).Message).To(And(ContainSubstring(`secret "missing"`), ContainSubstring("SecretNotFound")))
		Consistently(func() bool {
			return apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKey{Namespace: a.ns, Name: "app"}, &corev1.Secret{}))
		}).WithTimeout(2 * pollInterval).Should(BeTrue())
	})

	DescribeTable("reports ProviderError naming the real cause and never blanks the existing Secret",
		func(cause string, breakIt func(a azureNamespace), want []string) {
			a.set("db-password", "kvsync-canary-az-keep")
			a.class(ctx, "objectName: db-password\nobjectType: secret")
			ss := a.secretSync("app", "password", "db-password")
			Expect(k8s.Create(ctx, ss)).To(Succeed())
			SecretSyncMustHaveReason(ctx, ss, ssv1alpha1.ConditionTypeCreate, metav1.ConditionTrue, ssv1alpha1.ReasonCreateSucceeded)
			version := getSecret(ctx, a.ns, "app").ResourceVersion

			breakIt(a)
			SecretSyncMustHaveReason(ctx, ss, ssv1alpha1.ConditionTypeUpdate, metav1.ConditionFalse, ssv1alpha1.ReasonProviderError)
			msg := latestCondition(getSecretSync(ctx, ss)).Message
			for _, w := range want {
				Expect(msg).To(ContainSubstring(w))
			}
			secret := getSecret(ctx, a.ns, "app")
			Expect(secret.ResourceVersion).To(Equal(version))
			Expect(secret.Data).To(HaveKeyWithValue("password", []byte("kvsync-canary-az-keep")))
		},
		Entry("the vault firewall denies the cluster's address", "firewall", func(a azureNamespace) {
			Expect(a.vault.SetNetworkRules(keyvault.NetworkRules{DefaultDeny: true})).To(Succeed())
		}, []string{"ForbiddenByFirewall", "Client address"}),
		Entry("public access is disabled and the cluster is not on the private link", "private-link", func(a azureNamespace) {
			Expect(a.vault.SetNetworkRules(keyvault.NetworkRules{PublicNetworkAccessDisabled: true})).To(Succeed())
		}, []string{"ForbiddenByConnection"}),
		Entry("the identity lost its role", "rbac", func(a azureNamespace) {
			a.vault.RemoveRoleAssignments(a.clientID)
		}, []string{"ForbiddenByRbac"}),
		Entry("the vault throttles past the retries", "throttle", func(a azureNamespace) {
			Expect(a.vault.SetRateLimit(&keyvault.RateLimit{Requests: 1, Window: time.Hour})).To(Succeed())
		}, []string{"Throttled"}),
	)

	It("holds back every SecretSync of a throttled vault until its Retry-After, then syncs them all", Label("reason:ProviderError", "layer:vault"), func() {
		a.set("db-password", "kvsync-canary-az-throttle")
		a.class(ctx, "objectName: db-password\nobjectType: secret")
		Expect(a.vault.SetRateLimit(&keyvault.RateLimit{Requests: 3, Window: 2 * time.Second})).To(Succeed())
		var syncs []*ssv1alpha1.SecretSync
		for i := range 9 {
			ss := a.secretSync(fmt.Sprintf("app-%d", i), "password", "db-password")
			Expect(k8s.Create(ctx, ss)).To(Succeed())
			syncs = append(syncs, ss)
		}
		for _, ss := range syncs {
			SecretSyncMustHaveReason(ctx, ss, ssv1alpha1.ConditionTypeCreate, metav1.ConditionTrue, ssv1alpha1.ReasonCreateSucceeded)
		}
		throttled := azure.fake.Journal().Filter(func(e journal.Entry) bool {
			return e.Service == "keyvault" && strings.HasPrefix(e.Host, a.vault.Name()+".") && e.Status == http.StatusTooManyRequests
		})
		// Each throttled answer holds the vault back for its Retry-After: at
		// most the Mounts already running get one, not every retry of every
		// SecretSync.
		GinkgoWriter.Printf("%d throttled answers for 9 SecretSyncs\n", len(throttled))
		Expect(len(throttled)).To(BeNumerically("<=", 6), "throttled answers")
		Expect(metricValue("kvsync_sync_deferred_total", map[string]string{"provider": "azure"})).To(BeNumerically(">", 0))
	})

	DescribeTable("reports ProviderError for each network case of the troubleshooting guide",
		func(fault faults.Fault, want []string) {
			a.set("db-password", "kvsync-canary-az-net")
			a.class(ctx, "objectName: db-password\nobjectType: secret")
			fault.Name = "net-" + a.ns
			fault.Scope.Vault = a.vault.Name()
			Expect(azure.faults.Add(fault)).To(Succeed())
			DeferCleanup(func() { azure.faults.Clear(fault.Name) })
			ss := a.secretSync("app", "password", "db-password")
			Expect(k8s.Create(ctx, ss)).To(Succeed())
			SecretSyncMustHaveReason(ctx, ss, ssv1alpha1.ConditionTypeCreate, metav1.ConditionFalse, ssv1alpha1.ReasonProviderError)
			msg := latestCondition(getSecretSync(ctx, ss)).Message
			for _, w := range want {
				Expect(msg).To(ContainSubstring(w))
			}
			By("recovering once the network is fixed")
			azure.faults.Clear(fault.Name)
			SecretSyncMustHaveReason(ctx, ss, ssv1alpha1.ConditionTypeCreate, metav1.ConditionTrue, ssv1alpha1.ReasonCreateSucceeded)
		},
		Entry("an Arc gateway that does not cover <vault>.vault.azure.net", Label("layer:gateway"),
			faults.Fault{Kind: faults.GatewayVaultBlocked}, []string{"did not answer before the mount deadline"}),
		Entry("a private link whose DNS name does not resolve in the cluster", Label("layer:dns"),
			faults.Fault{Kind: faults.DNSNXDomain}, []string{"DNS lookup of", "no such host", "private endpoint"}),
		Entry("a private link whose address is not routed from the cluster", Label("layer:dns"),
			faults.Fault{Kind: faults.DNSMisroute}, []string{"did not answer before the mount deadline"}),
		Entry("a proxy that intercepts TLS", Label("layer:transport"),
			faults.Fault{Kind: faults.TransportTLSUntrusted}, []string{"TLS verification of the key vault failed"}),
		Entry("the vault answering 503 past the retries", Label("layer:vault"),
			faults.Fault{Kind: faults.VaultError, Status: 503, Code: "ServiceUnavailable"}, []string{"ServiceUnavailable (HTTP 503)"}),
	)

	It("reports ProviderError naming the DNS failure when the vault name does not resolve", Label("reason:ProviderError", "layer:dns"), func() {
		a.classWith(ctx, map[string]string{"keyvaultName": "kv-no-such-vault"}, "objectName: db-password\nobjectType: secret")
		ss := a.secretSync("app", "password", "db-password")
		Expect(k8s.Create(ctx, ss)).To(Succeed())
		SecretSyncMustHaveReason(ctx, ss, ssv1alpha1.ConditionTypeCreate, metav1.ConditionFalse, ssv1alpha1.ReasonProviderError)
		Expect(latestCondition(getSecretSync(ctx, ss)).Message).To(And(ContainSubstring("kv-no-such-vault.vault.azure.net"), ContainSubstring("no such host")))
	})

	It("reports ProviderError naming AADSTS70021 when the identity is not federated with the ServiceAccount", Label("reason:ProviderError", "layer:identity"), func() {
		Expect(k8s.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: a.ns, Name: "intruder"}})).To(Succeed())
		a.set("db-password", "kvsync-canary-az-x")
		a.class(ctx, "objectName: db-password\nobjectType: secret")
		ss := a.secretSync("app", "password", "db-password")
		ss.Spec.ServiceAccountName = "intruder"
		Expect(k8s.Create(ctx, ss)).To(Succeed())
		SecretSyncMustHaveReason(ctx, ss, ssv1alpha1.ConditionTypeCreate, metav1.ConditionFalse, ssv1alpha1.ReasonProviderError)
		Expect(latestCondition(getSecretSync(ctx, ss)).Message).To(ContainSubstring("AADSTS70021"))
	})

	It("reports ControllerSpcError with the provider's message when it rejects the class parameters", Label("reason:ControllerSpcError"), func() {
		a.classWith(ctx, map[string]string{"tenantID": "contoso.onmicrosoft.com"}, "objectName: db-password\nobjectType: secret")
		ss := a.secretSync("app", "password", "db-password")
		Expect(k8s.Create(ctx, ss)).To(Succeed())
		SecretSyncMustHaveReason(ctx, ss, ssv1alpha1.ConditionTypeCreate, metav1.ConditionFalse, ssv1alpha1.ReasonControllerSpcError)
		Expect(latestCondition(getSecretSync(ctx, ss)).Message).To(ContainSubstring(`tenantID "contoso.onmicrosoft.com" is not a GUID`))
	})

	It("reports ControllerSpcError before any Mount when an azure class has no keyvaultName, whatever the provider would answer", Label("reason:ControllerSpcError"), func() {
		upstreamShaped.arm(a.ns)
		a.classWith(ctx, map[string]string{"keyvaultName": ""}, "objectName: db-password\nobjectType: secret")
		ss := a.secretSync("app", "password", "db-password")
		Expect(k8s.Create(ctx, ss)).To(Succeed())
		SecretSyncMustHaveReason(ctx, ss, ssv1alpha1.ConditionTypeCreate, metav1.ConditionFalse, ssv1alpha1.ReasonControllerSpcError)
		Expect(latestCondition(getSecretSync(ctx, ss)).Message).To(And(
			ContainSubstring(`SecretProviderClass "azure-kv" cannot be read by provider "azure"`), ContainSubstring("keyvaultName is not set")))
	})

	It("writes a kubernetes.io/tls Secret from a certificate's tls.crt and tls.key", Label("reason:CreateSucceeded"), func() {
		_, err := a.vault.CreateCertificate("web", keyvault.CertificateOptions{CA: azure.fake.CA(), DNSNames: []string{"web.example"}, KeyType: pki.ECP256})
		Expect(err).NotTo(HaveOccurred())
		a.class(ctx, "objectName: web\nobjectType: secret")
		ss := a.secretSync("web-tls", "tls.crt", "web/tls.crt", "tls.key", "web/tls.key")
		ss.Spec.SecretObject.Type = string(corev1.SecretTypeTLS)
		Expect(k8s.Create(ctx, ss)).To(Succeed())
		SecretSyncMustHaveReason(ctx, ss, ssv1alpha1.ConditionTypeCreate, metav1.ConditionTrue, ssv1alpha1.ReasonCreateSucceeded)
		Expect(getSecret(ctx, a.ns, "web-tls").Type).To(Equal(corev1.SecretTypeTLS))
	})

	DescribeTable("reports UserInputValidationFailed for a SecretSync that cannot be written",
		func(mutate func(ss *ssv1alpha1.SecretSync), want string) {
			a.set("db-password", "kvsync-canary-az-uiv")
			a.class(ctx, "objectName: db-password\nobjectType: secret")
			ss := a.secretSync("app", "password", "db-password")
			mutate(ss)
			Expect(k8s.Create(ctx, ss)).To(Succeed())
			SecretSyncMustHaveReason(ctx, ss, ssv1alpha1.ConditionTypeCreate, metav1.ConditionFalse, ssv1alpha1.ReasonUserInputValidationFailed)
			Expect(latestCondition(getSecretSync(ctx, ss)).Message).To(ContainSubstring(want))
			Expect(apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKey{Namespace: a.ns, Name: "app"}, &corev1.Secret{}))).To(BeTrue())
		},
		Entry("a service-account-token type", func(ss *ssv1alpha1.SecretSync) {
			ss.Spec.SecretObject.Type = string(corev1.SecretTypeServiceAccountToken)
		},
			`spec.secretObject.type "kubernetes.io/service-account-token" is not allowed`),
		Entry("an unknown type", func(ss *ssv1alpha1.SecretSync) { ss.Spec.SecretObject.Type = "example.com/custom" }, "is not allowed"),
		Entry("kubernetes.io/tls with other keys", func(ss *ssv1alpha1.SecretSync) { ss.Spec.SecretObject.Type = string(corev1.SecretTypeTLS) },
			"needs exactly the targetKeys tls.crt and tls.key"),
		Entry("kubernetes.io/tls from material that is not a certificate", func(ss *ssv1alpha1.SecretSync) {
			ss.Spec.SecretObject.Type = string(corev1.SecretTypeTLS)
			ss.Spec.SecretObject.Data = []ssv1alpha1.SecretObjectData{{TargetKey: "tls.crt", SourcePath: "db-password"}, {TargetKey: "tls.key", SourcePath: "db-password"}}
		}, "does not parse"),
		Entry("a sourcePath the provider did not return", func(ss *ssv1alpha1.SecretSync) {
			ss.Spec.SecretObject.Data = []ssv1alpha1.SecretObjectData{{TargetKey: "crt", SourcePath: "db-password/tls.crt"}}
		}, `sourcePath "db-password/tls.crt" (targetKey "crt") is not among the files`),
		Entry("a sourcePath naming no object of the class", func(ss *ssv1alpha1.SecretSync) {
			ss.Spec.SecretObject.Data = []ssv1alpha1.SecretObjectData{{TargetKey: "k", SourcePath: "other"}}
		}, `names no object of SecretProviderClass "azure-kv"`),
	)

	It("reports UserInputValidationFailed when the type of the existing Secret would change", Label("reason:UserInputValidationFailed"), func() {
		a.set("db-password", "kvsync-canary-az-type")
		a.class(ctx, "objectName: db-password\nobjectType: secret")
		ss := a.secretSync("app", "password", "db-password")
		Expect(k8s.Create(ctx, ss)).To(Succeed())
		SecretSyncMustHaveReason(ctx, ss, ssv1alpha1.ConditionTypeCreate, metav1.ConditionTrue, ssv1alpha1.ReasonCreateSucceeded)
		got := getSecretSync(ctx, ss)
		got.Spec.SecretObject.Type = string(corev1.SecretTypeBasicAuth)
		Expect(k8s.Update(ctx, got)).To(Succeed())
		SecretSyncMustHaveReason(ctx, ss, ssv1alpha1.ConditionTypeUpdate, metav1.ConditionFalse, ssv1alpha1.ReasonUserInputValidationFailed)
		Expect(latestCondition(getSecretSync(ctx, ss)).Message).To(ContainSubstring("the type of a Secret cannot change"))
	})

	It("never modifies a labelled Secret without the managed annotation and reports InvalidClusterSecretAnnotationError", Label("reason:InvalidClusterSecretAnnotationError"), func() {
		foreign, err := faults.ForeignSecret(ctx, k8s, a.ns, "app", true, map[string][]byte{"password": []byte("not-ours")})
		Expect(err).NotTo(HaveOccurred())
		a.set("db-password", "kvsync-canary-az-ann")
		a.class(ctx, "objectName: db-password\nobjectType: secret")
		ss := a.secretSync("app", "password", "db-password")
		Expect(k8s.Create(ctx, ss)).To(Succeed())
		SecretSyncMustHaveReason(ctx, ss, ssv1alpha1.ConditionTypeCreate, metav1.ConditionFalse, ssv1alpha1.ReasonInvalidClusterSecretAnnotationError)
		Consistently(func() string { return getSecret(ctx, a.ns, "app").ResourceVersion }).WithTimeout(2 * pollInterval).Should(Equal(foreign.ResourceVersion))
	})

	DescribeTable("never modifies a labelled and annotated Secret owned by another object and reports InvalidClusterSecretAnnotationError",
		Label("reason:InvalidClusterSecretAnnotationError"),
		func(owner func(a azureNamespace) metav1.OwnerReference) {
			ref := owner(a)
			foreign := &corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{Namespace: a.ns, Name: "app",
					Labels:          map[string]string{ssv1alpha1.ManagedLabel: ""},
					Annotations:     map[string]string{ssv1alpha1.ManagedAnnotation: ""},
					OwnerReferences: []metav1.OwnerReference{ref}},
				Data: map[string][]byte{"password": []byte("not-ours")},
			}
			Expect(k8s.Create(ctx, foreign)).To(Succeed())
			a.set("db-password", "kvsync-canary-az-owner")
			a.class(ctx, "objectName: db-password\nobjectType: secret")
			ss := a.secretSync("app", "password", "db-password")
			Expect(k8s.Create(ctx, ss)).To(Succeed())
			SecretSyncMustHaveReason(ctx, ss, ssv1alpha1.ConditionTypeCreate, metav1.ConditionFalse, ssv1alpha1.ReasonInvalidClusterSecretAnnotationError)
			Expect(latestCondition(getSecretSync(ctx, ss)).Message).To(ContainSubstring("is owned by " + ref.Kind))
			Consistently(func() *corev1.Secret { return getSecret(ctx, a.ns, "app") }).WithTimeout(3 * pollInterval).Should(And(
				HaveField("ResourceVersion", foreign.ResourceVersion),
				HaveField("Data", Equal(foreign.Data)),
				HaveField("Labels", Equal(foreign.Labels)),
				HaveField("Annotations", Equal(foreign.Annotations)),
				HaveField("OwnerReferences", Equal(foreign.OwnerReferences))))
		},
		Entry("another SecretSync", func(a azureNamespace) metav1.OwnerReference {
			other := a.secretSync("other", "password", "db-password")
			Expect(k8s.Create(ctx, other)).To(Succeed())
			return metav1.OwnerReference{APIVersion: ssv1alpha1.GroupVersion.String(), Kind: "SecretSync", Name: other.Name, UID: other.UID, Controller: ptr.To(true)}
		}),
		Entry("a SecretSync of the same name that no longer exists", func(azureNamespace) metav1.OwnerReference {
			return metav1.OwnerReference{APIVersion: ssv1alpha1.GroupVersion.String(), Kind: "SecretSync", Name: "app", UID: "0b7a3f7e-0000-4000-8000-00000000dead", Controller: ptr.To(true)}
		}),
		Entry("an object of another kind", func(a azureNamespace) metav1.OwnerReference {
			cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: a.ns, Name: "owner"}}
			Expect(k8s.Create(ctx, cm)).To(Succeed())
			return metav1.OwnerReference{APIVersion: "v1", Kind: "ConfigMap", Name: cm.Name, UID: cm.UID}
		}),
	)

	It("reports ValidatingAdmissionPolicyCheckFailed naming the policy that denied the Secret", Label("reason:ValidatingAdmissionPolicyCheckFailed"), func() {
		name := "no-blocked-secrets-" + a.ns
		cleanup, err := faults.DenyPolicy(ctx, k8s, name, a.ns, "secrets",
			"!has(object.metadata.labels) || !('team' in object.metadata.labels) || object.metadata.labels['team'] != 'blocked'",
			"Secrets of team blocked are not allowed")
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(cleanup)
		By("waiting until the API server enforces the policy")
		Eventually(func() error {
			probe := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: a.ns, Name: "probe", Labels: map[string]string{"team": "blocked"}}}
			return k8s.Create(ctx, probe, client.DryRunAll)
		}).Should(MatchError(ContainSubstring("ValidatingAdmissionPolicy")))

		a.set("db-password", "kvsync-canary-az-vap")
		a.class(ctx, "objectName: db-password\nobjectType: secret")
		ss := a.secretSync("app", "password", "db-password")
		ss.Spec.SecretObject.Labels = map[string]string{"team": "blocked"}
		Expect(k8s.Create(ctx, ss)).To(Succeed())
		SecretSyncMustHaveReason(ctx, ss, ssv1alpha1.ConditionTypeCreate, metav1.ConditionFalse, ssv1alpha1.ReasonValidatingAdmissionPolicyCheckFailed)
		Expect(latestCondition(getSecretSync(ctx, ss)).Message).To(And(ContainSubstring(name), ContainSubstring("Secrets of team blocked are not allowed")))
	})

	It("reports ValidatingAdmissionPolicyCheckFailed when a policy denies the ServiceAccount token request", Label("reason:ValidatingAdmissionPolicyCheckFailed"), func() {
		name := "no-tokens-" + a.ns
		cleanup, err := faults.DenyPolicy(ctx, k8s, name, a.ns, "serviceaccounts/token", "false", "token requests are not allowed here")
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(cleanup)
		By("waiting until the API server enforces the policy")
		Eventually(func() error {
			sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: a.ns, Name: "workload"}}
			return k8s.SubResource("token").Create(ctx, sa, &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{Audiences: []string{"probe"}}})
		}).Should(MatchError(ContainSubstring("ValidatingAdmissionPolicy")))
		a.set("db-password", "kvsync-canary-az-vaptoken")
		a.class(ctx, "objectName: db-password\nobjectType: secret")
		ss := a.secretSync("app", "password", "db-password")
		Expect(k8s.Create(ctx, ss)).To(Succeed())
		SecretSyncMustHaveReason(ctx, ss, ssv1alpha1.ConditionTypeCreate, metav1.ConditionFalse, ssv1alpha1.ReasonValidatingAdmissionPolicyCheckFailed)
		Expect(latestCondition(getSecretSync(ctx, ss)).Message).To(And(ContainSubstring(`token request for ServiceAccount "workload"`), ContainSubstring(name)))
	})

	It("reports UnknownError naming the other field manager when it owns a field the controller writes", Label("reason:UnknownError"), func() {
		a.set("db-password", "kvsync-canary-az-own1")
		a.class(ctx, "objectName: db-password\nobjectType: secret")
		ss := a.secretSync("app", "password", "db-password")
		Expect(k8s.Create(ctx, ss)).To(Succeed())
		SecretSyncMustHaveReason(ctx, ss, ssv1alpha1.ConditionTypeCreate, metav1.ConditionTrue, ssv1alpha1.ReasonCreateSucceeded)

		Expect(faults.TakeOwnership(ctx, k8s, a.ns, "app", "platform-team", "password", []byte("kvsync-canary-az-theirs"))).To(Succeed())
		a.set("db-password", "kvsync-canary-az-own2")
		SecretSyncMustHaveReason(ctx, ss, ssv1alpha1.ConditionTypeUpdate, metav1.ConditionFalse, ssv1alpha1.ReasonUnknownError)
		Expect(latestCondition(getSecretSync(ctx, ss)).Message).To(And(ContainSubstring("platform-team"), ContainSubstring("delete the Secret")))
		Expect(getSecret(ctx, a.ns, "app").Data).To(HaveKeyWithValue("password", []byte("kvsync-canary-az-theirs")))
	})

	It("recreates a deleted managed Secret", func() {
		a.set("db-password", "kvsync-canary-az-del")
		a.class(ctx, "objectName: db-password\nobjectType: secret")
		ss := a.secretSync("app", "password", "db-password")
		Expect(k8s.Create(ctx, ss)).To(Succeed())
		SecretSyncMustHaveReason(ctx, ss, ssv1alpha1.ConditionTypeCreate, metav1.ConditionTrue, ssv1alpha1.ReasonCreateSucceeded)
		old := getSecret(ctx, a.ns, "app")
		Expect(k8s.Delete(ctx, old)).To(Succeed())
		Eventually(func(g Gomega) {
			s := &corev1.Secret{}
			g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: a.ns, Name: "app"}, s)).To(Succeed())
			g.Expect(s.UID).NotTo(Equal(old.UID))
			g.Expect(s.Data).To(HaveKeyWithValue("password", []byte("kvsync-canary-az-del")))
		}).Should(Succeed())
	})
})

var _ = Describe("SecretSync with a misbehaving provider", func() {
	It("reports ControllerInternalError for a malformed provider response", Label("reason:ControllerInternalError"), func(ctx SpecContext) {
		n := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "kvsync-test-"}}
		Expect(k8s.Create(ctx, n)).To(Succeed())
		Expect(k8s.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: n.Name, Name: "workload"}})).To(Succeed())
		Expect(k8s.Create(ctx, &spcv1.SecretProviderClass{ObjectMeta: metav1.ObjectMeta{Namespace: n.Name, Name: "vault"},
			Spec: spcv1.SecretProviderClassSpec{Provider: providerName}})).To(Succeed())
		provider.setRawFiles(n.Name, []*v1alpha1.File{{Path: "a", Contents: []byte("1")}, {Path: "a", Contents: []byte("2")}})
		ss := newSecretSync(n.Name, "app")
		Expect(k8s.Create(ctx, ss)).To(Succeed())
		SecretSyncMustHaveReason(ctx, ss, ssv1alpha1.ConditionTypeCreate, metav1.ConditionFalse, ssv1alpha1.ReasonControllerInternalError)
		Expect(latestCondition(getSecretSync(ctx, ss)).Message).To(ContainSubstring(`file path "a" appears twice`))
	})
})

// metricValue returns the value (a counter's, a gauge's, or a histogram's
// sample count) of the metric with the given labels, or -1.
func metricValue(name string, labels map[string]string) float64 {
	GinkgoHelper()
	families, err := metrics.Registry.Gather()
	Expect(err).NotTo(HaveOccurred())
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			got := map[string]string{}
			for _, l := range m.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			for k, v := range labels {
				if got[k] != v {
					continue next
				}
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				return float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return -1
}

// eventReasons returns a function listing the reasons of the Events
// recorded in namespace ns.
func eventReasons(ctx context.Context, ns string) func() []string {
	return func() []string {
		list := &eventsv1.EventList{}
		if err := k8s.List(ctx, list, client.InNamespace(ns)); err != nil {
			return nil
		}
		var out []string
		for _, e := range list.Items {
			out = append(out, e.Reason)
		}
		return out
	}
}

// No canary value may appear outside the Secrets: not in logs, Events,
// statuses or metrics.
var _ = AfterSuite(func(ctx SpecContext) {
	if k8s == nil {
		return // BeforeSuite failed before the control plane ran, and said why
	}
	Expect(logs.String()).NotTo(ContainSubstring("kvsync-canary"), "a secret value was logged")
	var returned []string
	for line := range strings.Lines(logs.String()) {
		if strings.Contains(line, "Reconciler error") {
			returned = append(returned, truncateLine(line, 600))
		}
	}
	Expect(returned).To(BeEmpty(), "failed checks were logged twice: by the controller, and as a returned error")
	events := &eventsv1.EventList{}
	Expect(k8s.List(ctx, events)).To(Succeed())
	for _, e := range events.Items {
		Expect(e.Note).NotTo(ContainSubstring("kvsync-canary"), "Event %s/%s holds a secret value", e.Namespace, e.Name)
	}
	syncs := &ssv1alpha1.SecretSyncList{}
	Expect(k8s.List(ctx, syncs)).To(Succeed())
	for _, ss := range syncs.Items {
		raw, err := json.Marshal(ss.Status)
		Expect(err).NotTo(HaveOccurred())
		Expect(string(raw)).NotTo(ContainSubstring("kvsync-canary"), "SecretSync %s/%s status holds a secret value", ss.Namespace, ss.Name)
	}
	families, err := metrics.Registry.Gather()
	Expect(err).NotTo(HaveOccurred())
	Expect(fmt.Sprint(families)).NotTo(ContainSubstring("kvsync-canary"), "a metric holds a secret value")
})

// truncateLine shortens a log line for a failure message.
func truncateLine(line string, n int) string {
	if len(line) > n {
		return line[:n] + "..."
	}
	return line
}

// vaultName derives a valid, unique vault name from a namespace name.
func vaultName(ns string) string {
	return "kv-" + ns[len(ns)-5:]
}

var _ = Describe("SecretSync triggers, with hourly polls", Ordered, func() {
	var (
		ctx context.Context
		a   azureNamespace
	)

	BeforeAll(func() {
		ctx = context.Background()
		Expect(k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: slowNamespace}})).To(Succeed())
		Expect(k8s.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: slowNamespace, Name: "workload"}})).To(Succeed())
		a = azure.setup(slowNamespace)
		a.set("db-password", "kvsync-canary-slow-1")
		a.set("api-key", "kvsync-canary-slow-key")
		a.class(ctx, "objectName: db-password\nobjectType: secret", "objectName: api-key\nobjectType: secret")
	})

	It("recreates a deleted managed Secret at once, not at the next poll", func() {
		ss := a.secretSync("deleted", "password", "db-password")
		Expect(k8s.Create(ctx, ss)).To(Succeed())
		SecretSyncMustHaveReason(ctx, ss, ssv1alpha1.ConditionTypeCreate, metav1.ConditionTrue, ssv1alpha1.ReasonCreateSucceeded)
		old := getSecret(ctx, a.ns, "deleted")
		Expect(k8s.Delete(ctx, old)).To(Succeed())
		Eventually(func(g Gomega) {
			s := &corev1.Secret{}
			g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: a.ns, Name: "deleted"}, s)).To(Succeed())
			g.Expect(s.UID).NotTo(Equal(old.UID))
			g.Expect(s.Data).To(HaveKeyWithValue("password", []byte("kvsync-canary-slow-1")))
		}).Should(Succeed())
	})

	It("re-applies a key removed by an edit at once, and leaves fields it does not own alone", func() {
		ss := a.secretSync("edited", "password", "db-password", "key", "api-key")
		Expect(k8s.Create(ctx, ss)).To(Succeed())
		SecretSyncMustHaveReason(ctx, ss, ssv1alpha1.ConditionTypeCreate, metav1.ConditionTrue, ssv1alpha1.ReasonCreateSucceeded)
		secret := getSecret(ctx, a.ns, "edited")
		delete(secret.Data, "key")
		secret.Labels["owner"] = "someone-else"
		Expect(k8s.Update(ctx, secret, client.FieldOwner("kubectl-edit"))).To(Succeed())
		Eventually(func(g Gomega) {
			s := getSecret(ctx, a.ns, "edited")
			g.Expect(s.Data).To(HaveKeyWithValue("key", []byte("kvsync-canary-slow-key")))
			g.Expect(s.Labels).To(HaveKeyWithValue("owner", "someone-else"))
		}).Should(Succeed())
	})

	DescribeTable("creates the Secret within seconds of the deletion of the foreign Secret that blocked it, not at the next poll",
		func(name string, reason string, foreign func(*corev1.Secret)) {
			blocking := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: a.ns, Name: name}, Data: map[string][]byte{"password": []byte("not-ours")}}
			foreign(blocking)
			Expect(k8s.Create(ctx, blocking)).To(Succeed())
			ss := a.secretSync(name, "password", "db-password")
			Expect(k8s.Create(ctx, ss)).To(Succeed())
			SecretSyncMustHaveReason(ctx, ss, ssv1alpha1.ConditionTypeCreate, metav1.ConditionFalse, reason)

			By("deleting the foreign Secret, as the guide's fix says")
			Expect(k8s.Delete(ctx, blocking)).To(Succeed())
			Eventually(func(g Gomega) {
				s := &corev1.Secret{}
				g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: a.ns, Name: name}, s)).To(Succeed())
				g.Expect(s.UID).NotTo(Equal(blocking.UID))
				g.Expect(s.Data).To(HaveKeyWithValue("password", []byte("kvsync-canary-slow-1")))
			}).WithTimeout(10 * time.Second).Should(Succeed())
			SecretSyncMustHaveReason(ctx, ss, ssv1alpha1.ConditionTypeCreate, metav1.ConditionTrue, ssv1alpha1.ReasonCreateSucceeded)
		},
		Entry("a Secret without the managed label", "foreign-label", ssv1alpha1.ReasonInvalidClusterSecretLabelError, func(*corev1.Secret) {}),
		Entry("a labelled Secret without the managed annotation", "foreign-annotation", ssv1alpha1.ReasonInvalidClusterSecretAnnotationError, func(s *corev1.Secret) {
			s.Labels = map[string]string{ssv1alpha1.ManagedLabel: ""}
		}),
		Entry("a managed-looking Secret owned by another object", "foreign-owner", ssv1alpha1.ReasonInvalidClusterSecretAnnotationError, func(s *corev1.Secret) {
			s.Labels = map[string]string{ssv1alpha1.ManagedLabel: ""}
			s.Annotations = map[string]string{ssv1alpha1.ManagedAnnotation: ""}
			s.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "ConfigMap", Name: "someone", UID: "7d1c1f0e-0000-4000-8000-0000000000aa"}}
		}),
	)

	It("waits for the next poll, not a backoff, when the secret does not exist in the vault", Label("reason:ProviderError"), func() {
		Expect(k8s.Create(ctx, &spcv1.SecretProviderClass{
			ObjectMeta: metav1.ObjectMeta{Namespace: a.ns, Name: "azure-kv-missing"},
			Spec: spcv1.SecretProviderClassSpec{Provider: "azure", Parameters: map[string]string{"keyvaultName": a.vault.Name(), "tenantID": azureTenant,
				"clientID": a.clientID, "objects": objectsParameter([]string{"objectName: not-in-vault\nobjectType: secret"})}},
		})).To(Succeed())
		ss := a.secretSync("missing", "password", "not-in-vault")
		ss.Spec.SecretProviderClassName = "azure-kv-missing"
		Expect(k8s.Create(ctx, ss)).To(Succeed())
		SecretSyncMustHaveReason(ctx, ss, ssv1alpha1.ConditionTypeCreate, metav1.ConditionFalse, ssv1alpha1.ReasonProviderError)
		reads := func() int {
			return len(azure.fake.Journal().Filter(func(e journal.Entry) bool {
				return e.Service == "keyvault" && strings.HasPrefix(e.Host, a.vault.Name()+".") && strings.HasPrefix(e.Object, "not-in-vault")
			}))
		}
		n := reads()
		Expect(n).To(BeNumerically(">", 0))
		Consistently(reads).WithTimeout(8*time.Second).Should(Equal(n), "the vault was asked again before the poll")
	})

	It("checks at once when the SecretProviderClass changes", func() {
		ss := a.secretSync("class-change", "password", "db-password")
		Expect(k8s.Create(ctx, ss)).To(Succeed())
		SecretSyncMustHaveReason(ctx, ss, ssv1alpha1.ConditionTypeCreate, metav1.ConditionTrue, ssv1alpha1.ReasonCreateSucceeded)
		reasons := recordReasons(ctx, ss)
		a.set("db-password", "kvsync-canary-slow-2")
		class := &spcv1.SecretProviderClass{}
		Expect(k8s.Get(ctx, client.ObjectKey{Namespace: a.ns, Name: "azure-kv"}, class)).To(Succeed())
		class.Spec.Parameters["cloudName"] = "AzurePublicCloud"
		Expect(k8s.Update(ctx, class)).To(Succeed())
		Eventually(reasons).Should(ContainElement("Update/" + ssv1alpha1.ReasonUpdateValueChangeOrForceUpdateSucceeded))
		Expect(getSecret(ctx, a.ns, "class-change").Data).To(HaveKeyWithValue("password", []byte("kvsync-canary-slow-2")))
	})
})
