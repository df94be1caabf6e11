package conformance

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	spcv1 "github.com/kvsync/kvsync/api/secretsstore/v1"
	ssv1alpha1 "github.com/kvsync/kvsync/api/secretsync/v1alpha1"
	"github.com/kvsync/kvsync/fakevault"
	"github.com/kvsync/kvsync/fakevault/entra"
	"github.com/kvsync/kvsync/fakevault/journal"
	"github.com/kvsync/kvsync/fakevault/keyvault"
	"github.com/kvsync/kvsync/faults"
	"github.com/kvsync/kvsync/scenarios"
	"github.com/kvsync/kvsync/troubleshoot"
)

// Result is the outcome of one scenario.
type Result struct {
	Scenario string   `json:"scenario"`
	Labels   []string `json:"labels,omitempty"`
	// Reasons are the reasons the scenario's steps expected.
	Reasons []string `json:"reasons"`
	Passed  bool     `json:"passed"`
	// Skipped says why the scenario did not run in this mode.
	Skipped string `json:"skipped,omitempty"`
	// Failure names the step, what it expected and what was seen.
	Failure string `json:"failure,omitempty"`
	// Doctor is what `kubectl kvsync doctor` named once the documented
	// reason held: reason/cause, e.g. ProviderError/vault-firewall; empty
	// where the doctor check does not run.
	Doctor string `json:"doctor,omitempty"`
	// Fix is the doctor's fix the scenario followed as printed (cause:
	// commands), or why it was not followed; empty when it has none.
	Fix      string        `json:"fix,omitempty"`
	Duration time.Duration `json:"duration"`
}

// Skipped is the result of a scenario the environment cannot run.
func Skipped(s scenarios.Scenario, why string) Result {
	return Result{Scenario: s.Name, Labels: s.Labels, Reasons: expectedReasons(s), Skipped: why}
}

// expectedReasons lists the reasons a scenario's steps expect.
func expectedReasons(s scenarios.Scenario) []string {
	var out []string
	for _, st := range s.Steps {
		if st.Expect != nil && !slices.Contains(out, st.Expect.Reason) {
			out = append(out, st.Expect.Reason)
		}
	}
	return out
}

// Unsupported returns why a scenario cannot run in the environment, or "".
func Unsupported(e *Environment, s scenarios.Scenario) string {
	all := slices.Clone(s.Faults)
	for _, st := range s.Steps {
		all = append(all, st.AddFaults...)
	}
	for _, f := range all {
		switch {
		case f.Kind.Layer() == "provider" && !e.World.ProviderFaults():
			return fmt.Sprintf("fault %s (%s) needs the provider in process; in %s mode the provider is another process", f.Name, f.Kind, e.Mode)
		}
	}
	return ""
}

// StepTimeout, when set, bounds how long a step's expectation may take to
// hold; zero derives the bound from the environment (see stepTimeout).
var StepTimeout time.Duration

// stepTimeout is how long a step's expectation may take to hold: a check
// reports within the controller's Mount deadline, after a change at once or
// at the next poll (two, allowing for jitter and backoff), plus time for the
// API server and the watches.
func (e *Environment) stepTimeout() time.Duration {
	if StepTimeout > 0 {
		return StepTimeout
	}
	return e.MountDeadline + 2*e.PollInterval + 15*time.Second
}

// extended reports whether the extended profile is under test.
func (e *Environment) extended() bool {
	return slices.Contains(e.Profiles, scenarios.Extended)
}

// Profiled returns why a scenario's profile is not under test, or "".
func Profiled(e *Environment, s scenarios.Scenario) string {
	if slices.Contains(e.Profiles, s.Profile) {
		return ""
	}
	return fmt.Sprintf("profile %s is not under test (profiles %s)", s.Profile, strings.Join(e.Profiles, ", "))
}

// Run runs one scenario in a namespace of its own and returns its result.
func (e *Environment) Run(ctx context.Context, s scenarios.Scenario) Result {
	start := time.Now()
	res := Result{Scenario: s.Name, Labels: s.Labels, Reasons: expectedReasons(s)}
	r := &run{env: e, s: s, ns: "sc-" + s.Name + e.RunSuffix, vault: vaultName(s.Name + e.RunSuffix), res: &res}
	defer r.cleanup(context.WithoutCancel(ctx))
	if err := r.do(ctx); err != nil {
		res.Failure = fmt.Sprintf("scenario %s: %v", s.Name, err)
	} else {
		res.Passed = true
	}
	res.Duration = time.Since(start).Round(time.Millisecond)
	return res
}

// run is one scenario's execution state.
type run struct {
	env      *Environment
	s        scenarios.Scenario
	ns       string
	vault    string
	clientID string
	faults   []string
	cleanups []func(context.Context) error
	// stepStart and injectedBefore mark where the current step's journal
	// entries and injections begin.
	stepStart      time.Time
	injectedBefore int
	res            *Result
}

func (r *run) do(ctx context.Context) error {
	c := r.env.Client
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: r.ns}}); err != nil {
		return fmt.Errorf("creating namespace: %w", err)
	}
	ss := r.secretSync()
	if !r.s.Cluster.NoServiceAccount {
		if err := c.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: r.ns, Name: ss.ServiceAccount}}); err != nil {
			return fmt.Errorf("creating ServiceAccount: %w", err)
		}
	}
	if err := r.seedVault(ss.ServiceAccount); err != nil {
		return err
	}
	for _, f := range r.s.Faults {
		if err := r.addFault(f); err != nil {
			return err
		}
	}
	if err := r.setupCluster(ctx, ss.Name); err != nil {
		return err
	}
	obj := r.secretSyncObject()
	watch, err := r.watch(ctx, ss.Name)
	if err != nil {
		return err
	}
	defer watch.stop()
	if err := c.Create(ctx, obj); err != nil {
		return fmt.Errorf("creating SecretSync: %w", err)
	}
	var before *corev1.Secret
	for i, st := range r.s.Steps {
		// What a step's expectation checks (conditions, the Secret, the
		// journal, the faults that fired) is what happened since the step
		// after the last one with an expectation began: a step without one
		// hands on what its action caused, which may already be the next
		// step's outcome (a controller that reacts to the action itself).
		if i == 0 || r.s.Steps[i-1].Expect != nil {
			before = r.secret(ctx, ss.Name)
			if i > 0 {
				// The first step's conditions are those since the
				// SecretSync was created, which began it.
				watch.reset()
			}
			r.stepStart = time.Now()
			injected, err := r.env.World.Injections()
			if err != nil {
				return fmt.Errorf("step %d: reading the faults journal: %w", i+1, err)
			}
			r.injectedBefore = len(injected)
		}
		if err := r.act(ctx, st, ss.Name); err != nil {
			var nf notFollowed
			if errors.As(err, &nf) {
				r.res.Fix = nf.Error()
				break
			}
			return fmt.Errorf("step %d: %w", i+1, err)
		}
		if st.Expect != nil {
			if err := r.expect(ctx, *st.Expect, ss.Name, before, watch); err != nil {
				return fmt.Errorf("step %d: %w", i+1, err)
			}
			if err := r.doctor(ctx, *st.Expect, ss.Name); err != nil {
				return fmt.Errorf("step %d: %w", i+1, err)
			}
		}
	}
	return r.leaks(ctx, ss.Name)
}

// doctor runs the environment's Doctor once, after the first step that
// expects the documented reason: it must name that reason (any success
// reason, for a success) and the scenario's cause.
func (r *run) doctor(ctx context.Context, e scenarios.Expectation, name string) error {
	want := r.s.Documented()
	if r.env.Doctor == nil || !r.env.extended() || r.res.Doctor != "" || e.Reason != want {
		return nil
	}
	d, err := r.env.Doctor(ctx, r.ns, name)
	if err != nil {
		return fmt.Errorf("kubectl kvsync doctor: %w", err)
	}
	r.res.Doctor = d.Reason + "/" + d.Cause.ID
	if raw, _ := json.Marshal(d); strings.Contains(string(raw), scenarios.Canary) {
		return fmt.Errorf("kubectl kvsync doctor printed a vault value")
	}
	// A poll may follow a success with another: any success will do.
	sameReason := d.Reason == want
	if doc, ok := troubleshoot.LookupReason(want); ok && doc.Success {
		sameReason = d.Success
	}
	if !sameReason || d.Cause.ID != r.s.Cause {
		return fmt.Errorf("kubectl kvsync doctor named %s (%s), want %s/%s", r.res.Doctor, d.Cause.Summary, want, r.s.Cause)
	}
	return nil
}

func (r *run) seedVault(serviceAccount string) error {
	v := r.s.Vault
	r.clientID = uuid.NewString()
	app := entra.Application{ClientID: r.clientID, ObjectID: r.clientID}
	if v.Federated == nil || *v.Federated {
		app.FederatedCredentials = []entra.FederatedCredential{{Issuer: r.env.Issuer, Subject: "system:serviceaccount:" + r.ns + ":" + serviceAccount}}
	}
	if err := r.env.World.AddApplication(app); err != nil {
		return fmt.Errorf("adding the identity: %w", err)
	}
	roles := v.Roles
	if len(roles) == 0 {
		roles = []string{keyvault.RoleCertificateUser}
	}
	cfg := keyvault.VaultConfig{Name: r.vault, TenantID: Tenant}
	if ap := v.AccessPolicy; ap != nil {
		cfg.UseAccessPolicies = true
		cfg.AccessPolicies = []keyvault.AccessPolicy{{ObjectID: r.clientID, Secrets: ap.Secrets, Keys: ap.Keys, Certificates: ap.Certificates}}
		if op := r.env.Operator; op != "" {
			cfg.AccessPolicies = append(cfg.AccessPolicies, keyvault.AccessPolicy{ObjectID: op, Secrets: []string{"all"}, Keys: []string{"all"}, Certificates: []string{"all"}})
		}
	} else {
		for _, role := range roles {
			cfg.RoleAssignments = append(cfg.RoleAssignments, keyvault.RoleAssignment{PrincipalID: r.clientID, Role: role})
		}
		if op := r.env.Operator; op != "" {
			cfg.RoleAssignments = append(cfg.RoleAssignments, keyvault.RoleAssignment{PrincipalID: op, Role: keyvault.RoleAdministrator})
		}
	}
	if v.Network != nil {
		cfg.Network = networkRules(*v.Network)
	}
	if err := r.env.World.CreateVault(cfg); err != nil {
		return fmt.Errorf("creating the vault: %w", err)
	}
	for _, s := range v.Secrets {
		if err := r.setSecret(s); err != nil {
			return err
		}
	}
	for _, cert := range v.Certificates {
		if err := r.env.World.CreateCertificate(r.vault, cert.Name, cert.KeyType, cert.ContentType, cert.DNSNames); err != nil {
			return fmt.Errorf("creating certificate %s: %w", cert.Name, err)
		}
	}
	for _, k := range v.Keys {
		if err := r.env.World.CreateKey(r.vault, k.Name, k.KeyType); err != nil {
			return fmt.Errorf("creating key %s: %w", k.Name, err)
		}
	}
	return nil
}

// setSecret adds the secret's versions, oldest first.
func (r *run) setSecret(s scenarios.VaultSecret) error {
	values := slices.Clone(s.Versions)
	if s.Value != "" {
		values = append(values, s.Value)
	}
	for i, val := range values {
		if err := r.env.World.SetSecret(r.vault, s.Name, val, s.ContentType, s.Disabled && i == len(values)-1); err != nil {
			return fmt.Errorf("setting secret %s: %w", s.Name, err)
		}
		if i < len(values)-1 {
			time.Sleep(1100 * time.Millisecond) // versions are ordered by creation second
		}
	}
	return nil
}

func (r *run) addFault(f faults.Fault) error {
	if f.Scope == (faults.Scope{}) {
		f.Scope.Vault = r.vault
	}
	f.Name = r.s.Name + "." + f.Name
	if err := r.env.World.AddFault(f); err != nil {
		return fmt.Errorf("adding fault: %w", err)
	}
	r.faults = append(r.faults, f.Name)
	return nil
}

func (r *run) clearFaults() {
	for _, name := range r.faults {
		r.env.World.ClearFault(name)
	}
	r.faults = nil
}

func (r *run) setupCluster(ctx context.Context, name string) error {
	c := r.env.Client
	cl := r.s.Cluster
	if fs := cl.ForeignSecret; fs != nil {
		data := map[string][]byte{}
		for k, v := range fs.Data {
			data[k] = []byte(v)
		}
		if _, err := faults.ForeignSecret(ctx, c, r.ns, name, fs.Labelled, data); err != nil {
			return err
		}
	}
	if p := cl.DenyPolicy; p != nil {
		cleanup, err := faults.DenyPolicy(ctx, c, "deny-"+r.ns, r.ns, p.Resource, p.Allow, p.Message)
		if err != nil {
			return err
		}
		r.cleanups = append(r.cleanups, cleanup)
		if err := r.waitForPolicy(ctx, p.Resource); err != nil {
			return err
		}
	}
	if cl.NoClass {
		return nil
	}
	class, err := r.classObject()
	if err != nil {
		return err
	}
	return c.Create(ctx, class)
}

// secretSync is the scenario's SecretSync with its defaults: name app,
// ServiceAccount workload.
func (r *run) secretSync() scenarios.SecretSync {
	ss := r.s.SecretSync
	if ss.Name == "" {
		ss.Name = "app"
	}
	if ss.ServiceAccount == "" {
		ss.ServiceAccount = "workload"
	}
	return ss
}

// secretSyncObject is the scenario's SecretSync object.
func (r *run) secretSyncObject() *ssv1alpha1.SecretSync {
	ss := r.secretSync()
	obj := &ssv1alpha1.SecretSync{
		ObjectMeta: metav1.ObjectMeta{Namespace: r.ns, Name: ss.Name},
		Spec: ssv1alpha1.SecretSyncSpec{ServiceAccountName: ss.ServiceAccount, SecretProviderClassName: "azure-kv",
			ForceSynchronization: ss.ForceSynchronization,
			SecretObject:         ssv1alpha1.SecretObject{Type: ss.Type, Labels: ss.Labels, Annotations: ss.Annotations, Data: secretObjectData(ss.Data)}},
	}
	return obj
}

// secretObjectData is spec.secretObject.data of a scenario's items.
func secretObjectData(items []scenarios.DataItem) []ssv1alpha1.SecretObjectData {
	var out []ssv1alpha1.SecretObjectData
	for _, d := range items {
		out = append(out, ssv1alpha1.SecretObjectData{TargetKey: d.TargetKey, SourcePath: d.SourcePath})
	}
	return out
}

// classObject is the scenario's SecretProviderClass azure-kv, reading its
// vault as its identity.
func (r *run) classObject() (*spcv1.SecretProviderClass, error) {
	objects, err := ObjectsParameter(r.s.Class.Objects...)
	if err != nil {
		return nil, err
	}
	params := map[string]string{"keyvaultName": r.vault, "tenantID": Tenant, "clientID": r.clientID, "objects": objects}
	for k, v := range r.s.Class.Parameters {
		if v == "" {
			delete(params, k)
		} else {
			params[k] = v
		}
	}
	return &spcv1.SecretProviderClass{ObjectMeta: metav1.ObjectMeta{Namespace: r.ns, Name: "azure-kv"},
		Spec: spcv1.SecretProviderClassSpec{Provider: "azure", Parameters: params}}, nil
}

// waitForPolicy waits until the API server enforces a new policy (it loads
// policies asynchronously).
func (r *run) waitForPolicy(ctx context.Context, resource string) error {
	deadline := time.Now().Add(r.env.stepTimeout())
	for time.Now().Before(deadline) {
		var err error
		if resource == "secrets" {
			probe := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: r.ns, Name: "policy-probe", Labels: map[string]string{"team": "blocked"}}}
			err = r.env.Client.Create(ctx, probe, client.DryRunAll)
		} else {
			return nil
		}
		if err != nil && strings.Contains(err.Error(), "ValidatingAdmissionPolicy") {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return errors.New("the ValidatingAdmissionPolicy was not enforced in time")
}

// networkRules are the fake vault's rules for a scenario's network.
func networkRules(n scenarios.VaultNetwork) keyvault.NetworkRules {
	return keyvault.NetworkRules{DefaultDeny: n.DefaultDeny, PublicNetworkAccessDisabled: n.PublicAccessDisabled}
}

// act performs a step's action.
func (r *run) act(ctx context.Context, st scenarios.Step, name string) error {
	c := r.env.Client
	switch {
	case st.SetSecret != nil:
		return r.setSecret(*st.SetSecret)
	case st.DisableSecret != "":
		return r.env.World.DisableLatest(r.vault, st.DisableSecret)
	case len(st.AddFaults) > 0:
		for _, f := range st.AddFaults {
			if err := r.addFault(f); err != nil {
				return err
			}
		}
	case st.ClearFaults:
		r.clearFaults()
	case st.SetNetwork != nil:
		if err := r.env.World.SetNetworkRules(r.vault, networkRules(*st.SetNetwork)); err != nil {
			return fmt.Errorf("setting the vault's network rules: %w", err)
		}
	case st.ForceSynchronization != "" || st.SetType != "":
		ss := &ssv1alpha1.SecretSync{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: r.ns, Name: name}, ss); err != nil {
			return err
		}
		if st.ForceSynchronization != "" {
			ss.Spec.ForceSynchronization = st.ForceSynchronization
		}
		if st.SetType != "" {
			ss.Spec.SecretObject.Type = st.SetType
		}
		return c.Update(ctx, ss)
	case st.DeleteSecret:
		return c.Delete(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: r.ns, Name: name}})
	case st.TakeOwnership != nil:
		t := st.TakeOwnership
		return faults.TakeOwnership(ctx, c, r.ns, name, t.Manager, t.Key, []byte(t.Value))
	case st.FollowFix != nil:
		err := r.followFix(ctx, *st.FollowFix, name)
		var nf notFollowed
		if instead := st.FollowFix.Instead; instead != nil && errors.As(err, &nf) {
			r.res.Fix = nf.Error() + "; the guide's fix taken instead"
			return r.act(ctx, *instead, name)
		}
		return err
	case len(st.SetClassParameters) > 0:
		class := &spcv1.SecretProviderClass{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: r.ns, Name: "azure-kv"}, class); err != nil {
			return err
		}
		maps.Copy(class.Spec.Parameters, st.SetClassParameters)
		return c.Update(ctx, class)
	}
	return nil
}

// expect waits until the expectation holds, or fails naming what was seen.
func (r *run) expect(ctx context.Context, want scenarios.Expectation, name string, before *corev1.Secret, w *watcher) error {
	deadline := time.Now().Add(r.env.stepTimeout())
	var last string
	for time.Now().Before(deadline) {
		mismatch := ""
		matched := false
		for _, c := range w.seen() {
			if m := r.conditionMismatch(want, c); m == "" {
				matched = true
				break
			} else {
				mismatch = m
			}
		}
		if matched {
			if m := r.secretMismatch(ctx, want, name, before); m != "" {
				mismatch = m
			} else if m := r.eventMismatch(ctx, want); m != "" {
				mismatch = m
			} else if m := r.journalMismatch(want); m != "" {
				mismatch = m
			} else {
				return nil
			}
		}
		if mismatch != "" {
			last = mismatch
		}
		time.Sleep(100 * time.Millisecond)
	}
	if last == "" {
		last = "no condition was reported"
	}
	var seen []string
	for _, c := range w.seen() {
		seen = append(seen, c.Type+"/"+c.Reason)
	}
	return fmt.Errorf("expected reason %s: %s; conditions written since the step began: [%s]", want.Reason, last, strings.Join(seen, ", "))
}

// conditionMismatch says how c differs from the expectation, or "". The
// message must hold the expected facts, with $(vaultHost) the scenario's
// vault host, and, with the extended profile, kvsync's wording.
func (r *run) conditionMismatch(want scenarios.Expectation, c metav1.Condition) string {
	switch {
	case c.Reason != want.Reason:
		return fmt.Sprintf("saw reason %s (%s)", c.Reason, c.Message)
	case want.Type != "" && c.Type != want.Type:
		return fmt.Sprintf("saw %s on condition %s, want %s", c.Reason, c.Type, want.Type)
	case want.Status != "" && string(c.Status) != want.Status:
		return fmt.Sprintf("saw status %s, want %s", c.Status, want.Status)
	}
	fragments := want.Message
	if r.env.extended() {
		fragments = append(slices.Clone(fragments), want.ExtendedMessage...)
	}
	for _, frag := range fragments {
		frag = strings.ReplaceAll(frag, scenarios.VaultHostVar, r.vault+"."+fakevault.VaultDomain)
		if !strings.Contains(c.Message, frag) {
			return fmt.Sprintf("message %q does not contain %q", c.Message, frag)
		}
	}
	if len(want.Items) > 0 {
		var summary struct {
			Items []struct{ TargetKey, Status string } `json:"items"`
		}
		if err := json.Unmarshal([]byte(c.Message), &summary); err != nil {
			return fmt.Sprintf("message is not the PartialSync summary: %v", err)
		}
		got := map[string]string{}
		for _, it := range summary.Items {
			got[it.TargetKey] = it.Status
		}
		if !maps.Equal(got, want.Items) {
			return fmt.Sprintf("summary items %v, want %v", got, want.Items)
		}
	}
	return ""
}

func (r *run) secretMismatch(ctx context.Context, want scenarios.Expectation, name string, before *corev1.Secret) string {
	e := want.Secret
	if e == nil {
		return ""
	}
	got := r.secret(ctx, name)
	switch {
	case e.Absent && got != nil:
		return "the Secret exists, want none"
	case e.Absent:
		return ""
	case got == nil:
		return "the Secret does not exist"
	case e.Unchanged && (before == nil || got.ResourceVersion != before.ResourceVersion):
		return "the Secret was written, want it unchanged"
	case e.Type != "" && string(got.Type) != e.Type:
		return fmt.Sprintf("the Secret's type is %s, want %s", got.Type, e.Type)
	}
	for k, v := range e.Data {
		if string(got.Data[k]) != v {
			return fmt.Sprintf("the Secret's key %s does not hold the expected value", k)
		}
	}
	for k, want := range e.PEM {
		if types := pemTypes(got.Data[k]); !slices.Equal(types, want) {
			return fmt.Sprintf("the Secret's key %s holds PEM blocks %v, want %v", k, types, want)
		}
	}
	return ""
}

// pemTypes are the types of the PEM blocks of data, in order.
func pemTypes(data []byte) []string {
	var types []string
	for {
		block, rest := pem.Decode(data)
		if block == nil {
			return types
		}
		types, data = append(types, block.Type), rest
	}
}

func (r *run) eventMismatch(ctx context.Context, want scenarios.Expectation) string {
	if want.Event == "" {
		return ""
	}
	list := &eventsv1.EventList{}
	if err := r.env.Client.List(ctx, list, client.InNamespace(r.ns)); err != nil {
		return err.Error()
	}
	for _, e := range list.Items {
		if e.Reason == want.Event {
			return ""
		}
	}
	return fmt.Sprintf("no Event with reason %s", want.Event)
}

// journalMismatch checks the step's fakevault journal entries (for the
// scenario's vault host or identity) and the faults it injected.
func (r *run) journalMismatch(want scenarios.Expectation) string {
	host := r.vault + "." + fakevault.VaultDomain
	var entries []journal.Entry
	all, err := r.env.World.Journal()
	if err != nil {
		return err.Error()
	}
	for _, e := range all {
		if !e.Time.Before(r.stepStart) && (e.Host == host || (e.Service == "entra" && e.Identity == r.clientID)) {
			entries = append(entries, e)
		}
	}
	for _, w := range want.Journal {
		if !slices.ContainsFunc(entries, func(e journal.Entry) bool {
			return (w.Service == "" || e.Service == w.Service) && (w.Operation == "" || e.Operation == w.Operation) &&
				(w.Status == 0 || e.Status == w.Status) && (w.ErrorCode == "" || e.ErrorCode == w.ErrorCode)
		}) {
			return fmt.Sprintf("no journal entry %+v among the step's %d entries", w, len(entries))
		}
	}
	injections, err := r.env.World.Injections()
	if err != nil {
		return err.Error()
	}
	if r.injectedBefore < len(injections) {
		injections = injections[r.injectedBefore:]
	} else {
		injections = nil
	}
	for _, name := range want.Injected {
		full := r.s.Name + "." + name
		if !slices.ContainsFunc(injections, func(i faults.Injection) bool { return i.Fault == full }) {
			return fmt.Sprintf("fault %s was not injected during the step", name)
		}
	}
	return ""
}

// leaks returns where a canary value of the scenario appears outside its
// Secret: the namespace's Events or the SecretSync's status.
func (r *run) leaks(ctx context.Context, name string) error {
	list := &eventsv1.EventList{}
	if err := r.env.Client.List(ctx, list, client.InNamespace(r.ns)); err != nil {
		return err
	}
	for _, e := range list.Items {
		if strings.Contains(e.Note, scenarios.Canary) {
			return fmt.Errorf("Event %s holds a vault value", e.Name)
		}
	}
	ss := &ssv1alpha1.SecretSync{}
	if err := r.env.Client.Get(ctx, client.ObjectKey{Namespace: r.ns, Name: name}, ss); err == nil {
		raw, _ := json.Marshal(ss.Status)
		if strings.Contains(string(raw), scenarios.Canary) {
			return errors.New("the SecretSync status holds a vault value")
		}
	}
	return nil
}

func (r *run) secret(ctx context.Context, name string) *corev1.Secret {
	s := &corev1.Secret{}
	if err := r.env.Client.Get(ctx, client.ObjectKey{Namespace: r.ns, Name: name}, s); err != nil {
		return nil
	}
	return s
}

func (r *run) cleanup(ctx context.Context) {
	r.clearFaults()
	for _, c := range r.cleanups {
		_ = c(ctx)
	}
	ss := &ssv1alpha1.SecretSync{ObjectMeta: metav1.ObjectMeta{Namespace: r.ns, Name: "app"}}
	if r.s.SecretSync.Name != "" {
		ss.Name = r.s.SecretSync.Name
	}
	if err := r.env.Client.Delete(ctx, ss); err != nil && !apierrors.IsNotFound(err) {
		return
	}
	if r.env.Mode == "cluster" {
		// A cluster outlives the run: its namespace goes too (the
		// cluster's namespace controller deletes what is in it).
		_ = r.env.Client.Delete(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: r.ns}})
	}
}

// watcher records every latest condition a SecretSync takes, so a brief
// outcome is not missed between two looks.
type watcher struct {
	stop func()
	mu   sync.Mutex
	all  []metav1.Condition
}

func (w *watcher) seen() []metav1.Condition {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.all)
}

// reset forgets what was seen before a step: its expectation holds only
// for a condition written after the step began.
func (w *watcher) reset() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.all = nil
}

func (r *run) watch(ctx context.Context, name string) (*watcher, error) {
	wc, err := client.NewWithWatch(r.env.Config, client.Options{Scheme: r.env.Client.Scheme()})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	wi, err := wc.Watch(ctx, &ssv1alpha1.SecretSyncList{}, client.InNamespace(r.ns), client.MatchingFields{"metadata.name": name})
	if err != nil {
		cancel()
		return nil, err
	}
	w := &watcher{stop: func() { wi.Stop(); cancel() }}
	go func() {
		for ev := range wi.ResultChan() {
			ss, ok := ev.Object.(*ssv1alpha1.SecretSync)
			if !ok || len(ss.Status.Conditions) == 0 {
				continue
			}
			w.mu.Lock()
			w.all = append(w.all, ss.Status.Conditions[len(ss.Status.Conditions)-1])
			w.mu.Unlock()
		}
	}()
	return w, nil
}

// vaultName derives a valid vault name from a scenario name.
func vaultName(scenario string) string {
	sum := sha256.Sum256([]byte(scenario))
	return "kv-" + hex.EncodeToString(sum[:])[:12]
}
