package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	spcv1 "github.com/kvsync/kvsync/api/secretsstore/v1"
	ssv1alpha1 "github.com/kvsync/kvsync/api/secretsync/v1alpha1"
	"github.com/kvsync/kvsync/conformance"
	"github.com/kvsync/kvsync/fakevault/entra"
	"github.com/kvsync/kvsync/fakevault/keyvault"
	"github.com/kvsync/kvsync/scenarios"
	"github.com/kvsync/kvsync/troubleshoot/fleet"
)

// vaultName is the vault every cluster of the fleet reads.
const vaultName = "kv-fleet"

// Setting is one jitter the fleet is run with, and what its waves did.
type Setting struct {
	Jitter time.Duration `json:"jitter"`
	// Predicted is the planner's chance that a wave throttles the vault.
	Predicted float64 `json:"predicted"`
	// Throttled of Waves waves met at least one 429.
	Waves     int     `json:"waves"`
	Throttled int     `json:"throttled"`
	Rate      float64 `json:"rate"`
	// Requests is the vault's secret reads per wave, 429s included, on
	// average; Amplification that per check of the wave (1 when nothing
	// was retried).
	Requests      float64 `json:"requests"`
	Amplification float64 `json:"amplification"`
	// Current is the time from the controllers' start until every Secret
	// held the vault's new value: the median and the longest wave.
	CurrentMedian time.Duration `json:"currentMedian"`
	CurrentMax    time.Duration `json:"currentMax"`
}

// Drawn compares the planner with arrivals drawn at a fleet's scale.
type Drawn struct {
	Requests  float64       `json:"requests"`
	Jitter    time.Duration `json:"jitter"`
	Predicted float64       `json:"predicted"`
	Drawn     float64       `json:"drawn"`
	Trials    int           `json:"trials"`
}

// Report is what a fleet run measured.
type Report struct {
	Clusters int `json:"clusters"`
	Secrets  int `json:"secretsPerCluster"`
	// Limit is the vault's limit, scaled down with the fleet.
	Limit    keyvault.RateLimit `json:"limit"`
	Settings []Setting          `json:"settings"`
	Drawn    []Drawn            `json:"drawn,omitempty"`
}

// world is the fleet: one API server, one fakevault, one provider, and a
// namespace per cluster, each with its own controller.
type world struct {
	env      *conformance.Environment
	o        options
	clientID string
	// values is the value generation the vault holds.
	values int
}

func namespace(i int) string { return fmt.Sprintf("fleet-%d", i) }
func object(j int) string    { return fmt.Sprintf("s-%d", j) }

// value is secret j's value in generation g.
func value(j, g int) string { return fmt.Sprintf("%s-fleet-%d-%d", scenarios.Canary, j, g) }

// setup creates the vault, the identity every cluster's ServiceAccount
// federates with, and per cluster a class and a SecretSync per secret.
func (w *world) setup(ctx context.Context) error {
	env := w.env
	w.clientID = uuid.NewString()
	app := entra.Application{ClientID: w.clientID, ObjectID: w.clientID}
	for i := range w.o.clusters {
		app.FederatedCredentials = append(app.FederatedCredentials, entra.FederatedCredential{Issuer: env.Issuer,
			Subject: "system:serviceaccount:" + namespace(i) + ":workload"})
	}
	if err := env.World.AddApplication(app); err != nil {
		return fmt.Errorf("adding the fleet's identity: %w", err)
	}
	if err := env.World.CreateVault(keyvault.VaultConfig{Name: vaultName, TenantID: conformance.Tenant,
		RoleAssignments: []keyvault.RoleAssignment{{PrincipalID: w.clientID, Role: keyvault.RoleSecretsUser}}}); err != nil {
		return fmt.Errorf("creating the vault: %w", err)
	}
	if err := w.setValues(0); err != nil {
		return err
	}
	c := env.Client
	for i := range w.o.clusters {
		ns := namespace(i)
		for _, obj := range []client.Object{&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}},
			&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "workload"}}} {
			if err := c.Create(ctx, obj); err != nil {
				return fmt.Errorf("creating %s: %w", client.ObjectKeyFromObject(obj), err)
			}
		}
		for j := range w.o.secrets {
			objects, err := conformance.ObjectsParameter(scenarios.ClassObject{ObjectName: object(j), ObjectType: "secret"})
			if err != nil {
				return err
			}
			class := &spcv1.SecretProviderClass{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: object(j)},
				Spec: spcv1.SecretProviderClassSpec{Provider: "azure", Parameters: map[string]string{
					"keyvaultName": vaultName, "tenantID": conformance.Tenant, "clientID": w.clientID, "objects": objects}}}
			ss := &ssv1alpha1.SecretSync{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: object(j)},
				Spec: ssv1alpha1.SecretSyncSpec{ServiceAccountName: "workload", SecretProviderClassName: object(j),
					SecretObject: ssv1alpha1.SecretObject{Type: "Opaque", Data: []ssv1alpha1.SecretObjectData{{TargetKey: "value", SourcePath: object(j)}}}}}
			for _, obj := range []client.Object{class, ss} {
				if err := c.Create(ctx, obj); err != nil {
					return fmt.Errorf("creating %s: %w", client.ObjectKeyFromObject(obj), err)
				}
			}
		}
	}
	return nil
}

// setValues writes generation g of every secret.
func (w *world) setValues(g int) error {
	for j := range w.o.secrets {
		if err := w.env.World.SetSecret(vaultName, object(j), value(j, g), "", false); err != nil {
			return fmt.Errorf("setting %s: %w", object(j), err)
		}
	}
	w.values = g
	return nil
}

// startControllers starts every cluster's controller at once, each with
// its own hash key, and returns what stops them all.
func (w *world) startControllers(ctx context.Context, jitter time.Duration) (func(), error) {
	var stops []func()
	stopAll := func() {
		var wg sync.WaitGroup
		for _, stop := range stops {
			wg.Go(stop)
		}
		wg.Wait()
	}
	for i := range w.o.clusters {
		stop, err := w.env.StartController(ctx, conformance.ControllerOptions{Namespace: namespace(i),
			HashKey: []byte(fmt.Sprintf("fleet cluster %d: its own hash key", i)), PollInterval: w.o.poll, Jitter: jitter})
		if err != nil {
			stopAll()
			return nil, fmt.Errorf("starting the controller of %s: %w", namespace(i), err)
		}
		stops = append(stops, stop)
	}
	return stopAll, nil
}

// waitCurrent waits until every Secret of the fleet holds the vault's
// current values.
func (w *world) waitCurrent(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		stale := 0
		for i := range w.o.clusters {
			list := &corev1.SecretList{}
			if err := w.env.Client.List(ctx, list, client.InNamespace(namespace(i))); err != nil {
				return err
			}
			current := 0
			for _, s := range list.Items {
				var j int
				if _, err := fmt.Sscanf(s.Name, "s-%d", &j); err == nil && string(s.Data["value"]) == value(j, w.values) {
					current++
				}
			}
			stale += w.o.secrets - current
		}
		if stale == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d Secrets still stale after %s", stale, w.o.clusters*w.o.secrets, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// reads counts the vault's secret reads since t, and the 429s among them.
func (w *world) reads(since time.Time) (total, throttled int, err error) {
	entries, err := w.env.World.Journal()
	if err != nil {
		return 0, 0, err
	}
	for _, e := range entries {
		if e.Service != "keyvault" || e.Operation != "GetSecret" || e.Time.Before(since) {
			continue
		}
		total++
		if e.Status == 429 {
			throttled++
		}
	}
	return total, throttled, nil
}

// run measures one jitter: waves of a fleet-wide restart, each after every
// secret of the vault changed, so that every cluster reads every secret
// once in the wave.
func (w *world) run(ctx context.Context, jitter time.Duration, log io.Writer) (Setting, error) {
	n := float64(w.o.clusters * w.o.secrets)
	s := Setting{Jitter: jitter, Predicted: fleet.WaveChance(n, jitter, fleet.Limit{Requests: w.o.limit, Window: w.o.window})}
	var currents []time.Duration
	var requests int
	for wave := range w.o.waves {
		if err := w.setValues(w.values + 1); err != nil {
			return s, err
		}
		// Let the previous wave's requests leave the limit's window.
		time.Sleep(w.o.window)
		start := time.Now()
		stop, err := w.startControllers(ctx, jitter)
		if err != nil {
			return s, err
		}
		err = w.waitCurrent(ctx, jitter+w.o.window+2*time.Minute)
		current := time.Since(start)
		stop()
		if err != nil {
			return s, fmt.Errorf("wave %d with jitter %s: %w", wave+1, jitter, err)
		}
		total, throttled, err := w.reads(start)
		if err != nil {
			return s, err
		}
		s.Waves++
		if throttled > 0 {
			s.Throttled++
		}
		requests += total
		currents = append(currents, current)
		fmt.Fprintf(log, "fleet: jitter %s wave %d: %d reads, %d throttled, every Secret current after %s\n",
			jitter, wave+1, total, throttled, current.Round(time.Millisecond))
	}
	s.Rate = float64(s.Throttled) / float64(s.Waves)
	s.Requests = float64(requests) / float64(s.Waves)
	s.Amplification = s.Requests / n
	slices.Sort(currents)
	s.CurrentMedian, s.CurrentMax = currents[len(currents)/2], currents[len(currents)-1]
	return s, nil
}

// jitters are the settings a run measures: none, the one the planner
// expects to throttle about half the waves, and the planner's smallest
// jitter for the target.
func jitters(o options) ([]time.Duration, error) {
	n := float64(o.clusters * o.secrets)
	l := fleet.Limit{Requests: o.limit, Window: o.window}
	planned, ok := fleet.SmallestJitter(n, l, o.target, time.Hour)
	if !ok {
		return nil, errors.New("no jitter within an hour brings the scaled fleet under its limit: raise --limit")
	}
	half := time.Duration(0)
	for j := time.Second; j < planned; j += time.Second {
		if math.Abs(fleet.WaveChance(n, j, l)-0.5) < math.Abs(fleet.WaveChance(n, half, l)-0.5) {
			half = j
		}
	}
	return slices.Compact([]time.Duration{0, half, planned}), nil
}

// drawn compares the planner with drawn arrivals at fleet scale: for each
// size, at the jitters the planner puts at a half, a twentieth and the
// target chance of 1 in 10,000.
func drawn(trials int, rng *rand.Rand) []Drawn {
	var out []Drawn
	for _, n := range []float64{5_000, 20_000, 50_000} {
		for _, p := range []float64{0.5, 0.05, 1e-4} {
			j, ok := fleet.SmallestJitter(n, fleet.KeyVault, p, 24*time.Hour)
			if !ok || (len(out) > 0 && out[len(out)-1].Requests == n && out[len(out)-1].Jitter == j) {
				continue
			}
			out = append(out, Drawn{Requests: n, Jitter: j, Predicted: fleet.WaveChance(n, j, fleet.KeyVault),
				Drawn: fleet.Simulate(n, j, fleet.KeyVault, trials, rng), Trials: trials})
		}
	}
	return out
}
