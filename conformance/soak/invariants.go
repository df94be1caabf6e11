package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ssv1alpha1 "github.com/kvsync/kvsync/api/secretsync/v1alpha1"
	"github.com/kvsync/kvsync/conformance"
)

// checker holds the invariants' counts and violations.
type checker struct {
	w *world

	mu         sync.Mutex
	checks     map[string]int
	violations []string
	// keys are the targetKeys each managed Secret has held: a key once
	// written is never removed.
	keys map[client.ObjectKey]map[string]bool
	// rateFrom is where the next rate check starts in the vaults' journal.
	rateFrom time.Time
}

func newChecker(w *world) *checker {
	return &checker{w: w, checks: map[string]int{}, keys: map[client.ObjectKey]map[string]bool{}, rateFrom: time.Now()}
}

func (c *checker) count(invariant string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.checks[invariant]++
}

// snapshot returns the violations so far.
func (c *checker) snapshot() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string{}, c.violations...)
}

func (c *checker) violate(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.violations = append(c.violations, fmt.Sprintf(format, args...))
}

// watchSecrets checks every change of a managed Secret until ctx ends: it
// is never deleted, never loses a key, and holds only values its objects
// have had. The value itself is never reported, only where it was.
func (c *checker) watchSecrets(ctx context.Context) error {
	list := &corev1.SecretList{}
	relist := func() error {
		if err := c.w.c.List(ctx, list, client.HasLabels{ssv1alpha1.ManagedLabel}); err != nil {
			return err
		}
		listed := map[client.ObjectKey]bool{}
		for i := range list.Items {
			listed[client.ObjectKeyFromObject(&list.Items[i])] = true
			c.secret(watch.Modified, &list.Items[i])
		}
		c.mu.Lock()
		var gone []client.ObjectKey
		for key := range c.keys {
			if !listed[key] {
				gone = append(gone, key)
			}
		}
		c.mu.Unlock()
		for _, key := range gone {
			c.violate("Secret %s was deleted while its SecretSync exists", key)
		}
		return nil
	}
	if err := relist(); err != nil {
		return err
	}
	// A watch or list that fails is tried again for a minute: the API
	// server may be restarting.
	failing := time.Time{}
	retry := func(err error) error {
		if failing.IsZero() {
			failing = time.Now()
		}
		if time.Since(failing) > time.Minute {
			return fmt.Errorf("watching managed Secrets: %w", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
		return nil
	}
	for ctx.Err() == nil {
		watcher, err := c.w.c.Watch(ctx, &corev1.SecretList{}, client.HasLabels{ssv1alpha1.ManagedLabel},
			&client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: list.ResourceVersion}})
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if err := retry(err); err != nil {
				return err
			}
			continue
		}
		failing = time.Time{}
		expired := false
		for ev := range watcher.ResultChan() {
			if s, ok := ev.Object.(*corev1.Secret); ok {
				c.secret(ev.Type, s)
				list.ResourceVersion = s.ResourceVersion
			} else if ev.Type == watch.Error {
				expired = true // e.g. 410 Gone: start again from a list
			}
		}
		watcher.Stop()
		for expired && ctx.Err() == nil {
			err := relist()
			if err == nil {
				break
			}
			if err := retry(err); err != nil {
				return err
			}
		}
	}
	return nil
}

func (c *checker) secret(t watch.EventType, s *corev1.Secret) {
	key := client.ObjectKeyFromObject(s)
	objs, managed := c.w.syncs[key]
	if !managed {
		return // a foreign Secret with the label: checkForeign watches it
	}
	c.count("managed Secret changes checked")
	if t == watch.Deleted {
		c.violate("Secret %s was deleted while its SecretSync exists", key)
		return
	}
	c.mu.Lock()
	held := c.keys[key]
	if held == nil {
		held = map[string]bool{}
		c.keys[key] = held
	}
	lost := []string{}
	for k := range held {
		if _, ok := s.Data[k]; !ok {
			lost = append(lost, k)
		}
	}
	for k := range s.Data {
		held[k] = true
	}
	c.mu.Unlock()
	if len(lost) > 0 {
		slices.Sort(lost)
		c.violate("Secret %s lost key(s) %s (resourceVersion %s)", key, strings.Join(lost, ", "), s.ResourceVersion)
	}
	for j, o := range objs {
		k := fmt.Sprintf("k%d", j)
		v, ok := s.Data[k]
		switch {
		case !ok:
		case len(v) == 0:
			c.violate("Secret %s: key %s is empty (resourceVersion %s)", key, k, s.ResourceVersion)
		case !c.w.known(o, string(v)):
			c.violate("Secret %s: key %s holds a value object %s/%s never had (resourceVersion %s)", key, k, o.vault, o.name, s.ResourceVersion)
		}
	}
}

// checkForeign checks that no foreign Secret changed.
func (c *checker) checkForeign(ctx context.Context) error {
	for key, want := range c.w.foreign {
		got := &corev1.Secret{}
		if err := c.w.c.Get(ctx, key, got); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			c.violate("foreign Secret %s: %v", key, err)
			continue
		}
		c.count("foreign Secret checks")
		if got.ResourceVersion != want.ResourceVersion || !maps.EqualFunc(got.Data, want.Data, bytes.Equal) ||
			!maps.Equal(got.Labels, want.Labels) || !maps.Equal(got.Annotations, want.Annotations) {
			c.violate("foreign Secret %s changed (resourceVersion %s, was %s)", key, got.ResourceVersion, want.ResourceVersion)
			want.ResourceVersion = got.ResourceVersion // report each change once
		}
	}
	return nil
}

// checkRate checks the vaults' journal since the last check: no vault
// answered 429 of its own (only injected throttling), and records the
// busiest vault's rate.
func (c *checker) checkRate(peak *float64) error {
	entries, err := c.w.env.World.Journal()
	if err != nil {
		return err
	}
	from := c.rateFrom
	now := time.Now()
	perVault := map[string]int{}
	for _, e := range entries {
		if e.Service != "keyvault" || !e.Time.After(from) {
			continue
		}
		vault, _, _ := strings.Cut(e.Host, ".")
		perVault[vault]++
		if e.Status == 429 && e.Fault == "" {
			c.violate("vault %s throttled a request of its own at %s: the controller exceeded Key Vault's limit", vault, e.Time.Format(time.RFC3339))
		}
	}
	c.count("vault rate checks")
	for _, n := range perVault {
		*peak = max(*peak, float64(n)/now.Sub(from).Seconds())
	}
	c.rateFrom = now
	return nil
}

// checkLeaks looks for any value the soak wrote to a vault outside the
// Secrets: in the logs, Events, SecretSync statuses and metrics.
func (c *checker) checkLeaks(ctx context.Context, logs *conformance.LogBuffer) error {
	where := map[string]string{"logs": logs.String()}
	events := &eventsv1.EventList{}
	if err := c.w.c.List(ctx, events); err != nil {
		return err
	}
	raw, _ := json.Marshal(events)
	where["Events"] = string(raw)
	core := &corev1.EventList{}
	if err := c.w.c.List(ctx, core); err != nil {
		return err
	}
	raw, _ = json.Marshal(core)
	where["core Events"] = string(raw)
	syncs := &ssv1alpha1.SecretSyncList{}
	if err := c.w.c.List(ctx, syncs); err != nil {
		return err
	}
	raw, _ = json.Marshal(syncs)
	where["SecretSync objects"] = string(raw)
	if c.w.env.Metrics != nil {
		m, err := c.w.env.Metrics()
		if err != nil {
			return err
		}
		where["controller metrics"] = m
	}
	for _, name := range slices.Sorted(maps.Keys(where)) {
		c.count("leak scans")
		if i := strings.Index(where[name], canaryPrefix); i >= 0 {
			c.violate("a vault value reached the %s (at byte %d)", name, i)
		}
	}
	return nil
}

// initialSync waits, at most 5 minutes, until the world's SecretSyncs have
// synced for the first time.
func (c *checker) initialSync(ctx context.Context) error {
	if _, err := c.converge(ctx, 5*time.Minute, "being created"); err != nil {
		return err
	}
	if v := c.snapshot(); len(v) > 0 {
		return fmt.Errorf("the initial sync did not complete: %s", v[0])
	}
	return nil
}

// converge waits until every SecretSync that must converge holds its
// objects' current values and reports success, and returns how long it
// took; a violation is recorded for each one that did not within limit
// after what happened (e.g. "the faults ended").
func (c *checker) converge(ctx context.Context, limit time.Duration, after string) (time.Duration, error) {
	start := time.Now()
	for {
		behind := c.behind(ctx)
		if len(behind) == 0 {
			c.count("convergence checks")
			return time.Since(start), nil
		}
		if time.Since(start) > limit {
			slices.Sort(behind)
			for _, b := range behind {
				c.violate("%s did not converge within %s after %s", b, limit, after)
			}
			return time.Since(start), nil
		}
		select {
		case <-ctx.Done():
			return time.Since(start), ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// behind lists the SecretSyncs whose Secret or status is not yet current.
func (c *checker) behind(ctx context.Context) []string {
	var out []string
	for key, objs := range c.w.syncs {
		s := &corev1.Secret{}
		if err := c.w.c.Get(ctx, key, s); err != nil {
			out = append(out, fmt.Sprintf("%s (Secret: %v)", key, err))
			continue
		}
		stale := false
		for j, o := range objs {
			if string(s.Data[fmt.Sprintf("k%d", j)]) != c.w.current(o) {
				stale = true
			}
		}
		ss := &ssv1alpha1.SecretSync{}
		if err := c.w.c.Get(ctx, key, ss); err != nil {
			out = append(out, fmt.Sprintf("%s (SecretSync: %v)", key, err))
			continue
		}
		n := len(ss.Status.Conditions)
		switch {
		case stale:
			out = append(out, fmt.Sprintf("%s (stale values)", key))
		case n == 0 || ss.Status.Conditions[n-1].Status != metav1.ConditionTrue:
			reason := "no condition"
			if n > 0 {
				reason = ss.Status.Conditions[n-1].Reason
			}
			out = append(out, fmt.Sprintf("%s (%s)", key, reason))
		}
	}
	return out
}
