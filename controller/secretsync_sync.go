package controller

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	spcv1 "github.com/kvsync/kvsync/api/secretsstore/v1"
	ssv1alpha1 "github.com/kvsync/kvsync/api/secretsync/v1alpha1"
)

// Mount attributes the controller adds to the SecretProviderClass parameters,
// named as the Secrets Store CSI driver names them.
const (
	attrPodName            = "csi.storage.k8s.io/pod.name"
	attrPodNamespace       = "csi.storage.k8s.io/pod.namespace"
	attrPodUID             = "csi.storage.k8s.io/pod.uid"
	attrServiceAccountName = "csi.storage.k8s.io/serviceAccount.name"
	attrServiceAccountToks = "csi.storage.k8s.io/serviceAccount.tokens"
	attrSecretProviderCls  = "secretProviderClass"
)

// maxMessageBytes bounds a condition message (the API allows 32768).
const maxMessageBytes = 30000

// syncScope is what one pass observed and decided.
type syncScope struct {
	secretSync *ssv1alpha1.SecretSync
	// existing is the managed Secret as the pass found it; nil when there
	// was none, so the pass creates it.
	existing *corev1.Secret
	class    *spcv1.SecretProviderClass
	// desired is the Secret content the pass wants.
	desired *desiredSecret
	// hash is the syncHash of desired.
	hash string
	// items are the per-item outcomes when some items failed.
	items []itemStatus
	// wrote is true when the pass applied the Secret.
	wrote bool
	// retryAfter is the longest wait a failed Mount asked for.
	retryAfter time.Duration
	// retryItems is true when an item failed in a way worth retrying
	// before the next poll (see retryable).
	retryItems bool
	// versions are the vault versions the Secret's items hold, by
	// sourcePath, as the provider reported them.
	versions map[string]string
}

// desiredSecret is the content the controller owns in a Secret.
type desiredSecret struct {
	secretType  corev1.SecretType
	data        map[string][]byte
	labels      map[string]string
	annotations map[string]string
}

// itemStatus is one entry of the PartialSync summary.
type itemStatus struct {
	TargetKey  string `json:"targetKey"`
	SourcePath string `json:"sourcePath"`
	Status     string `json:"status"`
	Error      string `json:"error,omitempty"`
}

// syncError is a pass that did not bring the Secret fully up to date: the
// reason and message for the condition, and whether retrying soon may help.
type syncError struct {
	reason    string
	message   string
	transient bool
	err       error
	// deferred is a pass that did not run because its vault asked to be
	// retried later: nothing is written, and the check runs again after
	// retryAfter.
	deferred   bool
	retryAfter time.Duration
	// stale is a pass that found the API server ahead of the cache it
	// started from (a Secret it did not see exists, or changed): nothing is
	// recorded, and the check runs again from a fresh view.
	stale bool
}

func (e *syncError) Error() string { return e.reason + ": " + e.message }
func (e *syncError) Unwrap() error { return e.err }

func fail(reason string, transient bool, err error, format string, args ...any) *syncError {
	return &syncError{reason: reason, message: fmt.Sprintf(format, args...), transient: transient, err: err}
}

// sync runs one pass and records what it saw in s. A nil result means the
// Secret is fully up to date. A recovered panic is a ControllerInternalError.
func (r *SecretSyncReconciler) sync(ctx context.Context, s *syncScope) (serr *syncError) {
	defer func() {
		if p := recover(); p != nil {
			serr = recovered(p)
		}
	}()
	steps := []func(context.Context, *syncScope) *syncError{
		r.observeSecret,
		r.readClass,
		r.checkClass,
		r.checkSpec,
		r.fetch,
		r.applySecret,
	}
	for _, step := range steps {
		if err := step(ctx, s); err != nil {
			return err
		}
	}
	if len(s.items) > 0 {
		serr := partialSync(s.items)
		serr.transient = s.retryItems
		return serr
	}
	return nil
}

// recovered is the outcome of a pass that recovered panic p.
func recovered(p any) *syncError {
	return fail(ssv1alpha1.ReasonControllerInternalError, true, nil,
		"the controller hit an internal error (recovered panic: %v); report it with the controller logs", p)
}

// observeSecret finds the managed Secret of the SecretSync in the cache and
// refuses to go on when a Secret of its name is not managed. A cache miss
// is not looked up: the Secret is then created without a read first, and
// the create finds a foreign Secret if there is one (see createSecret).
// Only when the latest check found a foreign Secret is it read here, so
// that a blocked SecretSync does not read its vault at every check.
func (r *SecretSyncReconciler) observeSecret(ctx context.Context, s *syncScope) *syncError {
	ss := s.secretSync
	key := client.ObjectKeyFromObject(ss)
	secret := &corev1.Secret{}
	err := r.Client.Get(ctx, key, secret)
	if apierrors.IsNotFound(err) {
		if !foreignSecretReason(latestReason(ss.Status)) {
			return nil
		}
		// The cache holds only labelled Secrets: look for the foreign one.
		err = r.APIReader.Get(ctx, key, secret)
		if apierrors.IsNotFound(err) {
			return nil
		}
	}
	if err != nil {
		return fail(ssv1alpha1.ReasonControllerSyncFailed, true, err, "reading Secret %q failed: %s", ss.Name, apiMessage(err))
	}
	if serr := checkManaged(secret, ss); serr != nil {
		return serr
	}
	s.existing = secret
	return nil
}

// checkManaged refuses a Secret of the SecretSync's name that is not
// provably its own: it lacks the managed label or annotation, or names
// another owner.
func checkManaged(secret *corev1.Secret, ss *ssv1alpha1.SecretSync) *syncError {
	if _, ok := secret.Labels[ssv1alpha1.ManagedLabel]; !ok {
		return fail(ssv1alpha1.ReasonInvalidClusterSecretLabelError, false, nil,
			"Secret %q already exists and is not managed by the secret sync controller: it lacks the label %q. "+
				"It is left untouched. Delete it (kubectl delete secret -n %s %s) to let the controller create it, or rename the SecretSync.",
			ss.Name, ssv1alpha1.ManagedLabel, ss.Namespace, ss.Name)
	}
	if _, ok := secret.Annotations[ssv1alpha1.ManagedAnnotation]; !ok {
		return fail(ssv1alpha1.ReasonInvalidClusterSecretAnnotationError, false, nil,
			"Secret %q carries the label %q but lacks the annotation %q, so it is not provably managed by the secret sync controller. "+
				"It is left untouched. Delete it (kubectl delete secret -n %s %s) to let the controller create it.",
			ss.Name, ssv1alpha1.ManagedLabel, ssv1alpha1.ManagedAnnotation, ss.Namespace, ss.Name)
	}
	if owner, ok := otherOwner(secret, ss); ok {
		return fail(ssv1alpha1.ReasonInvalidClusterSecretAnnotationError, false, nil,
			"Secret %q carries the managed label and annotation but is owned by %s, not by this SecretSync (uid %s), so it is not provably this SecretSync's. "+
				"It is left untouched. Delete it (kubectl delete secret -n %s %s) to let the controller create it, or rename the SecretSync.",
			ss.Name, owner, ss.UID, ss.Namespace, ss.Name)
	}
	return nil
}

// otherOwner describes the first ownerReference of a Secret that names an
// object other than the SecretSync (another SecretSync, the same name with
// another uid, or any other kind), and reports whether there is one. A
// Secret without ownerReferences names no other owner.
func otherOwner(secret *corev1.Secret, ss *ssv1alpha1.SecretSync) (string, bool) {
	for _, ref := range secret.OwnerReferences {
		if ref.UID == ss.UID && ref.Kind == "SecretSync" && ref.APIVersion == ssv1alpha1.GroupVersion.String() {
			continue
		}
		return fmt.Sprintf("%s %q (apiVersion %s, uid %s)", ref.Kind, ref.Name, ref.APIVersion, ref.UID), true
	}
	return "", false
}

// readClass reads the SecretProviderClass the SecretSync names.
func (r *SecretSyncReconciler) readClass(ctx context.Context, s *syncScope) *syncError {
	ss := s.secretSync
	class := &spcv1.SecretProviderClass{}
	err := r.Client.Get(ctx, client.ObjectKey{Namespace: ss.Namespace, Name: ss.Spec.SecretProviderClassName}, class)
	switch {
	case apierrors.IsNotFound(err):
		return fail(ssv1alpha1.ReasonControllerSpcError, false, err,
			"SecretProviderClass %q not found in namespace %q: create it there or fix spec.secretProviderClassName",
			ss.Spec.SecretProviderClassName, ss.Namespace)
	case err != nil:
		return fail(ssv1alpha1.ReasonControllerSpcError, true, err,
			"reading SecretProviderClass %q failed: %v", ss.Spec.SecretProviderClassName, err)
	case class.Spec.Provider == "":
		return fail(ssv1alpha1.ReasonControllerSpcError, false, nil,
			"SecretProviderClass %q has no spec.provider: set it to the provider's name, e.g. azure", class.Name)
	}
	s.class = class
	return nil
}

// fetch requests a ServiceAccount token, calls the provider and builds the
// desired Secret. Items whose object failed make the pass fail, or with
// partial sync keep their previous value.
func (r *SecretSyncReconciler) fetch(ctx context.Context, s *syncScope) *syncError {
	ss, class := s.secretSync, s.class
	plans, serr := r.plans.plan(ss, class, r.PartialSync)
	if serr != nil {
		return serr
	}
	tokens, serr := r.tokens.tokensAttribute(ctx, ss)
	if serr != nil {
		return serr
	}
	attrs := maps.Clone(class.Spec.Parameters)
	if attrs == nil {
		attrs = map[string]string{}
	}
	attrs[attrPodName] = ss.Name
	attrs[attrPodNamespace] = ss.Namespace
	attrs[attrPodUID] = string(ss.UID)
	attrs[attrServiceAccountName] = ss.Spec.ServiceAccountName
	attrs[attrServiceAccountToks] = tokens
	attrs[attrSecretProviderCls] = class.Name

	results, serr := r.mountAll(ctx, ss, class, attrs, plans, shareable(s))
	if serr != nil {
		return serr
	}
	desired := &desiredSecret{
		secretType:  secretType(ss),
		data:        map[string][]byte{},
		labels:      map[string]string{ssv1alpha1.ManagedLabel: ""},
		annotations: map[string]string{ssv1alpha1.ManagedAnnotation: ""},
	}
	maps.Copy(desired.labels, ss.Spec.SecretObject.Labels)
	maps.Copy(desired.annotations, ss.Spec.SecretObject.Annotations)

	var items []itemStatus
	var failures []string
	retry := false
	for _, item := range ss.Spec.SecretObject.Data {
		res := resultFor(results, item.SourcePath)
		if res.err != nil {
			s.retryAfter = max(s.retryAfter, retryDelay(res.err))
			retry = retry || retryable(res.err)
			msg := providerMessage(res.err)
			failures = append(failures, msg)
			items = append(items, itemStatus{TargetKey: item.TargetKey, SourcePath: item.SourcePath, Status: "Failed", Error: msg})
			if s.existing != nil {
				if prev, ok := s.existing.Data[item.TargetKey]; ok {
					desired.data[item.TargetKey] = prev
				}
			}
			continue
		}
		contents, ok := res.files[item.SourcePath]
		if !ok {
			return fail(ssv1alpha1.ReasonUserInputValidationFailed, false, nil,
				"sourcePath %q (targetKey %q) is not among the files provider %q returned for SecretProviderClass %q (%s): "+
					"use an objectName or objectAlias of the class, with /N for a version or /tls.crt, /tls.key for certificate parts",
				item.SourcePath, item.TargetKey, class.Spec.Provider, class.Name, describePaths(res.files))
		}
		if desired.secretType == corev1.SecretTypeTLS {
			contents = tlsPart(item.TargetKey, contents)
		}
		desired.data[item.TargetKey] = contents
		items = append(items, itemStatus{TargetKey: item.TargetKey, SourcePath: item.SourcePath, Status: "Succeeded"})
		if v := versionOf(res.versions, item.SourcePath); v != "" {
			if s.versions == nil {
				s.versions = map[string]string{}
			}
			s.versions[item.SourcePath] = v
		}
	}
	if len(failures) > 0 {
		if FailedItemsReason(len(failures), len(items), r.PartialSync) == ssv1alpha1.ReasonProviderError {
			return fail(ssv1alpha1.ReasonProviderError, retry, nil,
				"provider %q failed to read %d of %d item(s) of SecretProviderClass %q; nothing was written: %s",
				class.Spec.Provider, len(failures), len(items), class.Name, truncate(formatItemErrors(failures), maxMessageBytes-512))
		}
		s.items = items
		s.retryItems = retry
	}
	if serr := checkCertificate(ss, desired, len(failures) > 0); serr != nil {
		return serr
	}
	if serr := checkSize(ss, desired); serr != nil {
		return serr
	}
	s.desired = desired
	s.hash = syncHash(r.HashKey, ss, class, desired)
	return nil
}

// versionOf returns the version a provider reported for the object a
// sourcePath reads: the ID <type>/<sourcePath>, or <type>/<root> for a
// certificate part; "" when it reported none.
func versionOf(versions map[string]string, sourcePath string) string {
	root := sourceRoot(sourcePath)
	for id, v := range versions {
		_, path, _ := strings.Cut(id, "/")
		if path == sourcePath || path == root {
			return v
		}
	}
	return ""
}

// shareable reports whether the pass may use a Mount result another
// SecretSync got moments ago: only for a routine check of an existing Secret
// whose spec has not changed since its last check. A new SecretSync, a
// recreated Secret and a changed spec (forceSynchronization included) always
// read the vault.
func shareable(s *syncScope) bool {
	ss := s.secretSync
	last := latestCondition(ss.Status)
	return s.existing != nil && last.Status == metav1.ConditionTrue && last.ObservedGeneration == ss.Generation
}

// resultFor returns the result of the Mount that serves sourcePath.
func resultFor(results []mountResult, sourcePath string) mountResult {
	root := sourceRoot(sourcePath)
	for _, res := range results {
		if res.plan.serves(root) {
			return res
		}
	}
	return mountResult{files: map[string][]byte{}}
}

// applySecret writes the desired Secret unless it is already up to date: it
// creates a Secret the pass did not find, and applies the fields of one it
// found.
func (r *SecretSyncReconciler) applySecret(ctx context.Context, s *syncScope) *syncError {
	ss, d := s.secretSync, s.desired
	if s.existing == nil {
		return r.createSecret(ctx, s)
	}
	if s.hash == ss.Status.SyncHash && secretMatches(s.existing, d, ss) {
		return nil
	}
	if serr := r.adoptCreatedFields(ctx, s); serr != nil {
		return serr
	}
	apply := corev1ac.Secret(ss.Name, ss.Namespace).
		WithType(d.secretType).
		WithLabels(d.labels).
		WithAnnotations(d.annotations).
		WithOwnerReferences(metav1ac.OwnerReference().
			WithAPIVersion(ssv1alpha1.GroupVersion.String()).
			WithKind("SecretSync").
			WithName(ss.Name).
			WithUID(ss.UID).
			WithController(true)).
		WithData(d.data)
	if err := r.Client.Apply(ctx, apply, client.FieldOwner(ssv1alpha1.FieldManager)); err != nil {
		return applyFailure(ss, err)
	}
	if apply.ResourceVersion != nil {
		r.ownWrites.Store(client.ObjectKeyFromObject(ss), *apply.ResourceVersion)
	}
	s.wrote = true
	return nil
}

// createSecret creates the desired Secret, the one request a first sync
// needs: the pass found no managed Secret, and it does not read the API
// server to learn that none exists. When one does, it is read: a foreign
// Secret fails the pass as observeSecret would have, and a managed one (the
// cache had not seen it yet) makes the pass stale.
func (r *SecretSyncReconciler) createSecret(ctx context.Context, s *syncScope) *syncError {
	ss, d := s.secretSync, s.desired
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name: ss.Name, Namespace: ss.Namespace, Labels: d.labels, Annotations: d.annotations,
			OwnerReferences: []metav1.OwnerReference{{APIVersion: ssv1alpha1.GroupVersion.String(), Kind: "SecretSync",
				Name: ss.Name, UID: ss.UID, Controller: ptr.To(true)}},
		},
		Type: d.secretType,
		Data: d.data,
	}
	err := r.Client.Create(ctx, secret, client.FieldOwner(ssv1alpha1.FieldManager))
	if err == nil {
		r.ownWrites.Store(client.ObjectKeyFromObject(ss), secret.ResourceVersion)
		s.wrote = true
		return nil
	}
	if !apierrors.IsAlreadyExists(err) {
		return applyFailure(ss, err)
	}
	found := &corev1.Secret{}
	if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(ss), found); err != nil && !apierrors.IsNotFound(err) {
		return fail(ssv1alpha1.ReasonControllerSyncFailed, true, err, "reading Secret %q failed: %s", ss.Name, apiMessage(err))
	}
	if found.Name != "" {
		if serr := checkManaged(found, ss); serr != nil {
			return serr
		}
	}
	return &syncError{stale: true, message: fmt.Sprintf("Secret %q was created or deleted since the cache was read", ss.Name)}
}

// adoptCreatedFields makes the fields the controller set when it created
// the Secret its applied fields. A create records them under the
// controller's manager with operation Update, and an apply by the same
// manager would then conflict with them and never remove a key it no
// longer sets. The entry's operation is switched to Apply with a JSON patch
// that tests it is still the controller's Update entry, as
// k8s.io/client-go/util/csaupgrade does when no Apply entry exists; the
// cache keeps the managers without their field sets, which the patch does
// not need. It runs once, at the first write after the creation.
func (r *SecretSyncReconciler) adoptCreatedFields(ctx context.Context, s *syncScope) *syncError {
	ss := s.secretSync
	i := createdFieldsEntry(s.existing.ManagedFields)
	if i < 0 {
		return nil
	}
	entry := fmt.Sprintf("/metadata/managedFields/%d", i)
	patch, err := json.Marshal([]map[string]string{
		{"op": "test", "path": entry + "/manager", "value": ssv1alpha1.FieldManager},
		{"op": "test", "path": entry + "/operation", "value": string(metav1.ManagedFieldsOperationUpdate)},
		{"op": "replace", "path": entry + "/operation", "value": string(metav1.ManagedFieldsOperationApply)},
	})
	if err != nil {
		return fail(ssv1alpha1.ReasonControllerInternalError, true, err, "encoding the managed fields patch of Secret %q: %v", ss.Name, err)
	}
	adopted := s.existing.DeepCopy()
	err = r.Client.Patch(ctx, adopted, client.RawPatch(types.JSONPatchType, patch))
	switch {
	case err == nil:
		r.ownWrites.Store(client.ObjectKeyFromObject(ss), adopted.ResourceVersion)
		return nil
	case deniedByPolicy(err):
		return applyFailure(ss, err)
	case apierrors.IsInvalid(err) || apierrors.IsNotFound(err) || apierrors.IsConflict(err):
		// A test failed (the entry moved) or the Secret is gone: the
		// cache is behind.
		return &syncError{stale: true, err: err, message: fmt.Sprintf("the managed fields of Secret %q changed since the cache was read", ss.Name)}
	}
	return applyFailure(ss, err)
}

// createdFieldsEntry returns the index of the managed fields entry a create
// by the controller recorded, or -1 when there is none or the controller
// already has an Apply entry (that Secret was created by an apply).
func createdFieldsEntry(managed []metav1.ManagedFieldsEntry) int {
	created := -1
	for i, m := range managed {
		if m.Manager != ssv1alpha1.FieldManager || m.Subresource != "" {
			continue
		}
		switch m.Operation {
		case metav1.ManagedFieldsOperationApply:
			return -1
		case metav1.ManagedFieldsOperationUpdate:
			if created < 0 {
				created = i
			}
		}
	}
	return created
}

// applyFailure classifies an error of the Secret apply.
func applyFailure(ss *ssv1alpha1.SecretSync, err error) *syncError {
	switch {
	case deniedByPolicy(err):
		return fail(ssv1alpha1.ReasonValidatingAdmissionPolicyCheckFailed, false, err,
			"writing Secret %q was denied by a ValidatingAdmissionPolicy: %s. Change the policy or its binding, or the SecretSync, so that the Secret is allowed",
			ss.Name, apiMessage(err))
	case apierrors.IsConflict(err):
		return fail(ssv1alpha1.ReasonUnknownError, true, err,
			"writing Secret %q conflicts with another field manager: %s. The controller does not take fields over by force; "+
				"delete the Secret (kubectl delete secret -n %s %s) and it is recreated",
			ss.Name, apiMessage(err), ss.Namespace, ss.Name)
	case apierrors.IsInvalid(err):
		return fail(ssv1alpha1.ReasonUserInputValidationFailed, false, err,
			"the API server rejected Secret %q as invalid: %s. Fix spec.secretObject", ss.Name, apiMessage(err))
	}
	return fail(ssv1alpha1.ReasonUnknownError, true, err, "writing Secret %q failed: %s", ss.Name, apiMessage(err))
}

// FailedItemsReason is the reason of a check in which failed of the total
// items of a SecretSync cannot be read: ProviderError, with nothing written,
// when every item fails or partial sync is off; PartialSync, the items read
// being written and the others keeping their value, when only some fail; ""
// when none does.
func FailedItemsReason(failed, total int, partialSync bool) string {
	switch {
	case failed == 0:
		return ""
	case failed >= total || !partialSync:
		return ssv1alpha1.ReasonProviderError
	}
	return ssv1alpha1.ReasonPartialSync
}

// partialSync is the PartialSync outcome: its message is the JSON summary,
// one item per secretObject.data entry sorted by targetKey. Errors are
// shortened until the summary fits a condition message; if even that is not
// enough (hundreds of long keys), succeeded items are left out and counted
// in "omittedSucceeded".
func partialSync(items []itemStatus) *syncError {
	items = slices.Clone(items)
	slices.SortFunc(items, func(a, b itemStatus) int { return strings.Compare(a.TargetKey, b.TargetKey) })
	type summary struct {
		Items            []itemStatus `json:"items"`
		OmittedSucceeded int          `json:"omittedSucceeded,omitempty"`
	}
	encode := func(sum summary, budget int) string {
		shortened := slices.Clone(sum.Items)
		for i := range shortened {
			shortened[i].Error = truncate(shortened[i].Error, budget)
		}
		sum.Items = shortened
		msg, _ := json.Marshal(sum) // strings and ints only: cannot fail
		return string(msg)
	}
	sum := summary{Items: items}
	for budget := maxMessageBytes / max(len(items), 1); ; budget /= 2 {
		if msg := encode(sum, budget); len(msg) <= maxMessageBytes {
			return &syncError{reason: ssv1alpha1.ReasonPartialSync, message: msg, transient: true}
		}
		if budget == 0 {
			break
		}
	}
	failed := slices.DeleteFunc(slices.Clone(items), func(i itemStatus) bool { return i.Status != "Failed" })
	sum = summary{Items: failed, OmittedSucceeded: len(items) - len(failed)}
	for budget := maxMessageBytes / max(len(failed), 1); budget > 0; budget /= 2 {
		if msg := encode(sum, budget); len(msg) <= maxMessageBytes {
			return &syncError{reason: ssv1alpha1.ReasonPartialSync, message: msg, transient: true}
		}
	}
	return &syncError{reason: ssv1alpha1.ReasonPartialSync, transient: true,
		message: fmt.Sprintf(`{"items":[],"omittedSucceeded":%d,"omittedFailed":%d}`, len(items)-len(failed), len(failed))}
}

// checkSize refuses data over the size of a Secret (corev1.MaxSecretSize,
// 1 MiB of values), which the API server would reject: the message names
// the largest keys, never a value.
func checkSize(ss *ssv1alpha1.SecretSync, d *desiredSecret) *syncError {
	total := 0
	keys := make([]string, 0, len(d.data))
	for k, v := range d.data {
		total += len(v)
		keys = append(keys, k)
	}
	if total <= corev1.MaxSecretSize {
		return nil
	}
	slices.SortFunc(keys, func(a, b string) int {
		if c := len(d.data[b]) - len(d.data[a]); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	var largest []string
	for _, k := range keys[:min(3, len(keys))] {
		largest = append(largest, fmt.Sprintf("%s (%d bytes)", k, len(d.data[k])))
	}
	return fail(ssv1alpha1.ReasonUserInputValidationFailed, false, nil,
		"Secret %q would hold %d bytes in %d keys, over the %d bytes (1 MiB) a Secret can hold; nothing was written. "+
			"Map fewer or smaller objects in spec.secretObject.data, or split them across SecretSyncs; the largest are %s",
		ss.Name, total, len(d.data), corev1.MaxSecretSize, strings.Join(largest, ", "))
}

// checkCertificate checks that a kubernetes.io/tls Secret's tls.crt and
// tls.key form a key pair. With failed items the pair may be incomplete and
// is not checked.
func checkCertificate(ss *ssv1alpha1.SecretSync, d *desiredSecret, someFailed bool) *syncError {
	if d.secretType != corev1.SecretTypeTLS || someFailed {
		return nil
	}
	if _, err := tls.X509KeyPair(d.data[corev1.TLSCertKey], d.data[corev1.TLSPrivateKeyKey]); err != nil {
		return fail(ssv1alpha1.ReasonUserInputValidationFailed, false, err,
			"the certificate material for kubernetes.io/tls Secret %q does not parse: %v. Map tls.crt and tls.key to a certificate-backed secret: <object> for both, or <object>/tls.crt and <object>/tls.key",
			ss.Name, err)
	}
	return nil
}

// secretMatches reports whether the Secret already holds everything the
// controller would write: nothing to do.
func secretMatches(secret *corev1.Secret, d *desiredSecret, ss *ssv1alpha1.SecretSync) bool {
	if secret.Type != d.secretType || len(secret.Data) < len(d.data) {
		return false
	}
	for k, v := range d.data {
		if got, ok := secret.Data[k]; !ok || string(got) != string(v) {
			return false
		}
	}
	for k, v := range d.labels {
		if got, ok := secret.Labels[k]; !ok || got != v {
			return false
		}
	}
	for k, v := range d.annotations {
		if got, ok := secret.Annotations[k]; !ok || got != v {
			return false
		}
	}
	return slices.ContainsFunc(secret.OwnerReferences, func(o metav1.OwnerReference) bool {
		return o.UID == ss.UID && ptr.Deref(o.Controller, false)
	})
}

// deniedByPolicy reports whether an API error is a ValidatingAdmissionPolicy
// denial.
func deniedByPolicy(err error) bool {
	return (apierrors.IsForbidden(err) || apierrors.IsInvalid(err)) && strings.Contains(err.Error(), "ValidatingAdmissionPolicy")
}

// apiMessage returns the message of an API error, or the error text.
func apiMessage(err error) string {
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		return status.Status().Message
	}
	return err.Error()
}

// describePaths lists file paths (never contents) for a message.
func describePaths(files map[string][]byte) string {
	if len(files) == 0 {
		return "it returned no files"
	}
	paths := slices.Sorted(maps.Keys(files))
	const max = 20
	if len(paths) > max {
		return fmt.Sprintf("it returned %s and %d more", strings.Join(paths[:max], ", "), len(paths)-max)
	}
	return "it returned " + strings.Join(paths, ", ")
}

// truncate shortens s to at most n bytes.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	if n <= 3 {
		return ""
	}
	return s[:n-3] + "..."
}
