package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"regexp"
	"sync"
	"time"

	"github.com/kvsync/kvsync/conformance"
)

// Disruptions the restart part makes, in order.
const (
	controllerKilled  = "controller killed mid-sync"
	providerKilled    = "provider killed mid-sync"
	leaderKilled      = "leader killed, standby takes over"
	leaderTerminated  = "leader terminated, Lease handed over"
	apiServerRestarts = "API server restarted under the controller"
)

// disruptions lists them in the order they run and are reported.
var disruptions = []string{controllerKilled, providerKilled, leaderKilled, leaderTerminated, apiServerRestarts}

// RestartReport is the outcome of the restart part: the same world as the
// chaos part, run as separate processes that are killed instead of the
// network being broken.
type RestartReport struct {
	SecretSyncs int `json:"secretSyncs"`
	// Disruptions counts the kills and restarts made, by disruption.
	Disruptions map[string]int `json:"disruptions"`
	// ConvergedSeconds is the longest time, by disruption, from its end to
	// every SecretSync holding its vault's current values.
	ConvergedSeconds map[string]float64 `json:"convergedSeconds"`
	// FailoverSeconds are the times from a leader's end to the standby
	// replica leading, in order.
	FailoverSeconds []float64 `json:"failoverSeconds"`
	Rotations       int       `json:"rotations"`
	// Restarts counts each process's starts beyond the first.
	Restarts map[string]int `json:"restarts"`
	// Crashes are the exits the harness did not cause.
	Crashes    []string       `json:"crashes"`
	Checks     map[string]int `json:"checks"`
	Violations []string       `json:"violations"`
}

// restarter runs the restart part.
type restarter struct {
	o      options
	env    *conformance.Environment
	w      *world
	chk    *checker
	rng    *rand.Rand
	out    io.Writer
	start  time.Time
	report *RestartReport
	// replicas are the controller processes once a second one runs.
	replicas []*conformance.Process
}

// runRestarts starts the world as separate processes (envtest's API
// server, fakevault, kvsync-provider, kvsync-controller), syncs it, and
// then, with values rotating and the Secret invariants watched throughout,
// kills the controller and the provider at random points of a sync, runs a
// second controller replica and fails the leader over, first by a kill and
// then by a graceful stop, and restarts the API server. After each round
// every Secret must hold its vault's current value within poll + 30 s (plus
// the Lease's 15 s after a leader is killed): no update is lost.
func runRestarts(ctx context.Context, o options, logs *conformance.LogBuffer, out io.Writer, start time.Time) (*RestartReport, error) {
	env, err := conformance.StartExternal(ctx, conformance.ExternalOptions{ModuleRoot: o.moduleRoot,
		Options: conformance.Options{CRDDir: o.crdDir, PollInterval: o.poll, Log: logs}})
	if err != nil {
		return nil, fmt.Errorf("starting the processes: %w", err)
	}
	defer func() { _ = env.Stop() }()
	w, err := newWorld(ctx, env, o)
	if err != nil {
		return nil, err
	}
	r := &restarter{o: o, env: env, w: w, chk: newChecker(w), rng: rand.New(rand.NewPCG(uint64(o.seed), 0x4e57)), out: out, start: start,
		report: &RestartReport{SecretSyncs: len(w.syncs), Disruptions: map[string]int{}, ConvergedSeconds: map[string]float64{}}}
	progress(out, start, "restarts: %d SecretSyncs synced by separate processes; waiting for the initial sync", len(w.syncs))
	if err := r.chk.initialSync(ctx); err != nil {
		return nil, err
	}

	watchCtx, stopWatch := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var watchErr error
	wg.Go(func() { watchErr = r.chk.watchSecrets(watchCtx) })
	err = r.disrupt(ctx)
	stopWatch()
	wg.Wait()
	if err := errors.Join(err, watchErr, r.chk.checkForeign(ctx), r.chk.checkLeaks(ctx, logs)); err != nil {
		return nil, err
	}
	peak := 0.0
	if err := r.chk.checkRate(&peak); err != nil {
		return nil, err
	}
	r.report.Restarts = map[string]int{}
	for _, p := range append([]*conformance.Process{env.Provider}, r.controllers()...) {
		r.report.Restarts[p.Name] += p.Starts() - 1
		r.report.Crashes = append(r.report.Crashes, p.Crashes()...)
	}
	for _, crash := range r.report.Crashes {
		r.chk.violate("a process exited on its own: %s", crash)
	}
	r.report.Checks, r.report.Violations = r.chk.checks, r.chk.snapshot()
	return r.report, nil
}

// disrupt runs every disruption's rounds.
func (r *restarter) disrupt(ctx context.Context) error {
	limit := r.o.poll + 30*time.Second
	steps := []struct {
		name  string
		limit time.Duration
		do    func(context.Context) error
	}{
		{controllerKilled, limit, func(ctx context.Context) error { return r.killTwice(ctx, r.env.Controller, controllerKilled) }},
		{providerKilled, limit, func(ctx context.Context) error { return r.killTwice(ctx, r.env.Provider, providerKilled) }},
		{leaderKilled, limit + 15*time.Second, func(ctx context.Context) error { return r.failover(ctx, leaderKilled, (*conformance.Process).Kill) }},
		{leaderTerminated, limit, func(ctx context.Context) error {
			return r.failover(ctx, leaderTerminated, (*conformance.Process).Terminate)
		}},
		{apiServerRestarts, limit, r.restartAPIServer},
	}
	for _, step := range steps {
		for round := range r.o.restartRounds {
			if err := r.rotate(); err != nil {
				return err
			}
			if err := step.do(ctx); err != nil {
				return fmt.Errorf("%s: %w", step.name, err)
			}
			took, err := r.chk.converge(ctx, step.limit, step.name)
			if err != nil {
				return err
			}
			r.report.ConvergedSeconds[step.name] = max(r.report.ConvergedSeconds[step.name], took.Seconds())
			progress(r.out, r.start, "restarts: %s (round %d): converged in %.1f s, %d violations so far", step.name, round+1, took.Seconds(), len(r.chk.snapshot()))
		}
		if err := r.chk.checkForeign(ctx); err != nil {
			return err
		}
	}
	return nil
}

// rotate gives a tenth of the objects a new value, the updates the next
// disruption must not lose.
func (r *restarter) rotate() error {
	for range max(1, len(r.w.objects)/10) {
		if err := r.w.rotate(r.w.objects[r.rng.IntN(len(r.w.objects))]); err != nil {
			return err
		}
		r.report.Rotations++
	}
	return nil
}

// pause waits a random time in [lo, hi).
func (r *restarter) pause(ctx context.Context, lo, hi time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(lo + time.Duration(r.rng.Int64N(int64(hi-lo)))):
	}
}

// killTwice kills p at a random point of a poll, and again at a random
// point of its first seconds back: for the controller, once it leads again
// and resyncs every SecretSync; for the provider, while the controller
// retries the Mounts that failed.
func (r *restarter) killTwice(ctx context.Context, p *conformance.Process, name string) error {
	r.pause(ctx, 0, r.o.poll)
	instance := p.Starts()
	if err := p.Kill(); err != nil {
		return err
	}
	if p == r.env.Controller {
		// Killed, it left the Lease held: the next instance leads once
		// the Lease expires.
		if _, err := r.leader(ctx, []*conformance.Process{p}, p, instance); err != nil {
			return err
		}
		r.pause(ctx, 0, 2*time.Second)
	} else {
		r.pause(ctx, 500*time.Millisecond, 3*time.Second)
	}
	if err := p.Kill(); err != nil {
		return err
	}
	r.report.Disruptions[name] += 2
	return nil
}

// controllers returns the controller processes.
func (r *restarter) controllers() []*conformance.Process {
	if len(r.replicas) > 0 {
		return r.replicas
	}
	return []*conformance.Process{r.env.Controller}
}

// failover ends the leading replica with end, at a random point of a poll,
// and measures how long the other takes to lead. It starts the second
// replica first if need be.
func (r *restarter) failover(ctx context.Context, name string, end func(*conformance.Process) error) error {
	if len(r.replicas) == 0 {
		second, err := r.env.StartControllerReplica(ctx)
		if err != nil {
			return err
		}
		r.replicas = []*conformance.Process{r.env.Controller, second}
	}
	leader, err := r.leader(ctx, r.replicas, nil, 0)
	if err != nil {
		return err
	}
	r.pause(ctx, 0, r.o.poll)
	ended, instance := time.Now(), leader.Starts()
	if err := end(leader); err != nil {
		return err
	}
	if _, err := r.leader(ctx, r.replicas, leader, instance); err != nil {
		return err
	}
	r.report.FailoverSeconds = append(r.report.FailoverSeconds, time.Since(ended).Seconds())
	r.report.Disruptions[name]++
	return nil
}

// leaderMetric matches the controller-runtime gauge of a replica that
// holds the Lease.
var leaderMetric = regexp.MustCompile(`(?m)^leader_election_master_status\{[^}]*\} 1$`)

// leader waits until exactly one of the replicas leads, other than the
// given instance (the process not, in its start number instance), and
// returns it. The instance that ends may have started again and won the
// Lease back: that is a new instance.
func (r *restarter) leader(ctx context.Context, replicas []*conformance.Process, not *conformance.Process, instance int) (*conformance.Process, error) {
	deadline := time.Now().Add(time.Minute)
	for {
		var leading []*conformance.Process
		for _, p := range replicas {
			if m, err := p.Metrics(); err == nil && leaderMetric.MatchString(m) {
				leading = append(leading, p)
			}
		}
		if len(leading) > 1 {
			r.chk.violate("%d controller replicas lead at once", len(leading))
		}
		if len(leading) == 1 && (leading[0] != not || leading[0].Starts() != instance) {
			return leading[0], nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("no new leader after a minute (%d leading)", len(leading))
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// restartAPIServer restarts the API server at a random point of a poll,
// down for 1 to 5 s.
func (r *restarter) restartAPIServer(ctx context.Context) error {
	r.pause(ctx, 0, r.o.poll)
	down := time.Second + time.Duration(r.rng.Int64N(int64(4*time.Second)))
	if err := r.env.RestartAPIServer(ctx, down); err != nil {
		return err
	}
	r.report.Disruptions[apiServerRestarts]++
	return nil
}
