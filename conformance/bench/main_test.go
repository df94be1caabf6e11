package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestTheControllerDoesTheLeastWork runs the harness on a small world and
// holds the counts to the floor: one Mount, one Secret and one status write
// per SecretSync to sync; in the steady state nothing written, one Mount
// per class and one vault read per distinct object; only the dependents
// written when a value changes; no throttled answer from one vault at Key
// Vault's limit, and a handful of requests per Retry-After when it is
// forced to throttle; memory flat with unrelated Secrets. Counts, not
// times, so the test is stable on a loaded machine.
func TestTheControllerDoesTheLeastWork(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the components")
	}
	dir := t.TempDir()
	o := options{sizes: []int{20}, poll: 3 * time.Second, polls: 2, unrelated: 500, sharedVaultAt: 20, throttle: 5 * time.Second, out: filepath.Join(dir, "bench.json"),
		log: filepath.Join(dir, "bench.log"), moduleRoot: filepath.Join("..", "..")}
	var out bytes.Buffer
	if err := run(context.Background(), o, &out); err != nil {
		log, _ := os.ReadFile(o.log)
		t.Fatalf("bench: %v\n%s\n%s", err, out.String(), tail(string(log), 3000))
	}
	raw, err := os.ReadFile(o.out)
	if err != nil {
		t.Fatal(err)
	}
	var report Report
	if err := json.Unmarshal(raw, &report); err != nil {
		t.Fatal(err)
	}
	r := report.Results[0]
	checks := []struct {
		what      string
		got, want float64
	}{
		{"initial Mounts (one per SecretSync)", r.Initial.Mounts, 20},
		{"initial Secret writes", r.Initial.SecretWrites, 20},
		{"initial status writes", r.Initial.StatusWrites, 20},
		{"initial token requests (one ServiceAccount)", r.Initial.TokenRequests, 1},
		{"initial Events (a first sync's success records none)", float64(len(r.InitialEvents)), 0},
		{"Secret writes of the first poll after the sync", r.FirstPoll.SecretWrites, 0},
		{"status writes of the first poll after the sync", r.FirstPoll.StatusWrites, 0},
		{"steady Secret writes per poll", r.SteadyPerPoll.SecretWrites, 0},
		{"steady status writes per poll", r.SteadyPerPoll.StatusWrites, 0},
		{"steady token requests per poll", r.SteadyPerPoll.TokenRequests, 0},
		// The first write after a creation is two: the created fields
		// become applied fields, then the apply.
		{"Secret writes after one value changed (two per dependent)", r.Change.SecretWrites, 20},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
		}
	}
	if got := r.Initial.Writes["secrets POST"]; got != 20 {
		t.Errorf("initial Secret creates = %v, want one per SecretSync (20): %v", got, r.Initial.Writes)
	}
	if r.FloorSeconds <= 0 {
		t.Errorf("the floor was not measured")
	}
	if v := r.Initial.VaultRequests; v < 60 || v > 60*1.5 {
		t.Errorf("initial vault requests = %v, want about one per object per SecretSync (60)", v)
	}
	if m := r.SteadyPerPoll.Mounts; m < float64(r.Classes) || m > float64(r.Classes)*1.5 {
		t.Errorf("steady Mounts per poll = %v, want about one per class (%d)", m, r.Classes)
	}
	if v := r.SteadyPerPoll.VaultRequests; v < float64(r.DistinctReads) || v > float64(r.DistinctReads)*1.5 {
		t.Errorf("steady vault requests per poll = %v, want about the %d distinct reads", v, r.DistinctReads)
	}
	if v := r.SharedVault; v == nil || v.Throttled != 0 || v.Forced == nil {
		t.Errorf("one vault at Key Vault's limit: %+v", v)
	} else if f := v.Forced; f.SecretWrites != 0 || f.VaultRequests < 1 || f.PerRetryAfter > 10 {
		t.Errorf("the vault forced to throttle: %+v, want no Secret written and at most the running Mounts' requests per Retry-After", f)
	}
	if r.Memory == nil || r.Memory.HeapRatio > 1.25 {
		t.Errorf("memory with unrelated Secrets: %+v", r.Memory)
	}
	if !strings.Contains(out.String(), "steady state, per poll") {
		t.Errorf("no table printed:\n%s", out.String())
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
