package controller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	spcv1 "github.com/kvsync/kvsync/api/secretsstore/v1"
	ssv1alpha1 "github.com/kvsync/kvsync/api/secretsync/v1alpha1"
	"github.com/kvsync/kvsync/controller/csiprovider"
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

// tokenExpirationSeconds is the lifetime requested for ServiceAccount tokens.
const tokenExpirationSeconds = 600

// syncScope is what one pass observed and decided.
type syncScope struct {
	secretSync *ssv1alpha1.SecretSync
	// existing is the managed Secret as the pass found it; nil when there
	// was none, so the pass creates it.
	existing *corev1.Secret
	class    *spcv1.SecretProviderClass
	// desired is the Secret content the provider's files call for.
	desired *desiredSecret
	// hash is the syncHash of desired.
	hash string
	// wrote is true when the pass applied the Secret.
	wrote bool
}

// desiredSecret is the content the controller owns in a Secret.
type desiredSecret struct {
	secretType  corev1.SecretType
	data        map[string][]byte
	labels      map[string]string
	annotations map[string]string
}

// syncError is a failed pass: the reason and message for the condition, and
// whether retrying soon may help.
type syncError struct {
	reason    string
	message   string
	transient bool
	err       error
}

func (e *syncError) Error() string { return e.reason + ": " + e.message }
func (e *syncError) Unwrap() error { return e.err }

func fail(reason string, transient bool, err error, format string, args ...any) *syncError {
	return &syncError{reason: reason, message: fmt.Sprintf(format, args...), transient: transient, err: err}
}

// sync runs one pass and records what it saw in s. A nil result means the
// Secret is up to date.
func (r *SecretSyncReconciler) sync(ctx context.Context, s *syncScope) *syncError {
	steps := []func(context.Context, *syncScope) *syncError{
		r.observeSecret,
		r.readClass,
		r.fetchFiles,
		r.applySecret,
	}
	for _, step := range steps {
		if err := step(ctx, s); err != nil {
			return err
		}
	}
	return nil
}

// observeSecret finds the Secret of the SecretSync and refuses to go on when
// it exists but is not managed.
func (r *SecretSyncReconciler) observeSecret(ctx context.Context, s *syncScope) *syncError {
	ss := s.secretSync
	key := client.ObjectKeyFromObject(ss)
	secret := &corev1.Secret{}
	err := r.Client.Get(ctx, key, secret)
	if apierrors.IsNotFound(err) {
		// The cache holds only labelled Secrets: look for a foreign one.
		err = r.APIReader.Get(ctx, key, secret)
		if apierrors.IsNotFound(err) {
			return nil
		}
	}
	if err != nil {
		return fail(ssv1alpha1.ReasonControllerSyncFailed, true, err,
			"reading Secret %q failed: %v", ss.Name, err)
	}
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
	s.existing = secret
	return nil
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

// fetchFiles requests a ServiceAccount token, calls the provider and maps its
// files to the Secret's keys.
func (r *SecretSyncReconciler) fetchFiles(ctx context.Context, s *syncScope) *syncError {
	ss, class := s.secretSync, s.class
	tokens, serr := r.serviceAccountTokens(ctx, ss)
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

	provider := string(class.Spec.Provider)
	resp, err := r.Providers.Mount(ctx, provider, csiprovider.MountRequest{Attributes: attrs, Permission: 0o644})
	if err != nil {
		return providerFailure(class.Name, provider, err)
	}
	files := make(map[string][]byte, len(resp.Files))
	for _, f := range resp.Files {
		files[f.Path] = f.Contents
	}
	desired := &desiredSecret{
		secretType:  corev1.SecretType(ss.Spec.SecretObject.Type),
		data:        map[string][]byte{},
		labels:      map[string]string{ssv1alpha1.ManagedLabel: ""},
		annotations: map[string]string{ssv1alpha1.ManagedAnnotation: ""},
	}
	if desired.secretType == "" {
		desired.secretType = corev1.SecretTypeOpaque
	}
	maps.Copy(desired.labels, ss.Spec.SecretObject.Labels)
	maps.Copy(desired.annotations, ss.Spec.SecretObject.Annotations)
	for _, item := range ss.Spec.SecretObject.Data {
		contents, ok := files[item.SourcePath]
		if !ok {
			return fail(ssv1alpha1.ReasonUserInputValidationFailed, false, nil,
				"sourcePath %q (targetKey %q) is not among the files provider %q returned for SecretProviderClass %q (%s): "+
					"use an objectName or objectAlias of the class, with /N for a version or /tls.crt, /tls.key for certificate parts",
				item.SourcePath, item.TargetKey, provider, class.Name, describePaths(files))
		}
		desired.data[item.TargetKey] = contents
	}
	s.desired = desired
	s.hash = syncHash(r.HashKey, ss, class, desired)
	return nil
}

// serviceAccountTokens requests a token for the SecretSync's ServiceAccount
// and encodes it as the CSI driver passes tokens to providers: a JSON map
// from audience to token and expiry.
func (r *SecretSyncReconciler) serviceAccountTokens(ctx context.Context, ss *ssv1alpha1.SecretSync) (string, *syncError) {
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ss.Namespace, Name: ss.Spec.ServiceAccountName}}
	req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		Audiences:         []string{r.tokenAudience()},
		ExpirationSeconds: ptr.To[int64](tokenExpirationSeconds),
	}}
	if err := r.Client.SubResource("token").Create(ctx, sa, req); err != nil {
		reason := ssv1alpha1.ReasonControllerSyncFailed
		if deniedByPolicy(err) {
			reason = ssv1alpha1.ReasonValidatingAdmissionPolicyCheckFailed
		}
		return "", fail(reason, !apierrors.IsNotFound(err), err,
			"requesting a token for ServiceAccount %q failed: %v. Check that it exists in namespace %q and that the controller may create serviceaccounts/token",
			ss.Spec.ServiceAccountName, apiMessage(err), ss.Namespace)
	}
	tokens, err := json.Marshal(map[string]authenticationv1.TokenRequestStatus{r.tokenAudience(): req.Status})
	if err != nil {
		return "", fail(ssv1alpha1.ReasonControllerInternalError, true, err, "encoding the ServiceAccount token failed: %v", err)
	}
	return string(tokens), nil
}

// providerFailure classifies an error of a Mount call.
func providerFailure(class, provider string, err error) *syncError {
	switch {
	case errors.Is(err, csiprovider.ErrNoSocket), errors.Is(err, csiprovider.ErrInvalidProviderName):
		return fail(ssv1alpha1.ReasonControllerSpcError, true, err,
			"SecretProviderClass %q names provider %q, which cannot be reached: %v. Check spec.provider and that the provider is running",
			class, provider, err)
	case status.Code(err) == codes.InvalidArgument:
		return fail(ssv1alpha1.ReasonControllerSpcError, false, err,
			"provider %q rejected the parameters of SecretProviderClass %q: %s", provider, class, status.Convert(err).Message())
	}
	return fail(ssv1alpha1.ReasonProviderError, true, err,
		"provider %q failed to read the objects of SecretProviderClass %q: %v", provider, class, err)
}

// applySecret writes the desired Secret unless it is already up to date.
func (r *SecretSyncReconciler) applySecret(ctx context.Context, s *syncScope) *syncError {
	ss, d := s.secretSync, s.desired
	if s.existing != nil && s.hash == ss.Status.SyncHash && secretMatches(s.existing, d, ss) {
		return nil
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
	s.wrote = true
	return nil
}

// applyFailure classifies an error of the Secret apply.
func applyFailure(ss *ssv1alpha1.SecretSync, err error) *syncError {
	switch {
	case deniedByPolicy(err):
		return fail(ssv1alpha1.ReasonValidatingAdmissionPolicyCheckFailed, false, err,
			"writing Secret %q was denied by a ValidatingAdmissionPolicy: %s", ss.Name, apiMessage(err))
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
	return strings.Contains(err.Error(), "ValidatingAdmissionPolicy")
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
