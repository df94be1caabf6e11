package controller

import (
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// maxMountCacheTTL bounds how long a Mount result is shared.
const maxMountCacheTTL = 10 * time.Second

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

	mu      sync.Mutex
	entries map[mountKey]mountEntry
}

type mountEntry struct {
	files   map[string][]byte
	expires time.Time
}

func newMountCache(ttl time.Duration) *mountCache {
	return &mountCache{ttl: ttl, entries: map[mountKey]mountEntry{}}
}

// get returns the files of a Mount made for key that has not expired.
func (c *mountCache) get(key mountKey, now time.Time) (map[string][]byte, bool) {
	if c == nil || c.ttl <= 0 {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok || !now.Before(e.expires) {
		return nil, false
	}
	return e.files, true
}

// put records the files of a successful Mount and drops expired entries.
func (c *mountCache) put(key mountKey, files map[string][]byte, now time.Time) {
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
	c.entries[key] = mountEntry{files: files, expires: now.Add(c.ttl)}
}

// mountCacheTTL is the sharing window for a poll interval: half the
// interval, at most maxMountCacheTTL.
func mountCacheTTL(poll time.Duration) time.Duration {
	return min(poll/2, maxMountCacheTTL)
}
