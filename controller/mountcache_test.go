package controller

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"golang.org/x/time/rate"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	spcv1 "github.com/kvsync/kvsync/api/secretsstore/v1"
	ssv1alpha1 "github.com/kvsync/kvsync/api/secretsync/v1alpha1"
)

func TestMountResultsAreSharedOnlyForTheSameCallWithinTheWindow(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	c := newMountCache(10*time.Second, time.Minute)
	key := mountKey{provider: "azure", class: "uid", generation: 1, namespace: "ns", serviceAccount: "sa", objects: "array: [a]"}
	c.put(key, &mounted{files: map[string][]byte{"a": []byte("1")}}, now)

	if _, ok := c.wait(context.Background(), key, now.Add(9*time.Second)); !ok {
		t.Error("a result 9s old was not shared")
	}
	if _, ok := c.wait(context.Background(), key, now.Add(10*time.Second)); ok {
		t.Error("an expired result was shared")
	}
	for name, other := range map[string]mountKey{
		"another class generation": {provider: "azure", class: "uid", generation: 2, namespace: "ns", serviceAccount: "sa", objects: "array: [a]"},
		"another ServiceAccount":   {provider: "azure", class: "uid", generation: 1, namespace: "ns", serviceAccount: "other", objects: "array: [a]"},
		"another namespace":        {provider: "azure", class: "uid", generation: 1, namespace: "other", serviceAccount: "sa", objects: "array: [a]"},
		"other objects":            {provider: "azure", class: "uid", generation: 1, namespace: "ns", serviceAccount: "sa", objects: "array: [b]"},
	} {
		if _, ok := c.wait(context.Background(), other, now); ok {
			t.Errorf("a result was shared with %s", name)
		}
	}
	c.put(mountKey{objects: "later"}, nil, now.Add(time.Minute))
	if len(c.entries) != 1 {
		t.Errorf("expired entries were kept: %d entries", len(c.entries))
	}
	if got := mountCacheTTL(time.Second); got != 500*time.Millisecond {
		t.Errorf("TTL for a 1s poll = %s", got)
	}
	if got := mountCacheTTL(time.Hour); got != maxMountCacheTTL {
		t.Errorf("TTL for a 1h poll = %s", got)
	}
}

func TestOnlyRoutineChecksUseSharedMountResults(t *testing.T) {
	ok := metav1.Condition{Type: "Update", Status: metav1.ConditionTrue, ObservedGeneration: 2}
	tests := []struct {
		name     string
		gen      int64
		last     metav1.Condition
		existing *corev1.Secret
		want     bool
	}{
		{"a routine check of an existing Secret", 2, ok, &corev1.Secret{}, true},
		{"a check after a spec change such as forceSynchronization", 3, ok, &corev1.Secret{}, false},
		{"a check that creates or recreates the Secret", 2, ok, nil, false},
		{"a check after a failure", 2, metav1.Condition{Type: "Update", Status: metav1.ConditionFalse, ObservedGeneration: 2}, &corev1.Secret{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ss := &ssv1alpha1.SecretSync{ObjectMeta: metav1.ObjectMeta{Generation: tt.gen}}
			ss.Status.Conditions = []metav1.Condition{tt.last}
			if got := shareable(&syncScope{secretSync: ss, existing: tt.existing}); got != tt.want {
				t.Errorf("shareable = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRoutineChecksWaitForTheSameMountInProgress(t *testing.T) {
	c := newMountCache(10*time.Second, time.Minute)
	key := mountKey{provider: "azure", objects: "array: [a]"}
	end := c.begin(key)
	if again := c.begin(key); again == nil {
		t.Fatal("a second begin returned nil")
	}
	got := make(chan *mounted)
	go func() {
		m, _ := c.wait(context.Background(), key, time.Now())
		got <- m
	}()
	result := &mounted{files: map[string][]byte{"a": []byte("1")}, versions: map[string]string{"secret/a": "v1"}}
	c.put(key, result, time.Now()) // as mount does: put, then end
	end(result)
	if m := <-got; m == nil || string(m.files["a"]) != "1" || m.versions["secret/a"] != "v1" {
		t.Errorf("the waiter got %+v, want the call's files and versions", m)
	}
	// A failed call shares nothing: the waiter mounts itself.
	end = c.begin(mountKey{objects: "b"})
	go end(nil)
	if _, ok := c.wait(context.Background(), mountKey{objects: "b"}, time.Now()); ok {
		t.Error("a failed call's result was shared")
	}
}

func TestAWholeMountThatFailedForAnObjectIsMadePerObjectForSplitTTL(t *testing.T) {
	now := time.Now()
	for name, c := range map[string]*mountCache{"sharing on": newMountCache(10*time.Second, time.Minute), "sharing off": newMountCache(0, time.Minute)} {
		key := mountKey{provider: "azure", objects: "array: [a, b]"}
		if c.split(key, now) {
			t.Fatalf("%s: a call never failed is split", name)
		}
		c.markSplit(key, now)
		if !c.split(key, now.Add(splitTTL-time.Second)) {
			t.Errorf("%s: the call is not split within splitTTL", name)
		}
		if c.split(key, now.Add(splitTTL)) {
			t.Errorf("%s: the call is still split after splitTTL", name)
		}
		if len(c.splits) != 0 {
			t.Errorf("%s: an expired split is kept: %v", name, c.splits)
		}
	}
}

func TestAVaultThatAskedForARetryDelayIsHeldBackUntilThen(t *testing.T) {
	v := &vaultLimiters{perSecond: 10, limiters: map[string]*rate.Limiter{}}
	kv := func(name string) *spcv1.SecretProviderClass {
		return &spcv1.SecretProviderClass{Spec: spcv1.SecretProviderClassSpec{Provider: "azure", Parameters: map[string]string{"keyvaultName": name}}}
	}
	now := time.Now()
	v.pause(kv("a"), now.Add(30*time.Second))
	v.pause(kv("a"), now.Add(10*time.Second)) // a shorter delay does not shorten the pause
	if d := v.pausedFor(kv("a"), now); d != 30*time.Second {
		t.Errorf("vault a held back for %s, want 30s", d)
	}
	if d := v.pausedFor(kv("b"), now); d != 0 {
		t.Errorf("another vault held back for %s", d)
	}
	if d := v.pausedFor(kv("a"), now.Add(30*time.Second)); d != 0 {
		t.Errorf("vault a still held back after its delay: %s", d)
	}
}

func TestRetryDelaysAndVaultWideFailuresAreReadFromTheProvidersAnswer(t *testing.T) {
	throttled, _ := status.New(codes.ResourceExhausted, "Throttled").WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(7 * time.Second)})
	forever, _ := status.New(codes.Unavailable, "come back next year").WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(365 * 24 * time.Hour)})
	negative, _ := status.New(codes.Unavailable, "come back yesterday").WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(-time.Hour)})
	upstream := func(inner string) error {
		return status.Error(codes.Unknown, "failed to mount objects, error: failed to get objectType:secret, objectName:b, objectVersion:: "+inner)
	}
	tests := []struct {
		name      string
		err       error
		delay     time.Duration
		vaultWide bool
	}{
		{"a throttled vault with Retry-After", throttled.Err(), 7 * time.Second, true},
		{"a provider asking for a year waits at most maxRetryDelay", forever.Err(), maxRetryDelay, true},
		{"a negative delay is none", negative.Err(), 0, true},
		{"an unavailable vault without one", status.Error(codes.Unavailable, "503"), 0, true},
		{"a missing secret", status.Error(codes.NotFound, "SecretNotFound"), 0, false},
		{"a role that does not cover one secret", status.Error(codes.PermissionDenied, "Forbidden"), 0, false},
		{"a vault firewall, whatever the code", status.Error(codes.PermissionDenied, "ForbiddenByFirewall: client address is not authorized"), 0, true},
		{"a disabled secret", status.Error(codes.FailedPrecondition, "SecretDisabled"), 0, false},
		{"a vault that does not answer", status.Error(codes.DeadlineExceeded, "deadline"), 0, true},
		{"a failed token exchange", status.Error(codes.Unauthenticated, "AADSTS70021"), 0, true},
		{"the upstream provider's missing secret", upstream("GET https://v.vault.azure.net/secrets/b/\n--------\nRESPONSE 404: 404 Not Found\nERROR CODE: SecretNotFound"), 0, false},
		{"the upstream provider's denied secret", upstream("GET https://v.vault.azure.net/secrets/b/\n--------\nRESPONSE 403: 403 Forbidden\nERROR CODE: Forbidden"), 0, false},
		{"the upstream provider's firewall", upstream("RESPONSE 403: 403 Forbidden\nERROR CODE: Forbidden\nForbiddenByFirewall"), 0, true},
		{"the upstream provider's failed token exchange", upstream("ClientAssertionCredential authentication failed\nRESPONSE 400\nAADSTS70021: No matching federated identity record found"), 0, true},
		{"the upstream provider's unknown vault name", upstream("dial tcp: lookup v.vault.azure.net: no such host"), 0, true},
		{"not a gRPC error", errors.New("socket closed"), 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if d := retryDelay(tt.err); d != tt.delay {
				t.Errorf("retryDelay = %s, want %s", d, tt.delay)
			}
			if got := vaultWide(tt.err); got != tt.vaultWide {
				t.Errorf("vaultWide = %v, want %v", got, tt.vaultWide)
			}
		})
	}
}

func TestAWaitForACallInProgressEndsWhenTheCallEndsEvenByPanicOrAfterMaxWait(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	key := mountKey{provider: "azure", namespace: "ns", objects: "array: [a]"}

	t.Run("a call that panicked", func(t *testing.T) {
		c := newMountCache(10*time.Second, time.Hour)
		started := make(chan struct{})
		go func() {
			defer func() { _ = recover() }()
			var result *mounted
			end := c.begin(key)
			defer func() { end(result) }()
			close(started)
			panic("a defect between begin and end")
		}()
		<-started
		done := make(chan bool)
		go func() { _, ok := c.wait(context.Background(), key, now); done <- ok }()
		select {
		case ok := <-done:
			if ok {
				t.Error("a call that panicked shared files")
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the wait for a call that panicked did not end")
		}
	})

	t.Run("a call that never ends", func(t *testing.T) {
		c := newMountCache(10*time.Second, 50*time.Millisecond)
		_ = c.begin(key) // never ended
		start := time.Now()
		if _, ok := c.wait(context.Background(), key, now); ok {
			t.Error("a call that never ended shared files")
		}
		if d := time.Since(start); d < 50*time.Millisecond || d > 5*time.Second {
			t.Errorf("waited %s, want maxWait (50ms)", d)
		}
	})
}

func TestVaultLimitersDoNotGrowWithEveryVaultNameEverUsed(t *testing.T) {
	v := &vaultLimiters{perSecond: 1e6, limiters: map[string]*rate.Limiter{}}
	for i := range 1000 {
		class := &spcv1.SecretProviderClass{Spec: spcv1.SecretProviderClassSpec{Provider: "azure", Parameters: map[string]string{"keyvaultName": fmt.Sprint("kv-", i)}}}
		if err := v.wait(context.Background(), class, 1); err != nil {
			t.Fatal(err)
		}
		v.pause(class, time.Now().Add(-time.Second)) // a pause that is over
		time.Sleep(10 * time.Microsecond)            // the limiter refills
	}
	if n, p := len(v.limiters), len(v.paused); n > 10 || p > 10 {
		t.Errorf("after 1,000 vault names, %d limiters and %d pauses are kept; want only the busy ones", n, p)
	}
}

func TestOnlyFailuresThatMayGoAwayByThemselvesAreRetriedBeforeThePoll(t *testing.T) {
	upstream := func(httpStatus string) error {
		return status.Error(codes.Unknown, "failed to mount objects, error: failed to get objectType:secret, objectName:b, objectVersion:: "+
			"GET https://kv.vault.azure.net/secrets/b/\n--------------------------------------------------------------------------------\nRESPONSE "+httpStatus+"\n")
	}
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"a secret missing from the vault (404)", status.Error(codes.NotFound, "SecretNotFound"), false},
		{"a denied read (403)", status.Error(codes.PermissionDenied, "ForbiddenByRbac"), false},
		{"a disabled secret", status.Error(codes.FailedPrecondition, "SecretDisabled"), false},
		{"a failed token exchange (AADSTS70021)", status.Error(codes.Unauthenticated, "AADSTS70021"), false},
		{"invalid parameters", status.Error(codes.InvalidArgument, "keyvaultName is not provided"), false},
		{"an unreachable vault", status.Error(codes.Unavailable, "cannot connect"), true},
		{"a vault that did not answer in time", status.Error(codes.DeadlineExceeded, "timeout"), true},
		{"throttling past the provider's retries (429)", status.Error(codes.ResourceExhausted, "Throttled"), true},
		{"a provider that does not answer", errors.New("connection refused"), true},
		{"an upstream-shaped 404", upstream("404: 404 Not Found"), false},
		{"an upstream-shaped 403", upstream("403: 403 Forbidden"), false},
		{"an upstream-shaped 429", upstream("429: 429 Too Many Requests"), true},
		{"an upstream-shaped 503", upstream("503: 503 Service Unavailable"), true},
		{"an upstream-shaped failure with no HTTP answer", status.Error(codes.Unknown, "failed to mount objects, error: dial tcp: lookup kv.vault.azure.net: no such host"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := retryable(tt.err); got != tt.want {
				t.Errorf("retryable = %v, want %v", got, tt.want)
			}
		})
	}
}
