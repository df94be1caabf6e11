package controller

import (
	"context"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"

	ssv1alpha1 "github.com/kvsync/kvsync/api/secretsync/v1alpha1"
)

// DefaultAllowedSecretTypes are the Secret types a SecretSync may write
// unless configured otherwise: the SSE's defaults.
var DefaultAllowedSecretTypes = []corev1.SecretType{
	corev1.SecretTypeOpaque,
	corev1.SecretTypeBasicAuth,
	corev1.SecretTypeBootstrapToken,
	corev1.SecretTypeDockerConfigJson,
	corev1.SecretTypeDockercfg,
	corev1.SecretTypeSSHAuth,
	corev1.SecretTypeTLS,
}

// neverAllowed are types no configuration allows: the API server fills a
// service-account-token Secret with a token of any ServiceAccount it names.
var neverAllowed = []corev1.SecretType{corev1.SecretTypeServiceAccountToken}

// secretType returns the type the SecretSync asks for (Opaque by default).
func secretType(ss *ssv1alpha1.SecretSync) corev1.SecretType {
	if ss.Spec.SecretObject.Type == "" {
		return corev1.SecretTypeOpaque
	}
	return corev1.SecretType(ss.Spec.SecretObject.Type)
}

// checkSpec refuses a SecretSync that cannot be written whatever the
// provider returns: a type that is not allowed, a type change of the
// existing Secret, or kubernetes.io/tls with keys other than tls.crt and
// tls.key. It runs before the provider is called.
func (r *SecretSyncReconciler) checkSpec(_ context.Context, s *syncScope) *syncError {
	ss := s.secretSync
	t := secretType(ss)
	allowed := r.AllowedSecretTypes
	if allowed == nil {
		allowed = DefaultAllowedSecretTypes
	}
	if slices.Contains(neverAllowed, t) || !slices.Contains(allowed, t) {
		names := make([]string, len(allowed))
		for i, a := range allowed {
			names[i] = string(a)
		}
		return fail(ssv1alpha1.ReasonUserInputValidationFailed, false, nil,
			"spec.secretObject.type %q is not allowed: the controller writes only %s. Change the type, or ask the cluster administrator to allow it",
			t, strings.Join(names, ", "))
	}
	if s.existing != nil && s.existing.Type != t {
		return fail(ssv1alpha1.ReasonUserInputValidationFailed, false, nil,
			"Secret %q exists with type %q but spec.secretObject.type is %q, and the type of a Secret cannot change. "+
				"Delete the Secret (kubectl delete secret -n %s %s) and it is recreated with the new type",
			ss.Name, s.existing.Type, t, ss.Namespace, ss.Name)
	}
	if t == corev1.SecretTypeTLS {
		var keys []string
		for _, d := range ss.Spec.SecretObject.Data {
			keys = append(keys, d.TargetKey)
		}
		slices.Sort(keys)
		if !slices.Equal(keys, []string{corev1.TLSCertKey, corev1.TLSPrivateKeyKey}) {
			return fail(ssv1alpha1.ReasonUserInputValidationFailed, false, nil,
				"a kubernetes.io/tls Secret needs exactly the targetKeys tls.crt and tls.key, got %s: map tls.crt to <object>/tls.crt and tls.key to <object>/tls.key, or use type Opaque",
				strings.Join(keys, ", "))
		}
	}
	return nil
}
