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
//  3. the fake's CA, kept in a Secret fakevault loads so that it survives a
//     restart of the pod; its certificate in a ConfigMap the provider trusts
//     through SSL_CERT_FILE;
//  4. the Helm chart, with the images loaded on the nodes and a 2 s poll.
//
// Usage:
//
//	go run ./hack/kind deploy --kubeconfig FILE [--image-tag dev] [--admin-url http://127.0.0.1:30080]
package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
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
	"github.com/kvsync/kvsync/fakevault"
	"github.com/kvsync/kvsync/fakevault/pki"
)

const (
	simNamespace = "kvsync-sim"
	// AdminNodePort is the node port of fakevault's admin API; the kind
	// cluster maps it to the same port on the host (hack/kind/cluster.yaml).
	AdminNodePort = 30080
	// caConfigMap holds the fake's CA bundle in the controller's namespace.
	caConfigMap = "kvsync-fakevault-ca"
	// caSecret holds the fake's CA certificate and key in simNamespace, so
	// that a restarted fakevault pod serves with the CA the provider trusts.
	caSecret = "fakevault-ca"
	// caAnnotation on the pod templates names the CA's digest: a new CA
	// rolls fakevault and the provider, which reads its trust at start.
	caAnnotation = "kvsync.io/fakevault-ca"
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

	ca, err := ensureCA(ctx, c)
	if err != nil {
		return err
	}
	ip, err := deployFakevault(ctx, c, *tag, ca)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "fakevault: Service %s/fakevault at %s\n", simNamespace, ip)
	if err := forwardAzureDNS(ctx, c, ip); err != nil {
		return err
	}
	fmt.Fprintln(out, "CoreDNS: vault.azure.net and login.microsoftonline.com forwarded to fakevault")
	if err := installController(ctx, c, *tag, ca); err != nil {
		return err
	}
	if err := waitServesCA(ctx, *adminURL, ca); err != nil {
		return err
	}
	fmt.Fprintf(out, "fakevault: admin API at %s, serving with CA %s\n", *adminURL, caDigest(ca))
	if err := waitAvailable(ctx, c, deploy.KustomizeRelease.Namespace, "kvsync-controller"); err != nil {
		return err
	}
	fmt.Fprintf(out, "kvsync: Deployment %s/kvsync-controller available\n", deploy.KustomizeRelease.Namespace)
	return nil
}

// ensureCA returns the fake's CA certificate (PEM) from the Secret
// simNamespace/fakevault-ca, first creating the namespace, and the Secret
// with a new CA when it is missing or does not hold a usable one. Keeping
// the CA in the cluster is what lets fakevault restart, or be redeployed,
// without the provider's trust going stale.
func ensureCA(ctx context.Context, c client.Client) ([]byte, error) {
	ns := &corev1.Namespace{TypeMeta: typeMeta("v1", "Namespace"), ObjectMeta: metav1.ObjectMeta{Name: simNamespace,
		Labels: map[string]string{"pod-security.kubernetes.io/enforce": "restricted"}}}
	if err := apply(ctx, c, ns); err != nil {
		return nil, err
	}
	s := &corev1.Secret{}
	err := c.Get(ctx, client.ObjectKey{Namespace: simNamespace, Name: caSecret}, s)
	switch {
	case err == nil:
		if _, err := pki.LoadCA(s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey]); err == nil {
			return s.Data[corev1.TLSCertKey], nil
		}
	case !apierrors.IsNotFound(err):
		return nil, fmt.Errorf("reading Secret %s/%s: %w", simNamespace, caSecret, err)
	}
	ca, err := fakevault.NewCA()
	if err != nil {
		return nil, err
	}
	key, err := ca.KeyPEM()
	if err != nil {
		return nil, err
	}
	s = &corev1.Secret{TypeMeta: typeMeta("v1", "Secret"), ObjectMeta: metav1.ObjectMeta{Namespace: simNamespace, Name: caSecret},
		Type: corev1.SecretTypeTLS, Data: map[string][]byte{corev1.TLSCertKey: ca.CertPEM(), corev1.TLSPrivateKeyKey: key}}
	if err := apply(ctx, c, s); err != nil {
		return nil, err
	}
	return ca.CertPEM(), nil
}

// caDigest names a CA certificate in annotations and messages.
func caDigest(ca []byte) string {
	sum := sha256.Sum256(ca)
	return hex.EncodeToString(sum[:6])
}

// deployFakevault applies fakevault's Services, then its Deployment, serving
// with the CA of the Secret ensureCA keeps and told to answer DNS queries
// with the HTTPS Service's address, which it returns.
func deployFakevault(ctx context.Context, c client.Client, tag string, ca []byte) (string, error) {
	labels := map[string]string{"app.kubernetes.io/name": "fakevault"}
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
	for _, o := range []client.Object{svc, admin} {
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
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: map[string]string{caAnnotation: caDigest(ca)}}, Spec: corev1.PodSpec{
				Volumes: []corev1.Volume{{Name: "ca", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: caSecret}}}},
				SecurityContext: &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](65532),
					SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
				Containers: []corev1.Container{{
					Name: "fakevault", Image: "fakevault:" + tag, ImagePullPolicy: corev1.PullNever,
					Args: []string{"--listen=:8443", "--admin-listen=:8080", "--proxy-listen=", "--dns-listen=:5353", "--dns-answer=" + ip,
						"--ca-cert=/etc/fakevault-ca/" + corev1.TLSCertKey, "--ca-key=/etc/fakevault-ca/" + corev1.TLSPrivateKeyKey},
					VolumeMounts: []corev1.VolumeMount{{Name: "ca", MountPath: "/etc/fakevault-ca", ReadOnly: true}},
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

// waitServesCA waits until fakevault's admin API, as the host reaches it,
// answers with the CA bundle ensureCA keeps: the pod is up with that CA and
// the suite can reach it.
func waitServesCA(ctx context.Context, adminURL string, ca []byte) error {
	var last error
	for {
		served, err := get(ctx, strings.TrimSuffix(adminURL, "/")+"/ca.pem")
		if err == nil && bytes.Equal(served, ca) {
			return nil
		}
		if err == nil {
			err = fmt.Errorf("it serves with CA %s, not %s from Secret %s/%s (an old pod?)", caDigest(served), caDigest(ca), simNamespace, caSecret)
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("fakevault's admin API at %s (the kind cluster's port %d) is not ready: %w", adminURL, AdminNodePort, last)
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
func chartValues(tag string, ca []byte) map[string]any {
	image := func(repo string) map[string]any {
		return map[string]any{"repository": repo, "tag": tag, "pullPolicy": "Never"}
	}
	return map[string]any{
		"rotationPollIntervalInSeconds": 2,
		"maxVaultReadsPerSecond":        1000,
		"podAnnotations":                map[string]any{caAnnotation: caDigest(ca)},
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
	objs, err := deploy.RenderChart(rel, chartValues(tag, ca))
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
