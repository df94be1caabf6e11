// Command soak runs kvsync under chaos and checks that nothing is lost and
// nothing leaks. On the embedded environment (envtest, fakevault behind the
// fault injector, the provider on a real socket and the controller, in
// process) it syncs SecretSyncs across namespaces, vaults and identities,
// then for a while injects random faults of every layer of the catalogue
// while values rotate in the vaults, then clears them. Meanwhile it checks:
//
//   - no managed Secret is deleted, loses a key or holds a value its vault
//     never had;
//   - no foreign Secret changes (data and resourceVersion);
//   - no vault answers 429 of its own (each has Key Vault's limit);
//   - no secret value reaches logs, Events, SecretSync statuses or metrics;
//   - after the faults end, every Secret holds its vault's current values
//     within poll + 30 s.
//
// Then, unless --restart-rounds=0, it runs the same world as separate
// processes (envtest's API server, fakevault, kvsync-provider and
// kvsync-controller, each started again when it exits, as a kubelet does)
// and, with values rotating and the same invariants checked, kills the
// controller and the provider at random points of a sync, runs a second
// controller replica and fails the leader over (killed, then terminated),
// and restarts the API server: after each, every Secret must hold its
// vault's current values within poll + 30 s (plus the Lease's 15 s when a
// leader is killed), so that no update is lost.
//
// It prints tables and writes JSON (default _artifacts/soak.json), and
// exits 1 on any violation.
//
//	go run ./conformance/soak --duration=2m
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"time"
)

// options are the command's flags.
type options struct {
	duration   time.Duration
	namespaces int
	perNS      int
	vaults     int
	poll       time.Duration
	seed       int64
	maxFaults  int
	out        string
	log        string
	crdDir     string
	// tokenLifetime is the fake Entra ID's access token lifetime.
	tokenLifetime time.Duration
	// restartRounds is how many times each disruption of the restart part
	// is made; 0 skips that part.
	restartRounds int
	// moduleRoot is where the restart part builds the binaries from.
	moduleRoot string
}

func main() {
	var o options
	flag.DurationVar(&o.duration, "duration", 10*time.Minute, "How long faults are injected")
	flag.IntVar(&o.namespaces, "namespaces", 20, "Namespaces, each with its own ServiceAccount and workload identity")
	flag.IntVar(&o.perNS, "secretsyncs-per-namespace", 25, "SecretSyncs per namespace, 5 per SecretProviderClass (a multiple of 5)")
	flag.IntVar(&o.vaults, "vaults", 5, "Vaults the classes read, each limited as Key Vault is")
	flag.DurationVar(&o.poll, "poll", 10*time.Second, "The controller's rotation poll interval")
	flag.Int64Var(&o.seed, "seed", 1, "Seed of the fault schedule and the rotations")
	flag.IntVar(&o.maxFaults, "max-faults", 4, "Faults active at once, at most")
	flag.StringVar(&o.out, "out", "_artifacts/soak.json", "Where the JSON report goes")
	flag.StringVar(&o.log, "log", "_artifacts/soak.log", "Where the components' logs go")
	flag.DurationVar(&o.tokenLifetime, "token-lifetime", 6*time.Minute, "Lifetime of the access tokens Entra ID issues: short, so that identity faults meet token refreshes")
	flag.StringVar(&o.crdDir, "crd-dir", "deploy/crds", "The CRDs to install")
	flag.IntVar(&o.restartRounds, "restart-rounds", 2, "Rounds of each disruption of the restart part (kills, failovers, API server restarts); 0 skips it")
	flag.StringVar(&o.moduleRoot, "module-root", ".", "The kvsync module, whose binaries the restart part builds")
	flag.Parse()
	if o.duration <= 0 || o.namespaces < 1 || o.perNS < 5 || o.perNS%5 != 0 || o.vaults < 1 || o.poll < time.Second || o.maxFaults < 1 || o.restartRounds < 0 {
		fmt.Fprintln(os.Stderr, "soak: --duration, --poll and --max-faults must be positive, --namespaces and --vaults at least 1, --secretsyncs-per-namespace a multiple of 5")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	report, err := run(ctx, o, os.Stdout)
	if err != nil {
		fmt.Fprintf(os.Stderr, "soak: %v\n", err)
		os.Exit(1)
	}
	if n := len(report.violations()); n > 0 {
		fmt.Fprintf(os.Stderr, "soak: %d violation(s)\n", n)
		os.Exit(1)
	}
}

// progress prints a line with the elapsed time.
func progress(out io.Writer, start time.Time, format string, args ...any) {
	fmt.Fprintf(out, "[%6.1fs] %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
}
