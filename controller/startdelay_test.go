package controller

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	spcv1 "github.com/kvsync/kvsync/api/secretsstore/v1"
	ssv1alpha1 "github.com/kvsync/kvsync/api/secretsync/v1alpha1"
)

// startWorld is a SecretSync in sync for its spec, its class, and the
// Secret the controller wrote.
func startWorld(t *testing.T, inSync bool) (client.Client, *ssv1alpha1.SecretSync) {
	t.Helper()
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, ssv1alpha1.AddToScheme, spcv1.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	status := metav1.ConditionTrue
	if !inSync {
		status = metav1.ConditionFalse
	}
	ss := &ssv1alpha1.SecretSync{ObjectMeta: metav1.ObjectMeta{Namespace: "payments", Name: "db", Generation: 2},
		Spec: ssv1alpha1.SecretSyncSpec{SecretProviderClassName: "kv"},
		Status: ssv1alpha1.SecretSyncStatus{Conditions: []metav1.Condition{{Type: ssv1alpha1.ConditionTypeUpdate, Status: status,
			Reason: ssv1alpha1.ReasonUpdateNoValueChangeSucceeded, ObservedGeneration: 2}}}}
	class := &spcv1.SecretProviderClass{ObjectMeta: metav1.ObjectMeta{Namespace: "payments", Name: "kv", Generation: 1}}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "payments", Name: "db",
		OwnerReferences: []metav1.OwnerReference{{Kind: "SecretSync", Name: "db"}},
		ManagedFields: []metav1.ManagedFieldsEntry{{Manager: ssv1alpha1.FieldManager, Operation: metav1.ManagedFieldsOperationApply,
			APIVersion: "v1", FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:data":{}}`)}}}}}
	c := fake.NewClientBuilder().WithScheme(scheme).WithReturnManagedFields().WithObjects(ss, class, secret).Build()
	return c, ss
}

func TestTheFirstCheckAfterStartOfASecretSyncInSyncWaitsARandomPartOfTheJitter(t *testing.T) {
	ctx := context.Background()
	req := reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "payments", Name: "db"}}
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }

	t.Run("it waits, then checks, once", func(t *testing.T) {
		c, ss := startWorld(t, true)
		r := &SecretSyncReconciler{Client: c, Jitter: time.Minute, Now: clock}
		first := r.startCheckDelay(ctx, req, ss)
		if first <= 0 || first > time.Minute+time.Millisecond {
			t.Fatalf("first check waits %s, want within the jitter", first)
		}
		// Another event with nothing changed (the class's Add at start)
		// waits for the same moment.
		now = now.Add(first / 2)
		if d := r.startCheckDelay(ctx, req, ss); d != first-first/2 {
			t.Errorf("an unchanged SecretSync waits %s more, want %s", d, first-first/2)
		}
		now = now.Add(first)
		if d := r.startCheckDelay(ctx, req, ss); d != 0 {
			t.Errorf("at its moment the check waits %s, want 0", d)
		}
		if d := r.startCheckDelay(ctx, req, ss); d != 0 {
			t.Errorf("a later check waits %s, want 0", d)
		}
	})

	for _, tt := range []struct {
		name   string
		change func(c client.Client, ss *ssv1alpha1.SecretSync)
	}{
		{"its spec changed", func(_ client.Client, ss *ssv1alpha1.SecretSync) { ss.Generation++ }},
		{"its class changed", func(c client.Client, _ *ssv1alpha1.SecretSync) {
			class := &spcv1.SecretProviderClass{}
			_ = c.Get(ctx, types.NamespacedName{Namespace: "payments", Name: "kv"}, class)
			class.Generation++
			_ = c.Update(ctx, class)
		}},
		{"its Secret was deleted", func(c client.Client, _ *ssv1alpha1.SecretSync) {
			_ = c.Delete(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "payments", Name: "db"}})
		}},
		{"someone else wrote its Secret", func(c client.Client, _ *ssv1alpha1.SecretSync) {
			secret := &corev1.Secret{}
			_ = c.Get(ctx, types.NamespacedName{Namespace: "payments", Name: "db"}, secret)
			secret.Data = map[string][]byte{"password": []byte("edited")}
			if err := c.Update(ctx, secret, client.FieldOwner("kubectl-edit")); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run("it is checked at once when "+tt.name, func(t *testing.T) {
			c, ss := startWorld(t, true)
			r := &SecretSyncReconciler{Client: c, Jitter: time.Minute, Now: clock}
			if d := r.startCheckDelay(ctx, req, ss); d <= 0 {
				t.Fatalf("first check waits %s", d)
			}
			tt.change(c, ss)
			if d := r.startCheckDelay(ctx, req, ss); d != 0 {
				t.Errorf("after the change the check waits %s, want 0", d)
			}
		})
	}

	t.Run("without jitter, or out of sync, it is checked at once", func(t *testing.T) {
		c, ss := startWorld(t, true)
		if d := (&SecretSyncReconciler{Client: c, Now: clock}).startCheckDelay(ctx, req, ss); d != 0 {
			t.Errorf("no jitter: waits %s", d)
		}
		c, ss = startWorld(t, false)
		if d := (&SecretSyncReconciler{Client: c, Jitter: time.Minute, Now: clock}).startCheckDelay(ctx, req, ss); d != 0 {
			t.Errorf("a failing SecretSync waits %s", d)
		}
	})
}
