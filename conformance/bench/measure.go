package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	spcv1 "github.com/kvsync/kvsync/api/secretsstore/v1"
	ssv1alpha1 "github.com/kvsync/kvsync/api/secretsync/v1alpha1"
	"github.com/kvsync/kvsync/conformance"
	"github.com/kvsync/kvsync/controller"
	"github.com/kvsync/kvsync/fakevault/keyvault"
	"github.com/kvsync/kvsync/faults"
	"github.com/kvsync/kvsync/scenarios"
)

// Layout of the measured world: one SecretProviderClass (and vault) per 10
// SecretSyncs, 3 objects each; one namespace, ServiceAccount and identity
// per 100 SecretSyncs.
const (
	syncsPerClass     = 10
	objectsPerClass   = 3
	syncsPerNamespace = 100
)

// Result is the measurement of one size.
type Result struct {
	SecretSyncs int `json:"secretSyncs"`
	// StartSeconds is the time to start the components (envtest included)
	// and install the chart's RBAC and policies.
	StartSeconds float64 `json:"startSeconds"`
	// SyncSeconds is the time from the first SecretSync created to all of
	// them synced.
	SyncSeconds float64 `json:"syncSeconds"`
	// FloorSeconds is the least the same creations and syncs can take on
	// the same API server: the harness's creations with one Secret create
	// and one status patch each, as the controller (see floor).
	FloorSeconds float64 `json:"floorSeconds"`
	Initial      Counts  `json:"initial"`
	// InitialEvents counts the Events of the initial sync by reason.
	InitialEvents map[string]int `json:"initialEvents"`
	// FirstPoll are the counts of the poll and a half after the initial
	// sync: the first check of every SecretSync after its creation.
	FirstPoll Counts `json:"firstPoll"`
	// SteadyPerPoll are the steady state's counts per poll.
	SteadyPerPoll Counts `json:"steadyPerPoll"`
	// SteadyAfterSeconds is when the steady state's window began, after
	// the initial sync: once its first poll had passed and a quarter poll
	// went by without a Secret or status write.
	SteadyAfterSeconds float64 `json:"steadyAfterSeconds"`
	// RSSMaxBytes and HeapMaxBytes are the controller's highest memory
	// over the steady state's samples (what a memory limit must hold),
	// RSSMedianBytes and HeapMedianBytes their median.
	RSSMaxBytes     float64 `json:"rssMaxBytes"`
	RSSMedianBytes  float64 `json:"rssMedianBytes"`
	HeapMaxBytes    float64 `json:"heapMaxBytes"`
	HeapMedianBytes float64 `json:"heapMedianBytes"`
	// DistinctReads is the number of distinct (identity, vault, object,
	// version) a poll must read at least.
	DistinctReads int `json:"distinctReads"`
	// Classes is the number of distinct Mount calls a poll must make at
	// least: one per (class, identity, objects read).
	Classes int     `json:"classes"`
	Change  *Change `json:"change,omitempty"`
	Outage  *Outage `json:"outage,omitempty"`
	// SharedVault is set when every class read one vault limited as Key
	// Vault is.
	SharedVault *SharedVault `json:"sharedVault,omitempty"`
	Memory      *Memory      `json:"memory,omitempty"`
	// Tokens are the token requests from the end of the initial sync to
	// the end of the measurement.
	Tokens *Tokens `json:"tokens,omitempty"`
	// PhaseSeconds is the harness's time in each phase (start, sync,
	// steady, change, failures, memory, tokens).
	PhaseSeconds map[string]float64 `json:"phaseSeconds"`
}

// Tokens are the token requests over the window from the end of the
// initial sync to the end of the measurement: the refreshes of the tokens
// the sync got (a ServiceAccount token is refreshed 480 s after it was
// issued, an Entra ID token within its hour), when the window is that long.
type Tokens struct {
	WindowSeconds float64 `json:"windowSeconds"`
	// ServiceAccountTokens are the controller's TokenRequests;
	// EntraTokens the provider's token requests at Entra ID.
	ServiceAccountTokens float64 `json:"serviceAccountTokens"`
	EntraTokens          float64 `json:"entraTokens"`
}

// Change is one vault value changing.
type Change struct {
	// Dependents are the Secrets that read the value.
	Dependents int `json:"dependents"`
	// SecretWrites were made from the change to a poll later.
	SecretWrites float64 `json:"secretWrites"`
	// LatencySeconds is from the change to every dependent Secret updated.
	LatencySeconds float64 `json:"latencySeconds"`
	// Events counts the Events from the change on, by reason.
	Events map[string]int `json:"events"`
}

// Outage is every vault answering 503 for a while, then coming back.
type Outage struct {
	Seconds float64 `json:"seconds"`
	// VaultRequestsPerMinute is the mean rate the vaults received during
	// the outage; PeakPerMinute the highest rate over a 10 s window.
	VaultRequestsPerMinute float64 `json:"vaultRequestsPerMinute"`
	PeakPerMinute          float64 `json:"peakPerMinute"`
	// SecretWrites during the outage: a failure never touches a Secret.
	SecretWrites float64 `json:"secretWrites"`
	StatusWrites float64 `json:"statusWrites"`
	// RecoverySeconds is from the vaults' return to every SecretSync
	// synced again.
	RecoverySeconds float64 `json:"recoverySeconds"`
}

// SharedVault is throttle safety: every class reads one vault whose limit
// is Key Vault's, then the vault is forced to throttle.
type SharedVault struct {
	// Limit is the vault's limit: Requests per Window seconds.
	LimitRequests int     `json:"limitRequests"`
	LimitWindow   float64 `json:"limitWindowSeconds"`
	// Throttled are the 429 answers the vault gave while not forced to,
	// over the steady-state window.
	Throttled float64 `json:"throttled"`
	// PeakPerSecond is the highest request rate the vault saw over a 10 s
	// window, and MeanPerSecond the mean, from the initial sync on.
	PeakPerSecond float64 `json:"peakPerSecond"`
	MeanPerSecond float64 `json:"meanPerSecond"`
	Forced        *Forced `json:"forced,omitempty"`
}

// Forced is the vault answering every request 429 with Retry-After.
type Forced struct {
	Seconds           float64 `json:"seconds"`
	RetryAfterSeconds float64 `json:"retryAfterSeconds"`
	// VaultRequests are what the vault received meanwhile (every one a
	// 429), and PerRetryAfter the mean per Retry-After period.
	VaultRequests float64 `json:"vaultRequests"`
	PerRetryAfter float64 `json:"perRetryAfter"`
	// Deferred are the checks the controller put off without calling the
	// vault.
	Deferred     float64 `json:"deferred"`
	SecretWrites float64 `json:"secretWrites"`
	StatusWrites float64 `json:"statusWrites"`
	// RecoverySeconds is from the throttling's end to every SecretSync
	// synced.
	RecoverySeconds float64 `json:"recoverySeconds"`
}

// Memory is the controller's memory without and with unrelated Secrets:
// the highest of each window's samples.
type Memory struct {
	Unrelated   int     `json:"unrelatedSecrets"`
	RSSBefore   float64 `json:"rssBeforeBytes"`
	RSSAfter    float64 `json:"rssAfterBytes"`
	HeapBefore  float64 `json:"heapBeforeBytes"`
	HeapAfter   float64 `json:"heapAfterBytes"`
	RSSRatio    float64 `json:"rssRatio"`
	HeapRatio   float64 `json:"heapRatio"`
	SteadyCores float64 `json:"steadyCores"`
}

// world is the measured world of one size.
type world struct {
	env *conformance.Environment
	c   client.WithWatch
	n   int
	// shared is set when every class reads one vault, limited as Key
	// Vault is; vaults then holds it once per class.
	shared  bool
	vaults  []string
	clients []string // identity per namespace
	seen    map[string]bool
}

// measure measures n SecretSyncs; the memory with unrelated Secrets is
// measured at the largest size only, the outage at o.outageAt.
func measure(ctx context.Context, o options, n int, largest bool, log io.Writer) (Result, error) {
	res := Result{SecretSyncs: n, DistinctReads: n / syncsPerClass * objectsPerClass, Classes: n / syncsPerClass}
	started := time.Now()
	env, prof, err := startEnvironment(ctx, o, log)
	if err != nil {
		return res, err
	}
	defer func() { _ = env.Stop() }()
	res.StartSeconds = time.Since(started).Seconds()
	w, err := newWorld(ctx, env, n, o.sharedVaultAt > 0 && n >= o.sharedVaultAt)
	if err != nil {
		return res, err
	}
	m := &measurement{o: o, w: w, prof: prof, largest: largest, res: &res}
	res.PhaseSeconds = map[string]float64{"start": res.StartSeconds}
	for _, p := range m.phases() {
		mark := time.Now()
		if err := p.run(ctx); err != nil {
			return res, err
		}
		res.PhaseSeconds[p.name] = time.Since(mark).Seconds()
	}
	end, err := read(ctx, env)
	if err != nil {
		return res, err
	}
	res.Tokens = tokenRates(diff(m.synced, end, time.Since(m.syncedAt).Seconds()))
	return res, nil
}

// tokenRates are the token requests of c, a window after the initial sync.
func tokenRates(c Counts) *Tokens {
	return &Tokens{WindowSeconds: c.Seconds, ServiceAccountTokens: c.TokenRequests, EntraTokens: c.EntraTokens}
}

// startEnvironment starts the components as separate processes, the
// controller installed but held back until the floor is measured
// (measurement.startController starts it), with Key Vault's read rate,
// then o.controller's flags. With
// o.pprofDir it also serves pprof, and the returned profiler reads it;
// otherwise the profiler is nil. Stop the Environment when done.
func startEnvironment(ctx context.Context, o options, log io.Writer) (*conformance.Environment, *profiler, error) {
	args := append([]string{fmt.Sprintf("--max-vault-reads-per-second=%v", controller.DefaultVaultReadsPerSecond)}, o.controller...)
	var prof *profiler
	if o.pprofDir != "" {
		addr, err := freeAddr()
		if err != nil {
			return nil, nil, err
		}
		prof = &profiler{addr: addr, dir: o.pprofDir}
		args = append(args, "--pprof-bind-address="+addr)
	}
	env, err := conformance.StartExternal(ctx, conformance.ExternalOptions{ModuleRoot: o.moduleRoot, ControllerArgs: args, ControllerEnv: o.controllerEnv,
		Options: conformance.Options{CRDDir: filepath.Join(o.moduleRoot, "deploy", "crds"), PollInterval: o.poll, Log: log, WithoutController: true}})
	if err != nil {
		return nil, nil, err
	}
	return env, prof, nil
}

// newWorld creates in env the world of n SecretSyncs, all but the
// SecretSyncs themselves, with a client of its own; shared makes every
// class read one vault limited as Key Vault is.
func newWorld(ctx context.Context, env *conformance.Environment, n int, shared bool) (*world, error) {
	cfg := rest.CopyConfig(env.Config)
	cfg.QPS, cfg.Burst = 2000, 4000 // the harness is not what is measured
	c, err := client.NewWithWatch(cfg, client.Options{Scheme: env.Client.Scheme()})
	if err != nil {
		return nil, err
	}
	w := &world{env: env, c: c, n: n, shared: shared}
	if err := w.setup(ctx); err != nil {
		return nil, err
	}
	return w, nil
}

// measurement is the measurement of one size in a started world: its
// phases run in order, each filling its part of res.
type measurement struct {
	o       options
	w       *world
	prof    *profiler // nil profiles nothing
	largest bool
	res     *Result
	// rates is the shared vault's request rate from the initial sync on;
	// nil without a shared vault.
	rates *rateWatch
	// synced and syncedAt are the counters and the time when the initial
	// sync ended.
	synced   sample
	syncedAt time.Time
}

// phase is one step of a measurement; the time it takes is reported under
// its name in Result.PhaseSeconds.
type phase struct {
	name string
	run  func(context.Context) error
}

// phases are the measurement's phases in the order they must run: each
// starts from the state the one before left.
func (m *measurement) phases() []phase {
	return []phase{
		{"floor", m.floor},
		{"controller", m.startController},
		{"sync", m.initialSync},
		{"steady", m.steadyState},
		{"change", m.valueChange},
		{"failures", m.failures},
		{"memory", m.unrelatedMemory},
		{"tokens", m.tokenRefresh},
	}
}

// startController starts the controller, which the floor ran without.
func (m *measurement) startController(ctx context.Context) error {
	return m.w.env.StartControllerProcess(ctx)
}

// initialSync creates every SecretSync and waits until all are synced,
// counting what the components did meanwhile (the harness's own
// SecretSync creations excluded) and the Events. With a shared vault, the
// vault's request rate is watched from here on.
func (m *measurement) initialSync(ctx context.Context) error {
	res, env := m.res, m.w.env
	before, err := read(ctx, env)
	if err != nil {
		return err
	}
	if m.w.shared {
		m.rates = watchRate(ctx, env)
	}
	start := time.Now()
	profiled := m.prof.cpu(ctx, fmt.Sprintf("controller-%d-initial", m.w.n), m.o.profile)
	if err := m.w.createSyncs(ctx); err != nil {
		return err
	}
	if err := m.w.waitSynced(ctx, 10*time.Minute); err != nil {
		return err
	}
	res.SyncSeconds = time.Since(start).Seconds()
	m.syncedAt = time.Now()
	if err := profiled(); err != nil {
		return err
	}
	after, err := read(ctx, env)
	if err != nil {
		return err
	}
	m.synced = after
	res.Initial = diff(before, after, res.SyncSeconds)
	delete(res.Initial.Writes, "secretsyncs POST") // the harness's own
	res.Initial.OtherWrites -= float64(res.SecretSyncs)
	res.InitialEvents, err = m.w.events(ctx)
	return err
}

// steadyState counts what the first poll after the initial sync does (a
// poll and a half from its end), waits until a quarter poll goes by without
// a Secret or status write, then counts o.polls polls and samples the
// controller's memory, profiling its CPU and heap meanwhile. With a shared
// vault, it also reports the vault's throttling and request rate.
func (m *measurement) steadyState(ctx context.Context) error {
	o, res := m.o, m.res
	sleep(ctx, o.poll+o.poll/2)
	first, err := read(ctx, m.w.env)
	if err != nil {
		return err
	}
	res.FirstPoll = diff(m.synced, first, time.Since(m.syncedAt).Seconds())
	if err := m.w.quiet(ctx, o.poll/4, 5*o.poll); err != nil {
		return err
	}
	res.SteadyAfterSeconds = time.Since(m.syncedAt).Seconds()
	window := time.Duration(o.polls) * o.poll
	profiled := m.prof.cpu(ctx, fmt.Sprintf("controller-%d-steady", m.w.n), window)
	steady, err := m.w.settle(ctx, window, o.poll/4)
	if err != nil {
		return err
	}
	if err := profiled(); err != nil {
		return err
	}
	if err := m.prof.heap(ctx, fmt.Sprintf("controller-%d-steady", m.w.n)); err != nil {
		return err
	}
	before, after := steady.first, steady.last
	res.SteadyPerPoll = diff(before, after, window.Seconds()).per(float64(o.polls)) // CPU stays a mean over the window
	res.RSSMaxBytes, res.RSSMedianBytes = steady.rss.max(), steady.rss.median()
	res.HeapMaxBytes, res.HeapMedianBytes = steady.heap.max(), steady.heap.median()
	if m.w.shared {
		res.SharedVault = &SharedVault{LimitRequests: keyvault.SecretsLimit.Requests, LimitWindow: keyvault.SecretsLimit.Window.Seconds(), Throttled: after.throttled - before.throttled}
		res.SharedVault.PeakPerSecond, res.SharedVault.MeanPerSecond = m.rates.stop()
	}
	return nil
}

// valueChange changes one value and measures how its dependents follow.
func (m *measurement) valueChange(ctx context.Context) (err error) {
	m.res.Change, err = m.w.change(ctx, m.o.poll)
	return err
}

// failures forces the shared vault, if any, to throttle for o.throttle,
// then, at size o.outageAt, takes every vault down for o.outage and back.
// A zero duration skips its failure.
func (m *measurement) failures(ctx context.Context) (err error) {
	o, res := m.o, m.res
	if m.w.shared && o.throttle > 0 {
		if res.SharedVault.Forced, err = m.w.forceThrottle(ctx, o.throttle); err != nil {
			return err
		}
	}
	if o.outage > 0 && m.w.n == o.outageAt {
		if res.Outage, err = m.w.outage(ctx, o.outage); err != nil {
			return err
		}
	}
	return nil
}

// tokenRefresh makes the token window of the size with the outage, the
// longest, outlast the refresh of the ServiceAccount tokens the initial
// sync got, so that Result.Tokens counts one refresh of each: it waits
// until TokenRefreshAfter, a poll (a token is refreshed by the first check
// that needs it) and 10 s have passed since the initial sync.
func (m *measurement) tokenRefresh(ctx context.Context) error {
	if m.o.outage <= 0 || m.w.n != m.o.outageAt {
		return nil
	}
	sleep(ctx, time.Until(m.syncedAt.Add(controller.TokenRefreshAfter+m.o.poll+10*time.Second)))
	return ctx.Err()
}

// unrelatedMemory measures the controller's memory with o.unrelated
// unrelated Secrets against the steady state, at the largest size only.
func (m *measurement) unrelatedMemory(ctx context.Context) (err error) {
	if m.o.unrelated > 0 && m.largest {
		m.res.Memory, err = m.w.memory(ctx, m.o.unrelated, m.o.poll)
	}
	return err
}

func (w *world) namespace(i int) string { return fmt.Sprintf("bench-%d", i/syncsPerNamespace) }
func (w *world) class(i int) int        { return i / syncsPerClass }

// setup creates the namespaces, ServiceAccounts, identities, vaults and
// classes.
func (w *world) setup(ctx context.Context) error {
	namespaces := (w.n + syncsPerNamespace - 1) / syncsPerNamespace
	for ns := range namespaces {
		id, err := w.env.AddWorkloadIdentity(ctx, w.c, w.namespace(ns*syncsPerNamespace), "workload")
		if err != nil {
			return err
		}
		w.clients = append(w.clients, id)
	}
	classes := w.n / syncsPerClass
	if w.shared {
		var roles []keyvault.RoleAssignment
		for _, id := range w.clients {
			roles = append(roles, keyvault.RoleAssignment{PrincipalID: id, Role: keyvault.RoleSecretsUser})
		}
		limit := keyvault.SecretsLimit
		if err := w.env.World.CreateVault(keyvault.VaultConfig{Name: "kvbench-shared", TenantID: conformance.Tenant, RoleAssignments: roles, RateLimit: &limit}); err != nil {
			return err
		}
	}
	for k := range classes {
		ns := k * syncsPerClass / syncsPerNamespace
		vault, prefix := fmt.Sprintf("kvbench-%05d", k), ""
		if w.shared {
			vault, prefix = "kvbench-shared", fmt.Sprintf("c%05d-", k)
		} else if err := w.env.World.CreateVault(keyvault.VaultConfig{Name: vault, TenantID: conformance.Tenant,
			RoleAssignments: []keyvault.RoleAssignment{{PrincipalID: w.clients[ns], Role: keyvault.RoleSecretsUser}}}); err != nil {
			return err
		}
		w.vaults = append(w.vaults, vault)
		var entries []scenarios.ClassObject
		for j := range objectsPerClass {
			if err := w.env.World.SetSecret(vault, fmt.Sprintf("%ss%d", prefix, j), fmt.Sprintf("kvsync-canary-%d-%d-v1", k, j), "", false); err != nil {
				return err
			}
			entry := scenarios.ClassObject{ObjectName: fmt.Sprintf("%ss%d", prefix, j), ObjectType: "secret"}
			if prefix != "" {
				entry.ObjectAlias = fmt.Sprintf("s%d", j)
			}
			entries = append(entries, entry)
		}
		objects, err := conformance.ObjectsParameter(entries...)
		if err != nil {
			return err
		}
		spc := &spcv1.SecretProviderClass{ObjectMeta: metav1.ObjectMeta{Namespace: w.namespace(k * syncsPerClass), Name: fmt.Sprintf("kv-%05d", k)},
			Spec: spcv1.SecretProviderClassSpec{Provider: "azure", Parameters: map[string]string{"keyvaultName": vault,
				"tenantID": conformance.Tenant, "clientID": w.clients[ns], "objects": objects}}}
		if err := w.c.Create(ctx, spc); err != nil {
			return err
		}
	}
	return nil
}

// createSyncs creates the SecretSyncs, 8 at a time.
func (w *world) createSyncs(ctx context.Context) error {
	return parallel(w.n, 8, func(i int) error {
		return w.c.Create(ctx, w.secretSync(i, "app"))
	})
}

// secretSync is the i-th SecretSync of the world, named prefix-i.
func (w *world) secretSync(i int, prefix string) *ssv1alpha1.SecretSync {
	ss := &ssv1alpha1.SecretSync{ObjectMeta: metav1.ObjectMeta{Namespace: w.namespace(i), Name: fmt.Sprintf("%s-%05d", prefix, i)},
		Spec: ssv1alpha1.SecretSyncSpec{ServiceAccountName: "workload", SecretProviderClassName: fmt.Sprintf("kv-%05d", w.class(i)),
			SecretObject: ssv1alpha1.SecretObject{Type: string(corev1.SecretTypeOpaque)}}}
	for j := range objectsPerClass {
		ss.Spec.SecretObject.Data = append(ss.Spec.SecretObject.Data, ssv1alpha1.SecretObjectData{SourcePath: fmt.Sprintf("s%d", j), TargetKey: fmt.Sprintf("k%d", j)})
	}
	return ss
}

// waitSynced waits until every SecretSync's latest condition is a success.
// It lists once and then watches, so that waiting adds no load of its own.
func (w *world) waitSynced(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	list := &ssv1alpha1.SecretSyncList{}
	if err := w.c.List(ctx, list); err != nil {
		return err
	}
	state := map[client.ObjectKey]metav1.Condition{}
	observe := func(ss *ssv1alpha1.SecretSync) {
		if n := len(ss.Status.Conditions); n > 0 {
			state[client.ObjectKeyFromObject(ss)] = ss.Status.Conditions[n-1]
		}
	}
	synced := func() (int, string) {
		n, failing := 0, ""
		for k, c := range state {
			if c.Status == metav1.ConditionTrue {
				n++
			} else if failing == "" {
				failing = fmt.Sprintf("%s: %s: %s", k, c.Reason, c.Message)
			}
		}
		return n, failing
	}
	for i := range list.Items {
		observe(&list.Items[i])
	}
	watcher, err := w.c.Watch(ctx, &ssv1alpha1.SecretSyncList{}, &client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: list.ResourceVersion}})
	if err != nil {
		return err
	}
	defer watcher.Stop()
	for {
		if n, _ := synced(); n == w.n {
			return nil
		}
		select {
		case ev, ok := <-watcher.ResultChan():
			if !ok {
				// The API server ended the watch: start again from a list.
				return w.waitSynced(ctx, time.Until(deadlineOf(ctx)))
			}
			if ss, ok := ev.Object.(*ssv1alpha1.SecretSync); ok {
				observe(ss)
			}
		case <-ctx.Done():
			n, failing := synced()
			return fmt.Errorf("%d of %d SecretSyncs synced after %s (e.g. %s)", n, w.n, timeout, failing)
		}
	}
}

func deadlineOf(ctx context.Context) time.Time {
	d, _ := ctx.Deadline()
	return d
}

// change sets a new version of one object of class 0 and waits for the
// Secrets that read it.
func (w *world) change(ctx context.Context, poll time.Duration) (*Change, error) {
	before, err := read(ctx, w.env)
	if err != nil {
		return nil, err
	}
	const value = "kvsync-canary-0-0-v2"
	start := time.Now()
	name := "s0"
	if w.shared {
		name = "c00000-s0"
	}
	if err := w.env.World.SetSecret(w.vaults[0], name, value, "", false); err != nil {
		return nil, err
	}
	ch := &Change{Dependents: syncsPerClass}
	deadline := start.Add(3*poll + 30*time.Second)
	for {
		updated := 0
		for i := range syncsPerClass {
			s := &corev1.Secret{}
			if err := w.c.Get(ctx, client.ObjectKey{Namespace: w.namespace(i), Name: fmt.Sprintf("app-%05d", i)}, s); err == nil && string(s.Data["k0"]) == value {
				updated++
			}
		}
		if updated == syncsPerClass {
			ch.LatencySeconds = time.Since(start).Seconds()
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%d of %d dependent Secrets updated %s after the change", updated, syncsPerClass, time.Since(start).Round(time.Second))
		}
		sleep(ctx, 100*time.Millisecond)
	}
	sleep(ctx, poll) // one more poll: nothing else may be written
	after, err := read(ctx, w.env)
	if err != nil {
		return nil, err
	}
	ch.SecretWrites = diff(before, after, time.Since(start).Seconds()).SecretWrites
	if ch.Events, err = w.events(ctx); err != nil {
		return nil, err
	}
	return ch, nil
}

// events counts the Events of the SecretSyncs by reason, and resets the
// count by remembering what was seen.
func (w *world) events(ctx context.Context) (map[string]int, error) {
	list := &eventsv1.EventList{}
	if err := w.c.List(ctx, list); err != nil {
		return nil, err
	}
	if w.seen == nil {
		w.seen = map[string]bool{}
	}
	out := map[string]int{}
	for _, e := range list.Items {
		if w.seen[string(e.UID)] || e.Regarding.Kind != "SecretSync" {
			continue
		}
		w.seen[string(e.UID)] = true
		out[e.Type+" "+e.Reason]++
	}
	return out, nil
}

// outage makes every vault answer 503 ServiceUnavailable for d, counting
// what the vaults and the API server receive, then waits for every
// SecretSync to be synced again.
func (w *world) outage(ctx context.Context, d time.Duration) (*Outage, error) {
	before, err := read(ctx, w.env)
	if err != nil {
		return nil, err
	}
	if err := w.env.World.AddFault(faults.Fault{Name: "bench-outage", Kind: faults.VaultError, Status: 503, Code: "ServiceUnavailable",
		Message: "The service is unavailable (bench outage)."}); err != nil {
		return nil, err
	}
	out := &Outage{}
	start := time.Now()
	last, lastAt := before, start
	for time.Since(start) < d {
		sleep(ctx, min(10*time.Second, d-time.Since(start)))
		now, err := read(ctx, w.env)
		if err != nil {
			w.env.World.ClearFault("bench-outage")
			return nil, err
		}
		if s := time.Since(lastAt).Seconds(); s >= 5 {
			out.PeakPerMinute = max(out.PeakPerMinute, (now.vault-last.vault)/s*60)
		}
		last, lastAt = now, time.Now()
	}
	w.env.World.ClearFault("bench-outage")
	out.Seconds = time.Since(start).Seconds()
	c := diff(before, last, out.Seconds)
	out.VaultRequestsPerMinute = c.VaultRequests / out.Seconds * 60
	out.SecretWrites, out.StatusWrites = c.SecretWrites, c.StatusWrites
	back := time.Now()
	if err := w.waitSynced(ctx, 15*time.Minute); err != nil {
		return nil, fmt.Errorf("after the outage: %w", err)
	}
	out.RecoverySeconds = time.Since(back).Seconds()
	return out, nil
}

// memory measures the controller after creating unrelated 1 KiB Secrets,
// against the steady state before.
func (w *world) memory(ctx context.Context, unrelated int, poll time.Duration) (*Memory, error) {
	// The phases before (an outage, a change) leave their own garbage: the
	// comparison starts from a window of its own.
	before, err := w.settle(ctx, poll, poll/4)
	if err != nil {
		return nil, err
	}
	m := &Memory{Unrelated: unrelated, RSSBefore: before.rss.max(), HeapBefore: before.heap.max(), SteadyCores: before.cores}
	if err := w.c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "unrelated"}}); err != nil {
		return nil, err
	}
	payload := []byte(strings.Repeat("x", 1024))
	if err := parallel(unrelated, 16, func(i int) error {
		return w.c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "unrelated", Name: fmt.Sprintf("other-%05d", i)},
			Data: map[string][]byte{"payload": payload}})
	}); err != nil {
		return nil, err
	}
	after, err := w.settle(ctx, 3*poll/2, poll/4)
	if err != nil {
		return nil, err
	}
	m.RSSAfter, m.HeapAfter = after.rss.max(), after.heap.max()
	m.RSSRatio, m.HeapRatio = m.RSSAfter/m.RSSBefore, m.HeapAfter/m.HeapBefore
	return m, nil
}

// settled is what settle saw: the first and last samples, every RSS and
// heap sample, and the controller's mean CPU.
type settled struct {
	first, last sample
	rss, heap   samples
	cores       float64
}

// samples are the values of one gauge over a window.
type samples []float64

// max is the highest sample.
func (s samples) max() float64 {
	if len(s) == 0 {
		return 0
	}
	return slices.Max(s)
}

// median is the middle sample (the mean of the two middle ones).
func (s samples) median() float64 {
	if len(s) == 0 {
		return 0
	}
	sorted := slices.Sorted(slices.Values(s))
	if n := len(sorted); n%2 == 0 {
		return (sorted[n/2-1] + sorted[n/2]) / 2
	}
	return sorted[len(sorted)/2]
}

// settle samples the counters every interval for d.
func (w *world) settle(ctx context.Context, d, interval time.Duration) (settled, error) {
	first, err := read(ctx, w.env)
	if err != nil {
		return settled{}, err
	}
	s := settled{first: first, last: first, rss: samples{first.rss}, heap: samples{first.heap}}
	start := time.Now()
	for time.Since(start) < d {
		sleep(ctx, min(interval, d-time.Since(start)))
		if s.last, err = read(ctx, w.env); err != nil {
			return settled{}, err
		}
		s.rss, s.heap = append(s.rss, s.last.rss), append(s.heap, s.last.heap)
	}
	s.cores = (s.last.cpu - s.first.cpu) / time.Since(start).Seconds()
	return s, nil
}

// quiet waits until interval passes without a Secret or SecretSync status
// write, at most max.
func (w *world) quiet(ctx context.Context, interval, max time.Duration) error {
	last, err := read(ctx, w.env)
	if err != nil {
		return err
	}
	for start := time.Now(); time.Since(start) < max; {
		sleep(ctx, interval)
		if err := ctx.Err(); err != nil {
			return err
		}
		next, err := read(ctx, w.env)
		if err != nil {
			return err
		}
		if c := diff(last, next, 0); c.SecretWrites == 0 && c.StatusWrites == 0 {
			return nil
		}
		last = next
	}
	return nil
}

// parallel runs do(0..n-1) on workers goroutines and returns the first
// error.
func parallel(n, workers int, do func(i int) error) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		next  = make(chan int)
	)
	for range workers {
		wg.Go(func() {
			for i := range next {
				if err := do(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return first
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
