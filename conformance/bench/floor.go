package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ssv1alpha1 "github.com/kvsync/kvsync/api/secretsync/v1alpha1"
)

// floorLabel marks the SecretSyncs the floor creates, so that it removes
// them, and them only.
const floorLabel = "bench.kvsync.io/floor"

// floor measures the least an initial sync of n SecretSyncs can cost the
// API server, in the same run and on the same API server, before the
// controller starts: the harness creates n SecretSyncs as the sync phase
// does (8 at a time), and for each, acting as the controller (its
// ServiceAccount, RBAC and admission policies), makes the two writes a
// first sync cannot do without: it creates the Secret and patches the
// status once, with what kvsync writes. Then it removes what it created.
// The initial sync is reported as a ratio to this time.
func (m *measurement) floor(ctx context.Context) error {
	w := m.w
	cfg := rest.CopyConfig(w.env.ControllerConfig)
	cfg.QPS, cfg.Burst = -1, 0 // as the controller: no client-side limit
	as, err := client.New(cfg, client.Options{Scheme: w.env.Client.Scheme()})
	if err != nil {
		return err
	}
	start := time.Now()
	err = parallel(w.n, 8, func(i int) error {
		ss := w.secretSync(i, "floor")
		ss.Labels = map[string]string{floorLabel: ""}
		if err := w.c.Create(ctx, ss); err != nil {
			return err
		}
		if err := as.Create(ctx, floorSecret(ss, w.class(i)), client.FieldOwner(ssv1alpha1.FieldManager)); err != nil {
			return fmt.Errorf("creating Secret %s/%s as the controller: %w", ss.Namespace, ss.Name, err)
		}
		base := ss.DeepCopy()
		ss.Status = floorStatus(ss, i)
		if err := as.Status().Patch(ctx, ss, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); err != nil {
			return fmt.Errorf("patching the status of SecretSync %s/%s as the controller: %w", ss.Namespace, ss.Name, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	m.res.FloorSeconds = time.Since(start).Seconds()
	return w.removeFloor(ctx)
}

// floorSecret is the Secret kvsync creates for ss of class k.
func floorSecret(ss *ssv1alpha1.SecretSync, k int) *corev1.Secret {
	data := map[string][]byte{}
	for j, item := range ss.Spec.SecretObject.Data {
		data[item.TargetKey] = fmt.Appendf(nil, "kvsync-canary-%d-%d-v1", k, j)
	}
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ss.Namespace, Name: ss.Name,
			Labels:      map[string]string{ssv1alpha1.ManagedLabel: ""},
			Annotations: map[string]string{ssv1alpha1.ManagedAnnotation: ""},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: ssv1alpha1.GroupVersion.String(), Kind: "SecretSync",
				Name: ss.Name, UID: ss.UID, Controller: ptr.To(true)}}},
		Type: corev1.SecretTypeOpaque,
		Data: data,
	}
}

// floorStatus is the status kvsync writes after creating the Secret of ss:
// a hash, the time, and a CreateSucceeded condition naming each version.
func floorStatus(ss *ssv1alpha1.SecretSync, i int) ssv1alpha1.SecretSyncStatus {
	now := metav1.NewTime(time.Now().Truncate(time.Second))
	var versions []string
	for _, item := range ss.Spec.SecretObject.Data {
		versions = append(versions, fmt.Sprintf("%s=%032x", item.SourcePath, i))
	}
	return ssv1alpha1.SecretSyncStatus{
		SyncHash:               fmt.Sprintf("%064x", i),
		LastSuccessfulSyncTime: &now,
		Conditions: []metav1.Condition{{Type: ssv1alpha1.ConditionTypeCreate, Status: metav1.ConditionTrue, Reason: ssv1alpha1.ReasonCreateSucceeded,
			ObservedGeneration: ss.Generation, LastTransitionTime: now,
			Message: fmt.Sprintf("Secret %q was created with %d item(s) from SecretProviderClass %q. Vault versions: %s.",
				ss.Name, len(ss.Spec.SecretObject.Data), ss.Spec.SecretProviderClassName, strings.Join(versions, ", "))}},
	}
}

// removeFloor deletes the floor's SecretSyncs and Secrets (the only
// managed Secrets before the controller starts).
func (w *world) removeFloor(ctx context.Context) error {
	for ns := range (w.n + syncsPerNamespace - 1) / syncsPerNamespace {
		name := w.namespace(ns * syncsPerNamespace)
		if err := w.c.DeleteAllOf(ctx, &ssv1alpha1.SecretSync{}, client.InNamespace(name), client.HasLabels{floorLabel}); err != nil {
			return fmt.Errorf("removing the floor's SecretSyncs: %w", err)
		}
		if err := w.c.DeleteAllOf(ctx, &corev1.Secret{}, client.InNamespace(name), client.HasLabels{ssv1alpha1.ManagedLabel}); err != nil {
			return fmt.Errorf("removing the floor's Secrets: %w", err)
		}
	}
	return nil
}
