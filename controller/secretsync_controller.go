package controller

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"golang.org/x/time/rate"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	spcv1 "github.com/kvsync/kvsync/api/secretsstore/v1"
	ssv1alpha1 "github.com/kvsync/kvsync/api/secretsync/v1alpha1"
	"github.com/kvsync/kvsync/controller/csiprovider"
)

// DefaultTokenAudience is the audience of the ServiceAccount tokens passed to
// providers: the one Entra ID workload identity federation expects.
const DefaultTokenAudience = "api://AzureADTokenExchange"

// DefaultRotationPollInterval is how often a SecretSync is checked against
// the secret store when nothing else triggers a check.
const DefaultRotationPollInterval = time.Hour

// Backoff of a SecretSync whose check failed in a way worth retrying before
// the poll (see retryable); it never exceeds the poll interval, so a failing
// SecretSync is checked at least as often as a healthy one and recovers
// within a poll of its cause going away.
const (
	failureBaseDelay = time.Second
	failureMaxDelay  = 5 * time.Minute
)

// conflictRetryDelay is how soon a pass whose status write lost a race with a
// newer write runs again.
const conflictRetryDelay = 100 * time.Millisecond

// flightWaitMargin is how much longer than a Mount's deadline a check waits
// for another check's identical Mount: the time the other check takes to
// wait for the vault's rate limit and record the result.
const flightWaitMargin = 5 * time.Second

// spcNameField indexes SecretSyncs by the SecretProviderClass they name.
const spcNameField = "spec.secretProviderClassName"

// SecretSyncReconciler keeps the Secret of each SecretSync in sync with its
// provider.
type SecretSyncReconciler struct {
	// Client reads through the manager's cache and writes to the API server.
	Client client.Client
	// APIReader reads directly from the API server. It is used to look at
	// Secrets that are not managed, which the cache does not hold.
	APIReader client.Reader
	// Providers reaches the providers' sockets.
	Providers *csiprovider.Client
	// Recorder records Events when the outcome of a SecretSync changes. Nil
	// records none.
	Recorder events.EventRecorder
	// HashKey keys the syncHash digest. It must stay the same across
	// restarts, or every SecretSync is rewritten once after a restart.
	HashKey []byte
	// TokenAudience is the audience of ServiceAccount tokens passed to
	// providers. Empty means DefaultTokenAudience.
	TokenAudience string
	// RotationPollInterval is the time between two checks of one SecretSync.
	// Zero means DefaultRotationPollInterval.
	RotationPollInterval time.Duration
	// Jitter is the largest random delay added to each poll, so that
	// SecretSyncs created together do not poll together.
	Jitter time.Duration
	// PartialSync writes the items that succeeded when others failed, and
	// reports PartialSync (the SSE's enablePartialSecretSync, default true).
	PartialSync bool
	// AllowedSecretTypes are the Secret types a SecretSync may write. Nil
	// means DefaultAllowedSecretTypes.
	AllowedSecretTypes []corev1.SecretType
	// VaultReadsPerSecond bounds the objects Mount calls read per second
	// from one vault. Zero means DefaultVaultReadsPerSecond.
	VaultReadsPerSecond float64
	// MaxConcurrentSyncs is the number of SecretSyncs checked in parallel.
	// Zero means 1.
	MaxConcurrentSyncs int
	// Now returns the current time. Nil means time.Now.
	Now func() time.Time

	// retries is the backoff of SecretSyncs whose checks fail in a way
	// worth retrying before the poll.
	retries  workqueue.TypedRateLimiter[reconcile.Request]
	foreign  *foreignSecrets
	tokens   *tokenCache
	limiters *vaultLimiters
	mounts   *mountCache
	plans    planCache
	// ownWrites holds, per SecretSync, the resourceVersion of the Secret the
	// controller last wrote, so that the watch event of its own write does
	// not trigger another check.
	ownWrites sync.Map
	// seen holds, per SecretSync, whether this process has checked it
	// (checked), or put its first check off (a startDeferral).
	seen sync.Map
}

// What the controller does, and nothing more: read SecretSyncs and classes,
// patch SecretSync status, read and apply Secrets (list and watch serve the
// label-selected cache), request ServiceAccount tokens, record Events. The
// leader election Lease is in the controller's namespace (Role in
// deploy/rbac).
//
// +kubebuilder:rbac:groups=secret-sync.x-k8s.io,resources=secretsyncs,verbs=get;list;watch
// +kubebuilder:rbac:groups=secret-sync.x-k8s.io,resources=secretsyncs/status,verbs=patch
// +kubebuilder:rbac:groups=secrets-store.csi.x-k8s.io,resources=secretproviderclasses,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups="",resources=serviceaccounts/token,verbs=create
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile runs one check of a SecretSync: it brings the Secret up to date
// when it can and records the outcome in the status, writing it only when it
// changed. A transient failure is retried with a per-SecretSync backoff;
// otherwise the next check comes after the rotation poll interval plus
// jitter, or earlier when the SecretSync, its class or its Secret change.
func (r *SecretSyncReconciler) Reconcile(ctx context.Context, req reconcile.Request) (ctrl.Result, error) {
	ss := &ssv1alpha1.SecretSync{}
	if err := r.Client.Get(ctx, req.NamespacedName, ss); err != nil {
		if apierrors.IsNotFound(err) {
			r.ownWrites.Delete(req.NamespacedName)
			r.seen.Delete(req.NamespacedName)
			r.retries.Forget(req)
			r.foreign.track(req.NamespacedName, false)
			forgetCheck(req.NamespacedName)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !ss.DeletionTimestamp.IsZero() {
		// The Secret is owned by the SecretSync; garbage collection removes it.
		return ctrl.Result{}, nil
	}

	if d := r.startCheckDelay(ctx, req, ss); d > 0 {
		return ctrl.Result{RequeueAfter: d}, nil
	}
	start := r.now()
	s := &syncScope{secretSync: ss}
	syncErr := r.sync(ctx, s)
	if syncErr != nil && syncErr.deferred {
		observeDeferral(string(s.class.Spec.Provider))
		ctrl.LoggerFrom(ctx).V(1).Info("Sync deferred", "message", syncErr.message, "retryAfter", syncErr.retryAfter)
		return ctrl.Result{RequeueAfter: syncErr.retryAfter + spread(syncErr.retryAfter)}, nil
	}
	if syncErr != nil && syncErr.stale {
		// The cache catches up within moments; the backoff keeps a pass
		// that keeps finding it behind from spinning.
		ctrl.LoggerFrom(ctx).V(1).Info("Sync started from a stale cache", "message", syncErr.message)
		return ctrl.Result{RequeueAfter: r.retries.When(req)}, nil
	}
	r.foreign.track(req.NamespacedName, blockedByForeignSecret(syncErr))
	status := computeStatus(ss.Status, s, syncErr, r.now())
	prev := latestCondition(ss.Status)
	changed, err := r.patchStatus(ctx, ss, status)
	// A check counts once its outcome is written (or failed to be): a
	// reader of the metrics then finds the status of every check counted.
	observeSync(latestReason(status), r.now().Sub(start))
	observeCheck(req.NamespacedName, r.now())
	if err != nil {
		if apierrors.IsConflict(err) {
			// The pass started from a stale copy; its outcome is dropped and
			// the check runs again on the fresh one.
			return ctrl.Result{RequeueAfter: conflictRetryDelay}, nil
		}
		if apierrors.IsNotFound(err) {
			// The SecretSync was deleted during the pass: there is no status
			// left to write, and its deletion's own event cleans up.
			return ctrl.Result{}, nil
		}
		r.event(ss, corev1.EventTypeWarning, ssv1alpha1.ReasonControllerSyncFailed,
			"the SecretSync status could not be written: %s", apiMessage(err))
		return ctrl.Result{}, fmt.Errorf("writing SecretSync status: %w", err)
	}
	if changed || s.wrote {
		r.recordOutcome(ss, prev, s)
	}
	next := r.nextCheck(req, ss, s, syncErr)
	if syncErr != nil {
		ctrl.LoggerFrom(ctx).Info("Sync did not complete", "reason", syncErr.reason, "message", syncErr.message,
			"retryable", syncErr.transient, "nextCheckIn", next.Round(time.Millisecond))
	}
	return ctrl.Result{RequeueAfter: next}, nil
}

// nextCheck is the delay to the next check of ss after a pass that ended
// with syncErr. A failure worth retrying before the poll is retried with a
// backoff of its own, doubling up to the poll interval, or after the delay
// the provider asked for; any other outcome waits for the poll, and resets
// the backoff. Failures are returned as a delay, not an error, so that each
// is logged once, by Reconcile.
func (r *SecretSyncReconciler) nextCheck(req reconcile.Request, ss *ssv1alpha1.SecretSync, s *syncScope, syncErr *syncError) time.Duration {
	switch {
	case syncErr != nil && syncErr.transient && s.retryAfter > 0:
		// The provider said when to come back: sooner is refused, later
		// needlessly slow.
		r.retries.Forget(req)
		return s.retryAfter + spread(s.retryAfter)
	case syncErr != nil && syncErr.transient:
		return r.retries.When(req)
	}
	r.retries.Forget(req)
	return r.nextPoll(ss)
}

// patchStatus writes status when it differs from what ss holds and reports
// whether it did. The patch is conditional on the resourceVersion the pass
// started from, so a pass that read a stale SecretSync from the cache cannot
// overwrite a newer status.
func (r *SecretSyncReconciler) patchStatus(ctx context.Context, ss *ssv1alpha1.SecretSync, status ssv1alpha1.SecretSyncStatus) (bool, error) {
	if statusEqual(ss.Status, status) {
		return false, nil
	}
	base := ss.DeepCopy()
	ss.Status = status
	return true, r.Client.Status().Patch(ctx, ss, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{}))
}

// recordOutcome records an Event on state changes only: when the latest
// condition's type, status or reason differs from the one before the pass,
// or when the pass wrote the Secret. A SecretSync's first outcome, when it
// is a success, records none: its status says CreateSucceeded, and an
// Event would double the writes of every first sync.
func (r *SecretSyncReconciler) recordOutcome(ss *ssv1alpha1.SecretSync, prev metav1.Condition, s *syncScope) {
	latest := latestCondition(ss.Status)
	if !s.wrote && prev.Type == latest.Type && prev.Status == latest.Status && prev.Reason == latest.Reason {
		return
	}
	if prev.Type == "" && latest.Status == metav1.ConditionTrue {
		return
	}
	eventType := corev1.EventTypeNormal
	if latest.Status != metav1.ConditionTrue {
		eventType = corev1.EventTypeWarning
	}
	r.event(ss, eventType, latest.Reason, "%s", truncate(latest.Message, 1024))
}

func (r *SecretSyncReconciler) event(ss *ssv1alpha1.SecretSync, eventType, reason, format string, args ...any) {
	if r.Recorder != nil {
		r.Recorder.Eventf(ss, nil, eventType, reason, "Sync", format, args...)
	}
}

// SetupWithManager registers the reconciler with mgr. The manager's cache
// must be built with CacheOptions.
func (r *SecretSyncReconciler) SetupWithManager(mgr ctrl.Manager) error {
	registerMetrics()
	if err := mgr.Add(lastSuccess.reader(mgr.GetClient())); err != nil {
		return fmt.Errorf("adding the last-success metric's reader: %w", err)
	}
	r.tokens = &tokenCache{client: r.Client, audience: r.tokenAudience(), now: r.now, tokens: map[tokenKey]cachedToken{}}
	perSecond := r.VaultReadsPerSecond
	if perSecond <= 0 {
		perSecond = DefaultVaultReadsPerSecond
	}
	r.limiters = &vaultLimiters{perSecond: perSecond, limiters: map[string]*rate.Limiter{}}
	r.retries = failureBackoff(r.pollInterval())
	watcher, err := client.NewWithWatch(mgr.GetConfig(), client.Options{Scheme: mgr.GetScheme(), Mapper: mgr.GetRESTMapper(), HTTPClient: mgr.GetHTTPClient()})
	if err != nil {
		return fmt.Errorf("creating the client that watches foreign Secrets: %w", err)
	}
	r.foreign = newForeignSecrets(watcher)
	if err := mgr.Add(r.foreign); err != nil {
		return fmt.Errorf("adding the foreign Secret watches: %w", err)
	}
	r.mounts = newMountCache(mountCacheTTL(r.pollInterval()), r.Providers.Timeout()+flightWaitMargin)

	err = mgr.GetFieldIndexer().IndexField(context.Background(), &ssv1alpha1.SecretSync{}, spcNameField,
		func(o client.Object) []string {
			return []string{o.(*ssv1alpha1.SecretSync).Spec.SecretProviderClassName}
		})
	if err != nil {
		return fmt.Errorf("indexing SecretSyncs by SecretProviderClass: %w", err)
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&ssv1alpha1.SecretSync{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Owns(&corev1.Secret{}, builder.WithPredicates(predicate.Funcs{
			CreateFunc: func(e event.CreateEvent) bool { return !r.isOwnWrite(e.Object) },
			UpdateFunc: func(e event.UpdateEvent) bool { return !r.isOwnWrite(e.ObjectNew) },
		})).
		Watches(&spcv1.SecretProviderClass{}, handler.EnqueueRequestsFromMapFunc(r.secretSyncsForClass),
			builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		WatchesRawSource(source.Channel(r.foreign.events, &handler.EnqueueRequestForObject{})).
		Named("secretsync").
		WithOptions(controller.Options{
			MaxConcurrentReconciles: max(r.MaxConcurrentSyncs, 1),
			RateLimiter:             failureBackoff(r.pollInterval()),
		}).
		Complete(r)
}

// failureBackoff is the requeue delay of a SecretSync whose check failed:
// its own, from failureBaseDelay doubling up to the poll interval (at most
// failureMaxDelay). No budget is shared between SecretSyncs: a shared token
// bucket falls into debt when many fail at once (an API server restart, a
// vault outage) and then holds every retry back far beyond the poll
// interval. The API client's QPS limit and the per-vault read limit bound
// the load of retries instead.
func failureBackoff(poll time.Duration) workqueue.TypedRateLimiter[reconcile.Request] {
	return workqueue.NewTypedItemExponentialFailureRateLimiter[reconcile.Request](failureBaseDelay, min(failureMaxDelay, poll))
}

// isOwnWrite reports whether a Secret event is the echo of the controller's
// own write of it: the resourceVersion of its latest write, or a Secret
// whose every field manager is the controller (the echo can arrive before
// the write's response is recorded; anyone else's change adds a manager).
func (r *SecretSyncReconciler) isOwnWrite(o client.Object) bool {
	for _, ref := range o.GetOwnerReferences() {
		if ref.Kind != "SecretSync" {
			continue
		}
		rv, ok := r.ownWrites.Load(types.NamespacedName{Namespace: o.GetNamespace(), Name: ref.Name})
		return (ok && rv == o.GetResourceVersion()) || onlyManagedByController(o.GetManagedFields())
	}
	return false
}

// onlyManagedByController reports whether every field manager of an object
// is the controller's.
func onlyManagedByController(managers []metav1.ManagedFieldsEntry) bool {
	for _, m := range managers {
		if m.Manager != ssv1alpha1.FieldManager {
			return false
		}
	}
	return len(managers) > 0
}

// secretSyncsForClass maps a SecretProviderClass to the SecretSyncs that use it.
func (r *SecretSyncReconciler) secretSyncsForClass(ctx context.Context, o client.Object) []reconcile.Request {
	list := &ssv1alpha1.SecretSyncList{}
	if err := r.Client.List(ctx, list, client.InNamespace(o.GetNamespace()), client.MatchingFields{spcNameField: o.GetName()}); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "Listing SecretSyncs of a SecretProviderClass failed", "secretProviderClass", o.GetName())
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(list.Items))
	for _, ss := range list.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: ss.Namespace, Name: ss.Name}})
	}
	return reqs
}

// CacheOptions returns the cache options the controller's manager needs: only
// managed Secrets are cached, so memory does not grow with the number of
// unrelated Secrets in the cluster.
func CacheOptions() cache.Options {
	managed, err := labels.NewRequirement(ssv1alpha1.ManagedLabel, selection.Exists, nil)
	if err != nil {
		panic(fmt.Sprintf("managed label selector: %v", err)) // a constant; cannot fail
	}
	return cache.Options{
		ByObject: map[client.Object]cache.ByObject{
			&corev1.Secret{}: {Label: labels.NewSelector().Add(*managed)},
		},
		DefaultTransform: trimManagedFields,
	}
}

// trimManagedFields drops the field sets of cached objects' managed fields,
// the bulk of an applied object, keeping who manages them (isOwnWrite
// reads the managers).
func trimManagedFields(obj any) (any, error) {
	if o, ok := obj.(metav1.Object); ok {
		managed := o.GetManagedFields()
		for i := range managed {
			managed[i].FieldsV1 = nil
		}
		o.SetManagedFields(managed)
	}
	return obj, nil
}

func (r *SecretSyncReconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *SecretSyncReconciler) pollInterval() time.Duration {
	if r.RotationPollInterval > 0 {
		return r.RotationPollInterval
	}
	return DefaultRotationPollInterval
}

// nextPoll is the delay to the next poll-triggered check of ss. The
// SecretSyncs of one class check together, on a grid of the poll interval
// whose phase is set by the class's namespace and name, keyed by the
// cluster's HashKey: they then share one read of the vault per poll (see
// mountCache), different classes spread over the interval, and so do the
// same classes in the clusters of a fleet (each has its own key), which
// would otherwise poll their vaults at the same moment. A grid point less
// than half an interval away is skipped, so checks are between half and
// one and a half intervals apart (exactly one interval in the steady
// state). Jitter is added on top.
func (r *SecretSyncReconciler) nextPoll(ss *ssv1alpha1.SecretSync) time.Duration {
	d := r.pollInterval()
	h := hmac.New(sha256.New, r.HashKey)
	_, _ = h.Write([]byte("poll-phase/" + ss.Namespace + "/" + ss.Spec.SecretProviderClassName))
	phase := time.Duration(binary.BigEndian.Uint64(h.Sum(nil)) % uint64(d))
	offset := (time.Duration(r.now().UnixNano()%int64(d)) - phase + d) % d
	next := d - offset
	if next < d/2 {
		next += d
	}
	if r.Jitter > 0 {
		next += rand.N(r.Jitter)
	}
	return next
}

// spread returns a random extra wait of up to half of d, so that the
// SecretSyncs a vault held back do not all come back at once.
func spread(d time.Duration) time.Duration {
	return rand.N(d/2 + 1)
}

func (r *SecretSyncReconciler) tokenAudience() string {
	if r.TokenAudience != "" {
		return r.TokenAudience
	}
	return DefaultTokenAudience
}
