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

// tokenCache requests ServiceAccount tokens and reuses each until most of its
// lifetime has passed. Tokens are held in memory only.
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
// token and expiry, as the CSI driver passes it.
func (c *tokenCache) tokensAttribute(ctx context.Context, ss *ssv1alpha1.SecretSync) (string, *syncError) {
	key := tokenKey{namespace: ss.Namespace, name: ss.Spec.ServiceAccountName, audience: c.audience}
	now := c.now()
	c.mu.Lock()
	t, ok := c.tokens[key]
	c.mu.Unlock()
	if !ok || now.After(t.refreshAt) {
		// Checks of SecretSyncs of one ServiceAccount that miss together
		// share one token request.
		type answer struct {
			status authenticationv1.TokenRequestStatus
			serr   *syncError
		}
		v, _, _ := c.flight.Do(key.namespace+"/"+key.name+"/"+key.audience, func() (any, error) {
			status, serr := c.request(ctx, ss)
			return answer{status, serr}, nil
		})
		status, serr := v.(answer).status, v.(answer).serr
		if serr != nil {
			return "", serr
		}
		issued := now
		lifetime := status.ExpirationTimestamp.Sub(issued)
		t = cachedToken{status: status, refreshAt: issued.Add(time.Duration(float64(lifetime) * tokenRefreshFraction))}
		c.mu.Lock()
		c.tokens[key] = t
		c.mu.Unlock()
	}
	tokens, err := json.Marshal(map[string]authenticationv1.TokenRequestStatus{c.audience: t.status})
	if err != nil {
		return "", fail(ssv1alpha1.ReasonControllerInternalError, true, err, "encoding the ServiceAccount token failed: %v", err)
	}
	return string(tokens), nil
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
