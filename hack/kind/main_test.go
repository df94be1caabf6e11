package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	"github.com/kvsync/kvsync/conformance"
	"github.com/kvsync/kvsync/fakevault/pki"
)

// kindCorefile is CoreDNS's Corefile on a kind cluster.
const kindCorefile = `.:53 {
    errors
    health {
       lameduck 5s
    }
    ready
    kubernetes cluster.local in-addr.arpa ip6.arpa {
       pods insecure
       fallthrough in-addr.arpa ip6.arpa
       ttl 30
    }
    prometheus :9153
    forward . /etc/resolv.conf {
       max_concurrent 1000
    }
    cache 30
    loop
    reload
    loadbalance
}
`

func TestTheAzureBlockIsAddedOnceAndReplaced(t *testing.T) {
	once := withAzureBlock(kindCorefile, "10.96.12.34")
	if !strings.HasPrefix(once, kindCorefile) || !strings.Contains(once, "vault.azure.net:53 login.microsoftonline.com:53 {") ||
		!strings.Contains(once, "forward . 10.96.12.34:53") {
		t.Fatalf("Corefile:\n%s", once)
	}
	if again := withAzureBlock(once, "10.96.12.34"); again != once {
		t.Errorf("a second deploy changed the Corefile:\n%s", again)
	}
	moved := withAzureBlock(once, "10.96.99.1")
	if strings.Count(moved, corefileBegin) != 1 || strings.Contains(moved, "10.96.12.34") || !strings.Contains(moved, "10.96.99.1:53") {
		t.Errorf("a new address did not replace the old block:\n%s", moved)
	}
}

// TestDeployPreparesAClusterAsKindHasIt runs the deploy command against an
// API server seeded with kind's CoreDNS objects: every step up to the wait
// for running pods, which envtest has none of.
func TestDeployPreparesAClusterAsKindHasIt(t *testing.T) {
	if testing.Short() {
		t.Skip("starts envtest")
	}
	env := &envtest.Environment{}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("starting envtest: %v", err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	labels := map[string]string{"k8s-app": "kube-dns"}
	for _, o := range []client.Object{
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "coredns"}, Data: map[string]string{"Corefile": kindCorefile}},
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "coredns"}, Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](2), Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "coredns", Image: "coredns"}}}}}},
	} {
		if err := c.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	// The admin API of a fakevault that loaded the CA Secret.
	fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := &corev1.Secret{}
		if r.URL.Path != "/ca.pem" || c.Get(r.Context(), client.ObjectKey{Namespace: simNamespace, Name: caSecret}, s) != nil {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(s.Data[corev1.TLSCertKey])
	}))
	defer fake.Close()
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := conformance.WriteAdminKubeconfig(env, "admin", kubeconfig); err != nil {
		t.Fatal(err)
	}

	var caPEM []byte
	for i := range 2 { // deploying twice is safe and keeps the CA
		var out bytes.Buffer
		err = run(ctx, []string{"deploy", "--kubeconfig", kubeconfig, "--admin-url", fake.URL, "--image-tag", "e2e", "--timeout", "4s"}, &out)
		if err == nil || !strings.Contains(err.Error(), "kvsync-controller is not available") {
			t.Fatalf("deploy on a cluster without nodes: %v, want it to stop waiting for the controller\n%s", err, out.String())
		}
		s := &corev1.Secret{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: simNamespace, Name: caSecret}, s); err != nil {
			t.Fatal(err)
		}
		if _, err := pki.LoadCA(s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey]); err != nil {
			t.Fatalf("the CA Secret does not hold a CA: %v", err)
		}
		if i == 1 && !bytes.Equal(s.Data[corev1.TLSCertKey], caPEM) {
			t.Error("a second deploy made a new CA; the provider's trust would go stale")
		}
		caPEM = s.Data[corev1.TLSCertKey]
		if i == 1 { // a Secret that holds no usable CA is replaced
			s.Data[corev1.TLSPrivateKeyKey] = []byte("not a key")
			if err := c.Update(ctx, s); err != nil {
				t.Fatal(err)
			}
			_ = run(ctx, []string{"deploy", "--kubeconfig", kubeconfig, "--admin-url", fake.URL, "--image-tag", "e2e", "--timeout", "4s"}, &out)
			if err := c.Get(ctx, client.ObjectKeyFromObject(s), s); err != nil {
				t.Fatal(err)
			}
			if _, err := pki.LoadCA(s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey]); err != nil {
				t.Fatalf("a broken CA Secret was not replaced: %v", err)
			}
			caPEM = s.Data[corev1.TLSCertKey]
		}
	}

	svc := &corev1.Service{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: simNamespace, Name: "fakevault"}, svc); err != nil {
		t.Fatal(err)
	}
	fv := &appsv1.Deployment{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: simNamespace, Name: "fakevault"}, fv); err != nil {
		t.Fatal(err)
	}
	args := strings.Join(fv.Spec.Template.Spec.Containers[0].Args, " ")
	if !strings.Contains(args, "--dns-answer="+svc.Spec.ClusterIP) {
		t.Errorf("fakevault answers DNS with %q, want its Service's address %s", args, svc.Spec.ClusterIP)
	}
	if !strings.Contains(args, "--ca-cert=/etc/fakevault-ca/tls.crt") || !strings.Contains(args, "--ca-key=/etc/fakevault-ca/tls.key") ||
		fv.Spec.Template.Spec.Volumes[0].Secret.SecretName != caSecret {
		t.Errorf("fakevault does not load the CA Secret: args %q, volumes %v", args, fv.Spec.Template.Spec.Volumes)
	}
	cm := &corev1.ConfigMap{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: "kube-system", Name: "coredns"}, cm); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(cm.Data["Corefile"], "forward . "+svc.Spec.ClusterIP+":53"); n != 1 {
		t.Errorf("the Corefile forwards Azure's names to fakevault %d times, want once:\n%s", n, cm.Data["Corefile"])
	}
	dns := &appsv1.Deployment{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: "kube-system", Name: "coredns"}, dns); err != nil {
		t.Fatal(err)
	}
	if dns.Spec.Template.Annotations["kvsync.io/corefile"] != svc.Spec.ClusterIP {
		t.Errorf("CoreDNS was not restarted: annotations %v", dns.Spec.Template.Annotations)
	}
	ca := &corev1.ConfigMap{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: "kvsync-system", Name: caConfigMap}, ca); err != nil || ca.Data["ca.pem"] != string(caPEM) {
		t.Errorf("the CA ConfigMap does not hold the Secret's certificate: %v %v", err, ca.Data)
	}
	ctrl := &appsv1.Deployment{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: "kvsync-system", Name: "kvsync-controller"}, ctrl); err != nil {
		t.Fatal(err)
	}
	for _, tmpl := range []corev1.PodTemplateSpec{fv.Spec.Template, ctrl.Spec.Template} {
		if got := tmpl.Annotations[caAnnotation]; got != caDigest(caPEM) {
			t.Errorf("pod template annotation %s = %q, want %q: a new CA must roll the pods", caAnnotation, got, caDigest(caPEM))
		}
	}
	pod := ctrl.Spec.Template.Spec
	for _, ct := range pod.Containers {
		if !strings.HasSuffix(ct.Image, ":e2e") || ct.ImagePullPolicy != corev1.PullNever {
			t.Errorf("container %s: image %s pull %s, want the loaded :e2e image, never pulled", ct.Name, ct.Image, ct.ImagePullPolicy)
		}
	}
	provider := pod.Containers[1]
	trusts := slices.ContainsFunc(provider.Env, func(e corev1.EnvVar) bool { return e.Name == "SSL_CERT_FILE" && e.Value == "/etc/kvsync-ca/ca.pem" })
	if !trusts || len(provider.VolumeMounts) != 2 {
		t.Errorf("the provider does not trust the fake's CA: env %v mounts %v", provider.Env, provider.VolumeMounts)
	}
	if !strings.Contains(strings.Join(pod.Containers[0].Args, " "), "--rotation-poll-interval-in-seconds=2") {
		t.Errorf("manager args %v, want a 2 s poll", pod.Containers[0].Args)
	}
}

func TestDeployRefusesBadInput(t *testing.T) {
	t.Setenv("KUBECONFIG", "")
	for _, tt := range []struct {
		args []string
		want string
	}{
		{nil, "usage"},
		{[]string{"up"}, "usage"},
		{[]string{"deploy"}, "--kubeconfig"},
		{[]string{"deploy", "--kubeconfig", "/does/not/exist"}, "loading /does/not/exist"},
		{[]string{"deploy", "--timeout", "soon"}, "invalid value"},
	} {
		err := run(context.Background(), tt.args, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: got %v, want an error containing %q", tt.args, err, tt.want)
		}
	}
}

func TestTheKindClusterMapsTheAdminPortAndFitsTheNodeImageBuiltHere(t *testing.T) {
	raw, err := os.ReadFile("cluster.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cluster struct {
		Kind       string `json:"kind"`
		APIVersion string `json:"apiVersion"`
		Nodes      []struct {
			Role             string `json:"role"`
			ExtraPortMapping []struct {
				ContainerPort int    `json:"containerPort"`
				HostPort      int    `json:"hostPort"`
				ListenAddress string `json:"listenAddress"`
				Protocol      string `json:"protocol"`
			} `json:"extraPortMappings"`
		} `json:"nodes"`
		Networking struct {
			DisableDefaultCNI bool `json:"disableDefaultCNI"`
		} `json:"networking"`
		KubeadmConfigPatches    []string `json:"kubeadmConfigPatches"`
		ContainerdConfigPatches []string `json:"containerdConfigPatches"`
	}
	if err := yaml.UnmarshalStrict(raw, &cluster); err != nil {
		t.Fatalf("cluster.yaml: %v", err)
	}
	if cluster.Kind != "Cluster" || cluster.APIVersion != "kind.x-k8s.io/v1alpha4" || len(cluster.Nodes) != 1 || len(cluster.Nodes[0].ExtraPortMapping) != 1 {
		t.Fatalf("cluster.yaml: %+v", cluster)
	}
	m := cluster.Nodes[0].ExtraPortMapping[0]
	if m.ContainerPort != AdminNodePort || m.HostPort != AdminNodePort || m.ListenAddress != "127.0.0.1" {
		t.Errorf("port mapping %+v, want the admin node port %d on the host's loopback", m, AdminNodePort)
	}
	if !cluster.Networking.DisableDefaultCNI {
		t.Error("kind's default CNI is on; the node image carries its own CNI configuration and no kindnetd")
	}
	if p := strings.Join(cluster.KubeadmConfigPatches, "\n"); !strings.Contains(p, "kind: KubeletConfiguration") || !strings.Contains(p, "failCgroupV1: false") {
		t.Errorf("no KubeletConfiguration patch with failCgroupV1: false (a cgroup v1 host): %q", p)
	}
	if p := strings.Join(cluster.ContainerdConfigPatches, "\n"); !strings.Contains(p, "restrict_oom_score_adj = true") {
		t.Errorf("no containerd patch with restrict_oom_score_adj = true (a node without CAP_SYS_RESOURCE): %q", p)
	}
}
