package controller

import (
	"context"
	"math/rand/v2"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	spcv1 "github.com/kvsync/kvsync/api/secretsstore/v1"
	ssv1alpha1 "github.com/kvsync/kvsync/api/secretsync/v1alpha1"
)

// checked marks a SecretSync this process has checked since it started.
type checked struct{}

// startDeferral is a first check put off: when it is due, and the
// generations of the SecretSync and its class it was put off for.
type startDeferral struct {
	due                         time.Time
	generation, classGeneration int64
}

// startCheckDelay is how long the first check of ss since the controller
// started still waits. When ss was in sync for its current spec, nothing
// the controller watches is known to have changed, only the vault may
// have, which is what polls are for: the first check is a poll-triggered
// one and waits a random part of the jitter. A fleet whose controllers all
// start at once (an upgrade) then spreads its vault reads over the jitter
// instead of sending them together. A change meanwhile of the SecretSync's
// spec, of its class, or of its Secret (deleted, or written by anyone else)
// is checked at once, as always; so is every SecretSync not in sync, and
// every check when the jitter is zero.
func (r *SecretSyncReconciler) startCheckDelay(ctx context.Context, req reconcile.Request, ss *ssv1alpha1.SecretSync) time.Duration {
	if r.Jitter <= 0 {
		return 0 // nothing to spread: no state kept either
	}
	now := r.now()
	v, loaded := r.seen.Load(req.NamespacedName)
	if loaded {
		d, deferred := v.(startDeferral)
		if !deferred {
			return 0
		}
		if now.Before(d.due) && r.unchangedSince(ctx, ss, d) {
			return d.due.Sub(now)
		}
		r.seen.Store(req.NamespacedName, checked{})
		return 0
	}
	latest := latestCondition(ss.Status)
	if latest.Status != metav1.ConditionTrue || latest.ObservedGeneration != ss.Generation {
		r.seen.Store(req.NamespacedName, checked{})
		return 0
	}
	classGeneration, ok := r.classGeneration(ctx, ss)
	if !ok {
		r.seen.Store(req.NamespacedName, checked{})
		return 0
	}
	d := startDeferral{due: now.Add(rand.N(r.Jitter) + time.Millisecond), generation: ss.Generation, classGeneration: classGeneration}
	r.seen.Store(req.NamespacedName, d)
	return d.due.Sub(now)
}

// unchangedSince reports whether ss, its class and its Secret are as they
// were when its first check was put off (d): the same generations, and the
// Secret there, last written by the controller alone.
func (r *SecretSyncReconciler) unchangedSince(ctx context.Context, ss *ssv1alpha1.SecretSync, d startDeferral) bool {
	classGeneration, ok := r.classGeneration(ctx, ss)
	if !ok || ss.Generation != d.generation || classGeneration != d.classGeneration {
		return false
	}
	secret := &corev1.Secret{}
	if err := r.Client.Get(ctx, types.NamespacedName{Namespace: ss.Namespace, Name: ss.Name}, secret); err != nil {
		return false
	}
	return r.isOwnWrite(secret)
}

// classGeneration is the generation of ss's SecretProviderClass, if it can
// be read from the cache.
func (r *SecretSyncReconciler) classGeneration(ctx context.Context, ss *ssv1alpha1.SecretSync) (int64, bool) {
	class := &spcv1.SecretProviderClass{}
	if err := r.Client.Get(ctx, client.ObjectKey{Namespace: ss.Namespace, Name: ss.Spec.SecretProviderClassName}, class); err != nil {
		return 0, false
	}
	return class.Generation, true
}
