// Command fleet proves `kubectl kvsync plan` by simulation: a fleet of
// clusters, each a namespace with its own kvsync controller (its own hash
// key, its cache limited to its namespace), on one API server (envtest),
// all reading one fakevault vault whose limit is scaled down with the fleet
// (a sliding window, refused requests counted, as Key Vault counts them).
// Each wave changes every secret of the vault and restarts every
// controller at once, as a fleet-wide upgrade does; the first check of
// each SecretSync after a start waits a random part of the jitter. For
// each jitter (none, the one the planner expects to throttle half the
// waves, the planner's smallest for --target) it counts the waves that met
// a 429, the vault reads per check (retries included) and the time until
// every Secret is current, beside the planner's predicted chance. It then
// compares the planner with arrivals drawn at a real fleet's scale against
// Key Vault's limit. It prints a Markdown table and writes JSON.
//
//	go run ./conformance/fleet --clusters=10 --secrets=10 --waves=10
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"time"

	"github.com/kvsync/kvsync/conformance"
	"github.com/kvsync/kvsync/fakevault/keyvault"
)

// options are the command's flags.
type options struct {
	clusters, secrets int
	limit             int
	window            time.Duration
	waves             int
	target            float64
	poll              time.Duration
	trials            int
	crdDir            string
	out, log          string
}

func main() {
	var o options
	flag.IntVar(&o.clusters, "clusters", 10, "Clusters of the fleet, each a namespace with its own controller")
	flag.IntVar(&o.secrets, "secrets", 10, "Secrets per cluster, each read by one SecretSync")
	flag.IntVar(&o.limit, "limit", 40, "The vault's limit: requests per --window (Key Vault's is 4,000 per 10 s, scaled down with the fleet)")
	flag.DurationVar(&o.window, "window", 2*time.Second, "The window of the vault's limit")
	flag.IntVar(&o.waves, "waves", 10, "Waves per jitter")
	flag.Float64Var(&o.target, "target", 0.01, "The throttle chance the planner's jitter must keep a wave under")
	flag.DurationVar(&o.poll, "poll", time.Hour, "The controllers' rotation poll interval (long: the waves are the checks measured)")
	flag.IntVar(&o.trials, "trials", 300, "Draws per comparison at a real fleet's scale (0 skips them)")
	flag.StringVar(&o.crdDir, "crd-dir", "deploy/crds", "The CRDs to install")
	flag.StringVar(&o.out, "out", "_artifacts/fleet.json", "Where the JSON report goes")
	flag.StringVar(&o.log, "log", "_artifacts/fleet.log", "Where the components' logs go")
	flag.Parse()
	if o.clusters < 1 || o.secrets < 1 || o.limit < 1 || o.window <= 0 || o.waves < 1 || o.target <= 0 || o.target >= 1 {
		fmt.Fprintln(os.Stderr, "fleet: --clusters, --secrets, --limit, --waves must be positive, --window more than 0, --target between 0 and 1")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, o, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "fleet: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options, out io.Writer) error {
	r, err := simulate(ctx, o, out)
	if err != nil {
		return err
	}
	printReport(out, r)
	if err := os.MkdirAll(filepath.Dir(o.out), 0o755); err != nil {
		return err
	}
	raw, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(o.out, raw, 0o644)
}

// simulate runs the fleet through its waves for every jitter.
func simulate(ctx context.Context, o options, progress io.Writer) (Report, error) {
	r := Report{Clusters: o.clusters, Secrets: o.secrets, Limit: keyvault.RateLimit{Requests: o.limit, Window: o.window}}
	settings, err := jitters(o)
	if err != nil {
		return r, err
	}
	if err := os.MkdirAll(filepath.Dir(o.log), 0o755); err != nil {
		return r, err
	}
	logFile, err := os.Create(o.log)
	if err != nil {
		return r, err
	}
	defer logFile.Close()
	env, err := conformance.Start(ctx, conformance.Options{CRDDir: o.crdDir, PollInterval: o.poll, Log: logFile, WithoutController: true})
	if err != nil {
		return r, fmt.Errorf("starting the control plane and fakevault: %w", err)
	}
	defer env.Stop()
	w := &world{env: env, o: o}
	if err := w.setup(ctx); err != nil {
		return r, err
	}
	// The first sync, with no limit: the fleet being created is not what
	// is measured.
	stopControllers, err := w.startControllers(ctx, 0)
	if err != nil {
		return r, err
	}
	err = w.waitCurrent(ctx, 5*time.Minute)
	stopControllers()
	if err != nil {
		return r, fmt.Errorf("the fleet's first sync: %w", err)
	}
	if err := env.World.SetRateLimit(vaultName, &r.Limit); err != nil {
		return r, err
	}
	for _, j := range settings {
		s, err := w.run(ctx, j, progress)
		if err != nil {
			return r, err
		}
		r.Settings = append(r.Settings, s)
	}
	if o.trials > 0 {
		r.Drawn = drawn(o.trials, rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1)))
	}
	return r, nil
}

func printReport(w io.Writer, r Report) {
	fmt.Fprintf(w, "\n%d clusters × %d secrets, one vault limited to %d requests per %s (sliding):\n\n",
		r.Clusters, r.Secrets, r.Limit.Requests, r.Limit.Window)
	fmt.Fprintln(w, "| jitter | predicted throttle chance | waves throttled | reads per check | every Secret current (median, max) |")
	fmt.Fprintln(w, "|---:|---:|---:|---:|---:|")
	for _, s := range r.Settings {
		fmt.Fprintf(w, "| %s | %.2f | %d of %d (%.2f) | %.2f | %s, %s |\n", s.Jitter, s.Predicted, s.Throttled, s.Waves, s.Rate,
			s.Amplification, s.CurrentMedian.Round(100*time.Millisecond), s.CurrentMax.Round(100*time.Millisecond))
	}
	if len(r.Drawn) == 0 {
		return
	}
	fmt.Fprintf(w, "\nThe planner against drawn arrivals, Key Vault's limit (4,000 per 10 s):\n\n")
	fmt.Fprintln(w, "| requests per round | jitter | predicted | drawn |")
	fmt.Fprintln(w, "|---:|---:|---:|---:|")
	for _, d := range r.Drawn {
		fmt.Fprintf(w, "| %.0f | %s | %.4f | %.4f (%d draws) |\n", d.Requests, d.Jitter, d.Predicted, d.Drawn, d.Trials)
	}
}
