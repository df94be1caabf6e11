package faults_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/secrets-store-csi-driver/provider/fake"
	"sigs.k8s.io/secrets-store-csi-driver/provider/v1alpha1"

	"github.com/kvsync/kvsync/controller/csiprovider"
	"github.com/kvsync/kvsync/faults"
)

func TestProviderFaultsReachTheCallerOverTheSocket(t *testing.T) {
	inj, err := faults.New(faults.Options{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "kvflt-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	base, _ := fake.NewMocKCSIProviderServer("")
	base.SetFiles([]*v1alpha1.File{{Path: "a", Contents: []byte(canary)}})
	lis, err := net.Listen("unix", filepath.Join(dir, "p.sock"))
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	v1alpha1.RegisterCSIDriverProviderServer(gs, inj.Provider(base))
	go gs.Serve(lis)
	t.Cleanup(gs.Stop)
	client := csiprovider.New(csiprovider.Options{SocketDir: dir, Timeout: 500 * time.Millisecond})
	t.Cleanup(func() { client.Close() })
	mount := func(ns string) (*csiprovider.MountResponse, error) {
		return client.Mount(context.Background(), "p", csiprovider.MountRequest{Attributes: map[string]string{
			"csi.storage.k8s.io/pod.namespace": ns, "secretProviderClass": "spc"}})
	}

	tests := []struct {
		fault faults.Fault
		check func(*csiprovider.MountResponse, error) bool
	}{
		{faults.Fault{Kind: faults.ProviderSlow, Latency: faults.Duration(5 * time.Second)},
			func(_ *csiprovider.MountResponse, err error) bool { return status.Code(err) == codes.DeadlineExceeded }},
		{faults.Fault{Kind: faults.ProviderCrash},
			func(_ *csiprovider.MountResponse, err error) bool { return status.Code(err) == codes.Unavailable }},
		{faults.Fault{Kind: faults.ProviderOversized},
			func(_ *csiprovider.MountResponse, err error) bool {
				return errors.Is(err, csiprovider.ErrResponseTooLarge)
			}},
		{faults.Fault{Kind: faults.ProviderMalformed},
			func(r *csiprovider.MountResponse, err error) bool {
				return err == nil && len(r.Files) == 2 && r.Files[0].Path == r.Files[1].Path
			}},
	}
	for _, tt := range tests {
		t.Run(string(tt.fault.Kind), func(t *testing.T) {
			tt.fault.Name = "under-test"
			tt.fault.Scope = faults.Scope{Namespace: "broken", SPC: "spc"}
			if err := inj.Add(tt.fault); err != nil {
				t.Fatal(err)
			}
			if resp, err := mount("healthy"); err != nil || len(resp.Files) != 1 {
				t.Errorf("another namespace: %v", err)
			}
			if resp, err := mount("broken"); !tt.check(resp, err) {
				t.Errorf("with the fault: %v", err)
			}
			inj.Clear("under-test")
			if resp, err := mount("broken"); err != nil || len(resp.Files) != 1 {
				t.Errorf("after clearing: %v", err)
			}
		})
	}
}

func TestClusterFaultsReachClientGoOnTheScopedVerbAndResource(t *testing.T) {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/secrets/app"):
			_ = json.NewEncoder(w).Encode(&corev1.Secret{TypeMeta: metav1.TypeMeta{Kind: "Secret", APIVersion: "v1"}, ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "ns"}})
		case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/serviceaccounts/workload/token"):
			w.WriteHeader(http.StatusCreated)
			_ = json.NewEncoder(w).Encode(&authenticationv1.TokenRequest{TypeMeta: metav1.TypeMeta{Kind: "TokenRequest", APIVersion: "authentication.k8s.io/v1"},
				Status: authenticationv1.TokenRequestStatus{Token: "t"}})
		default:
			http.NotFound(w, r)
		}
	}))
	defer api.Close()
	inj, err := faults.New(faults.Options{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	kube, err := kubernetes.NewForConfig(&rest.Config{Host: api.URL, WrapTransport: inj.KubeTransport})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	getSecret := func() error {
		_, err := kube.CoreV1().Secrets("ns").Get(ctx, "app", metav1.GetOptions{})
		return err
	}
	createToken := func() error {
		_, err := kube.CoreV1().ServiceAccounts("ns").CreateToken(ctx, "workload", &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
		return err
	}
	if getSecret() != nil || createToken() != nil {
		t.Fatal("the API stub does not answer")
	}

	mustAdd(t, inj, faults.Fault{Name: "etcd", Kind: faults.ClusterError, Status: 500, Scope: faults.Scope{Verb: "get", Resource: "secrets", Namespace: "ns"}})
	if err := getSecret(); !apierrors.IsInternalError(err) {
		t.Errorf("get secrets: %v, want an internal error", err)
	}
	if err := createToken(); err != nil {
		t.Errorf("a token request was failed by a fault scoped to getting secrets: %v", err)
	}
	inj.ClearAll()
	mustAdd(t, inj, faults.Fault{Name: "no-tokens", Kind: faults.ClusterError, Status: 403, Message: "serviceaccounts \"workload\" is forbidden", Scope: faults.Scope{Resource: "serviceaccounts/token", Verb: "create"}})
	if err := createToken(); !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "forbidden") {
		t.Errorf("create token: %v, want forbidden", err)
	}
	inj.ClearAll()
	mustAdd(t, inj, faults.Fault{Name: "slow", Kind: faults.ClusterLatency, Latency: faults.Duration(5 * time.Second), Scope: faults.Scope{Resource: "secrets"}})
	slowCtx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if _, err := kube.CoreV1().Secrets("ns").Get(slowCtx, "app", metav1.GetOptions{}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a slow API server: %v", err)
	}
	inj.ClearAll()
	if getSecret() != nil || createToken() != nil {
		t.Error("clearing did not restore the API")
	}
}
