package provider

// SetMaxCachedIdentities makes s keep at most n identities and n vault
// clients. It must be called before s serves.
func SetMaxCachedIdentities(s *Server, n int) {
	s.clients = newClientCache(s.clients.options, n)
}

// cached returns the keys of the identities and of the vault clients c
// keeps, the most recently used first.
func (c *clientCache) cached() ([]identityKey, []clientKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.identities.keys(), c.clients.keys()
}

// keys returns the keys, the most recently used first.
func (l *lru[K, V]) keys() []K {
	keys := make([]K, 0, l.order.Len())
	for e := l.order.Front(); e != nil; e = e.Next() {
		keys = append(keys, e.Value.(*lruEntry[K, V]).key)
	}
	return keys
}

// assertion returns the ServiceAccount token the identity k presents, and
// whether c keeps k.
func (c *clientCache) assertion(k identityKey) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	id, ok := c.identities.get(k)
	if !ok {
		return "", false
	}
	if a := id.assertion.Load(); a != nil {
		return *a, true
	}
	return "", true
}
