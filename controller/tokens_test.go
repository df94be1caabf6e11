package controller

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	ssv1alpha1 "github.com/kvsync/kvsync/api/secretsync/v1alpha1"
)

func TestTokensAreReusedUntilMostOfTheirLifetimeHasPassed(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	requests := 0
	c := fake.NewClientBuilder().WithInterceptorFuncs(interceptor.Funcs{
		SubResourceCreate: func(_ context.Context, _ client.Client, sub string, obj client.Object, subResource client.Object, _ ...client.SubResourceCreateOption) error {
			tr := subResource.(*authenticationv1.TokenRequest)
			if sub != "token" || obj.GetName() != "workload" || tr.Spec.Audiences[0] != DefaultTokenAudience || *tr.Spec.ExpirationSeconds != 600 {
				t.Errorf("unexpected token request %s for %s: %+v", sub, obj.GetName(), tr.Spec)
			}
			requests++
			tr.Status = authenticationv1.TokenRequestStatus{Token: "kvsync-canary-token", ExpirationTimestamp: metav1.NewTime(clock().Add(600 * time.Second))}
			return nil
		},
	}).Build()
	cache := &tokenCache{client: c, audience: DefaultTokenAudience, now: clock, tokens: map[tokenKey]cachedToken{}}
	ss := &ssv1alpha1.SecretSync{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "app"}, Spec: ssv1alpha1.SecretSyncSpec{ServiceAccountName: "workload"}}

	attr, serr := cache.tokensAttribute(context.Background(), ss)
	if serr != nil || !strings.Contains(attr, `"api://AzureADTokenExchange":{"token":"kvsync-canary-token"`) {
		t.Fatalf("tokensAttribute = %s, %v", attr, serr)
	}
	mu.Lock()
	now = now.Add(470 * time.Second)
	mu.Unlock()
	if _, serr := cache.tokensAttribute(context.Background(), ss); serr != nil || requests != 1 {
		t.Errorf("after 470s of 600: %d requests, want the token reused", requests)
	}
	mu.Lock()
	now = now.Add(20 * time.Second)
	mu.Unlock()
	if _, serr := cache.tokensAttribute(context.Background(), ss); serr != nil || requests != 2 {
		t.Errorf("after 490s of 600: %d requests, want a new token", requests)
	}
}

func TestTokenRequestFailuresAreClassified(t *testing.T) {
	gr := schema.GroupResource{Resource: "serviceaccounts"}
	tests := []struct {
		name   string
		err    error
		reason string
		want   string
	}{
		{"a missing ServiceAccount", apierrors.NewNotFound(gr, "workload"), ssv1alpha1.ReasonControllerSyncFailed, `ServiceAccount "workload" does not exist in namespace "ns"`},
		{"a forbidden request", apierrors.NewForbidden(gr, "workload", nil), ssv1alpha1.ReasonControllerSyncFailed, "Grant it create on serviceaccounts/token"},
		{"a policy denial", apierrors.NewForbidden(gr, "workload", errorString("ValidatingAdmissionPolicy 'no-tokens' with binding 'b' denied request")), ssv1alpha1.ReasonValidatingAdmissionPolicyCheckFailed, "no-tokens"},
		{"an API server failure", apierrors.NewServiceUnavailable("down"), ssv1alpha1.ReasonControllerSyncFailed, "down"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := fake.NewClientBuilder().WithInterceptorFuncs(interceptor.Funcs{
				SubResourceCreate: func(context.Context, client.Client, string, client.Object, client.Object, ...client.SubResourceCreateOption) error {
					return tt.err
				},
			}).Build()
			cache := &tokenCache{client: c, audience: DefaultTokenAudience, now: time.Now, tokens: map[tokenKey]cachedToken{}}
			ss := &ssv1alpha1.SecretSync{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "app"}, Spec: ssv1alpha1.SecretSyncSpec{ServiceAccountName: "workload"}}
			_, serr := cache.tokensAttribute(context.Background(), ss)
			if serr == nil || serr.reason != tt.reason || !strings.Contains(serr.message, tt.want) {
				t.Errorf("tokensAttribute = %v, want %s containing %q", serr, tt.reason, tt.want)
			}
		})
	}
}

func TestPollsAreSpreadByJitter(t *testing.T) {
	r := &SecretSyncReconciler{RotationPollInterval: time.Minute, Jitter: 10 * time.Second}
	ss := &ssv1alpha1.SecretSync{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "a"}, Spec: ssv1alpha1.SecretSyncSpec{SecretProviderClassName: "kv"}}
	seen := map[time.Duration]bool{}
	for range 50 {
		d := r.nextPoll(ss)
		if d < 30*time.Second || d >= 100*time.Second {
			t.Fatalf("nextPoll = %s, want within [30s, 1m40s)", d)
		}
		seen[d] = true
	}
	if len(seen) < 2 {
		t.Error("jitter did not vary the poll")
	}
}

func TestTheSecretSyncsOfAClassPollTogetherOnceAnInterval(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	r := &SecretSyncReconciler{RotationPollInterval: time.Minute, Now: func() time.Time { return now }}
	of := func(ns, class string) *ssv1alpha1.SecretSync {
		return &ssv1alpha1.SecretSync{ObjectMeta: metav1.ObjectMeta{Namespace: ns}, Spec: ssv1alpha1.SecretSyncSpec{SecretProviderClassName: class}}
	}
	a := now.Add(r.nextPoll(of("ns", "kv")))
	// Another SecretSync of the class, checked 17 s later, polls at the
	// same moment.
	now = now.Add(17 * time.Second)
	if b := now.Add(r.nextPoll(of("ns", "kv"))); !b.Equal(a) && !b.Equal(a.Add(time.Minute)) {
		t.Errorf("two SecretSyncs of one class poll at %s and %s", a, b)
	}
	// At its grid point, the next poll is one interval later.
	now = a
	if d := r.nextPoll(of("ns", "kv")); d != time.Minute {
		t.Errorf("steady-state interval = %s, want 1m", d)
	}
	// Classes spread over the interval.
	phases := map[time.Duration]bool{}
	for i := range 20 {
		phases[r.nextPoll(of("ns", fmt.Sprintf("kv-%d", i)))] = true
	}
	if len(phases) < 10 {
		t.Errorf("20 classes poll at %d moments", len(phases))
	}
	if d := (&SecretSyncReconciler{}).nextPoll(of("ns", "kv")); d < DefaultRotationPollInterval/2 || d >= DefaultRotationPollInterval*3/2 {
		t.Errorf("default poll = %s", d)
	}
}

// Identical clusters of a fleet (same namespaces and class names, each with
// its own hash key) poll their vaults at different moments.
func TestTheSameClassPollsAtADifferentMomentInEachCluster(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	ss := &ssv1alpha1.SecretSync{ObjectMeta: metav1.ObjectMeta{Namespace: "payments"}, Spec: ssv1alpha1.SecretSyncSpec{SecretProviderClassName: "azure-kv"}}
	phases := map[time.Duration]bool{}
	for i := range 20 {
		r := &SecretSyncReconciler{RotationPollInterval: time.Hour, HashKey: []byte(fmt.Sprintf("cluster-%d-key", i)), Now: func() time.Time { return now }}
		phases[r.nextPoll(ss)] = true
	}
	if len(phases) < 19 {
		t.Errorf("20 clusters poll one class at %d moments, want about 20", len(phases))
	}
}

type errorString string

func (e errorString) Error() string { return string(e) }

func TestChecksOfOneServiceAccountShareOneTokenRequest(t *testing.T) {
	var mu sync.Mutex
	requests := 0
	release := make(chan struct{})
	c := fake.NewClientBuilder().WithInterceptorFuncs(interceptor.Funcs{
		SubResourceCreate: func(ctx context.Context, _ client.Client, _ string, _ client.Object, sub client.Object, _ ...client.SubResourceCreateOption) error {
			mu.Lock()
			requests++
			mu.Unlock()
			<-release
			sub.(*authenticationv1.TokenRequest).Status = authenticationv1.TokenRequestStatus{Token: "t", ExpirationTimestamp: metav1.NewTime(time.Now().Add(10 * time.Minute))}
			return nil
		},
	}).Build()
	cache := &tokenCache{client: c, audience: "api://AzureADTokenExchange", now: time.Now, tokens: map[tokenKey]cachedToken{}}
	ss := &ssv1alpha1.SecretSync{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "a"}, Spec: ssv1alpha1.SecretSyncSpec{ServiceAccountName: "workload"}}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if _, serr := cache.tokensAttribute(context.Background(), ss); serr != nil {
				t.Error(serr.message)
			}
		})
	}
	time.Sleep(50 * time.Millisecond) // let every check miss the cache
	close(release)
	wg.Wait()
	if requests != 1 {
		t.Errorf("%d token requests for 8 simultaneous checks, want 1", requests)
	}
}

func TestASharedTokenRequestOutlivesTheCancelledCheckThatStartedIt(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	c := fake.NewClientBuilder().WithInterceptorFuncs(interceptor.Funcs{
		SubResourceCreate: func(ctx context.Context, _ client.Client, _ string, _ client.Object, subResource client.Object, _ ...client.SubResourceCreateOption) error {
			close(started)
			select { // as the API client does: the request ends with its context
			case <-release:
			case <-ctx.Done():
				return ctx.Err()
			}
			subResource.(*authenticationv1.TokenRequest).Status = authenticationv1.TokenRequestStatus{Token: "kvsync-canary-token", ExpirationTimestamp: metav1.NewTime(time.Now().Add(10 * time.Minute))}
			return nil
		},
	}).Build()
	cache := &tokenCache{client: c, audience: DefaultTokenAudience, now: time.Now, tokens: map[tokenKey]cachedToken{}}
	ss := &ssv1alpha1.SecretSync{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "app"}, Spec: ssv1alpha1.SecretSyncSpec{ServiceAccountName: "workload"}}

	first, cancelFirst := context.WithCancel(context.Background())
	firstDone := make(chan *syncError, 1)
	go func() { _, serr := cache.tokensAttribute(first, ss); firstDone <- serr }()
	<-started
	waiterDone := make(chan *syncError, 1)
	go func() { _, serr := cache.tokensAttribute(context.Background(), ss); waiterDone <- serr }()
	time.Sleep(50 * time.Millisecond) // let the waiter join the request in flight

	cancelFirst()
	if serr := <-firstDone; serr == nil {
		t.Error("the cancelled check got a token")
	}
	close(release)
	if serr := <-waiterDone; serr != nil {
		t.Fatalf("the check waiting for the shared request failed with its starter: %v", serr)
	}
}

func TestTokensAreDroppedOnceExpiredSoTheCacheDoesNotGrowWithChurn(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	c := fake.NewClientBuilder().WithInterceptorFuncs(interceptor.Funcs{
		SubResourceCreate: func(_ context.Context, _ client.Client, _ string, _ client.Object, subResource client.Object, _ ...client.SubResourceCreateOption) error {
			subResource.(*authenticationv1.TokenRequest).Status = authenticationv1.TokenRequestStatus{Token: "kvsync-canary-token", ExpirationTimestamp: metav1.NewTime(now.Add(600 * time.Second))}
			return nil
		},
	}).Build()
	cache := &tokenCache{client: c, audience: DefaultTokenAudience, now: func() time.Time { return now }, tokens: map[tokenKey]cachedToken{}}
	for round := range 5 {
		for i := range 100 {
			ss := &ssv1alpha1.SecretSync{ObjectMeta: metav1.ObjectMeta{Namespace: fmt.Sprintf("ns-%d-%d", round, i), Name: "app"}, Spec: ssv1alpha1.SecretSyncSpec{ServiceAccountName: "workload"}}
			if _, serr := cache.tokensAttribute(context.Background(), ss); serr != nil {
				t.Fatal(serr)
			}
		}
		now = now.Add(11 * time.Minute) // every namespace of the round is gone
	}
	if n := len(cache.tokens); n > 100 {
		t.Errorf("the cache holds %d tokens after 5 rounds of 100 ServiceAccounts, want at most one round's 100", n)
	}
}
