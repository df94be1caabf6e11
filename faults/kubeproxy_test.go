package faults_test

import (
	"context"
	"net/http/httptest"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/kvsync/kvsync/faults"
)

func TestTheKubeProxyInjectsAPIServerFaultsForAnOutOfProcessClient(t *testing.T) {
	if testing.Short() {
		t.Skip("starts envtest")
	}
	env := &envtest.Environment{}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("starting envtest (is KUBEBUILDER_ASSETS set? `make test` sets it): %v", err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	inj, err := faults.New(faults.Options{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	proxy, err := inj.KubeProxy(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(proxy)
	defer srv.Close()
	kube, err := kubernetes.NewForConfig(&rest.Config{Host: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := kube.CoreV1().Secrets("default").Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "app"}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("through the proxy: %v", err)
	}
	mustAdd(t, inj, faults.Fault{Name: "patch-fails", Kind: faults.ClusterError, Status: 503, Scope: faults.Scope{Verb: "patch", Resource: "secrets"}})
	_, err = kube.CoreV1().Secrets("default").Patch(ctx, "app", "application/merge-patch+json", []byte(`{"metadata":{"labels":{"a":"b"}}}`), metav1.PatchOptions{})
	if !apierrors.IsServiceUnavailable(err) {
		t.Errorf("a patch with the fault: %v, want 503", err)
	}
	if _, err := kube.CoreV1().Secrets("default").Get(ctx, "app", metav1.GetOptions{}); err != nil {
		t.Errorf("a get, out of the fault's scope: %v", err)
	}
	inj.ClearAll()
	if _, err := kube.CoreV1().Secrets("default").Patch(ctx, "app", "application/merge-patch+json", []byte(`{"metadata":{"labels":{"a":"b"}}}`), metav1.PatchOptions{}); err != nil {
		t.Errorf("after clearing: %v", err)
	}
}
