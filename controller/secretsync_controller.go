package controller

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

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

// conflictRetryDelay is how soon a pass whose status write lost a race with a
// newer write runs again.
const conflictRetryDelay = 100 * time.Millisecond

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
	// HashKey keys the syncHash digest. It must stay the same across
	// restarts, or every SecretSync is rewritten once after a restart.
	HashKey []byte
	// TokenAudience is the audience of ServiceAccount tokens passed to
	// providers. Empty means DefaultTokenAudience.
	TokenAudience string
	// RotationPollInterval is the time between two checks of one SecretSync.
	// Zero means DefaultRotationPollInterval.
	RotationPollInterval time.Duration
	// MaxConcurrentSyncs is the number of SecretSyncs checked in parallel.
	// Zero means 1.
	MaxConcurrentSyncs int
	// Now returns the current time. Nil means time.Now.
	Now func() time.Time
}

// +kubebuilder:rbac:groups=secret-sync.x-k8s.io,resources=secretsyncs,verbs=get;list;watch
// +kubebuilder:rbac:groups=secret-sync.x-k8s.io,resources=secretsyncs/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=secrets-store.csi.x-k8s.io,resources=secretproviderclasses,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups="",resources=serviceaccounts/token,verbs=create
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;list;watch;create;update;patch

// Reconcile runs one check of a SecretSync: it brings the Secret up to date
// when it can and records the outcome in the status. A returned error means
// the check failed transiently and is retried with backoff; otherwise the
// next check is scheduled after the rotation poll interval.
func (r *SecretSyncReconciler) Reconcile(ctx context.Context, req reconcile.Request) (ctrl.Result, error) {
	ss := &ssv1alpha1.SecretSync{}
	if err := r.Client.Get(ctx, req.NamespacedName, ss); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !ss.DeletionTimestamp.IsZero() {
		// The Secret is owned by the SecretSync; garbage collection removes it.
		return ctrl.Result{}, nil
	}

	s := &syncScope{secretSync: ss}
	syncErr := r.sync(ctx, s)
	if err := r.patchStatus(ctx, ss, computeStatus(ss.Status, s, syncErr, r.now())); err != nil {
		if apierrors.IsConflict(err) {
			// The pass started from a stale copy; its outcome is dropped and
			// the check runs again on the fresh one.
			return ctrl.Result{RequeueAfter: conflictRetryDelay}, nil
		}
		return ctrl.Result{}, fmt.Errorf("writing SecretSync status: %w", err)
	}
	if syncErr != nil {
		ctrl.LoggerFrom(ctx).Info("Sync failed", "reason", syncErr.reason, "message", syncErr.message)
		if syncErr.transient {
			return ctrl.Result{}, syncErr
		}
	}
	return ctrl.Result{RequeueAfter: r.pollInterval()}, nil
}

// patchStatus writes status when it differs from what ss holds. The patch is
// conditional on the resourceVersion the pass started from, so a pass that
// read a stale SecretSync from the cache cannot overwrite a newer status.
func (r *SecretSyncReconciler) patchStatus(ctx context.Context, ss *ssv1alpha1.SecretSync, status ssv1alpha1.SecretSyncStatus) error {
	if statusEqual(ss.Status, status) {
		return nil
	}
	base := ss.DeepCopy()
	ss.Status = status
	return r.Client.Status().Patch(ctx, ss, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{}))
}

// SetupWithManager registers the reconciler with mgr. The manager's cache
// must be built with CacheOptions.
func (r *SecretSyncReconciler) SetupWithManager(mgr ctrl.Manager) error {
	err := mgr.GetFieldIndexer().IndexField(context.Background(), &ssv1alpha1.SecretSync{}, spcNameField,
		func(o client.Object) []string {
			return []string{o.(*ssv1alpha1.SecretSync).Spec.SecretProviderClassName}
		})
	if err != nil {
		return fmt.Errorf("indexing SecretSyncs by SecretProviderClass: %w", err)
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&ssv1alpha1.SecretSync{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Owns(&corev1.Secret{}).
		Watches(&spcv1.SecretProviderClass{}, handler.EnqueueRequestsFromMapFunc(r.secretSyncsForClass)).
		Named("secretsync").
		WithOptions(controller.Options{MaxConcurrentReconciles: max(r.MaxConcurrentSyncs, 1)}).
		Complete(r)
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
	}
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

func (r *SecretSyncReconciler) tokenAudience() string {
	if r.TokenAudience != "" {
		return r.TokenAudience
	}
	return DefaultTokenAudience
}
