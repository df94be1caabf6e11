// Package deploy_test renders the Helm chart and the kustomize trees and
// applies every object to a real API server.
package deploy_test

import (
	"context"
	"encoding/json"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	"github.com/kvsync/kvsync/deploy"
)

// startAPIServer starts envtest's API server for one test.
func startAPIServer(t *testing.T) (*rest.Config, client.Client) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts envtest")
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
	return cfg, c
}

func countKinds(objs []*unstructured.Unstructured) map[string]int {
	kinds := map[string]int{}
	for _, o := range objs {
		kinds[o.GetKind()]++
	}
	return kinds
}

// TestTheKustomizeConfigurationAppliesToAnAPIServer renders deploy/default
// with the kustomize library and applies every object with server-side
// apply: the API server must accept all of them.
func TestTheKustomizeConfigurationAppliesToAnAPIServer(t *testing.T) {
	objs, err := deploy.RenderKustomize("default")
	if err != nil {
		t.Fatal(err)
	}
	_, c := startAPIServer(t)
	if err := deploy.Apply(context.Background(), c, objs); err != nil {
		t.Error(err)
	}
	want := map[string]int{"CustomResourceDefinition": 2, "Namespace": 1, "ServiceAccount": 1, "ClusterRole": 1,
		"ClusterRoleBinding": 1, "Role": 1, "RoleBinding": 1, "Deployment": 1, "Service": 1,
		"ValidatingAdmissionPolicy": 3, "ValidatingAdmissionPolicyBinding": 3}
	if got := countKinds(objs); !reflect.DeepEqual(got, want) {
		t.Errorf("rendered %v, want %v", got, want)
	}
}

// serviceMonitorCRD is the smallest CRD that serves monitoring.coreos.com/v1
// ServiceMonitors, as the Prometheus Operator's does.
const serviceMonitorCRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: servicemonitors.monitoring.coreos.com
spec:
  group: monitoring.coreos.com
  names: {kind: ServiceMonitor, listKind: ServiceMonitorList, plural: servicemonitors, singular: servicemonitor}
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          x-kubernetes-preserve-unknown-fields: true
`

// TestTheHelmChartAppliesToAnAPIServer renders the chart with the Helm
// library, with the opt-in ServiceMonitor, and applies every object with
// server-side apply: the API server must accept all of them.
func TestTheHelmChartAppliesToAnAPIServer(t *testing.T) {
	rel := deploy.Release{Name: "kvsync", Namespace: "secrets-sync", CreateNamespace: true}
	objs, err := deploy.RenderChart(rel, map[string]any{"metrics": map[string]any{"serviceMonitor": map[string]any{"enabled": true}}})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"Namespace": 1, "CustomResourceDefinition": 2, "ServiceAccount": 1, "ClusterRole": 1,
		"ClusterRoleBinding": 1, "Role": 1, "RoleBinding": 1, "Deployment": 1, "Service": 1, "ServiceMonitor": 1,
		"ValidatingAdmissionPolicy": 3, "ValidatingAdmissionPolicyBinding": 3}
	if got := countKinds(objs); !reflect.DeepEqual(got, want) {
		t.Errorf("rendered %v, want %v", got, want)
	}
	for _, o := range objs {
		if ns := o.GetNamespace(); o.GetKind() != "Namespace" && ns != "" && ns != rel.Namespace {
			t.Errorf("%s %s is in namespace %q, want the release's %q", o.GetKind(), o.GetName(), ns, rel.Namespace)
		}
	}
	crd, err := deploy.Decode([]byte(serviceMonitorCRD))
	if err != nil {
		t.Fatal(err)
	}
	_, c := startAPIServer(t)
	if err := deploy.Apply(context.Background(), c, append(crd, objs...)); err != nil {
		t.Error(err)
	}
}

// TestTheChartValuesAreTheSecretStoreExtensionSettings renders the chart
// with the extension's settings and checks where each one lands.
func TestTheChartValuesAreTheSecretStoreExtensionSettings(t *testing.T) {
	rel := deploy.Release{Name: "kvsync", Namespace: "kvsync-system"}
	tests := []struct {
		name   string
		values string
		check  func(t *testing.T, args []string, objs []*unstructured.Unstructured)
	}{
		{"the defaults are the extension's defaults", ``, func(t *testing.T, args []string, objs []*unstructured.Unstructured) {
			for _, a := range []string{"--rotation-poll-interval-in-seconds=3600", "--jitter-seconds=0", "--enable-partial-secret-sync=true", "--leader-elect=true",
				"--allowed-secret-types=Opaque,kubernetes.io/basic-auth,bootstrap.kubernetes.io/token,kubernetes.io/dockerconfigjson,kubernetes.io/dockercfg,kubernetes.io/ssh-auth,kubernetes.io/tls"} {
				if !slices.Contains(args, a) {
					t.Errorf("manager args %v lack %s", args, a)
				}
			}
			if n := len(deploy.Select(objs, "ValidatingAdmissionPolicy")); n != 3 {
				t.Errorf("%d policies, want 3", n)
			}
			if n := len(deploy.Select(objs, "ServiceMonitor")); n != 0 {
				t.Errorf("%d ServiceMonitors by default, want none", n)
			}
		}},
		{"rotationPollIntervalInSeconds, jitterSeconds and enablePartialSecretSync reach the manager",
			"rotationPollIntervalInSeconds: 120\njitterSeconds: 15\nenablePartialSecretSync: false\n",
			func(t *testing.T, args []string, _ []*unstructured.Unstructured) {
				for _, a := range []string{"--rotation-poll-interval-in-seconds=120", "--jitter-seconds=15", "--enable-partial-secret-sync=false"} {
					if !slices.Contains(args, a) {
						t.Errorf("manager args %v lack %s", args, a)
					}
				}
			}},
		{"allowedSecretTypes reach the manager and the policy",
			"validatingAdmissionPolicies:\n  allowedSecretTypes: [Opaque, kubernetes.io/tls]\n",
			func(t *testing.T, args []string, objs []*unstructured.Unstructured) {
				if !slices.Contains(args, "--allowed-secret-types=Opaque,kubernetes.io/tls") {
					t.Errorf("manager args %v lack the allowed types", args)
				}
				raw, _ := json.Marshal(deploy.Select(objs, "ValidatingAdmissionPolicy")[0].Object)
				if !strings.Contains(string(raw), "object.type in ['Opaque', 'kubernetes.io/tls']") {
					t.Errorf("the Secrets policy does not hold the allowed types: %s", raw)
				}
			}},
		{"validatingAdmissionPolicies.applyPolicies false installs no policy",
			"validatingAdmissionPolicies:\n  applyPolicies: false\n",
			func(t *testing.T, _ []string, objs []*unstructured.Unstructured) {
				if n := len(deploy.Select(objs, "ValidatingAdmissionPolicy")) + len(deploy.Select(objs, "ValidatingAdmissionPolicyBinding")); n != 0 {
					t.Errorf("%d policies and bindings, want none", n)
				}
			}},
		{"the ServiceMonitor is opt-in", "metrics:\n  serviceMonitor:\n    enabled: true\n    labels: {release: prometheus}\n",
			func(t *testing.T, _ []string, objs []*unstructured.Unstructured) {
				sm := deploy.Select(objs, "ServiceMonitor")
				if len(sm) != 1 || sm[0].GetLabels()["release"] != "prometheus" {
					t.Errorf("ServiceMonitors %v, want one labelled release=prometheus", sm)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			values := map[string]any{}
			if err := yaml.Unmarshal([]byte(tt.values), &values); err != nil {
				t.Fatal(err)
			}
			objs, err := deploy.RenderChart(rel, values)
			if err != nil {
				t.Fatal(err)
			}
			d := deploy.Select(objs, "Deployment")[0]
			containers, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
			var args []string
			for _, a := range containers[0].(map[string]any)["args"].([]any) {
				args = append(args, a.(string))
			}
			tt.check(t, args, objs)
		})
	}
}

// TestBadChartValuesAreRefusedWithTheirName checks that the chart's schema
// refuses values the controller could not run with, naming the value.
func TestBadChartValuesAreRefusedWithTheirName(t *testing.T) {
	rel := deploy.Release{Name: "kvsync", Namespace: "kvsync-system"}
	tests := []struct {
		values string
		want   string
	}{
		{"rotationPollIntervalInSeconds: 0", "rotationPollIntervalInSeconds"},
		{"rotationPollIntervalInSeconds: an hour", "rotationPollIntervalInSeconds"},
		{"jitterSeconds: -1", "jitterSeconds"},
		{"enablePartialSecretSync: yes please", "enablePartialSecretSync"},
		{"validatingAdmissionPolicies: {allowedSecretTypes: []}", "allowedSecretTypes"},
		{"validatingAdmissionPolicies: {allowedSecretTypes: [kubernetes.io/service-account-token]}", "allowedSecretTypes"},
		{"validatingAdmissionPolicies: {allowedSecretTypes: [\"Opaque' || true\"]}", "allowedSecretTypes"},
		{"mountTimeout: soon", "mountTimeout"},
		// A misspelt key is refused, naming the valid ones, not ignored.
		{"rotationPollIntervalSeconds: 60", "rotationPollIntervalInSeconds"},
		{"rotationPollIntervalSeconds: 60", "rotationPollIntervalSeconds"},
		{"validatingAdmissionPolicies: {applyPolicy: false, applyPolicies: true, allowedSecretTypes: [Opaque]}", "applyPolicies"},
		{"metrics: {serviceMonitor: {enable: true}}", "enabled"},
		{"controller: {image: {repo: x}}", "repository"},
		{"controller: {logLevel: verbose}", "logLevel"},
	}
	for _, tt := range tests {
		values := map[string]any{}
		if err := yaml.Unmarshal([]byte(tt.values), &values); err != nil {
			t.Fatal(err)
		}
		_, err := deploy.RenderChart(rel, values)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("values %q: got %v, want an error naming %s", tt.values, err, tt.want)
		}
	}
}

// TestTheChartClusterRoleIsTheGeneratedOne keeps the chart's ClusterRole
// equal to the one controller-gen generates from the reconciler's markers.
func TestTheChartClusterRoleIsTheGeneratedOne(t *testing.T) {
	objs, err := deploy.RenderChart(deploy.KustomizeRelease, nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile("rbac/role.yaml")
	if err != nil {
		t.Fatal(err)
	}
	generated, err := deploy.Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	rules := func(o *unstructured.Unstructured) []rbacv1.PolicyRule {
		var r rbacv1.ClusterRole
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &r); err != nil {
			t.Fatal(err)
		}
		return r.Rules
	}
	chartRules, genRules := rules(deploy.Select(objs, "ClusterRole")[0]), rules(generated[0])
	if !reflect.DeepEqual(chartRules, genRules) {
		t.Errorf("the chart's ClusterRole rules\n%v\ndiffer from deploy/rbac/role.yaml's\n%v", chartRules, genRules)
	}
}

// TestTheShippedPoliciesHoldTheControllerToItsJob applies each install, the
// kustomize tree and the chart under another release name and namespace,
// and acts as the controller's ServiceAccount: its normal writes are
// allowed, everything else the policies name is denied.
func TestTheShippedPoliciesHoldTheControllerToItsJob(t *testing.T) {
	t.Run("kustomize", func(t *testing.T) {
		objs, err := deploy.RenderKustomize("default")
		if err != nil {
			t.Fatal(err)
		}
		testPolicies(t, objs, "kvsync-system", "kvsync-controller", "kvsync-sync-hash-key")
	})
	t.Run("helm", func(t *testing.T) {
		objs, err := deploy.RenderChart(deploy.Release{Name: "sync", Namespace: "secrets", CreateNamespace: true}, nil)
		if err != nil {
			t.Fatal(err)
		}
		testPolicies(t, objs, "secrets", "sync-kvsync-controller", "sync-kvsync-sync-hash-key")
	})
}

func testPolicies(t *testing.T, objs []*unstructured.Unstructured, ns, sa, hashKey string) {
	cfg, admin := startAPIServer(t)
	ctx := context.Background()
	if err := deploy.Apply(ctx, admin, objs); err != nil {
		t.Fatal(err)
	}
	asController := rest.CopyConfig(cfg)
	asController.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + ns + ":" + sa}
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
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: ns, Name: sa}}}); err != nil {
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
		{"creating its own hash key Secret is allowed", func() error {
			return ctrl.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: hashKey}, Type: corev1.SecretTypeOpaque,
				Data: map[string][]byte{"key": []byte("k")}}, client.DryRunAll)
		}, true, ""},
		{"a Secret of the hash key's name elsewhere is denied", func() error {
			return ctrl.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: hashKey}, Type: corev1.SecretTypeOpaque}, client.DryRunAll)
		}, false, "exactly one SecretSync"},
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
