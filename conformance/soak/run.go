package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/kvsync/kvsync/conformance"
	"github.com/kvsync/kvsync/fakevault/keyvault"
	"github.com/kvsync/kvsync/faults"
)

// Report is the soak's outcome, written as JSON.
type Report struct {
	Seed        int64   `json:"seed"`
	SecretSyncs int     `json:"secretSyncs"`
	Namespaces  int     `json:"namespaces"`
	Vaults      int     `json:"vaults"`
	Poll        string  `json:"poll"`
	ChaosSecs   float64 `json:"chaosSeconds"`
	// Faults are the faults added by kind, and Injections the requests
	// they failed (or slowed), by kind.
	Faults     map[faults.Kind]int `json:"faults"`
	Injections map[faults.Kind]int `json:"injections"`
	Rotations  int                 `json:"rotations"`
	// Checks counts the invariant checks made, by invariant.
	Checks map[string]int `json:"checks"`
	// PeakVaultRequestsPerSecond is the busiest vault's highest rate
	// between two rate checks (10 s apart).
	PeakVaultRequestsPerSecond float64 `json:"peakVaultRequestsPerSecond"`
	// ConvergedSeconds is from the faults' end to every SecretSync current.
	ConvergedSeconds float64  `json:"convergedSeconds"`
	Violations       []string `json:"violations"`
	// Restarts is the restart part's outcome, if it ran.
	Restarts *RestartReport `json:"restarts,omitempty"`
}

// run runs the chaos part, then the restart part unless o.restartRounds is
// 0, and writes the report to o.out.
func run(ctx context.Context, o options, out io.Writer) (*Report, error) {
	start := time.Now()
	for _, p := range []string{o.out, o.log} {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return nil, err
		}
	}
	logFile, err := os.Create(o.log)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	logs := &conformance.LogBuffer{Tee: logFile}
	report, err := runChaos(ctx, o, logs, out, start)
	if err != nil {
		return nil, err
	}
	if o.restartRounds > 0 {
		// The restart part has logs of its own, for its leak scan.
		if report.Restarts, err = runRestarts(ctx, o, &conformance.LogBuffer{Tee: logFile}, out, start); err != nil {
			return nil, err
		}
	}
	raw, err := json.MarshalIndent(report, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(o.out, raw, 0o644); err != nil {
		return nil, err
	}
	report.print(out)
	fmt.Fprintf(out, "\nJSON: %s\n", o.out)
	return report, nil
}

// runChaos runs the chaos part on the embedded environment.
func runChaos(ctx context.Context, o options, logs *conformance.LogBuffer, out io.Writer, start time.Time) (*Report, error) {
	env, err := conformance.Start(ctx, conformance.Options{CRDDir: o.crdDir, PollInterval: o.poll, Log: logs, TokenLifetime: o.tokenLifetime})
	if err != nil {
		return nil, fmt.Errorf("starting the environment: %w", err)
	}
	defer func() { _ = env.Stop() }()
	w, err := newWorld(ctx, env, o)
	if err != nil {
		return nil, err
	}
	report := &Report{Seed: o.seed, SecretSyncs: len(w.syncs), Namespaces: o.namespaces, Vaults: o.vaults, Poll: o.poll.String()}
	progress(out, start, "%d SecretSyncs in %d namespaces reading %d vaults; waiting for the initial sync", len(w.syncs), o.namespaces, o.vaults)
	chk := newChecker(w)
	if err := chk.initialSync(ctx); err != nil {
		return nil, err
	}

	// Chaos, with the invariants checked throughout.
	progress(out, start, "synced; injecting faults for %s", o.duration)
	watchCtx, stopWatch := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var watchErr error
	wg.Go(func() { watchErr = chk.watchSecrets(watchCtx) })
	ch := &chaos{w: w, rng: rand.New(rand.NewPCG(uint64(o.seed), 0x50a6)), max: o.maxFaults, started: map[faults.Kind]int{}}
	chaosCtx, stopChaos := context.WithTimeout(ctx, o.duration)
	var chaosErr error
	chaosStart := time.Now()
	chaosDone := make(chan struct{})
	go func() { defer close(chaosDone); chaosErr = ch.run(chaosCtx) }()
	for chaosCtx.Err() == nil {
		select {
		case <-chaosCtx.Done():
		case <-time.After(10 * time.Second):
			if err := errors.Join(chk.checkForeign(ctx), chk.checkRate(&report.PeakVaultRequestsPerSecond)); err != nil {
				stopChaos()
				stopWatch()
				<-chaosDone
				wg.Wait()
				return nil, err
			}
			progress(out, start, "faults and rotations under way, %d violations so far", len(chk.snapshot()))
		}
	}
	stopChaos()
	<-chaosDone // every fault is cleared
	report.ChaosSecs = time.Since(chaosStart).Seconds()

	// Convergence, then the last checks.
	progress(out, start, "faults cleared; waiting for every Secret to converge (at most poll + 30 s)")
	took, err := chk.converge(ctx, o.poll+30*time.Second, "the faults ended")
	report.ConvergedSeconds = took.Seconds()
	stopWatch()
	wg.Wait()
	if err := errors.Join(err, watchErr, chaosErr, chk.checkForeign(ctx), chk.checkRate(&report.PeakVaultRequestsPerSecond), chk.checkLeaks(ctx, logs)); err != nil {
		return nil, err
	}
	injections, err := env.World.Injections()
	if err != nil {
		return nil, err
	}
	report.Injections = map[faults.Kind]int{}
	for _, in := range injections {
		report.Injections[in.Kind]++
	}
	report.Faults, report.Rotations, report.Checks = ch.started, ch.rotations, chk.checks
	report.Violations = chk.snapshot()
	return report, nil
}

// print renders the report as tables.
func (r *Report) print(out io.Writer) {
	fmt.Fprintf(out, "\nkvsync soak: %d SecretSyncs, %d namespaces, %d vaults, poll %s, seed %d, %.0f s of faults, %d values rotated\n\n",
		r.SecretSyncs, r.Namespaces, r.Vaults, r.Poll, r.Seed, r.ChaosSecs, r.Rotations)
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "fault kind\tfaults\trequests failed or slowed\t")
	for _, k := range kinds {
		fmt.Fprintf(w, "%s\t%d\t%d\t\n", k, r.Faults[k], r.Injections[k])
	}
	_ = w.Flush()
	fmt.Fprintln(out)
	w = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "invariant check\tcount\t")
	for _, k := range slices.Sorted(maps.Keys(r.Checks)) {
		fmt.Fprintf(w, "%s\t%d\t\n", k, r.Checks[k])
	}
	_ = w.Flush()
	fmt.Fprintf(out, "\nbusiest vault: %.1f requests/s at most (Key Vault allows %d per %s); converged %.1f s after the faults ended\n",
		r.PeakVaultRequestsPerSecond, keyvault.SecretsLimit.Requests, keyvault.SecretsLimit.Window, r.ConvergedSeconds)
	fmt.Fprintf(out, "violations: %d\n", len(r.Violations))
	for _, v := range r.Violations {
		fmt.Fprintf(out, "  - %s\n", v)
	}
	if r.Restarts != nil {
		r.Restarts.print(out)
	}
}

// violations returns every violation of both parts.
func (r *Report) violations() []string {
	v := r.Violations
	if r.Restarts != nil {
		v = append(v, r.Restarts.Violations...)
	}
	return v
}

// print renders the restart part as tables.
func (r *RestartReport) print(out io.Writer) {
	fmt.Fprintf(out, "\nkvsync restarts: %d SecretSyncs synced by separate processes, %d values rotated\n\n", r.SecretSyncs, r.Rotations)
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "disruption\tcount\tlongest convergence after it\t")
	for _, d := range disruptions {
		fmt.Fprintf(w, "%s\t%d\t%.1f s\t\n", d, r.Disruptions[d], r.ConvergedSeconds[d])
	}
	_ = w.Flush()
	fmt.Fprintf(out, "\nfailovers took %s s; processes started again:", formatSeconds(r.FailoverSeconds))
	for _, name := range slices.Sorted(maps.Keys(r.Restarts)) {
		fmt.Fprintf(out, " %s %d", name, r.Restarts[name])
	}
	fmt.Fprintf(out, "\n\n")
	w = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "invariant check\tcount\t")
	for _, k := range slices.Sorted(maps.Keys(r.Checks)) {
		fmt.Fprintf(w, "%s\t%d\t\n", k, r.Checks[k])
	}
	_ = w.Flush()
	fmt.Fprintf(out, "violations: %d\n", len(r.Violations))
	for _, v := range r.Violations {
		fmt.Fprintf(out, "  - %s\n", v)
	}
}

func formatSeconds(s []float64) string {
	parts := make([]string, len(s))
	for i, v := range s {
		parts[i] = fmt.Sprintf("%.1f", v)
	}
	return strings.Join(parts, ", ")
}
