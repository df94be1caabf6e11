// Package deploy_test renders the kustomize configuration under deploy/ and
// applies every object to a real API server.
package deploy_test

import (
	"context"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// TestTheKustomizeConfigurationAppliesToAnAPIServer renders deploy/default
// with the kustomize library and applies every object with server-side
// apply: the API server must accept all of them.
func TestTheKustomizeConfigurationAppliesToAnAPIServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts envtest")
	}
	resources, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), "default")
	if err != nil {
		t.Fatalf("rendering deploy/default: %v", err)
	}
	env := &envtest.Environment{}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("starting envtest (is KUBEBUILDER_ASSETS set? `make test` sets it): %v", err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	kinds := map[string]int{}
	// CRDs and namespaces first: the objects in them need them.
	for _, first := range []bool{true, false} {
		for _, r := range resources.Resources() {
			raw, err := r.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			u := &unstructured.Unstructured{}
			if err := u.UnmarshalJSON(raw); err != nil {
				t.Fatal(err)
			}
			early := u.GetKind() == "CustomResourceDefinition" || u.GetKind() == "Namespace"
			if early != first {
				continue
			}
			if err := apply(ctx, c, u); err != nil {
				t.Errorf("applying %s %s: %v", u.GetKind(), u.GetName(), err)
			}
			kinds[u.GetKind()]++
		}
	}
	for kind, want := range map[string]int{"CustomResourceDefinition": 2, "Namespace": 1, "ServiceAccount": 1, "ClusterRole": 1,
		"ClusterRoleBinding": 1, "Role": 1, "RoleBinding": 1, "Deployment": 1,
		"ValidatingAdmissionPolicy": 3, "ValidatingAdmissionPolicyBinding": 3} {
		if kinds[kind] != want {
			t.Errorf("rendered %d %s, want %d", kinds[kind], kind, want)
		}
	}
}

func apply(ctx context.Context, c client.Client, u *unstructured.Unstructured) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := c.Patch(ctx, u.DeepCopy(), client.Apply, client.FieldOwner("kvsync-deploy-test"), client.ForceOwnership)
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(200 * time.Millisecond) // a CRD just created is not served yet
	}
}

// TestTheShippedPoliciesHoldTheControllerToItsJob applies deploy/default and
// acts as the controller's ServiceAccount: its normal writes are allowed,
// everything else the policies name is denied.
func TestTheShippedPoliciesHoldTheControllerToItsJob(t *testing.T) {
	if testing.Short() {
		t.Skip("starts envtest")
	}
	resources, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), "default")
	if err != nil {
		t.Fatal(err)
	}
	env := &envtest.Environment{}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("starting envtest: %v", err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	admin, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, first := range []bool{true, false} {
		for _, r := range resources.Resources() {
			raw, _ := r.MarshalJSON()
			u := &unstructured.Unstructured{}
			if err := u.UnmarshalJSON(raw); err != nil {
				t.Fatal(err)
			}
			if (u.GetKind() == "CustomResourceDefinition" || u.GetKind() == "Namespace") != first {
				continue
			}
			if err := apply(ctx, admin, u); err != nil {
				t.Fatalf("applying %s %s: %v", u.GetKind(), u.GetName(), err)
			}
		}
	}
	asController := rest.CopyConfig(cfg)
	asController.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:kvsync-system:kvsync-controller"}
	ctrl, err := client.New(asController, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "app"}}); err != nil {
		t.Fatal(err)
	}
	if err := admin.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "workload"}}); err != nil {
		t.Fatal(err)
	}
	owned := func(name, typ string) *corev1.Secret {
		return &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: name,
				Labels:          map[string]string{"secrets-store.sync.x-k8s.io": ""},
				Annotations:     map[string]string{"secrets-store.sync.x-k8s.io": ""},
				OwnerReferences: []metav1.OwnerReference{{APIVersion: "secret-sync.x-k8s.io/v1alpha1", Kind: "SecretSync", Name: name, UID: "0000-uid"}}},
			Type: corev1.SecretType(typ), Data: map[string][]byte{"k": []byte("v")},
		}
	}
	// Policies are loaded asynchronously: wait until one denies.
	deadline := time.Now().Add(20 * time.Second)
	for {
		probe := owned("probe", "Opaque")
		probe.OwnerReferences = nil
		err := ctrl.Create(ctx, probe, client.DryRunAll)
		if err != nil && strings.Contains(err.Error(), "ValidatingAdmissionPolicy") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the policies were not enforced: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}

	token := func(audiences []string, seconds int64) error {
		sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "workload"}}
		return ctrl.SubResource("token").Create(ctx, sa, &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{Audiences: audiences, ExpirationSeconds: &seconds}})
	}
	foreign := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "foreign"}, Data: map[string][]byte{"k": []byte("v")}}
	if err := admin.Create(ctx, foreign); err != nil {
		t.Fatal(err)
	}
	app := owned("app", "Opaque")
	if err := ctrl.Create(ctx, app); err != nil {
		t.Fatalf("creating an owned Opaque Secret as the controller: %v", err)
	}

	// The ClusterRole is minimal enough to matter: the controller may not
	// update (only apply) or delete Secrets.
	if err := ctrl.Delete(ctx, app); !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "cannot delete") {
		t.Errorf("deleting a Secret as the controller: %v, want an RBAC denial", err)
	}
	// The policies hold even where RBAC is wider: grant update and delete.
	wide := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "wider"}, Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"update", "delete"}}}}
	if err := admin.Create(ctx, wide); err != nil {
		t.Fatal(err)
	}
	if err := admin.Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "wider"},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "wider"},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: "kvsync-system", Name: "kvsync-controller"}}}); err != nil {
		t.Fatal(err)
	}
	// RBAC changes reach the authorizer through an informer: wait until an
	// update is no longer refused by RBAC.
	for deadline := time.Now().Add(10 * time.Second); ; {
		probe := owned("rbac-probe", "Opaque")
		err := ctrl.Update(ctx, probe)
		if apierrors.IsNotFound(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the wider role did not take effect: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	tests := []struct {
		name    string
		do      func() error
		allowed bool
		want    string
	}{
		{"updating the owned Secret is allowed", func() error {
			if err := ctrl.Get(ctx, client.ObjectKeyFromObject(app), app); err != nil {
				return err
			}
			app.Data["k"] = []byte("w")
			return ctrl.Update(ctx, app)
		}, true, ""},
		{"a service-account-token Secret is denied", func() error {
			s := owned("sat", "kubernetes.io/service-account-token")
			s.Annotations["kubernetes.io/service-account.name"] = "workload"
			return ctrl.Create(ctx, s)
		}, false, "allowed types"},
		{"a Secret without a SecretSync owner is denied", func() error {
			s := owned("orphan", "Opaque")
			s.OwnerReferences = nil
			return ctrl.Create(ctx, s)
		}, false, "exactly one SecretSync"},
		{"a Secret owned by a SecretSync of another name is denied", func() error {
			s := owned("mismatch", "Opaque")
			s.OwnerReferences[0].Name = "other"
			return ctrl.Create(ctx, s)
		}, false, "exactly one SecretSync"},
		{"updating a Secret without the managed label is denied", func() error {
			s := foreign.DeepCopy()
			s.Labels = map[string]string{"secrets-store.sync.x-k8s.io": ""}
			s.Annotations = map[string]string{"secrets-store.sync.x-k8s.io": ""}
			s.OwnerReferences = []metav1.OwnerReference{{APIVersion: "secret-sync.x-k8s.io/v1alpha1", Kind: "SecretSync", Name: "foreign", UID: "0000-uid"}}
			return ctrl.Update(ctx, s)
		}, false, "carry the label"},
		{"deleting a Secret is denied", func() error { return ctrl.Delete(ctx, app) }, false, "may not delete"},
		{"a token for one audience and 600 s is allowed", func() error { return token([]string{"api://AzureADTokenExchange"}, 600) }, true, ""},
		{"a token for two audiences is denied", func() error { return token([]string{"a", "b"}, 600) }, false, "one audience"},
		{"a token for an hour is denied", func() error { return token([]string{"api://AzureADTokenExchange"}, 3600) }, false, "600 seconds"},
		{"anyone else may still delete Secrets", func() error { return admin.Delete(ctx, foreign) }, true, ""},
	}
	for _, tt := range tests {
		err := tt.do()
		switch {
		case tt.allowed && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case !tt.allowed && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s: got %v, want a denial containing %q", tt.name, err, tt.want)
		}
	}

	// Anyone: the Secret type of a SecretSync cannot change.
	ss := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "secret-sync.x-k8s.io/v1alpha1", "kind": "SecretSync",
		"metadata": map[string]any{"namespace": "app", "name": "typed"},
		"spec": map[string]any{"serviceAccountName": "workload", "secretProviderClassName": "vault",
			"secretObject": map[string]any{"type": "Opaque", "data": []any{map[string]any{"sourcePath": "a", "targetKey": "a"}}}},
	}}
	if err := admin.Create(ctx, ss); err != nil {
		t.Fatal(err)
	}
	changeType := ss.DeepCopy()
	_ = unstructured.SetNestedField(changeType.Object, "kubernetes.io/basic-auth", "spec", "secretObject", "type")
	if err := admin.Update(ctx, changeType); err == nil || !strings.Contains(err.Error(), "spec.secretObject.type cannot change") {
		t.Errorf("changing a SecretSync's type: %v, want a policy denial", err)
	}
	force := ss.DeepCopy()
	_ = unstructured.SetNestedField(force.Object, "2026-11-27", "spec", "forceSynchronization")
	if err := admin.Update(ctx, force); err != nil {
		t.Errorf("changing forceSynchronization: %v", err)
	}
}
