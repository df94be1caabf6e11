// Command kind deploys kvsync and an in-cluster fakevault on a kind cluster
// (or any cluster whose nodes have the images), so that the conformance
// suite runs against it in existing-cluster mode. It is what `make
// kind-deploy` runs after `kind create cluster` and `kind load`:
//
//  1. fakevault in namespace kvsync-sim: a Service for HTTPS (443) and DNS
//     (53), and a NodePort Service for its admin API;
//  2. CoreDNS forwards vault.azure.net and login.microsoftonline.com to
//     fakevault's DNS server, which answers with the fakevault Service's
//     address, so the provider reaches the fake exactly as it reaches Azure;
//  3. the fake's CA bundle, read from its admin API, in a ConfigMap the
//     provider trusts through SSL_CERT_FILE;
//  4. the Helm chart, with the images loaded on the nodes and a 2 s poll.
//
// Usage:
//
//	go run ./hack/kind deploy --kubeconfig FILE [--image-tag dev] [--admin-url http://127.0.0.1:30080]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kvsync/kvsync/deploy"
)

const (
	simNamespace = "kvsync-sim"
	// AdminNodePort is the node port of fakevault's admin API; the kind
	// cluster maps it to the same port on the host (hack/kind/cluster.yaml).
	AdminNodePort = 30080
	// caConfigMap holds the fake's CA bundle in the controller's namespace.
	caConfigMap = "kvsync-fakevault-ca"
	// corefileBegin and corefileEnd delimit kvsync's block in the Corefile.
	corefileBegin = "# kvsync-sim begin: Azure's names are answered by fakevault"
	corefileEnd   = "# kvsync-sim end"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "kind: %v\n", err)
		os.Exit(2)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 || args[0] != "deploy" {
		return errors.New("usage: kind deploy --kubeconfig FILE [--image-tag dev] [--admin-url URL]")
	}
	fs := flag.NewFlagSet("deploy", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	kubeconfig := fs.String("kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig of the cluster")
	tag := fs.String("image-tag", "dev", "tag of the kvsync-controller, kvsync-provider and fakevault images on the nodes")
	adminURL := fs.String("admin-url", fmt.Sprintf("http://127.0.0.1:%d", AdminNodePort), "fakevault's admin API as the host reaches it")
	timeout := fs.Duration("timeout", 3*time.Minute, "how long to wait for fakevault and the controller")
	if err := fs.Parse(args[1:]); err != nil {
		return fmt.Errorf("deploy: %w", err)
	}
	if *kubeconfig == "" {
		return errors.New("deploy: --kubeconfig (or $KUBECONFIG) is required")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		return fmt.Errorf("deploy: loading %s: %w", *kubeconfig, err)
	}
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		return fmt.Errorf("deploy: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	ip, err := deployFakevault(ctx, c, *tag)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "fakevault: Service %s/fakevault at %s\n", simNamespace, ip)
	if err := forwardAzureDNS(ctx, c, ip); err != nil {
		return err
	}
	fmt.Fprintln(out, "CoreDNS: vault.azure.net and login.microsoftonline.com forwarded to fakevault")
	ca, err := waitForCA(ctx, *adminURL)
	if err != nil {
		return err
	}
	if err := installController(ctx, c, *tag, ca); err != nil {
		return err
	}
	if err := waitAvailable(ctx, c, deploy.KustomizeRelease.Namespace, "kvsync-controller"); err != nil {
		return err
	}
	fmt.Fprintf(out, "kvsync: Deployment %s/kvsync-controller available\n", deploy.KustomizeRelease.Namespace)
	return nil
}

// deployFakevault applies fakevault's Services, then its Deployment told to
// answer DNS queries with the HTTPS Service's address, which it returns.
func deployFakevault(ctx context.Context, c client.Client, tag string) (string, error) {
	labels := map[string]string{"app.kubernetes.io/name": "fakevault"}
	ns := &corev1.Namespace{TypeMeta: typeMeta("v1", "Namespace"), ObjectMeta: metav1.ObjectMeta{Name: simNamespace,
		Labels: map[string]string{"pod-security.kubernetes.io/enforce": "restricted"}}}
	svc := &corev1.Service{TypeMeta: typeMeta("v1", "Service"), ObjectMeta: metav1.ObjectMeta{Namespace: simNamespace, Name: "fakevault"},
		Spec: corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{
			{Name: "https", Port: 443, TargetPort: intstr.FromString("https")},
			{Name: "dns-udp", Port: 53, Protocol: corev1.ProtocolUDP, TargetPort: intstr.FromString("dns-udp")},
			{Name: "dns-tcp", Port: 53, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromString("dns-tcp")},
		}}}
	admin := &corev1.Service{TypeMeta: typeMeta("v1", "Service"), ObjectMeta: metav1.ObjectMeta{Namespace: simNamespace, Name: "fakevault-admin"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, Selector: labels, Ports: []corev1.ServicePort{
			{Name: "admin", Port: 8080, TargetPort: intstr.FromString("admin"), NodePort: AdminNodePort},
		}}}
	for _, o := range []client.Object{ns, svc, admin} {
		if err := apply(ctx, c, o); err != nil {
			return "", err
		}
	}
	if err := c.Get(ctx, client.ObjectKeyFromObject(svc), svc); err != nil {
		return "", fmt.Errorf("reading Service %s/fakevault: %w", simNamespace, err)
	}
	ip := svc.Spec.ClusterIP
	if ip == "" || ip == corev1.ClusterIPNone {
		return "", fmt.Errorf("Service %s/fakevault has no cluster IP", simNamespace)
	}
	d := &appsv1.Deployment{TypeMeta: typeMeta("apps/v1", "Deployment"), ObjectMeta: metav1.ObjectMeta{Namespace: simNamespace, Name: "fakevault"},
		Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](1), Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{
				SecurityContext: &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](65532),
					SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
				Containers: []corev1.Container{{
					Name: "fakevault", Image: "fakevault:" + tag, ImagePullPolicy: corev1.PullNever,
					Args: []string{"--listen=:8443", "--admin-listen=:8080", "--proxy-listen=", "--dns-listen=:5353", "--dns-answer=" + ip},
					Ports: []corev1.ContainerPort{{Name: "https", ContainerPort: 8443}, {Name: "admin", ContainerPort: 8080},
						{Name: "dns-udp", ContainerPort: 5353, Protocol: corev1.ProtocolUDP}, {Name: "dns-tcp", ContainerPort: 5353}},
					ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromString("admin")}}},
					SecurityContext: &corev1.SecurityContext{AllowPrivilegeEscalation: ptr.To(false), ReadOnlyRootFilesystem: ptr.To(true),
						Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}},
				}},
			}}}}
	return ip, apply(ctx, c, d)
}

// forwardAzureDNS adds (or replaces) kvsync's server block in CoreDNS's
// Corefile and restarts CoreDNS.
func forwardAzureDNS(ctx context.Context, c client.Client, ip string) error {
	cm := &corev1.ConfigMap{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: "kube-system", Name: "coredns"}, cm); err != nil {
		return fmt.Errorf("reading CoreDNS's ConfigMap kube-system/coredns: %w", err)
	}
	corefile, ok := cm.Data["Corefile"]
	if !ok {
		return errors.New("ConfigMap kube-system/coredns has no Corefile")
	}
	updated := withAzureBlock(corefile, ip)
	if updated != corefile {
		cm.Data["Corefile"] = updated
		if err := c.Update(ctx, cm); err != nil {
			return fmt.Errorf("updating CoreDNS's Corefile: %w", err)
		}
	}
	d := &appsv1.Deployment{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: "kube-system", Name: "coredns"}, d); err != nil {
		return fmt.Errorf("reading Deployment kube-system/coredns: %w", err)
	}
	patch := client.MergeFrom(d.DeepCopy())
	if d.Spec.Template.Annotations == nil {
		d.Spec.Template.Annotations = map[string]string{}
	}
	d.Spec.Template.Annotations["kvsync.io/corefile"] = ip
	if err := c.Patch(ctx, d, patch); err != nil {
		return fmt.Errorf("restarting CoreDNS: %w", err)
	}
	return nil
}

// withAzureBlock returns corefile with kvsync's block forwarding Azure's
// names to ip, replacing an earlier one.
func withAzureBlock(corefile, ip string) string {
	if i := strings.Index(corefile, corefileBegin); i >= 0 {
		if j := strings.Index(corefile[i:], corefileEnd); j >= 0 {
			corefile = corefile[:i] + corefile[i+j+len(corefileEnd):]
		}
	}
	corefile = strings.TrimRight(corefile, "\n") + "\n"
	return corefile + corefileBegin + "\n" +
		"vault.azure.net:53 login.microsoftonline.com:53 {\n" +
		"    errors\n" +
		"    forward . " + ip + ":53\n" +
		"}\n" + corefileEnd + "\n"
}

// waitForCA waits until fakevault's admin API answers and returns its CA
// bundle.
func waitForCA(ctx context.Context, adminURL string) ([]byte, error) {
	var last error
	for {
		ca, err := get(ctx, strings.TrimSuffix(adminURL, "/")+"/ca.pem")
		if err == nil {
			return ca, nil
		}
		last = err
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("fakevault's admin API at %s did not answer (is the kind cluster's port %d mapped?): %w", adminURL, AdminNodePort, last)
		case <-time.After(time.Second):
		}
	}
}

func get(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return body, nil
}

// chartValues are the chart's values on the simulated cluster: the loaded
// images, a 2 s poll for the scenarios, and the fake's CA trusted by the
// provider.
func chartValues(tag string) map[string]any {
	image := func(repo string) map[string]any {
		return map[string]any{"repository": repo, "tag": tag, "pullPolicy": "Never"}
	}
	return map[string]any{
		"rotationPollIntervalInSeconds": 2,
		"maxVaultReadsPerSecond":        1000,
		"controller":                    map[string]any{"image": image("kvsync-controller")},
		"provider": map[string]any{
			"image":             image("kvsync-provider"),
			"env":               []any{map[string]any{"name": "SSL_CERT_FILE", "value": "/etc/kvsync-ca/ca.pem"}},
			"extraVolumes":      []any{map[string]any{"name": "fakevault-ca", "configMap": map[string]any{"name": caConfigMap}}},
			"extraVolumeMounts": []any{map[string]any{"name": "fakevault-ca", "mountPath": "/etc/kvsync-ca", "readOnly": true}},
		},
	}
}

// installController puts the CA bundle in a ConfigMap and applies the
// chart.
func installController(ctx context.Context, c client.Client, tag string, ca []byte) error {
	rel := deploy.KustomizeRelease
	rel.CreateNamespace = true
	objs, err := deploy.RenderChart(rel, chartValues(tag))
	if err != nil {
		return err
	}
	cm := &corev1.ConfigMap{TypeMeta: typeMeta("v1", "ConfigMap"), ObjectMeta: metav1.ObjectMeta{Namespace: rel.Namespace, Name: caConfigMap},
		Data: map[string]string{"ca.pem": string(ca)}}
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(cm)
	if err != nil {
		return err
	}
	return deploy.Apply(ctx, c, append([]*unstructured.Unstructured{{Object: u}}, objs...))
}

// waitAvailable waits until a Deployment has an available replica.
func waitAvailable(ctx context.Context, c client.Client, namespace, name string) error {
	for {
		d := &appsv1.Deployment{}
		err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, d)
		if err == nil && d.Status.AvailableReplicas > 0 {
			return nil
		}
		if err != nil && !apierrors.IsNotFound(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("Deployment %s/%s is not available: %w", namespace, name, ctx.Err())
		case <-time.After(2 * time.Second):
		}
	}
}

func typeMeta(apiVersion, kind string) metav1.TypeMeta {
	return metav1.TypeMeta{APIVersion: apiVersion, Kind: kind}
}

// apply applies one typed object with server-side apply.
func apply(ctx context.Context, c client.Client, o client.Object) error {
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(o)
	if err != nil {
		return err
	}
	return deploy.Apply(ctx, c, []*unstructured.Unstructured{{Object: u}})
}
