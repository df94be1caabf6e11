package troubleshoot

import (
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

func TestLastChecksAreReadFromTheControllersGaugeByNamespaceAndName(t *testing.T) {
	metrics := `# HELP kvsync_sync_total Checks by reason.
# TYPE kvsync_sync_total counter
kvsync_sync_total{reason="CreateSucceeded"} 3
# TYPE kvsync_secretsync_last_check_timestamp_seconds gauge
kvsync_secretsync_last_check_timestamp_seconds{name="db",namespace="payments"} 1.7962032005e+09
kvsync_secretsync_last_check_timestamp_seconds{name="web",namespace="shop"} 1796203100
`
	got, err := LastChecks(metrics)
	if err != nil {
		t.Fatal(err)
	}
	want := map[types.NamespacedName]time.Time{
		{Namespace: "payments", Name: "db"}: time.Unix(1796203200, 5e8),
		{Namespace: "shop", Name: "web"}:    time.Unix(1796203100, 0),
	}
	if len(got) != len(want) {
		t.Fatalf("LastChecks = %v, want %v", got, want)
	}
	for k, w := range want {
		if g, ok := got[k]; !ok || g.Sub(w).Abs() > time.Millisecond {
			t.Errorf("LastChecks[%s] = %v, want %v", k, g, w)
		}
	}
}

func TestLastChecksOfAReplicaThatChecksNothingAreEmptyAndOfGarbageAnError(t *testing.T) {
	if got, err := LastChecks("# TYPE kvsync_sync_total counter\nkvsync_sync_total{reason=\"CreateSucceeded\"} 3\n"); err != nil || len(got) != 0 {
		t.Errorf("metrics without the gauge: %v, %v; want none and no error", got, err)
	}
	if _, err := LastChecks("<html>502 Bad Gateway</html>"); err == nil {
		t.Error("an HTML page was read as metrics")
	}
}
