package provider

import (
	"container/list"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azcertificates"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
)

// maxCachedIdentities bounds the identities, and the vault clients, a
// Server keeps.
const maxCachedIdentities = 1024

// identityKey names one workload identity: the Entra application and the
// ServiceAccount whose tokens it exchanges. Two ServiceAccounts never share
// a credential, so a cached vault token of one is never used for the other.
type identityKey struct {
	cloud, tenantID, clientID, namespace, serviceAccount string
}

// clientKey names the clients of one identity for one vault.
type clientKey struct {
	identityKey
	vault string
}

// identity is a cached credential and the latest ServiceAccount token it
// presents as client assertion.
type identity struct {
	cred      azcore.TokenCredential
	assertion atomic.Pointer[string]
}

// vaultClients are the Key Vault clients of one identity for one vault.
type vaultClients struct {
	secrets *azsecrets.Client
	keys    *azkeys.Client
	certs   *azcertificates.Client
}

// clientCache keeps credentials and clients across Mounts, so access tokens
// are reused until they expire instead of being requested on every Mount.
//
// It keeps at most a fixed number of identities and as many vault clients,
// dropping the least recently used. A vault client is kept only as long as
// the identity whose credential it uses: an identity that was dropped comes
// back with a new credential and new clients, which present the
// ServiceAccount token of the Mount that brought it back.
type clientCache struct {
	options azcore.ClientOptions

	mu         sync.Mutex
	identities *lru[identityKey, *identity]
	clients    *lru[clientKey, *vaultClients]
}

// newClientCache returns a cache keeping at most limit identities and limit
// vault clients (at least one of each).
func newClientCache(options azcore.ClientOptions, limit int) *clientCache {
	limit = max(limit, 1)
	return &clientCache{options: options, identities: newLRU[identityKey, *identity](limit), clients: newLRU[clientKey, *vaultClients](limit)}
}

// get returns the clients for p's identity and vault, presenting p's
// ServiceAccount token from now on.
func (c *clientCache) get(p *mountParams) (*vaultClients, error) {
	ik := identityKey{cloud: p.cloud.name, tenantID: p.tenantID, clientID: p.clientID, namespace: p.podNamespace, serviceAccount: p.serviceAccount}
	ck := clientKey{identityKey: ik, vault: p.vault}
	c.mu.Lock()
	defer c.mu.Unlock()

	id, ok := c.identities.get(ik)
	if !ok {
		var err error
		if id, err = c.newIdentity(p); err != nil {
			return nil, err
		}
		if dropped, ok := c.identities.add(ik, id); ok {
			c.clients.removeFunc(func(k clientKey) bool { return k.identityKey == dropped })
		}
	}
	token := p.token
	id.assertion.Store(&token)

	if vc, ok := c.clients.get(ck); ok {
		return vc, nil
	}
	url := "https://" + p.vault + "." + p.cloud.vaultSuffix + "/"
	opts := c.options
	opts.Cloud = p.cloud.config
	secrets, err := azsecrets.NewClient(url, id.cred, &azsecrets.ClientOptions{ClientOptions: opts})
	if err != nil {
		return nil, fmt.Errorf("creating secrets client for %s: %w", url, err)
	}
	keys, err := azkeys.NewClient(url, id.cred, &azkeys.ClientOptions{ClientOptions: opts})
	if err != nil {
		return nil, fmt.Errorf("creating keys client for %s: %w", url, err)
	}
	certs, err := azcertificates.NewClient(url, id.cred, &azcertificates.ClientOptions{ClientOptions: opts})
	if err != nil {
		return nil, fmt.Errorf("creating certificates client for %s: %w", url, err)
	}
	vc := &vaultClients{secrets: secrets, keys: keys, certs: certs}
	c.clients.add(ck, vc)
	return vc, nil
}

// newIdentity returns an identity with a credential for p's application that
// presents the identity's latest ServiceAccount token.
func (c *clientCache) newIdentity(p *mountParams) (*identity, error) {
	id := &identity{}
	opts := c.options
	opts.Cloud = p.cloud.config
	cred, err := azidentity.NewClientAssertionCredential(p.tenantID, p.clientID, func(context.Context) (string, error) {
		if a := id.assertion.Load(); a != nil {
			return *a, nil
		}
		return "", errors.New("no ServiceAccount token")
	}, &azidentity.ClientAssertionCredentialOptions{ClientOptions: opts})
	if err != nil {
		return nil, fmt.Errorf("creating workload identity credential for client %s: %w", p.clientID, err)
	}
	id.cred = cred
	return id, nil
}

// lru is a map of at most limit entries that drops the least recently used
// entry to make room for a new one. It is not safe for concurrent use.
type lru[K comparable, V any] struct {
	limit   int
	order   *list.List // of *lruEntry[K, V], the most recently used first
	entries map[K]*list.Element
}

type lruEntry[K comparable, V any] struct {
	key   K
	value V
}

func newLRU[K comparable, V any](limit int) *lru[K, V] {
	return &lru[K, V]{limit: limit, order: list.New(), entries: map[K]*list.Element{}}
}

// get returns the value of k and makes k the most recently used entry.
func (l *lru[K, V]) get(k K) (V, bool) {
	e, ok := l.entries[k]
	if !ok {
		var zero V
		return zero, false
	}
	l.order.MoveToFront(e)
	return e.Value.(*lruEntry[K, V]).value, true
}

// add adds k, which must not be present, as the most recently used entry.
// If l was full, it drops the least recently used entry and returns its key
// and true.
func (l *lru[K, V]) add(k K, v V) (dropped K, ok bool) {
	if l.order.Len() >= l.limit {
		oldest := l.order.Back()
		dropped, ok = l.order.Remove(oldest).(*lruEntry[K, V]).key, true
		delete(l.entries, dropped)
	}
	l.entries[k] = l.order.PushFront(&lruEntry[K, V]{key: k, value: v})
	return dropped, ok
}

// removeFunc removes every entry whose key remove reports true for.
func (l *lru[K, V]) removeFunc(remove func(K) bool) {
	for k, e := range l.entries {
		if remove(k) {
			l.order.Remove(e)
			delete(l.entries, k)
		}
	}
}

// maxRetryDelay is the longest wait between two tries.
const maxRetryDelay = 4 * time.Second

// retryStatusCodes are the statuses the SDK retries by default.
var retryStatusCodes = []int{http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusInternalServerError,
	http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout}

// retryOptions are the SDK retry settings: a few quick retries, each try
// bounded, so that a Mount's deadline (not the retry policy) ends a Mount
// against a vault that does not answer. Retry-After is honoured up to the
// maximum delay. Failures that retrying cannot fix, a name that does not
// exist and a certificate that does not verify, are not retried, so the
// Mount reports them at once instead of running into its deadline.
func retryOptions() policy.RetryOptions {
	return policy.RetryOptions{
		MaxRetries:    3,
		TryTimeout:    10 * time.Second,
		RetryDelay:    250 * time.Millisecond,
		MaxRetryDelay: maxRetryDelay,
		ShouldRetry:   shouldRetry,
	}
}

// shouldRetry decides whether a try is retried. An HTTP error is not retried
// when the Mount's deadline is closer than the longest retry delay, or when
// the vault asked for a longer wait than that (Retry-After): the Mount then
// reports the vault's answer rather than running out of time or retrying
// too soon.
func shouldRetry(resp *http.Response, err error) bool {
	if err != nil {
		var certErr *tls.CertificateVerificationError
		dnsErr, isDNS := lookupError(err)
		return !errors.As(err, &certErr) && !(isDNS && dnsErr.IsNotFound)
	}
	if !slices.Contains(retryStatusCodes, resp.StatusCode) {
		return false
	}
	if d, ok := responseRetryAfter(resp); ok && d > maxRetryDelay {
		// The SDK would retry after maxRetryDelay, sooner than asked:
		// report the answer, and the controller waits the whole delay.
		return false
	}
	if resp.Request != nil {
		if deadline, ok := resp.Request.Context().Deadline(); ok && time.Until(deadline) < maxRetryDelay {
			return false
		}
	}
	return true
}
