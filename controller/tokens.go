package controller

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ssv1alpha1 "github.com/kvsync/kvsync/api/secretsync/v1alpha1"
)

// tokenExpirationSeconds is the lifetime requested for ServiceAccount tokens.
const tokenExpirationSeconds = 600

// tokenRefreshFraction is the part of a token's lifetime after which a new
// one is requested.
const tokenRefreshFraction = 0.8

// TokenRefreshAfter is how long after its issue a ServiceAccount token the
// controller requested is requested again, by the first check that needs
// it then.
const TokenRefreshAfter = time.Duration(tokenExpirationSeconds*tokenRefreshFraction) * time.Second

// tokenRequestTimeout bounds one TokenRequest, which runs on a context of
// its own: the checks waiting for it do not share the fate of the one that
// started it.
const tokenRequestTimeout = 30 * time.Second

// tokenCache requests ServiceAccount tokens and reuses each until most of its
// lifetime has passed. Tokens are held in memory only, and dropped once
// expired, so the cache holds at most the ServiceAccounts used within one
// token lifetime.
type tokenCache struct {
	client   client.Client
	audience string
	now      func() time.Time

	mu     sync.Mutex
	tokens map[tokenKey]cachedToken
	flight singleflight.Group
}

type tokenKey struct{ namespace, name, audience string }

type cachedToken struct {
	status    authenticationv1.TokenRequestStatus
	refreshAt time.Time
}

// tokensAttribute returns the csi.storage.k8s.io/serviceAccount.tokens
// attribute for the SecretSync's ServiceAccount: a JSON map from audience to
// token and expiry, as the CSI driver passes it. Checks of SecretSyncs of one
// ServiceAccount that need a token together share one TokenRequest; each
// stops waiting for it when its own ctx ends, without cancelling it for the
// others.
func (c *tokenCache) tokensAttribute(ctx context.Context, ss *ssv1alpha1.SecretSync) (string, *syncError) {
	key := tokenKey{namespace: ss.Namespace, name: ss.Spec.ServiceAccountName, audience: c.audience}
	c.mu.Lock()
	t, ok := c.tokens[key]
	c.mu.Unlock()
	if !ok || c.now().After(t.refreshAt) {
		var serr *syncError
		if t, serr = c.refresh(ctx, key, ss); serr != nil {
			return "", serr
		}
	}
	tokens, err := json.Marshal(map[string]authenticationv1.TokenRequestStatus{c.audience: t.status})
	if err != nil {
		return "", fail(ssv1alpha1.ReasonControllerInternalError, true, err, "encoding the ServiceAccount token failed: %v", err)
	}
	return string(tokens), nil
}

// refresh requests a token for key, or joins the request in flight for it,
// and caches the result.
func (c *tokenCache) refresh(ctx context.Context, key tokenKey, ss *ssv1alpha1.SecretSync) (cachedToken, *syncError) {
	type answer struct {
		token cachedToken
		serr  *syncError
	}
	ch := c.flight.DoChan(key.namespace+"/"+key.name+"/"+key.audience, func() (any, error) {
		// Its own context: the caller that started the request may be
		// cancelled while others wait for the answer.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), tokenRequestTimeout)
		defer cancel()
		issued := c.now()
		status, serr := c.request(rctx, ss)
		if serr != nil {
			return answer{serr: serr}, nil
		}
		lifetime := status.ExpirationTimestamp.Sub(issued)
		t := cachedToken{status: status, refreshAt: issued.Add(time.Duration(float64(lifetime) * tokenRefreshFraction))}
		c.store(key, t, issued)
		return answer{token: t}, nil
	})
	select {
	case res := <-ch:
		a := res.Val.(answer)
		return a.token, a.serr
	case <-ctx.Done():
		return cachedToken{}, fail(ssv1alpha1.ReasonControllerSyncFailed, true, ctx.Err(),
			"requesting a token for ServiceAccount %q did not finish: %v", ss.Spec.ServiceAccountName, ctx.Err())
	}
}

// store caches t for key and drops the tokens that expired by now.
func (c *tokenCache) store(key tokenKey, t cachedToken, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, old := range c.tokens {
		if !now.Before(old.status.ExpirationTimestamp.Time) {
			delete(c.tokens, k)
		}
	}
	c.tokens[key] = t
}

// request creates a TokenRequest for the SecretSync's ServiceAccount.
func (c *tokenCache) request(ctx context.Context, ss *ssv1alpha1.SecretSync) (authenticationv1.TokenRequestStatus, *syncError) {
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ss.Namespace, Name: ss.Spec.ServiceAccountName}}
	req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		Audiences:         []string{c.audience},
		ExpirationSeconds: ptr.To[int64](tokenExpirationSeconds),
	}}
	err := c.client.SubResource("token").Create(ctx, sa, req)
	switch {
	case err == nil:
		return req.Status, nil
	case deniedByPolicy(err):
		return req.Status, fail(ssv1alpha1.ReasonValidatingAdmissionPolicyCheckFailed, false, err,
			"the token request for ServiceAccount %q was denied by a ValidatingAdmissionPolicy: %s. Change the policy or its binding to allow the controller to request tokens",
			ss.Spec.ServiceAccountName, apiMessage(err))
	case apierrors.IsNotFound(err):
		return req.Status, fail(ssv1alpha1.ReasonControllerSyncFailed, false, err,
			"ServiceAccount %q does not exist in namespace %q: create it, or fix spec.serviceAccountName",
			ss.Spec.ServiceAccountName, ss.Namespace)
	case apierrors.IsForbidden(err):
		return req.Status, fail(ssv1alpha1.ReasonControllerSyncFailed, true, err,
			"the controller may not request a token for ServiceAccount %q: %s. Grant it create on serviceaccounts/token",
			ss.Spec.ServiceAccountName, apiMessage(err))
	}
	return req.Status, fail(ssv1alpha1.ReasonControllerSyncFailed, true, err,
		"requesting a token for ServiceAccount %q failed: %s", ss.Spec.ServiceAccountName, apiMessage(err))
}
