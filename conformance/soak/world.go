package main

import (
	"context"
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	spcv1 "github.com/kvsync/kvsync/api/secretsstore/v1"
	ssv1alpha1 "github.com/kvsync/kvsync/api/secretsync/v1alpha1"
	"github.com/kvsync/kvsync/conformance"
	"github.com/kvsync/kvsync/fakevault/keyvault"
	"github.com/kvsync/kvsync/scenarios"
)

// Layout: 5 SecretSyncs per class, 3 objects per class.
const (
	syncsPerClass   = 5
	objectsPerClass = 3
)

// object is one vault secret the world reads.
type object struct {
	vault, name string
}

// world is the soak's objects and what the vaults have held.
type world struct {
	env *conformance.Environment
	c   client.WithWatch

	namespaces []string
	identities []string // client ID per namespace
	vaults     []string
	objects    []object
	// syncs maps each SecretSync that must converge to the objects of its
	// targetKeys k0, k1, k2.
	syncs map[client.ObjectKey][]object
	// foreign are the Secrets the controller must never change, by key,
	// as created.
	foreign map[client.ObjectKey]*corev1.Secret

	mu sync.Mutex
	// history holds every value each object has had, in order.
	history map[object][]string
}

// value is the n-th value of an object: a canary, so that a leak anywhere
// is found by its prefix.
func value(o object, n int) string {
	return fmt.Sprintf("kvsync-canary-soak-%s-%s-v%d", o.vault, o.name, n)
}

// canaryPrefix starts every value the soak writes to a vault.
const canaryPrefix = "kvsync-canary-soak-"

// newWorld creates the soak's world in env, with a client of its own.
func newWorld(ctx context.Context, env *conformance.Environment, o options) (*world, error) {
	cfg := rest.CopyConfig(env.Config)
	cfg.QPS, cfg.Burst = 500, 1000 // the harness is not what is tested
	c, err := client.NewWithWatch(cfg, client.Options{Scheme: env.Client.Scheme()})
	if err != nil {
		return nil, err
	}
	w := &world{env: env, c: c}
	if err := w.setup(ctx, o); err != nil {
		return nil, fmt.Errorf("creating the world: %w", err)
	}
	return w, nil
}

// setup creates the namespaces, identities, vaults, objects, classes,
// foreign Secrets and SecretSyncs.
func (w *world) setup(ctx context.Context, o options) error {
	w.syncs, w.foreign, w.history = map[client.ObjectKey][]object{}, map[client.ObjectKey]*corev1.Secret{}, map[object][]string{}
	for i := range o.namespaces {
		ns := fmt.Sprintf("soak-%02d", i)
		w.namespaces = append(w.namespaces, ns)
		id, err := w.env.AddWorkloadIdentity(ctx, w.c, ns, "workload")
		if err != nil {
			return err
		}
		w.identities = append(w.identities, id)
	}
	var roles []keyvault.RoleAssignment
	for _, id := range w.identities {
		roles = append(roles, keyvault.RoleAssignment{PrincipalID: id, Role: keyvault.RoleSecretsUser})
	}
	for v := range o.vaults {
		name := fmt.Sprintf("kvsoak-%d", v)
		limit := keyvault.SecretsLimit
		if err := w.env.World.CreateVault(keyvault.VaultConfig{Name: name, TenantID: conformance.Tenant, RoleAssignments: roles, RateLimit: &limit}); err != nil {
			return err
		}
		w.vaults = append(w.vaults, name)
	}
	for i, ns := range w.namespaces {
		for k := range o.perNS / syncsPerClass {
			vault := w.vaults[(i*o.perNS/syncsPerClass+k)%len(w.vaults)]
			var objs []object
			var entries []scenarios.ClassObject
			for j := range objectsPerClass {
				obj := object{vault: vault, name: fmt.Sprintf("n%02d-c%d-s%d", i, k, j)}
				if err := w.rotate(obj); err != nil {
					return err
				}
				w.objects = append(w.objects, obj)
				objs = append(objs, obj)
				entries = append(entries, scenarios.ClassObject{ObjectName: obj.name, ObjectAlias: fmt.Sprintf("s%d", j), ObjectType: "secret"})
			}
			objects, err := conformance.ObjectsParameter(entries...)
			if err != nil {
				return err
			}
			class := fmt.Sprintf("kv-%d", k)
			if err := w.c.Create(ctx, &spcv1.SecretProviderClass{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: class},
				Spec: spcv1.SecretProviderClassSpec{Provider: "azure", Parameters: map[string]string{"keyvaultName": vault,
					"tenantID": conformance.Tenant, "clientID": w.identities[i], "objects": objects}}}); err != nil {
				return err
			}
			for s := range syncsPerClass {
				name := fmt.Sprintf("app-%d-%d", k, s)
				if err := w.c.Create(ctx, secretSync(ns, name, class)); err != nil {
					return err
				}
				w.syncs[client.ObjectKey{Namespace: ns, Name: name}] = objs
			}
		}
		// A foreign Secret, and one a SecretSync names but that is not the
		// controller's (InvalidClusterSecretAnnotationError): neither may
		// ever change.
		plain := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "foreign-plain"}, Data: map[string][]byte{"k": []byte("not the controller's")}}
		taken := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app-taken", Labels: map[string]string{ssv1alpha1.ManagedLabel: ""}},
			Data: map[string][]byte{"k0": []byte("someone else's")}}
		for _, s := range []*corev1.Secret{plain, taken} {
			if err := w.c.Create(ctx, s); err != nil {
				return err
			}
			w.foreign[client.ObjectKeyFromObject(s)] = s.DeepCopy()
		}
		if err := w.c.Create(ctx, secretSync(ns, "app-taken", "kv-0")); err != nil {
			return err
		}
	}
	return nil
}

func secretSync(ns, name, class string) *ssv1alpha1.SecretSync {
	ss := &ssv1alpha1.SecretSync{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: ssv1alpha1.SecretSyncSpec{ServiceAccountName: "workload", SecretProviderClassName: class}}
	for j := range objectsPerClass {
		ss.Spec.SecretObject.Data = append(ss.Spec.SecretObject.Data, ssv1alpha1.SecretObjectData{SourcePath: fmt.Sprintf("s%d", j), TargetKey: fmt.Sprintf("k%d", j)})
	}
	return ss
}

// rotate sets the object's next value in its vault, recording it first, so
// that a Secret can never hold a value the history lacks.
func (w *world) rotate(o object) error {
	w.mu.Lock()
	v := value(o, len(w.history[o])+1)
	w.history[o] = append(w.history[o], v)
	w.mu.Unlock()
	return w.env.World.SetSecret(o.vault, o.name, v, "", false)
}

// known reports whether v is a value o has had.
func (w *world) known(o object, v string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, h := range w.history[o] {
		if h == v {
			return true
		}
	}
	return false
}

// current returns the object's latest value.
func (w *world) current(o object) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	h := w.history[o]
	return h[len(h)-1]
}
