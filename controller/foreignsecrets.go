package controller

import (
	"context"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"

	ssv1alpha1 "github.com/kvsync/kvsync/api/secretsync/v1alpha1"
)

// maxForeignWatches bounds the foreign Secrets watched at once. A SecretSync
// blocked by a foreign Secret beyond it is checked again at its poll.
const maxForeignWatches = 1000

// foreignRewatchDelay is the wait before a foreign Secret's watch that the
// API server ended or refused starts again.
const foreignRewatchDelay = time.Second

// foreignSecrets watches the foreign Secrets that block SecretSyncs (a
// Secret of the SecretSync's name that is not the controller's), each by
// name, and asks for a check of the SecretSync as soon as its Secret is
// deleted or changes: the guide's fix, "delete the Secret", then takes
// effect in about a second instead of at the next poll.
//
// Only the names being watched are kept, and only the Secrets' metadata
// travels: memory grows with the number of blocked SecretSyncs (at most
// maxForeignWatches), never with the number of Secrets in the cluster,
// which the manager's cache does not hold either (see CacheOptions).
type foreignSecrets struct {
	client client.WithWatch
	// events receives the SecretSyncs to check; the controller reads it.
	events chan event.GenericEvent

	mu sync.Mutex
	// ctx is the manager's while it runs; nil before Start.
	ctx     context.Context
	watches map[types.NamespacedName]*foreignWatch
	wg      sync.WaitGroup
}

// foreignWatch is the watch of one foreign Secret.
type foreignWatch struct {
	cancel context.CancelFunc
}

func newForeignSecrets(c client.WithWatch) *foreignSecrets {
	return &foreignSecrets{client: c, events: make(chan event.GenericEvent, 1024), watches: map[types.NamespacedName]*foreignWatch{}}
}

// Start runs until ctx ends, then stops every watch and waits for them. It
// makes foreignSecrets a manager Runnable: watches run only while the
// manager leads, as checks do.
func (f *foreignSecrets) Start(ctx context.Context) error {
	f.mu.Lock()
	f.ctx = ctx
	f.mu.Unlock()
	<-ctx.Done()
	f.mu.Lock()
	for key, w := range f.watches {
		w.cancel()
		delete(f.watches, key)
	}
	f.mu.Unlock()
	f.wg.Wait()
	return nil
}

// track watches the Secret of the SecretSync key when blocked is true, and
// stops watching it otherwise.
func (f *foreignSecrets) track(key types.NamespacedName, blocked bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	w, watching := f.watches[key]
	switch {
	case !blocked && watching:
		w.cancel()
		delete(f.watches, key)
	case blocked && !watching && f.ctx != nil && f.ctx.Err() == nil && len(f.watches) < maxForeignWatches:
		ctx, cancel := context.WithCancel(f.ctx)
		w = &foreignWatch{cancel: cancel}
		f.watches[key] = w
		f.wg.Go(func() {
			f.watch(ctx, key)
			f.mu.Lock()
			if f.watches[key] == w {
				delete(f.watches, key)
			}
			f.mu.Unlock()
			cancel()
		})
	}
}

// watch follows the Secret key names until it is deleted, asking for a
// check of the SecretSync on every change, or until ctx ends. A watch the
// API server ends starts again from a fresh list.
func (f *foreignSecrets) watch(ctx context.Context, key types.NamespacedName) {
	for ctx.Err() == nil {
		gone, err := f.watchOnce(ctx, key)
		if gone {
			f.enqueue(ctx, key)
			return
		}
		if err != nil && ctx.Err() == nil {
			ctrl.LoggerFrom(ctx).V(1).Info("Watching a foreign Secret failed; watching again", "secret", key, "error", err.Error())
		}
		select {
		case <-ctx.Done():
		case <-time.After(foreignRewatchDelay):
		}
	}
}

// watchOnce lists the Secret's metadata and watches it from there. It
// returns gone when the Secret does not exist or was deleted, and asks for a
// check of the SecretSync when the Secret changes (it may have become the
// controller's).
func (f *foreignSecrets) watchOnce(ctx context.Context, key types.NamespacedName) (gone bool, err error) {
	byName := []client.ListOption{client.InNamespace(key.Namespace), client.MatchingFields{"metadata.name": key.Name}}
	list := &metav1.PartialObjectMetadataList{}
	list.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("SecretList"))
	if err := f.client.List(ctx, list, byName...); err != nil {
		return false, err
	}
	if len(list.Items) == 0 {
		return true, nil
	}
	w, err := f.client.Watch(ctx, list, append(byName, &client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: list.ResourceVersion}})...)
	if err != nil {
		return false, err
	}
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return false, nil
		case ev, ok := <-w.ResultChan():
			switch {
			case !ok:
				return false, nil
			case ev.Type == watch.Deleted:
				return true, nil
			case ev.Type == watch.Error:
				return false, nil
			case ev.Type == watch.Added || ev.Type == watch.Modified:
				f.enqueue(ctx, key)
			}
		}
	}
}

// enqueue asks for a check of the SecretSync key.
func (f *foreignSecrets) enqueue(ctx context.Context, key types.NamespacedName) {
	ss := &ssv1alpha1.SecretSync{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}}
	select {
	case f.events <- event.GenericEvent{Object: ss}:
	case <-ctx.Done():
	}
}

// blockedByForeignSecret reports whether a pass failed because a foreign
// Secret holds the SecretSync's name.
func blockedByForeignSecret(serr *syncError) bool {
	return serr != nil && foreignSecretReason(serr.reason)
}

// foreignSecretReason reports whether reason is the outcome of a check that
// found a foreign Secret holding the SecretSync's name.
func foreignSecretReason(reason string) bool {
	return reason == ssv1alpha1.ReasonInvalidClusterSecretLabelError || reason == ssv1alpha1.ReasonInvalidClusterSecretAnnotationError
}
