package conformance

import (
	"context"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func TestAMetricsServiceIsNamespaceNameAndPort(t *testing.T) {
	ns, name, port, err := parseServicePort("kvsync-system/kvsync-metrics:metrics")
	if err != nil || ns != "kvsync-system" || name != "kvsync-metrics" || port != "metrics" {
		t.Errorf("parseServicePort = %q %q %q %v", ns, name, port, err)
	}
	for _, bad := range []string{"", "kvsync-metrics:metrics", "kvsync-system/kvsync-metrics", "/x:1", "ns/:1", "ns/x:"} {
		if _, _, _, err := parseServicePort(bad); err == nil || !strings.Contains(err.Error(), "namespace/name:port") {
			t.Errorf("parseServicePort(%q) = %v, want an error showing the form", bad, err)
		}
	}
}

func TestPodLogsReadEveryContainerAndTheLastInstanceOfOneThatRestarted(t *testing.T) {
	running := corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
	kube := fake.NewClientset(
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "kvsync-system", Name: "kvsync-0"}, Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{
			{Name: "manager", State: running},
			{Name: "provider", State: running, RestartCount: 2},
		}}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "kvsync-sim", Name: "fakevault-0"}, Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{
			{Name: "fakevault", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}},
		}}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "elsewhere", Name: "other"}, Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{
			{Name: "other", State: running},
		}}},
	)
	logs, err := podLogs(context.Background(), kube, []string{"kvsync-system", "kvsync-sim"})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range logs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	want := []string{"kvsync-system/kvsync-0/manager", "kvsync-system/kvsync-0/provider", "kvsync-system/kvsync-0/provider (previous)"}
	if !slices.Equal(keys, want) {
		t.Errorf("logs read: %q, want %q (a container not started yet has none; other namespaces are not read)", keys, want)
	}
}

func TestLeakedInLogsNamesTheContainersThatHoldTheNeedle(t *testing.T) {
	got := LeakedInLogs(map[string]string{"a/p/c": "ok", "b/p/c": "x kvsync-canary y", "a/p/d (previous)": "kvsync-canary"}, "kvsync-canary")
	if want := []string{"a/p/d (previous)", "b/p/c"}; !slices.Equal(got, want) {
		t.Errorf("LeakedInLogs = %q, want %q", got, want)
	}
}
