package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestAFleetRestartThrottlesWithoutJitterAndNotWithThePlannersJitter runs
// a small fleet through two waves per jitter: without jitter every wave
// is throttled, as the planner predicts (certainty), each throttled read
// is retried about once after Retry-After rather than in a storm, and with
// the planner's jitter for a chance of 1 in 1,000 at most one wave of two
// may meet a 429.
func TestAFleetRestartThrottlesWithoutJitterAndNotWithThePlannersJitter(t *testing.T) {
	if testing.Short() {
		t.Skip("starts envtest and a fleet of controllers")
	}
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		t.Skip("KUBEBUILDER_ASSETS is not set: make test sets it")
	}
	dir := t.TempDir()
	o := options{clusters: 5, secrets: 10, limit: 20, window: time.Second, waves: 2, target: 0.001, poll: time.Hour,
		crdDir: filepath.Join("..", "..", "deploy", "crds"), out: filepath.Join(dir, "fleet.json"), log: filepath.Join(dir, "fleet.log")}
	var progress strings.Builder
	r, err := simulate(context.Background(), o, &progress)
	t.Log(progress.String())
	if err != nil {
		t.Fatal(err)
	}
	none, planned := r.Settings[0], r.Settings[len(r.Settings)-1]
	if none.Jitter != 0 || none.Predicted != 1 || none.Throttled != none.Waves {
		t.Errorf("without jitter: %+v, want every wave throttled, as predicted", none)
	}
	if none.Amplification > 1.6 {
		t.Errorf("without jitter, %.2f reads per check: the throttled reads were retried more than about once", none.Amplification)
	}
	if planned.Predicted > o.target || planned.Throttled > 1 {
		t.Errorf("with the planner's jitter %s: %+v, want at most one wave of two throttled", planned.Jitter, planned)
	}
}
