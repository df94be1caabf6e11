// Command bench measures the work kvsync does at scale, with the components
// as separate processes (conformance.StartExternal: envtest's API server,
// fakevault, kvsync-provider, kvsync-controller with its production rate
// limits): the initial sync of N SecretSyncs, the steady state, one vault
// value changing, and the controller's memory with unrelated Secrets in the
// cluster. The counters are the API server's own request metrics, the
// provider's request and Mount metrics and the controller's process
// metrics. It prints a table and writes JSON (default _artifacts/bench.json).
//
//	go run ./conformance/bench --sizes=100,1000 --poll=10s
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/kvsync/kvsync/conformance"
)

// options are the command's flags.
type options struct {
	sizes     []int
	poll      time.Duration
	polls     int
	unrelated int
	outage    time.Duration
	outageAt  int
	// sharedVaultAt is the smallest size whose classes all read one vault
	// limited as Key Vault is; throttle is how long that vault is then
	// forced to throttle.
	sharedVaultAt int
	throttle      time.Duration
	out           string
	moduleRoot    string
	log           string
	controller    []string
	// controllerEnv is added to the controller's environment.
	controllerEnv []string
	// pprofDir receives the controller's profiles; empty profiles nothing.
	pprofDir string
	// profile is the length of the initial sync's CPU profile.
	profile time.Duration
}

func main() {
	var o options
	var sizes, controllerArgs, controllerEnv string
	flag.StringVar(&sizes, "sizes", "100,1000", "Numbers of SecretSyncs to measure, comma-separated")
	flag.DurationVar(&o.poll, "poll", 10*time.Second, "The controller's rotation poll interval")
	flag.IntVar(&o.polls, "polls", 2, "Polls measured in the steady state")
	flag.IntVar(&o.unrelated, "unrelated-secrets", 10000, "Unrelated 1 KiB Secrets created for the memory measurement at the largest size (0 skips it)")
	flag.DurationVar(&o.outage, "outage", 0, "How long every vault answers 503, to measure the failure cost and the recovery (0 skips it)")
	flag.IntVar(&o.outageAt, "outage-at", 1000, "The size whose vaults go down (--outage)")
	flag.IntVar(&o.sharedVaultAt, "shared-vault-at", 5000, "From this size on, every class reads one vault limited as Key Vault is (4,000 requests per 10 s), to measure throttle safety (0 never)")
	flag.DurationVar(&o.throttle, "throttle", time.Minute, "How long the shared vault is then forced to throttle, answering 429 with Retry-After (0 skips it)")
	flag.StringVar(&o.out, "out", "_artifacts/bench.json", "Where the JSON results go")
	flag.StringVar(&o.moduleRoot, "module-root", ".", "The kvsync module, to build the binaries from")
	flag.StringVar(&o.log, "log", "_artifacts/bench.log", "Where the components' logs go")
	flag.StringVar(&o.pprofDir, "pprof-dir", "_artifacts/pprof", "Where the controller's pprof profiles go (the initial sync's and the steady state's CPU, the steady state's heap); empty profiles nothing")
	flag.DurationVar(&o.profile, "profile", 10*time.Second, "Length of the CPU profile taken from the start of the initial sync")
	flag.StringVar(&controllerEnv, "controller-env", "", "Extra environment of kvsync-controller, NAME=value space-separated (e.g. GOGC=50)")
	flag.StringVar(&controllerArgs, "controller-args", "", "Extra kvsync-controller flags, space-separated")
	flag.Parse()
	for _, s := range strings.Split(sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 10 || n%10 != 0 {
			fmt.Fprintf(os.Stderr, "bench: --sizes: %q is not a multiple of 10 of at least 10\n", s)
			os.Exit(2)
		}
		o.sizes = append(o.sizes, n)
	}
	if o.poll < time.Second || o.polls < 1 {
		fmt.Fprintln(os.Stderr, "bench: --poll must be at least 1s and --polls at least 1")
		os.Exit(2)
	}
	o.controller = strings.Fields(controllerArgs)
	o.controllerEnv = strings.Fields(controllerEnv)
	if err := run(context.Background(), o, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options, out io.Writer) error {
	if err := os.MkdirAll(filepath.Dir(o.out), 0o755); err != nil {
		return err
	}
	logFile, err := os.Create(o.log)
	if err != nil {
		return err
	}
	defer logFile.Close()
	report := Report{Machine: machine(), Started: time.Now(), Poll: o.poll.String()}
	start := time.Now()
	embedded, err := conformance.Start(ctx, conformance.Options{CRDDir: filepath.Join(o.moduleRoot, "deploy", "crds"), PollInterval: o.poll, Log: logFile})
	if err != nil {
		return fmt.Errorf("starting the embedded environment: %w", err)
	}
	report.EmbeddedStartSeconds = time.Since(start).Seconds()
	if err := embedded.Stop(); err != nil {
		return err
	}
	for i, n := range o.sizes {
		fmt.Fprintf(out, "measuring %d SecretSyncs...\n", n)
		r, err := measure(ctx, o, n, i == len(o.sizes)-1, logFile)
		if err != nil {
			return fmt.Errorf("%d SecretSyncs: %w", n, err)
		}
		report.Results = append(report.Results, r)
	}
	report.Duration = time.Since(report.Started).Round(time.Second).String()
	raw, err := json.MarshalIndent(report, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(o.out, raw, 0o644); err != nil {
		return err
	}
	report.print(out)
	fmt.Fprintf(out, "\nJSON: %s\n", o.out)
	return nil
}

// machine describes where the numbers were taken.
func machine() string {
	cpu := "unknown CPU"
	if raw, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(raw), "\n") {
			if name, ok := strings.CutPrefix(l, "model name\t: "); ok {
				cpu = name
				break
			}
		}
	}
	cores := strings.Count(readOr("/proc/cpuinfo", ""), "processor\t:")
	return fmt.Sprintf("%d × %s", cores, cpu)
}

func readOr(path, def string) string {
	raw, err := os.ReadFile(path)
	if err != nil {
		return def
	}
	return string(raw)
}
