package controller

import (
	"context"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// maxMountCacheTTL bounds how long a Mount result is shared.
const maxMountCacheTTL = 10 * time.Second

// splitTTL is how long a Mount call of several objects, some of which
// failed alone while others did not, is replaced by one call per object.
const splitTTL = 5 * time.Minute

// mountKey identifies Mount calls that must return the same files: same
// provider, same class generation, same namespace and ServiceAccount (the
// identity), same objects.
type mountKey struct {
	provider       string
	class          types.UID
	generation     int64
	namespace      string
	serviceAccount string
	objects        string
}

// mountCache shares the files of successful Mount calls between the
// SecretSyncs that would make the same call within a short window, so that
// SecretSyncs reading one class with one identity cost the vault one read
// per poll, not one each. Only files are kept, in memory, and only until
// they expire.
type mountCache struct {
	ttl time.Duration
	// maxWait bounds how long a check waits for another's call in progress
	// before it calls the provider itself.
	maxWait time.Duration

	mu      sync.Mutex
	entries map[mountKey]mountEntry
	// flights are the Mount calls in progress, which routine checks of the
	// same call wait for instead of calling the provider too.
	flights map[mountKey]*flight
	// splits are the calls of several objects some of which fail alone,
	// until when they are made one object at a time.
	splits map[mountKey]time.Time
}

// mounted is what a successful Mount returned: the files by path and the
// versions of the objects read, by the provider's object ID.
type mounted struct {
	files    map[string][]byte
	versions map[string]string
}

// flight is a Mount call in progress; result is set, on success, before
// done is closed.
type flight struct {
	done   chan struct{}
	result *mounted
}

type mountEntry struct {
	result  *mounted
	expires time.Time
}

// newMountCache returns a cache sharing files for ttl (zero shares none, but
// still remembers splits), whose waits for a call in progress last at most
// maxWait: the longest a Mount call may take.
func newMountCache(ttl, maxWait time.Duration) *mountCache {
	return &mountCache{ttl: ttl, maxWait: maxWait, entries: map[mountKey]mountEntry{}, flights: map[mountKey]*flight{}, splits: map[mountKey]time.Time{}}
}

// wait returns the files of a Mount made for key that has not expired, or,
// when the same call is in progress, waits for it and returns its files if
// it succeeded. It waits at most maxWait, and not past ctx.
func (c *mountCache) wait(ctx context.Context, key mountKey, now time.Time) (*mounted, bool) {
	if c == nil || c.ttl <= 0 {
		return nil, false
	}
	c.mu.Lock()
	if e, ok := c.entries[key]; ok && now.Before(e.expires) {
		c.mu.Unlock()
		return e.result, true
	}
	f, ok := c.flights[key]
	c.mu.Unlock()
	if !ok {
		return nil, false
	}
	timer := time.NewTimer(c.maxWait)
	defer timer.Stop()
	select {
	case <-f.done:
		return f.result, f.result != nil
	case <-ctx.Done():
		return nil, false
	case <-timer.C:
		return nil, false
	}
}

// begin records a Mount call for key in progress and returns the function
// that ends it with its files (nil on failure). The caller must call end on
// every path, deferred, or checks waiting for the call wait until maxWait.
// A call already in progress is left as is, and its end is not this
// caller's.
func (c *mountCache) begin(key mountKey) (end func(result *mounted)) {
	if c == nil || c.ttl <= 0 {
		return func(*mounted) {}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.flights[key]; ok {
		return func(*mounted) {}
	}
	f := &flight{done: make(chan struct{})}
	c.flights[key] = f
	return func(result *mounted) {
		c.mu.Lock()
		delete(c.flights, key)
		c.mu.Unlock()
		f.result = result
		close(f.done)
	}
}

// put records the files of a successful Mount and drops expired entries.
func (c *mountCache) put(key mountKey, result *mounted, now time.Time) {
	if c == nil || c.ttl <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, e := range c.entries {
		if !now.Before(e.expires) {
			delete(c.entries, k)
		}
	}
	c.entries[key] = mountEntry{result: result, expires: now.Add(c.ttl)}
}

// split reports whether the call for key is made one object at a time.
// Splits are remembered whatever the sharing window, even with sharing off.
func (c *mountCache) split(key mountKey, now time.Time) bool {
	if c == nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	until, ok := c.splits[key]
	if ok && !now.Before(until) {
		delete(c.splits, key)
		return false
	}
	return ok
}

// markSplit makes the call for key one object at a time for splitTTL, and
// drops expired splits.
func (c *mountCache) markSplit(key mountKey, now time.Time) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, until := range c.splits {
		if !now.Before(until) {
			delete(c.splits, k)
		}
	}
	c.splits[key] = now.Add(splitTTL)
}

// unsplit makes the call for key whole again.
func (c *mountCache) unsplit(key mountKey) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.splits, key)
}

// mountCacheTTL is the sharing window for a poll interval: half the
// interval, at most maxMountCacheTTL.
func mountCacheTTL(poll time.Duration) time.Duration {
	return min(poll/2, maxMountCacheTTL)
}
