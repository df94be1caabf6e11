package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	spcv1 "github.com/kvsync/kvsync/api/secretsstore/v1"
	ssv1alpha1 "github.com/kvsync/kvsync/api/secretsync/v1alpha1"
	"github.com/kvsync/kvsync/provider"
	"github.com/kvsync/kvsync/troubleshoot/fleet"
)

// maxJitter bounds the jitter plan searches: a day.
const maxJitter = 24 * time.Hour

// vaultPlan is the plan for one vault in `plan -o json|yaml`.
type vaultPlan struct {
	// Vault is the vault's name, or "each" when the fleet's objects spread
	// evenly over --vaults vaults.
	Vault string `json:"vault"`
	// RequestsPerRound is the requests the vault receives when every
	// cluster checks once.
	RequestsPerRound float64 `json:"requestsPerRound"`
	// Wave and Steady are the throttle chances at the given jitter: of a
	// refresh wave, and of one poll interval of steady polling.
	Wave   float64 `json:"wave"`
	Steady float64 `json:"steady"`
	// SmallestJitterSeconds keeps a wave's chance at or under the target;
	// absent when no jitter up to a day does. It is also the shortest poll
	// interval that keeps steady polling under the target.
	SmallestJitterSeconds *int `json:"smallestJitterSeconds,omitempty"`
	// WaveAtSmallestJitter is the wave's chance with SmallestJitterSeconds.
	WaveAtSmallestJitter float64 `json:"waveAtSmallestJitter"`
}

// fleetPlan is `plan -o json|yaml`.
type fleetPlan struct {
	Clusters          int     `json:"clusters"`
	SecretsPerCluster float64 `json:"secretsPerCluster"`
	RequestsPerSecret float64 `json:"requestsPerSecret"`
	PollSeconds       int     `json:"rotationPollIntervalInSeconds"`
	JitterSeconds     int     `json:"jitterSeconds"`
	// LimitRequests per LimitWindowSeconds is the vault's limit.
	LimitRequests      int         `json:"limitRequests"`
	LimitWindowSeconds int         `json:"limitWindowSeconds"`
	ThrottleChance     float64     `json:"throttleChance"`
	Vaults             []vaultPlan `json:"vaults"`
}

func (c *cli) planCommand() *cobra.Command {
	f := fleet.Fleet{Vaults: 1, RequestsPerSecret: 1, Poll: time.Hour}
	var target float64
	var fromCluster, printTable bool
	cmd := &cobra.Command{
		Use:   "plan --clusters N (--secrets-per-cluster M | --from-cluster) [--poll S] [--jitter J] [--throttle-chance P] [--vaults K]",
		Short: "Plan jitterSeconds for a fleet of clusters reading the same vaults",
		Long: `plan answers how much jitterSeconds a fleet needs: the chance that a vault is
throttled (more than 4,000 requests in 10 s) in a refresh wave, when every
check of the fleet falls due at once and the jitter alone spreads them, and in
steady polling; and the smallest jitter that keeps a wave's chance under
--throttle-chance. --from-cluster counts the requests per vault of the
current cluster's SecretSyncs, the fleet being --clusters clusters like it.
The model and its assumptions: docs/fleet.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := c.checkOutput(); err != nil {
				return err
			}
			if printTable {
				return writeJitterTable(c.out, target)
			}
			if !fromCluster && !cmd.Flags().Changed("secrets-per-cluster") {
				return &exitError{2, fmt.Errorf("give --secrets-per-cluster, or --from-cluster to count them in the current cluster")}
			}
			if fromCluster {
				f.SecretsPerCluster = 1 // checked below, per vault
			}
			if err := f.Validate(); err != nil {
				return &exitError{2, err}
			}
			if target <= 0 || target >= 1 {
				return &exitError{2, fmt.Errorf("--throttle-chance must be between 0 and 1, got %g", target)}
			}
			plan := fleetPlan{Clusters: f.Clusters, SecretsPerCluster: f.SecretsPerCluster, RequestsPerSecret: f.RequestsPerSecret,
				PollSeconds: int(f.Poll.Seconds()), JitterSeconds: int(f.Jitter.Seconds()),
				LimitRequests: fleet.KeyVault.Requests, LimitWindowSeconds: int(fleet.KeyVault.Window.Seconds()), ThrottleChance: target}
			if fromCluster {
				cl, _, err := c.client()
				if err != nil {
					return &exitError{2, err}
				}
				perVault, skipped, err := requestsPerVault(cmd.Context(), cl)
				if err != nil {
					return &exitError{2, err}
				}
				for _, s := range skipped {
					fmt.Fprintf(cmd.ErrOrStderr(), "kubectl-kvsync: %s\n", s)
				}
				if len(perVault) == 0 {
					return &exitError{2, fmt.Errorf("no SecretSync of the cluster reads a vault through a valid SecretProviderClass: nothing to plan")}
				}
				plan.SecretsPerCluster = 0
				for _, vault := range sortedKeys(perVault) {
					plan.Vaults = append(plan.Vaults, planVault(vault, float64(f.Clusters)*float64(perVault[vault]), f, target))
					plan.SecretsPerCluster += float64(perVault[vault])
				}
			} else {
				plan.Vaults = []vaultPlan{planVault("each", f.RequestsPerVault(), f, target)}
			}
			if c.output != "" {
				return c.encode(plan)
			}
			printPlan(c.out, plan, f)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.IntVar(&f.Clusters, "clusters", 0, "Clusters in the fleet")
	fl.Float64Var(&f.SecretsPerCluster, "secrets-per-cluster", 0, "Vault objects one cluster reads per round of checks (each SecretSync reads every object of its class)")
	fl.IntVar(&f.Vaults, "vaults", 1, "Vaults the objects spread over evenly")
	fl.Float64Var(&f.RequestsPerSecret, "requests-per-secret", 1, "Vault requests per object read (1; 1+N with objectVersionHistory N)")
	fl.DurationVar(&f.Poll, "poll", time.Hour, "rotationPollIntervalInSeconds, as a duration")
	fl.DurationVar(&f.Jitter, "jitter", 0, "jitterSeconds, as a duration")
	fl.Float64Var(&target, "throttle-chance", 0.0001, "The largest acceptable chance that a refresh wave throttles a vault (0.0001 = 0.01%)")
	fl.BoolVar(&fromCluster, "from-cluster", false, "Count the requests per vault of the current cluster's SecretSyncs")
	fl.BoolVar(&printTable, "table", false, "Print the smallest jitter for 10 to 10,000 clusters and 5 to 50 secrets each, one vault, as a Markdown table")
	return cmd
}

// planVault plans one vault receiving n requests per round.
func planVault(vault string, n float64, f fleet.Fleet, target float64) vaultPlan {
	p := vaultPlan{Vault: vault, RequestsPerRound: n,
		Wave: fleet.WaveChance(n, f.Jitter, fleet.KeyVault), Steady: fleet.SteadyChance(n, f.Poll, fleet.KeyVault)}
	if j, ok := fleet.SmallestJitter(n, fleet.KeyVault, target, maxJitter); ok {
		seconds := int(j.Seconds())
		p.SmallestJitterSeconds = &seconds
		p.WaveAtSmallestJitter = fleet.WaveChance(n, j, fleet.KeyVault)
	}
	return p
}

// requestsPerVault counts, per vault, the requests one round of the
// cluster's checks makes: every object of its class for every SecretSync
// (each check reads its whole class; checks of one class within a few
// seconds share one read, which a jitter longer than that rarely lets
// happen). Classes that do not parse are skipped, and said so.
func requestsPerVault(ctx context.Context, cl client.Client) (map[string]int, []string, error) {
	syncs := &ssv1alpha1.SecretSyncList{}
	if err := cl.List(ctx, syncs); err != nil {
		return nil, nil, fmt.Errorf("listing SecretSyncs: %w", err)
	}
	readers := map[types.NamespacedName]int{}
	for _, ss := range syncs.Items {
		readers[types.NamespacedName{Namespace: ss.Namespace, Name: ss.Spec.SecretProviderClassName}]++
	}
	out := map[string]int{}
	var skipped []string
	for key, n := range readers {
		class := &spcv1.SecretProviderClass{}
		if err := cl.Get(ctx, key, class); err != nil {
			skipped = append(skipped, fmt.Sprintf("skipping SecretProviderClass %s: %v", key, err))
			continue
		}
		params, err := provider.ParseParameters(class.Spec.Parameters)
		if err != nil {
			skipped = append(skipped, fmt.Sprintf("skipping SecretProviderClass %s: %v", key, err))
			continue
		}
		for _, o := range params.Objects {
			out[params.Vault] += n * o.Requests()
		}
	}
	sort.Strings(skipped)
	return out, skipped, nil
}

func sortedKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func printPlan(w io.Writer, p fleetPlan, f fleet.Fleet) {
	fmt.Fprintf(w, "Fleet: %d clusters; poll %s, jitter %s. Vault limit: %d requests per %ds.\n",
		p.Clusters, f.Poll, f.Jitter, p.LimitRequests, p.LimitWindowSeconds)
	tw := table(w)
	fmt.Fprintf(tw, "VAULT\tREQUESTS PER ROUND\tWAVE AT JITTER %s\tSTEADY, PER %s\tSMALLEST JITTER (WAVE ≤ %s)\n", f.Jitter, f.Poll, percent(p.ThrottleChance))
	need, feasible, steady := 0, true, false
	for _, v := range p.Vaults {
		smallest := "none within a day"
		if v.SmallestJitterSeconds != nil {
			smallest = fmt.Sprintf("%ds (%s)", *v.SmallestJitterSeconds, percent(v.WaveAtSmallestJitter))
			need = max(need, *v.SmallestJitterSeconds)
		} else {
			feasible = false
		}
		steady = steady || v.Steady > p.ThrottleChance
		fmt.Fprintf(tw, "%s\t%.0f\t%s\t%s\t%s\n", v.Vault, v.RequestsPerRound, percent(v.Wave), percent(v.Steady), smallest)
	}
	tw.Flush()
	switch {
	case !feasible:
		fmt.Fprintln(w, "No jitter within a day keeps a wave under the target: spread the secrets over more vaults, or read fewer.")
	case need == 0:
		fmt.Fprintln(w, "No jitter is needed: a whole round fits under the limit.")
	case p.JitterSeconds >= need:
		fmt.Fprintf(w, "jitterSeconds %d is enough (at least %d needed).\n", p.JitterSeconds, need)
	default:
		fmt.Fprintf(w, "Set jitterSeconds to at least %d.\n", need)
	}
	if steady && feasible {
		fmt.Fprintf(w, "Steady polling is throttled too: poll no more often than every %ds (rotationPollIntervalInSeconds), or spread the secrets over more vaults.\n", need)
	}
}

// percent renders a chance for people: 100%, 0.0074%, 3e-09%, 0%.
func percent(p float64) string {
	switch {
	case p == 0:
		return "0%"
	case p >= 0.01:
		return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.2f", p*100), "0"), ".") + "%"
	case p >= 1e-6:
		return fmt.Sprintf("%.2g%%", p*100)
	}
	return fmt.Sprintf("%.1e%%", p*100)
}

// Table sizes: the fleets docs/fleet.md plans for.
var (
	tableClusters = []int{10, 100, 1000, 10000}
	tableSecrets  = []float64{5, 10, 20, 50}
)

// writeJitterTable prints the smallest jitter per fleet size, one vault,
// as the Markdown table of docs/fleet.md.
func writeJitterTable(w io.Writer, target float64) error {
	fmt.Fprintf(w, "| clusters \\ secrets per cluster |")
	for _, m := range tableSecrets {
		fmt.Fprintf(w, " %g |", m)
	}
	fmt.Fprintf(w, "\n|---:|")
	for range tableSecrets {
		fmt.Fprintf(w, "---:|")
	}
	fmt.Fprintln(w)
	for _, n := range tableClusters {
		fmt.Fprintf(w, "| %d |", n)
		for _, m := range tableSecrets {
			j, ok := fleet.SmallestJitter(float64(n)*m, fleet.KeyVault, target, maxJitter)
			if !ok {
				fmt.Fprintf(w, " over a day |")
				continue
			}
			fmt.Fprintf(w, " %ds |", int(j.Seconds()))
		}
		fmt.Fprintln(w)
	}
	return nil
}
