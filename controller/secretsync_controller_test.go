package controller_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	spcv1 "github.com/kvsync/kvsync/api/secretsstore/v1"
	ssv1alpha1 "github.com/kvsync/kvsync/api/secretsync/v1alpha1"
	"github.com/kvsync/kvsync/controller"
)

// canary values: the only secret values of the suite.
const (
	canaryA  = "kvsync-canary-a-7f3e9c"
	canaryB  = "kvsync-canary-b-51d0aa"
	canaryA2 = "kvsync-canary-a2-c40b17"
)

var _ = Describe("SecretSync reconciler", func() {
	var (
		ctx context.Context
		ns  string
	)

	BeforeEach(func() {
		ctx = context.Background()
		n := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "kvsync-test-"}}
		Expect(k8s.Create(ctx, n)).To(Succeed())
		ns = n.Name
		Expect(k8s.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "workload"}})).To(Succeed())
		Expect(k8s.Create(ctx, &spcv1.SecretProviderClass{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "vault"},
			Spec:       spcv1.SecretProviderClassSpec{Provider: providerName, Parameters: map[string]string{"objects": "array: []"}},
		})).To(Succeed())
		provider.setFiles(ns, map[string]string{"a": canaryA, "b": canaryB})
	})

	It("creates the Secret, labelled, annotated and owned by the SecretSync, and reports Create/CreateSucceeded", func() {
		ss := createSecretSync(ctx, ns, "app")
		SecretSyncMustHaveReason(ctx, ss, ssv1alpha1.ConditionTypeCreate, metav1.ConditionTrue, ssv1alpha1.ReasonCreateSucceeded)

		secret := getSecret(ctx, ns, "app")
		Expect(secret.Type).To(Equal(corev1.SecretTypeOpaque))
		Expect(secret.Data).To(Equal(map[string][]byte{"key-a": []byte(canaryA), "key-b": []byte(canaryB)}))
		Expect(secret.Labels).To(HaveKeyWithValue(ssv1alpha1.ManagedLabel, ""))
		Expect(secret.Labels).To(HaveKeyWithValue("team", "payments"))
		Expect(secret.Annotations).To(HaveKeyWithValue(ssv1alpha1.ManagedAnnotation, ""))
		Expect(secret.OwnerReferences).To(ConsistOf(metav1.OwnerReference{
			APIVersion: "secret-sync.x-k8s.io/v1alpha1", Kind: "SecretSync", Name: "app", UID: ss.UID, Controller: ptr.To(true),
		}))
		Expect(secret.ManagedFields).To(ConsistOf(And(
			HaveField("Manager", ssv1alpha1.FieldManager),
			HaveField("Operation", metav1.ManagedFieldsOperationUpdate),
		)), "a first sync creates the Secret")
		Consistently(eventReasons(ctx, ns), time.Second).Should(BeEmpty(), "a first sync that succeeds records no Event")

		By("passing the provider a token for the ServiceAccount with the workload identity audience")
		attrs := provider.lastAttributes(ns)
		Expect(attrs).To(HaveKeyWithValue("csi.storage.k8s.io/serviceAccount.name", "workload"))
		Expect(attrs).To(HaveKeyWithValue("csi.storage.k8s.io/pod.namespace", ns))
		Expect(attrs).To(HaveKeyWithValue("objects", "array: []"))
		tokens := map[string]map[string]string{}
		Expect(json.Unmarshal([]byte(attrs["csi.storage.k8s.io/serviceAccount.tokens"]), &tokens)).To(Succeed())
		Expect(tokens).To(HaveKey("api://AzureADTokenExchange"))
		Expect(tokens["api://AzureADTokenExchange"]["token"]).NotTo(BeEmpty())

		By("recording a keyed syncHash that does not reveal the values")
		got := getSecretSync(ctx, ss)
		Expect(got.Status.SyncHash).To(MatchRegexp(`^[0-9a-f]{64}$`))
		Expect(got.Status.LastSuccessfulSyncTime).NotTo(BeNil())
		Expect(got.Status.Conditions[0].ObservedGeneration).To(Equal(got.Generation))
		statusJSON, err := json.Marshal(got.Status)
		Expect(err).NotTo(HaveOccurred())
		Expect(string(statusJSON)).NotTo(ContainSubstring(canaryA))
	})

	It("makes the fields of the Secret it created its applied fields at the next write, so that a key the SecretSync no longer maps is removed", func() {
		ss := createSecretSync(ctx, ns, "app")
		SecretSyncMustHaveReason(ctx, ss, ssv1alpha1.ConditionTypeCreate, metav1.ConditionTrue, ssv1alpha1.ReasonCreateSucceeded)

		got := getSecretSync(ctx, ss)
		got.Spec.SecretObject.Data = got.Spec.SecretObject.Data[:1]
		Expect(k8s.Update(ctx, got)).To(Succeed())
		SecretSyncMustHaveReason(ctx, ss, ssv1alpha1.ConditionTypeUpdate, metav1.ConditionTrue, ssv1alpha1.ReasonUpdateValueChangeOrForceUpdateSucceeded)
		secret := getSecret(ctx, ns, "app")
		Expect(secret.Data).To(Equal(map[string][]byte{"key-a": []byte(canaryA)}))
		Expect(secret.ManagedFields).To(ConsistOf(And(
			HaveField("Manager", ssv1alpha1.FieldManager),
			HaveField("Operation", metav1.ManagedFieldsOperationApply),
		)))
	})

	It("keeps Create/CreateSucceeded through checks with no change, writes nothing, and shows the checks in metrics only", func() {
		ss := createSecretSync(ctx, ns, "app")
		SecretSyncMustHaveReason(ctx, ss, ssv1alpha1.ConditionTypeCreate, metav1.ConditionTrue, ssv1alpha1.ReasonCreateSucceeded)
		secretVersion := getSecret(ctx, ns, "app").ResourceVersion
		syncVersion := getSecretSync(ctx, ss).ResourceVersion
		lastSync := getSecretSync(ctx, ss).Status.LastSuccessfulSyncTime.Time
		checkLabels := map[string]string{"namespace": ns, "name": "app"}

		By("letting two more checks run")
		before := time.Now()
		mounts := provider.mountCount(ns)
		Eventually(func() int64 { return provider.mountCount(ns) }).Should(BeNumerically(">=", mounts+2))

		Expect(getSecret(ctx, ns, "app").ResourceVersion).To(Equal(secretVersion), "the Secret was written")
		Expect(getSecretSync(ctx, ss).ResourceVersion).To(Equal(syncVersion), "the SecretSync status was written")
		Expect(getSecretSync(ctx, ss).Status.LastSuccessfulSyncTime.Time).To(Equal(lastSync), "lastSuccessfulSyncTime moved without a write")
		Expect(latestCondition(getSecretSync(ctx, ss)).Reason).To(Equal(ssv1alpha1.ReasonCreateSucceeded))
		Eventually(func() float64 { return metricValue("kvsync_secretsync_last_check_timestamp_seconds", checkLabels) }).
			Should(BeNumerically(">=", float64(before.UnixMilli())/1000), "the latest check is not in the metrics")

		By("forgetting the check once the SecretSync is gone")
		Expect(k8s.Delete(ctx, ss)).To(Succeed())
		Eventually(func() float64 { return metricValue("kvsync_secretsync_last_check_timestamp_seconds", checkLabels) }).Should(Equal(-1.0))
	})

	It("rewrites the Secret and reports Update/UpdateValueChangeOrForceUpdateSucceeded when the provider returns a new value", func() {
		ss := createSecretSync(ctx, ns, "app")
		SecretSyncMustHaveReason(ctx, ss, ssv1alpha1.ConditionTypeCreate, metav1.ConditionTrue, ssv1alpha1.ReasonCreateSucceeded)
		hash := getSecretSync(ctx, ss).Status.SyncHash

		reasons := recordReasons(ctx, ss)
		provider.setFiles(ns, map[string]string{"a": canaryA2, "b": canaryB})
		Eventually(reasons).Should(ContainElement(ssv1alpha1.ConditionTypeUpdate + "/" + ssv1alpha1.ReasonUpdateValueChangeOrForceUpdateSucceeded))
		Expect(getSecret(ctx, ns, "app").Data).To(HaveKeyWithValue("key-a", []byte(canaryA2)))
		Expect(getSecretSync(ctx, ss).Status.SyncHash).NotTo(Equal(hash))
	})

	It("rewrites the Secret and reports UpdateValueChangeOrForceUpdateSucceeded on a new forceSynchronization value", func() {
		ss := createSecretSync(ctx, ns, "app")
		SecretSyncMustHaveReason(ctx, ss, ssv1alpha1.ConditionTypeCreate, metav1.ConditionTrue, ssv1alpha1.ReasonCreateSucceeded)

		reasons := recordReasons(ctx, ss)
		got := getSecretSync(ctx, ss)
		got.Spec.ForceSynchronization = "2026-11-27T00:00:00Z"
		Expect(k8s.Update(ctx, got)).To(Succeed())
		Eventually(reasons).Should(ContainElement(ssv1alpha1.ConditionTypeUpdate + "/" + ssv1alpha1.ReasonUpdateValueChangeOrForceUpdateSucceeded))
	})

	It("keeps syncing every SecretSync after a defect panics inside a Mount that other checks share", Label("reason:ControllerInternalError"), func() {
		a, b := createSecretSync(ctx, ns, "app-a"), createSecretSync(ctx, ns, "app-b")
		SecretSyncMustHaveReason(ctx, a, ssv1alpha1.ConditionTypeCreate, metav1.ConditionTrue, ssv1alpha1.ReasonCreateSucceeded)
		SecretSyncMustHaveReason(ctx, b, ssv1alpha1.ConditionTypeCreate, metav1.ConditionTrue, ssv1alpha1.ReasonCreateSucceeded)

		By("panicking inside the next Mount of the namespace, which the other SecretSync's routine check waits for")
		panics.arm(ns, 1)
		Eventually(func() int { return panics.remaining(ns) }).Should(BeZero())
		provider.setFiles(ns, map[string]string{"a": canaryA2, "b": canaryB})

		By("syncing both SecretSyncs of the namespace, and a SecretSync elsewhere")
		for _, ss := range []*ssv1alpha1.SecretSync{a, b} {
			Eventually(func() []byte { return getSecret(ctx, ns, ss.Name).Data["key-a"] }).Should(Equal([]byte(canaryA2)))
		}
		other := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "kvsync-test-"}}
		Expect(k8s.Create(ctx, other)).To(Succeed())
		Expect(k8s.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: other.Name, Name: "workload"}})).To(Succeed())
		Expect(k8s.Create(ctx, &spcv1.SecretProviderClass{ObjectMeta: metav1.ObjectMeta{Namespace: other.Name, Name: "vault"},
			Spec: spcv1.SecretProviderClassSpec{Provider: providerName}})).To(Succeed())
		provider.setFiles(other.Name, map[string]string{"a": canaryA, "b": canaryB})
		SecretSyncMustHaveReason(ctx, createSecretSync(ctx, other.Name, "app"), ssv1alpha1.ConditionTypeCreate, metav1.ConditionTrue, ssv1alpha1.ReasonCreateSucceeded)
	})

	It("leaves the Secret to garbage collection through its owner reference when the SecretSync is deleted", func() {
		ss := createSecretSync(ctx, ns, "app")
		SecretSyncMustHaveReason(ctx, ss, ssv1alpha1.ConditionTypeCreate, metav1.ConditionTrue, ssv1alpha1.ReasonCreateSucceeded)

		Expect(k8s.Delete(ctx, ss)).To(Succeed())
		Eventually(func() bool {
			return apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKeyFromObject(ss), &ssv1alpha1.SecretSync{}))
		}).Should(BeTrue())

		// envtest runs no garbage collector: the controller must not delete the
		// Secret itself, and the owner reference is what the collector follows.
		secret := getSecret(ctx, ns, "app")
		Expect(secret.OwnerReferences).To(HaveLen(1))
		Expect(secret.OwnerReferences[0].UID).To(Equal(ss.UID))
		Expect(secret.Data).To(HaveKeyWithValue("key-a", []byte(canaryA)))
	})

	It("never modifies a Secret of the same name without the managed label and reports InvalidClusterSecretLabelError", func() {
		foreign := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app"},
			Data:       map[string][]byte{"key-a": []byte("not-ours")},
		}
		Expect(k8s.Create(ctx, foreign)).To(Succeed())
		ss := createSecretSync(ctx, ns, "app")
		SecretSyncMustHaveReason(ctx, ss, ssv1alpha1.ConditionTypeCreate, metav1.ConditionFalse, ssv1alpha1.ReasonInvalidClusterSecretLabelError)
		secret := getSecret(ctx, ns, "app")
		Expect(secret.ResourceVersion).To(Equal(foreign.ResourceVersion))
		Expect(secret.Data).To(HaveKeyWithValue("key-a", []byte("not-ours")))
	})

	It("reports Create/ControllerSpcError naming the class when the SecretProviderClass does not exist", func() {
		ss := newSecretSync(ns, "app")
		ss.Spec.SecretProviderClassName = "missing"
		Expect(k8s.Create(ctx, ss)).To(Succeed())
		SecretSyncMustHaveReason(ctx, ss, ssv1alpha1.ConditionTypeCreate, metav1.ConditionFalse, ssv1alpha1.ReasonControllerSpcError)
		Expect(latestCondition(getSecretSync(ctx, ss)).Message).To(ContainSubstring(`SecretProviderClass "missing" not found`))
	})

	It("reports Create/ControllerSyncFailed naming the ServiceAccount when it does not exist", func() {
		ss := newSecretSync(ns, "app")
		ss.Spec.ServiceAccountName = "nobody"
		Expect(k8s.Create(ctx, ss)).To(Succeed())
		SecretSyncMustHaveReason(ctx, ss, ssv1alpha1.ConditionTypeCreate, metav1.ConditionFalse, ssv1alpha1.ReasonControllerSyncFailed)
		Expect(latestCondition(getSecretSync(ctx, ss)).Message).To(ContainSubstring(`ServiceAccount "nobody"`))
		Expect(apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "app"}, &corev1.Secret{}))).To(BeTrue())
	})

	It("reports Create/ControllerSpcError naming the provider when no provider socket exists for it", func() {
		Expect(k8s.Create(ctx, &spcv1.SecretProviderClass{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "elsewhere"},
			Spec:       spcv1.SecretProviderClassSpec{Provider: "vault-of-elsewhere"},
		})).To(Succeed())
		ss := newSecretSync(ns, "app")
		ss.Spec.SecretProviderClassName = "elsewhere"
		Expect(k8s.Create(ctx, ss)).To(Succeed())
		SecretSyncMustHaveReason(ctx, ss, ssv1alpha1.ConditionTypeCreate, metav1.ConditionFalse, ssv1alpha1.ReasonControllerSpcError)
		Expect(latestCondition(getSecretSync(ctx, ss)).Message).To(ContainSubstring(`provider "vault-of-elsewhere"`))
	})

	It("reports Create/UserInputValidationFailed listing the returned paths when a sourcePath is not returned", func() {
		ss := newSecretSync(ns, "app")
		ss.Spec.SecretObject.Data = append(ss.Spec.SecretObject.Data, ssv1alpha1.SecretObjectData{SourcePath: "c", TargetKey: "key-c"})
		Expect(k8s.Create(ctx, ss)).To(Succeed())
		SecretSyncMustHaveReason(ctx, ss, ssv1alpha1.ConditionTypeCreate, metav1.ConditionFalse, ssv1alpha1.ReasonUserInputValidationFailed)
		Expect(latestCondition(getSecretSync(ctx, ss)).Message).To(And(ContainSubstring(`sourcePath "c"`), ContainSubstring("it returned a, b")))
	})

	It("keeps the syncHash key in a Secret it creates once and reuses", func() {
		key := client.ObjectKey{Namespace: ns, Name: "hash-key"}
		first, err := controller.LoadHashKey(ctx, k8s, key)
		Expect(err).NotTo(HaveOccurred())
		Expect(first).To(HaveLen(32))
		second, err := controller.LoadHashKey(ctx, k8s, key)
		Expect(err).NotTo(HaveOccurred())
		Expect(second).To(Equal(first))

		Expect(k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "short-key"}, Data: map[string][]byte{"key": []byte("short")}})).To(Succeed())
		_, err = controller.LoadHashKey(ctx, k8s, client.ObjectKey{Namespace: ns, Name: "short-key"})
		Expect(err).To(MatchError(ContainSubstring("holds 5 bytes, want at least 32")))
	})

	It("shows the latest reason in kubectl's columns", func() {
		ss := createSecretSync(ctx, ns, "app")
		SecretSyncMustHaveReason(ctx, ss, ssv1alpha1.ConditionTypeCreate, metav1.ConditionTrue, ssv1alpha1.ReasonCreateSucceeded)

		clientset, err := kubernetes.NewForConfig(cfg)
		Expect(err).NotTo(HaveOccurred())
		raw, err := clientset.Discovery().RESTClient().Get().
			AbsPath("/apis/secret-sync.x-k8s.io/v1alpha1/namespaces", ns, "secretsyncs", "app").
			SetHeader("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io").DoRaw(ctx)
		Expect(err).NotTo(HaveOccurred())
		table := &metav1.Table{}
		Expect(json.Unmarshal(raw, table)).To(Succeed())
		Expect(table.Rows).To(HaveLen(1))
		columns := map[string]any{}
		for i, c := range table.ColumnDefinitions {
			columns[c.Name] = table.Rows[0].Cells[i]
		}
		Expect(columns).To(HaveKeyWithValue("Reason", ssv1alpha1.ReasonCreateSucceeded))
		Expect(columns).To(HaveKey("In Sync Since"))
		Expect(columns).To(HaveKey("Age"))
	})
})

var _ = Describe("SecretSync API", func() {
	It("rejects labels and annotations with the reserved prefix secrets-store.sync.x-k8s.io", func(ctx SpecContext) {
		for _, mutate := range []func(*ssv1alpha1.SecretSync){
			func(ss *ssv1alpha1.SecretSync) {
				ss.Spec.SecretObject.Labels = map[string]string{"secrets-store.sync.x-k8s.io/x": "y"}
			},
			func(ss *ssv1alpha1.SecretSync) {
				ss.Spec.SecretObject.Annotations = map[string]string{"secrets-store.sync.x-k8s.io": ""}
			},
		} {
			ss := newSecretSync("default", "reserved")
			mutate(ss)
			err := k8s.Create(ctx, ss)
			Expect(apierrors.IsInvalid(err)).To(BeTrue(), "got %v", err)
			Expect(err.Error()).To(ContainSubstring("reserved for the controller"))
		}
	})

	It("rejects duplicate target keys, invalid target keys and invalid source paths", func(ctx SpecContext) {
		for _, data := range [][]ssv1alpha1.SecretObjectData{
			{{SourcePath: "a", TargetKey: "k"}, {SourcePath: "b", TargetKey: "k"}},
			{{SourcePath: "a", TargetKey: "bad key"}},
			{{SourcePath: "a", TargetKey: ".."}},
			{{SourcePath: "a/extra/path", TargetKey: "k"}},
			{{SourcePath: "..", TargetKey: "k"}},
			{},
		} {
			ss := newSecretSync("default", "invalid")
			ss.Spec.SecretObject.Data = data
			err := k8s.Create(ctx, ss)
			Expect(apierrors.IsInvalid(err)).To(BeTrue(), "data %v: got %v", data, err)
		}
	})

	It("accepts version and certificate source paths and defaults the type to Opaque", func(ctx SpecContext) {
		ss := newSecretSync("default", "paths")
		ss.Spec.SecretObject.Type = ""
		ss.Spec.SecretObject.Data = []ssv1alpha1.SecretObjectData{
			{SourcePath: "db-password/0", TargetKey: "current"},
			{SourcePath: "db-password/1", TargetKey: "previous"},
			{SourcePath: "web-cert/tls.crt", TargetKey: "tls.crt"},
			{SourcePath: "web-cert/tls.key", TargetKey: "tls.key"},
		}
		Expect(k8s.Create(ctx, ss)).To(Succeed())
		DeferCleanup(func(ctx SpecContext) { Expect(k8s.Delete(ctx, ss)).To(Succeed()) })
		Expect(ss.Spec.SecretObject.Type).To(Equal("Opaque"))
	})
})

var _ = Describe("Examples", func() {
	It("apply as they are to the API server", func(ctx SpecContext) {
		Expect(k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "payments"}})).To(Succeed())
		paths, err := filepath.Glob(filepath.Join("..", "examples", "*.yaml"))
		Expect(err).NotTo(HaveOccurred())
		Expect(paths).NotTo(BeEmpty())
		for _, path := range paths {
			data, err := os.ReadFile(path)
			Expect(err).NotTo(HaveOccurred())
			for _, doc := range strings.Split(string(data), "\n---\n") {
				obj := &unstructured.Unstructured{}
				Expect(yaml.Unmarshal([]byte(doc), &obj.Object)).To(Succeed(), path)
				Expect(k8s.Create(ctx, obj, client.DryRunAll)).To(Succeed(), "%s: %s", path, obj.GetName())
			}
		}
	})
})

// newSecretSync returns a SecretSync reading key-a and key-b from the suite's
// provider through the class "vault".
func newSecretSync(ns, name string) *ssv1alpha1.SecretSync {
	return &ssv1alpha1.SecretSync{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: ssv1alpha1.SecretSyncSpec{
			ServiceAccountName:      "workload",
			SecretProviderClassName: "vault",
			SecretObject: ssv1alpha1.SecretObject{
				Type:   string(corev1.SecretTypeOpaque),
				Labels: map[string]string{"team": "payments"},
				Data: []ssv1alpha1.SecretObjectData{
					{SourcePath: "a", TargetKey: "key-a"},
					{SourcePath: "b", TargetKey: "key-b"},
				},
			},
		},
	}
}

func createSecretSync(ctx context.Context, ns, name string) *ssv1alpha1.SecretSync {
	GinkgoHelper()
	ss := newSecretSync(ns, name)
	Expect(k8s.Create(ctx, ss)).To(Succeed())
	return ss
}

// SecretSyncMustHaveReason waits until the condition of the given type of ss
// has the given status and reason. Update conditions must also be the latest:
// a Create condition may already be followed by later checks.
func SecretSyncMustHaveReason(ctx context.Context, ss *ssv1alpha1.SecretSync, condType string, status metav1.ConditionStatus, reason string) {
	GinkgoHelper()
	Eventually(func(g Gomega) {
		got := getSecretSync(ctx, ss)
		cond := meta.FindStatusCondition(got.Status.Conditions, condType)
		g.Expect(cond).NotTo(BeNil(), "no %s condition in %v", condType, got.Status.Conditions)
		if condType == ssv1alpha1.ConditionTypeUpdate {
			g.Expect(latestCondition(got).Type).To(Equal(condType), "the latest condition")
		}
		g.Expect(cond.Reason).To(Equal(reason), "message: %s", cond.Message)
		g.Expect(cond.Status).To(Equal(status))
		g.Expect(cond.ObservedGeneration).To(Equal(got.Generation))
		g.Expect(strings.Contains(cond.Message, "kvsync-canary")).To(BeFalse(), "a canary leaked into the message")
	}).Should(Succeed())
}

// recordReasons watches ss from its current version and returns a function
// listing every "type/reason" its latest condition has taken since, in order.
// Unlike polling, it misses no outcome however briefly it lasted.
func recordReasons(ctx context.Context, ss *ssv1alpha1.SecretSync) func() []string {
	GinkgoHelper()
	ctx, cancel := context.WithCancel(ctx)
	DeferCleanup(cancel)
	list := &ssv1alpha1.SecretSyncList{}
	Expect(watcher.List(ctx, list, client.InNamespace(ss.Namespace))).To(Succeed())
	w, err := watcher.Watch(ctx, &ssv1alpha1.SecretSyncList{}, client.InNamespace(ss.Namespace),
		client.MatchingFields{"metadata.name": ss.Name}, &client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: list.ResourceVersion}})
	Expect(err).NotTo(HaveOccurred())
	var mu sync.Mutex
	var seen []string
	go func() {
		defer w.Stop()
		for ev := range w.ResultChan() {
			if got, ok := ev.Object.(*ssv1alpha1.SecretSync); ok {
				c := latestCondition(got)
				mu.Lock()
				seen = append(seen, c.Type+"/"+c.Reason)
				mu.Unlock()
			}
		}
	}()
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(seen)
	}
}

func latestCondition(ss *ssv1alpha1.SecretSync) metav1.Condition {
	if len(ss.Status.Conditions) == 0 {
		return metav1.Condition{}
	}
	return ss.Status.Conditions[len(ss.Status.Conditions)-1]
}

func getSecretSync(ctx context.Context, ss *ssv1alpha1.SecretSync) *ssv1alpha1.SecretSync {
	GinkgoHelper()
	got := &ssv1alpha1.SecretSync{}
	Expect(k8s.Get(ctx, client.ObjectKeyFromObject(ss), got)).To(Succeed())
	return got
}

func getSecret(ctx context.Context, ns, name string) *corev1.Secret {
	GinkgoHelper()
	secret := &corev1.Secret{}
	Eventually(func() error { return k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, secret) }).
		WithTimeout(5 * time.Second).Should(Succeed())
	return secret
}
