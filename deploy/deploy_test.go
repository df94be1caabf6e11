// Package deploy_test renders the kustomize configuration under deploy/ and
// applies every object to a real API server.
package deploy_test

import (
	"context"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
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
		"ClusterRoleBinding": 1, "Role": 1, "RoleBinding": 1, "Deployment": 1} {
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
