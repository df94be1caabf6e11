package controller_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	spcv1 "github.com/kvsync/kvsync/api/secretsstore/v1"
	ssv1alpha1 "github.com/kvsync/kvsync/api/secretsync/v1alpha1"
)

// badInput is one entry of the bad input corpus: what makes a valid
// SecretProviderClass, SecretSync or vault wrong, and the reason and message
// fragments the controller must answer with. Every entry runs twice: on a
// new SecretSync, where no Secret may be created, and as a change to a
// synced one, whose Secret must stay byte for byte as it was.
type badInput struct {
	// objects are the class's objects entries; one secret, db-password,
	// when nil.
	objects []string
	// params override the class's parameters; "" removes one.
	params map[string]string
	// data are targetKey, sourcePath pairs; password from db-password
	// when nil.
	data []string
	// secretType is spec.secretObject.type; Opaque when empty.
	secretType string
	// labels are spec.secretObject.labels.
	labels map[string]string
	// vault adds what the entry reads to the vault.
	vault func(a azureNamespace)

	reason  string
	message []string
}

// dbPassword is the object every entry starts from.
const dbPassword = "objectName: db-password\nobjectType: secret"

// many returns n objects entries obj-0000... and the data pairs of the
// first read of them, each reading its own object.
func many(n, read int) (objects, data []string) {
	for i := range n {
		objects = append(objects, fmt.Sprintf("objectName: obj-%04d\nobjectType: secret", i))
	}
	for i := range read {
		data = append(data, fmt.Sprintf("k%04d", i), fmt.Sprintf("obj-%04d", i))
	}
	return objects, data
}

// setMany sets obj-0000 to obj-<n-1> with values of size bytes.
func setMany(n, size int) func(azureNamespace) {
	return func(a azureNamespace) {
		for i := range n {
			prefix := fmt.Sprintf("kvsync-canary-%04d-", i)
			a.set(fmt.Sprintf("obj-%04d", i), prefix+strings.Repeat("x", max(0, size-len(prefix))))
		}
	}
}

var badInputs = []TableEntry{
	// The class parameters: the provider answers InvalidArgument.
	Entry("objects that is not YAML", badInput{params: map[string]string{"objects": "array: [unclosed"},
		reason: ssv1alpha1.ReasonControllerSpcError, message: []string{"objects is not valid YAML"}}),
	Entry("objects with no entries", badInput{params: map[string]string{"objects": "array: []"},
		reason: ssv1alpha1.ReasonControllerSpcError, message: []string{"objects has no entries"}}),
	Entry("an objects entry that is not YAML", badInput{objects: []string{"objectName: [db-password"},
		reason: ssv1alpha1.ReasonControllerSpcError, message: []string{"objects entry 0 is not valid YAML"}}),
	Entry("an objects entry without objectName", badInput{objects: []string{"objectType: secret"}, data: []string{"password", "db-password"},
		reason: ssv1alpha1.ReasonControllerSpcError, message: []string{"objects entry 0 has no objectName"}}),
	Entry("a unicode objectName", badInput{objects: []string{"objectName: pässwörd\nobjectType: secret\nobjectAlias: db-password"},
		reason: ssv1alpha1.ReasonControllerSpcError, message: []string{`objectName "pässwörd" is not a valid key vault object name`}}),
	Entry("an objectName of 128 characters", badInput{objects: []string{"objectName: " + strings.Repeat("a", 128) + "\nobjectType: secret"}, data: []string{"password", strings.Repeat("a", 128)},
		reason: ssv1alpha1.ReasonControllerSpcError, message: []string{"is not a valid key vault object name (1-127"}}),
	Entry("an unknown objectType", badInput{objects: []string{"objectName: db-password\nobjectType: blob"},
		reason: ssv1alpha1.ReasonControllerSpcError, message: []string{`objectType "blob" is not supported`}}),
	Entry("no objectType", badInput{objects: []string{"objectName: db-password"},
		reason: ssv1alpha1.ReasonControllerSpcError, message: []string{"objectType is not set"}}),
	Entry("an unknown objectEncoding", badInput{objects: []string{dbPassword + "\nobjectEncoding: rot13"},
		reason: ssv1alpha1.ReasonControllerSpcError, message: []string{`objectEncoding "rot13" is not supported`}}),
	Entry("an unknown objectFormat", badInput{objects: []string{dbPassword + "\nobjectFormat: jks"},
		reason: ssv1alpha1.ReasonControllerSpcError, message: []string{`objectFormat "jks" is not supported`}}),
	Entry("a negative objectVersionHistory", badInput{objects: []string{dbPassword + "\nobjectVersionHistory: -1"},
		reason: ssv1alpha1.ReasonControllerSpcError, message: []string{"objectVersionHistory -1 must be between 0 and"}}),
	Entry("an objectAlias that leaves the directory", badInput{objects: []string{dbPassword + "\nobjectAlias: ../etc"},
		reason: ssv1alpha1.ReasonControllerSpcError, message: []string{`objects entry 0 (file "../etc")`, "relative path without '..'"}}),
	Entry("two entries writing one file", badInput{objects: []string{dbPassword, "objectName: other\nobjectType: secret\nobjectAlias: db-password"},
		reason: ssv1alpha1.ReasonControllerSpcError, message: []string{`objects entries 0 and 1 both write file "db-password"`}}),
	Entry("the same entry twice", badInput{objects: []string{dbPassword, dbPassword},
		reason: ssv1alpha1.ReasonControllerSpcError, message: []string{`objects entries 0 and 1 both write file "db-password"`}}),
	Entry("a filePermission that is not octal", badInput{objects: []string{dbPassword + "\nfilePermission: rwx"},
		reason: ssv1alpha1.ReasonControllerSpcError, message: []string{`filePermission "rwx" is not an octal file mode`}}),
	Entry("no keyvaultName", badInput{params: map[string]string{"keyvaultName": ""},
		reason: ssv1alpha1.ReasonControllerSpcError, message: []string{"keyvaultName is not set"}}),
	Entry("a unicode keyvaultName", badInput{params: map[string]string{"keyvaultName": "tresör-vault"},
		reason: ssv1alpha1.ReasonControllerSpcError, message: []string{`keyvaultName "tresör-vault" is not a valid key vault name`}}),
	Entry("a tenantID that is not a GUID", badInput{params: map[string]string{"tenantID": "contoso.onmicrosoft.com"},
		reason: ssv1alpha1.ReasonControllerSpcError, message: []string{`tenantID "contoso.onmicrosoft.com" is not a GUID`}}),
	Entry("no clientID", badInput{params: map[string]string{"clientID": ""},
		reason: ssv1alpha1.ReasonControllerSpcError, message: []string{"clientID is not set"}}),
	Entry("an unknown cloudName", badInput{params: map[string]string{"cloudName": "AzureMarsCloud"},
		reason: ssv1alpha1.ReasonControllerSpcError, message: []string{`cloudName "AzureMarsCloud" is not known`}}),
	Entry("pod identity", badInput{params: map[string]string{"usePodIdentity": "true"},
		reason: ssv1alpha1.ReasonControllerSpcError, message: []string{"usePodIdentity=true is not supported"}}),
	Entry("an invalid entry among 3,000 objects", badInput{
		objects: func() []string {
			o, _ := many(3000, 0)
			o[2999] = "objectName: obj-2999\nobjectType: blob"
			return o
		}(),
		data: []string{"k0", "obj-0000", "k2999", "obj-2999"}, vault: setMany(1, 16),
		reason: ssv1alpha1.ReasonControllerSpcError, message: []string{`objectType "blob" is not supported`}}),

	// The SecretSync: the controller refuses what cannot be written.
	Entry("a service-account-token Secret", badInput{secretType: "kubernetes.io/service-account-token",
		reason: ssv1alpha1.ReasonUserInputValidationFailed, message: []string{`"kubernetes.io/service-account-token" is not allowed`}}),
	Entry("an unknown Secret type", badInput{secretType: "example.com/unknown",
		reason: ssv1alpha1.ReasonUserInputValidationFailed, message: []string{`"example.com/unknown" is not allowed`}}),
	Entry("a kubernetes.io/tls Secret without tls.crt and tls.key", badInput{secretType: "kubernetes.io/tls",
		reason: ssv1alpha1.ReasonUserInputValidationFailed, message: []string{"kubernetes.io/tls"}}),
	Entry("a sourcePath that names no object", badInput{data: []string{"password", "db-pasword"},
		reason: ssv1alpha1.ReasonUserInputValidationFailed, message: []string{`sourcePath "db-pasword" (targetKey "password") names no object`}}),
	Entry("a version the object does not have", badInput{data: []string{"password", "db-password/3"},
		reason: ssv1alpha1.ReasonUserInputValidationFailed, message: []string{`sourcePath "db-password/3"`}}),
	Entry("a Secret label key that is not a label key", badInput{labels: map[string]string{"not a label": "x"},
		reason: ssv1alpha1.ReasonUserInputValidationFailed, message: []string{"the Secret's labels or annotations are not valid", `spec.secretObject.labels: Invalid value: "not a label"`}}),
	Entry("values over the 1 MiB of a Secret", func() badInput {
		objects, data := many(50, 50)
		return badInput{objects: objects, data: data, vault: setMany(50, 25000),
			reason: ssv1alpha1.ReasonUserInputValidationFailed, message: []string{"1250000 bytes in 50 keys", "over the 1048576 bytes (1 MiB)"}}
	}()),

	// The vault: what it holds cannot be decoded as asked.
	Entry("objectEncoding base64 of a value that is not base64", badInput{objects: []string{dbPassword + "\nobjectEncoding: base64"},
		reason: ssv1alpha1.ReasonProviderError, message: []string{"db-password", "base64"}}),
	Entry("objectEncoding hex of a value that is not hex", badInput{objects: []string{dbPassword + "\nobjectEncoding: hex"},
		reason: ssv1alpha1.ReasonProviderError, message: []string{"db-password", "hex"}}),
}

var _ = Describe("The bad input corpus", func() {
	var (
		ctx context.Context
		a   azureNamespace
	)

	BeforeEach(func() {
		ctx = context.Background()
		a = azure.namespace(ctx, "badinput")
		a.set("db-password", "kvsync-canary-bad-good")
	})

	// apply makes the class and SecretSync bad as in, creating them or
	// updating the synced ones.
	apply := func(in badInput, ss *ssv1alpha1.SecretSync, create bool) {
		GinkgoHelper()
		if in.vault != nil {
			in.vault(a)
		}
		objects := in.objects
		if objects == nil {
			objects = []string{dbPassword}
		}
		data := in.data
		if data == nil {
			data = []string{"password", "db-password"}
		}
		want := a.secretSync("app", data...)
		if in.secretType != "" {
			want.Spec.SecretObject.Type = in.secretType
		}
		want.Spec.SecretObject.Labels = in.labels
		if create {
			a.classWith(ctx, in.params, objects...)
			*ss = *want
			Expect(k8s.Create(ctx, ss)).To(Succeed())
			return
		}
		class := &spcv1.SecretProviderClass{}
		Expect(k8s.Get(ctx, client.ObjectKey{Namespace: a.ns, Name: "azure-kv"}, class)).To(Succeed())
		class.Spec.Parameters["objects"] = objectsParameter(objects)
		override(class.Spec.Parameters, in.params)
		Expect(k8s.Update(ctx, class)).To(Succeed())
		// The controller writes the status meanwhile: retry on conflicts.
		Eventually(func() error {
			if err := k8s.Get(ctx, client.ObjectKeyFromObject(ss), ss); err != nil {
				return err
			}
			ss.Spec.SecretObject = want.Spec.SecretObject
			return k8s.Update(ctx, ss)
		}).Should(Succeed())
	}

	expectReason := func(ss *ssv1alpha1.SecretSync, condType string, in badInput) {
		GinkgoHelper()
		SecretSyncMustHaveReason(ctx, ss, condType, metav1.ConditionFalse, in.reason)
		// The first check may come before the class reaches the
		// controller's cache: wait for the message.
		Eventually(func(g Gomega) {
			c := latestCondition(getSecretSync(ctx, ss))
			g.Expect(c.Reason).To(Equal(in.reason))
			for _, m := range in.message {
				g.Expect(c.Message).To(ContainSubstring(m))
			}
		}).Should(Succeed())
		for line := range strings.Lines(logs.String()) {
			// Other specs panic on purpose; this namespace's checks must not.
			Expect(strings.Contains(line, a.ns) && strings.Contains(line, "panic")).To(BeFalse(), "a check panicked: %s", line)
		}
	}

	DescribeTable("on a new SecretSync, gives a clear reason and creates no Secret",
		func(in badInput) {
			ss := &ssv1alpha1.SecretSync{}
			apply(in, ss, true)
			expectReason(ss, ssv1alpha1.ConditionTypeCreate, in)
			err := k8s.Get(ctx, client.ObjectKey{Namespace: a.ns, Name: "app"}, &corev1.Secret{})
			Expect(apierrors.IsNotFound(err)).To(BeTrue(), "the Secret: %v", err)
		},
		badInputs)

	DescribeTable("as a change to a synced SecretSync, gives a clear reason and leaves its Secret as it was",
		func(in badInput) {
			a.class(ctx, dbPassword)
			ss := a.secretSync("app", "password", "db-password")
			Expect(k8s.Create(ctx, ss)).To(Succeed())
			SecretSyncMustHaveReason(ctx, ss, ssv1alpha1.ConditionTypeCreate, metav1.ConditionTrue, ssv1alpha1.ReasonCreateSucceeded)
			before := getSecret(ctx, a.ns, "app")

			apply(in, ss, false)
			expectReason(ss, ssv1alpha1.ConditionTypeUpdate, in)
			after := getSecret(ctx, a.ns, "app")
			Expect(after.ResourceVersion).To(Equal(before.ResourceVersion))
			Expect(after.Data).To(Equal(map[string][]byte{"password": []byte("kvsync-canary-bad-good")}))
		},
		badInputs)

	It("syncs binary values byte for byte through objectEncoding base64 and hex", func() {
		raw := make([]byte, 4096)
		_, _ = rand.Read(raw)
		raw = append(raw, 0, 0xff, 0xfe, '\n', 0) // NULs and bytes that are not UTF-8
		a.set("bin-b64", base64.StdEncoding.EncodeToString(raw))
		a.set("bin-hex", fmt.Sprintf("%x", raw))
		a.class(ctx, "objectName: bin-b64\nobjectType: secret\nobjectEncoding: base64", "objectName: bin-hex\nobjectType: secret\nobjectEncoding: hex")
		ss := a.secretSync("app", "b64", "bin-b64", "hex", "bin-hex")
		Expect(k8s.Create(ctx, ss)).To(Succeed())
		SecretSyncMustHaveReason(ctx, ss, ssv1alpha1.ConditionTypeCreate, metav1.ConditionTrue, ssv1alpha1.ReasonCreateSucceeded)
		Expect(getSecret(ctx, a.ns, "app").Data).To(Equal(map[string][]byte{"b64": raw, "hex": raw}))
	})

	It("syncs 256 keys, the most a SecretSync holds, from a class of 3,000 objects", func() {
		objects, data := many(3000, 256)
		setMany(256, 64)(a)
		a.class(ctx, objects...)
		ss := a.secretSync("app", data...)
		Expect(k8s.Create(ctx, ss)).To(Succeed())
		SecretSyncMustHaveReason(ctx, ss, ssv1alpha1.ConditionTypeCreate, metav1.ConditionTrue, ssv1alpha1.ReasonCreateSucceeded)
		secret := getSecret(ctx, a.ns, "app")
		Expect(secret.Data).To(HaveLen(256))
		Expect(string(secret.Data["k0255"])).To(HavePrefix("kvsync-canary-0255-"))
	})

	It("syncs a Secret of exactly 1 MiB of values", func() {
		// 41 values of 25,000 bytes and one of the rest (23,576): 1,048,576
		// in all.
		for i := range 42 {
			size := 25000
			if i == 41 {
				size = corev1.MaxSecretSize - 41*25000
			}
			prefix := fmt.Sprintf("kvsync-canary-big-%02d-", i)
			a.set(fmt.Sprintf("big-%02d", i), prefix+strings.Repeat("x", size-len(prefix)))
		}
		var objects, data []string
		for i := range 42 {
			objects = append(objects, fmt.Sprintf("objectName: big-%02d\nobjectType: secret", i))
			data = append(data, fmt.Sprintf("k%02d", i), fmt.Sprintf("big-%02d", i))
		}
		a.class(ctx, objects...)
		ss := a.secretSync("app", data...)
		Expect(k8s.Create(ctx, ss)).To(Succeed())
		SecretSyncMustHaveReason(ctx, ss, ssv1alpha1.ConditionTypeCreate, metav1.ConditionTrue, ssv1alpha1.ReasonCreateSucceeded)
		total := 0
		for _, v := range getSecret(ctx, a.ns, "app").Data {
			total += len(v)
		}
		Expect(total).To(Equal(corev1.MaxSecretSize))
	})
})

var _ = Describe("The API server", func() {
	DescribeTable("rejects a SecretSync with an invalid field, naming the field, so nothing is created",
		func(ctx SpecContext, mutate func(*ssv1alpha1.SecretSync), field string) {
			ss := newSecretSync("default", "invalid-input")
			mutate(ss)
			err := k8s.Create(ctx, ss)
			Expect(apierrors.IsInvalid(err)).To(BeTrue(), "got %v", err)
			Expect(err.Error()).To(ContainSubstring(field))
		},
		Entry("a unicode name", func(ss *ssv1alpha1.SecretSync) { ss.Name = "äpp" }, "metadata.name"),
		Entry("a name of 254 characters", func(ss *ssv1alpha1.SecretSync) { ss.Name = strings.Repeat("a", 254) }, "metadata.name"),
		Entry("no secretProviderClassName", func(ss *ssv1alpha1.SecretSync) { ss.Spec.SecretProviderClassName = "" }, "spec.secretProviderClassName"),
		Entry("a unicode secretProviderClassName", func(ss *ssv1alpha1.SecretSync) { ss.Spec.SecretProviderClassName = "käv" }, "spec.secretProviderClassName"),
		Entry("no serviceAccountName", func(ss *ssv1alpha1.SecretSync) { ss.Spec.ServiceAccountName = "" }, "spec.serviceAccountName"),
		Entry("an uppercase serviceAccountName", func(ss *ssv1alpha1.SecretSync) { ss.Spec.ServiceAccountName = "Workload" }, "spec.serviceAccountName"),
		Entry("a type with a space", func(ss *ssv1alpha1.SecretSync) { ss.Spec.SecretObject.Type = "my type" }, "spec.secretObject.type"),
		Entry("no data", func(ss *ssv1alpha1.SecretSync) { ss.Spec.SecretObject.Data = nil }, "spec.secretObject.data"),
		Entry("257 data items", func(ss *ssv1alpha1.SecretSync) {
			ss.Spec.SecretObject.Data = nil
			for i := range 257 {
				ss.Spec.SecretObject.Data = append(ss.Spec.SecretObject.Data, ssv1alpha1.SecretObjectData{TargetKey: fmt.Sprint("k", i), SourcePath: fmt.Sprint("o", i)})
			}
		}, "spec.secretObject.data"),
		Entry("a unicode targetKey", func(ss *ssv1alpha1.SecretSync) {
			ss.Spec.SecretObject.Data = []ssv1alpha1.SecretObjectData{{TargetKey: "clé", SourcePath: "db-password"}}
		}, "targetKey"),
		Entry("a unicode sourcePath", func(ss *ssv1alpha1.SecretSync) {
			ss.Spec.SecretObject.Data = []ssv1alpha1.SecretObjectData{{TargetKey: "password", SourcePath: "pässwörd"}}
		}, "sourcePath"),
		Entry("a sourcePath version that is not a number", func(ss *ssv1alpha1.SecretSync) {
			ss.Spec.SecretObject.Data = []ssv1alpha1.SecretObjectData{{TargetKey: "password", SourcePath: "db-password/latest"}}
		}, "sourcePath"),
		Entry("a forceSynchronization of 254 characters", func(ss *ssv1alpha1.SecretSync) {
			ss.Spec.ForceSynchronization = strings.Repeat("a", 254)
		}, "spec.forceSynchronization"),
	)

	It("accepts what the upstream secrets-store-sync-controller v0.0.4 and its users write: its 132-character syncHash, its sourcePath forms", func(ctx SpecContext) {
		ss := newSecretSync("default", "upstream-written")
		ss.Spec.SecretObject.Data = []ssv1alpha1.SecretObjectData{{TargetKey: "a", SourcePath: "db-password/0/1"}, {TargetKey: "b", SourcePath: "."}}
		Expect(k8s.Create(ctx, ss)).To(Succeed())
		DeferCleanup(func(ctx SpecContext) { Expect(client.IgnoreNotFound(k8s.Delete(ctx, ss))).To(Succeed()) })
		upstreamHash := "7631" + strings.Repeat("0a", 64)
		Expect(upstreamHash).To(HaveLen(132))
		// The controller writes the status too: retry on a conflict.
		Eventually(func(ctx SpecContext) error {
			if err := k8s.Get(ctx, client.ObjectKeyFromObject(ss), ss); err != nil {
				return err
			}
			ss.Status.SyncHash = upstreamHash
			return k8s.Status().Update(ctx, ss)
		}).WithContext(ctx).Should(Succeed())
	})

	It("rejects a SecretProviderClass with a unicode name", func(ctx SpecContext) {
		err := k8s.Create(ctx, &spcv1.SecretProviderClass{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "käv"},
			Spec: spcv1.SecretProviderClassSpec{Provider: "azure"}})
		Expect(apierrors.IsInvalid(err)).To(BeTrue(), "got %v", err)
		Expect(err.Error()).To(ContainSubstring("metadata.name"))
	})
})
