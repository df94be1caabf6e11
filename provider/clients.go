package provider

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
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

// maxCachedIdentities bounds the identities (and vault clients) kept.
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
type clientCache struct {
	options azcore.ClientOptions

	mu         sync.Mutex
	identities map[identityKey]*identity
	clients    map[clientKey]*vaultClients
}

func newClientCache(options azcore.ClientOptions) *clientCache {
	return &clientCache{options: options, identities: map[identityKey]*identity{}, clients: map[clientKey]*vaultClients{}}
}

// get returns the clients for p's identity and vault, presenting p's
// ServiceAccount token from now on.
func (c *clientCache) get(p *mountParams) (*vaultClients, error) {
	ik := identityKey{cloud: p.cloud.name, tenantID: p.tenantID, clientID: p.clientID, namespace: p.podNamespace, serviceAccount: p.serviceAccount}
	ck := clientKey{identityKey: ik, vault: p.vault}
	c.mu.Lock()
	defer c.mu.Unlock()

	id, ok := c.identities[ik]
	if !ok {
		evictOne(c.identities)
		id = &identity{}
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
		c.identities[ik] = id
	}
	token := p.token
	id.assertion.Store(&token)

	if vc, ok := c.clients[ck]; ok {
		return vc, nil
	}
	evictOne(c.clients)
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
	c.clients[ck] = vc
	return vc, nil
}

// evictOne drops an arbitrary entry when m is full.
func evictOne[K comparable, V any](m map[K]V) {
	if len(m) < maxCachedIdentities {
		return
	}
	for k := range m {
		delete(m, k)
		return
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
		var dnsErr *net.DNSError
		return !errors.As(err, &certErr) && !(errors.As(err, &dnsErr) && dnsErr.IsNotFound)
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
