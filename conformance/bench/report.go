package main

import (
	"cmp"
	"fmt"
	"io"
	"maps"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is the JSON written by the command.
type Report struct {
	Machine  string    `json:"machine"`
	Started  time.Time `json:"started"`
	Duration string    `json:"duration"`
	Poll     string    `json:"poll"`
	// EmbeddedStartSeconds is the time to start `make conformance`'s
	// environment: envtest, fakevault, the provider and the controller in
	// process.
	EmbeddedStartSeconds float64  `json:"embeddedStartSeconds"`
	Results              []Result `json:"results"`
}

// coresLine lists the components' cores, busiest first.
func coresLine(cores map[string]float64) string {
	names := slices.SortedFunc(maps.Keys(cores), func(a, b string) int { return cmp.Compare(cores[b], cores[a]) })
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, " %s %.2f;", n, cores[n])
	}
	return b.String()
}

// print renders the results as tables.
func (r Report) print(out io.Writer) {
	fmt.Fprintf(out, "\nkvsync bench on %s, poll %s\n\n", r.Machine, r.Poll)
	fmt.Fprintf(out, "environment start: embedded (envtest, fakevault, provider, controller in process) %.1f s;", r.EmbeddedStartSeconds)
	for _, res := range r.Results {
		fmt.Fprintf(out, " external at %d %.1f s;", res.SecretSyncs, res.StartSeconds)
	}
	fmt.Fprintln(out)
	fmt.Fprintln(out)
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "initial sync\tSecretSyncs\tseconds\tfloor s\tx floor\tsyncs/s\tMounts\tvault requests\tEntra tokens\tSecret writes\tstatus writes\ttoken requests\tother writes\tcontroller cores\t")
	for _, res := range r.Results {
		c := res.Initial
		fmt.Fprintf(w, "\t%d\t%.1f\t%.1f\t%.2f\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%.2f\t\n", res.SecretSyncs, res.SyncSeconds, res.FloorSeconds, res.FloorRatio(),
			float64(res.SecretSyncs)/res.SyncSeconds, c.Mounts, c.VaultRequests, c.EntraTokens, c.SecretWrites, c.StatusWrites, c.TokenRequests, c.OtherWrites, c.CPUCores)
	}
	_ = w.Flush()
	fmt.Fprintln(out, "  floor: the harness's creations, each followed by one Secret create and one status patch made as the controller, on the same API server before the controller starts")
	for _, res := range r.Results {
		c := res.FirstPoll
		fmt.Fprintf(out, "  first poll after the sync of %d (%.0f s): %.0f Mounts, %.0f Secret writes, %.0f status writes, %.0f other writes\n",
			res.SecretSyncs, c.Seconds, c.Mounts, c.SecretWrites, c.StatusWrites, c.OtherWrites)
	}
	for _, res := range r.Results {
		fmt.Fprintf(out, "  CPU during the initial sync of %d (cores of %d):%s\n", res.SecretSyncs, runtime.NumCPU(), coresLine(res.Initial.ComponentCores))
	}
	fmt.Fprintln(out)
	w = tabwriter.NewWriter(out, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "steady state, per poll\tSecretSyncs\tSecret writes\tstatus writes\ttoken requests\tother writes\tMounts\tclasses\tvault requests\tdistinct reads\tcontroller cores\tRSS MiB max/median\theap MiB max/median\t")
	for _, res := range r.Results {
		c := res.SteadyPerPoll
		fmt.Fprintf(w, "\t%d\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%d\t%.1f\t%d\t%.3f\t%.1f/%.1f\t%.1f/%.1f\t\n", res.SecretSyncs, c.SecretWrites, c.StatusWrites, c.TokenRequests, c.OtherWrites,
			c.Mounts, res.Classes, c.VaultRequests, res.DistinctReads, c.CPUCores, res.RSSMaxBytes/(1<<20), res.RSSMedianBytes/(1<<20), res.HeapMaxBytes/(1<<20), res.HeapMedianBytes/(1<<20))
	}
	_ = w.Flush()
	fmt.Fprint(out, "  each window began once the first poll had passed and a quarter poll went by without a Secret or status write, seconds after the initial sync:")
	for _, res := range r.Results {
		fmt.Fprintf(out, " %.0f at %d;", res.SteadyAfterSeconds, res.SecretSyncs)
	}
	fmt.Fprintln(out)
	fmt.Fprintln(out)
	w = tabwriter.NewWriter(out, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "one value changes\tSecretSyncs\tdependents\tSecret writes\tlatency s\t")
	for _, res := range r.Results {
		if ch := res.Change; ch != nil {
			fmt.Fprintf(w, "\t%d\t%d\t%.0f\t%.1f\t\n", res.SecretSyncs, ch.Dependents, ch.SecretWrites, ch.LatencySeconds)
		}
	}
	_ = w.Flush()
	for _, res := range r.Results {
		if x := res.Outage; x != nil {
			fmt.Fprintf(out, "\nevery vault down %.0f s at %d SecretSyncs: %.0f vault requests/min (peak %.0f), %.0f Secret writes, %.0f status writes; all synced %.1f s after the vaults came back\n",
				x.Seconds, res.SecretSyncs, x.VaultRequestsPerMinute, x.PeakPerMinute, x.SecretWrites, x.StatusWrites, x.RecoverySeconds)
		}
	}
	for _, res := range r.Results {
		if v := res.SharedVault; v != nil {
			fmt.Fprintf(out, "\none vault for all %d SecretSyncs, limited as Key Vault is (%d requests per %.0f s): %.0f throttled answers; vault requests per second mean %.1f, peak %.1f over 10 s\n",
				res.SecretSyncs, v.LimitRequests, v.LimitWindow, v.Throttled, v.MeanPerSecond, v.PeakPerSecond)
			if f := v.Forced; f != nil {
				fmt.Fprintf(out, "the vault forced to throttle for %.0f s (429, Retry-After %.0f s): %.0f vault requests (%.1f per Retry-After), %.0f checks put off, %.0f Secret writes, %.0f status writes; all synced %.1f s after it ended\n",
					f.Seconds, f.RetryAfterSeconds, f.VaultRequests, f.PerRetryAfter, f.Deferred, f.SecretWrites, f.StatusWrites, f.RecoverySeconds)
			}
		}
	}
	fmt.Fprintln(out)
	for _, res := range r.Results {
		fmt.Fprintf(out, "harness seconds at %d:", res.SecretSyncs)
		for _, p := range []string{"start", "floor", "controller", "sync", "steady", "change", "failures", "memory", "tokens"} {
			fmt.Fprintf(out, " %s %.0f;", p, res.PhaseSeconds[p])
		}
		fmt.Fprintln(out)
	}
	for _, res := range r.Results {
		if t := res.Tokens; t != nil {
			fmt.Fprintf(out, "\ntokens in the %.0f s after the initial sync of %d (a ServiceAccount token is refreshed 480 s after it was issued, an Entra ID token within its hour): %.0f ServiceAccount token requests, %.0f Entra ID token requests\n",
				t.WindowSeconds, res.SecretSyncs, t.ServiceAccountTokens, t.EntraTokens)
		}
	}
	for _, res := range r.Results {
		if m := res.Memory; m != nil {
			fmt.Fprintf(out, "\nmemory at %d SecretSyncs (highest sample of each window): RSS %.1f MiB -> %.1f MiB with %d unrelated Secrets (ratio %.2f); heap %.1f -> %.1f MiB (ratio %.2f); steady CPU %.3f cores\n",
				res.SecretSyncs, m.RSSBefore/(1<<20), m.RSSAfter/(1<<20), m.Unrelated, m.RSSRatio, m.HeapBefore/(1<<20), m.HeapAfter/(1<<20), m.HeapRatio, m.SteadyCores)
		}
	}
}

// FloorRatio is the initial sync's time as a multiple of the floor's; 0
// when the floor was not measured.
func (r Result) FloorRatio() float64 {
	if r.FloorSeconds == 0 {
		return 0
	}
	return r.SyncSeconds / r.FloorSeconds
}
