package conformance

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/kvsync/kvsync/controller/csiprovider"
)

// ClusterOptions configure StartCluster.
type ClusterOptions struct {
	// Kubeconfig is the path of the cluster's kubeconfig.
	Kubeconfig string
	// FakevaultAdmin is the URL of the fakevault admin API the cluster's
	// provider reaches the fake through (DNS and CA bundle, or the proxy).
	FakevaultAdmin string
	// MountDeadline is the deployed controller's deadline for one Mount;
	// zero means kvsync's default (csiprovider.DefaultTimeout).
	MountDeadline time.Duration
	// PollInterval is the deployed controller's poll interval; scenarios
	// that wait for a poll need it short (2s).
	PollInterval time.Duration
	// MetricsURL is the controller's metrics endpoint, when the suite can
	// reach it (e.g. through kubectl port-forward).
	MetricsURL string
	// MetricsService names the controller's metrics Service as
	// "namespace/name:port"; the suite reads it through the API server's
	// service proxy with the kubeconfig's credentials, so nothing needs
	// forwarding. With neither it nor MetricsURL the metrics leak check is
	// skipped.
	MetricsService string
	// LogNamespaces are the namespaces whose pods' logs the suite reads
	// for the canary after the run (see Environment.PodLogs); none skips
	// the logs leak check.
	LogNamespaces []string
}

// StartCluster uses an existing cluster where the controller and the
// provider are deployed and reach a fakevault binary: the runner creates the
// scenarios' objects through the kubeconfig and changes the fake through its
// admin API. It makes the fake trust the cluster's ServiceAccount issuer.
func StartCluster(ctx context.Context, opts ClusterOptions) (*Environment, error) {
	ctrl.SetLogger(zap.New(zap.WriteTo(io.Discard)))
	cfg, err := clientcmdConfig(opts.Kubeconfig)
	if err != nil {
		return nil, err
	}
	c, _, err := newClient(cfg)
	if err != nil {
		return nil, err
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("client for %s: %w", opts.Kubeconfig, err)
	}
	w := newAdmin(opts.FakevaultAdmin)
	iss, err := w.trustCluster(ctx, cfg)
	if err != nil {
		return nil, err
	}
	e := &Environment{Client: c, Config: cfg, World: w, Issuer: iss, PollInterval: opts.PollInterval, Mode: "cluster",
		MountDeadline: opts.MountDeadline, RunSuffix: runSuffix()}
	if e.MountDeadline == 0 {
		e.MountDeadline = csiprovider.DefaultTimeout
	}
	switch {
	case opts.MetricsService != "":
		namespace, name, port, err := parseServicePort(opts.MetricsService)
		if err != nil {
			return nil, err
		}
		e.Metrics = func() (string, error) {
			raw, err := kube.CoreV1().Services(namespace).ProxyGet("http", name, port, "metrics", nil).DoRaw(context.Background())
			if err != nil {
				return "", fmt.Errorf("reading metrics of Service %s through the API server: %w", opts.MetricsService, err)
			}
			return string(raw), nil
		}
	case opts.MetricsURL != "":
		e.Metrics = func() (string, error) { return httpGet(opts.MetricsURL) }
	}
	e.setShell(opts.Kubeconfig)
	if len(opts.LogNamespaces) > 0 {
		e.LogNamespaces = opts.LogNamespaces
		e.PodLogs = func(ctx context.Context) (map[string]string, error) { return podLogs(ctx, kube, opts.LogNamespaces) }
	}
	return e, nil
}

// parseServicePort splits "namespace/name:port".
func parseServicePort(s string) (namespace, name, port string, err error) {
	namespace, rest, ok := strings.Cut(s, "/")
	if ok {
		name, port, ok = strings.Cut(rest, ":")
	}
	if !ok || namespace == "" || name == "" || port == "" {
		return "", "", "", fmt.Errorf("metrics Service %q is not namespace/name:port (e.g. kvsync-system/kvsync-metrics:metrics)", s)
	}
	return namespace, name, port, nil
}

// podLogs returns the logs of every container of every pod in namespaces,
// keyed "namespace/pod/container", and for a container that restarted its
// previous instance's too, keyed "namespace/pod/container (previous)".
func podLogs(ctx context.Context, kube kubernetes.Interface, namespaces []string) (map[string]string, error) {
	logs := map[string]string{}
	for _, ns := range namespaces {
		pods, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, fmt.Errorf("listing pods in %s: %w", ns, err)
		}
		for _, pod := range pods.Items {
			statuses := append(append([]corev1.ContainerStatus{}, pod.Status.InitContainerStatuses...), pod.Status.ContainerStatuses...)
			for _, st := range statuses {
				key := ns + "/" + pod.Name + "/" + st.Name
				read := func(previous bool) (string, error) {
					raw, err := kube.CoreV1().Pods(ns).GetLogs(pod.Name, &corev1.PodLogOptions{Container: st.Name, Previous: previous}).DoRaw(ctx)
					if err != nil {
						return "", fmt.Errorf("reading the logs of %s: %w", key, err)
					}
					return string(raw), nil
				}
				if st.State.Running != nil || st.State.Terminated != nil {
					if logs[key], err = read(false); err != nil {
						return nil, err
					}
				}
				if st.RestartCount > 0 {
					if logs[key+" (previous)"], err = read(true); err != nil {
						return nil, err
					}
				}
			}
		}
	}
	return logs, nil
}

// LeakedInLogs returns the keys of logs that hold needle, sorted.
func LeakedInLogs(logs map[string]string, needle string) []string {
	var leaked []string
	for key, text := range logs {
		if strings.Contains(text, needle) {
			leaked = append(leaked, key)
		}
	}
	sort.Strings(leaked)
	return leaked
}

// runSuffix is a run's own suffix for names on a cluster: a dash and five
// random hexadecimal digits.
func runSuffix() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return "-" + hex.EncodeToString(b)[:5]
}
