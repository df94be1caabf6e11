package controller

import (
	"context"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

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
	if errs := validateMetadata(ss); len(errs) > 0 {
		return fail(ssv1alpha1.ReasonUserInputValidationFailed, false, errs.ToAggregate(),
			"the Secret's labels or annotations are not valid: %s. Fix spec.secretObject", errs.ToAggregate().Error())
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

// azureProvider is the provider name of Azure Key Vault classes.
const azureProvider = "azure"

// azureVaultName is what the Azure provider accepts as keyvaultName: 3 to
// 24 letters, digits and hyphens (Key Vault's own rule is stricter).
var azureVaultName = regexp.MustCompile(`^[-A-Za-z0-9]{3,24}$`)

// checkClass refuses, before any Mount, a class of the azure provider that
// no Azure provider can read with the controller's workload identity
// token: the upstream provider and kvsync's both refuse it, but one answers
// with a message of its own for the whole Mount, so the controller says it
// the same way whichever runs. Other providers' classes are theirs to check.
func (r *SecretSyncReconciler) checkClass(_ context.Context, s *syncScope) *syncError {
	class := s.class
	if class.Spec.Provider != azureProvider {
		return nil
	}
	if problem := r.plans.classProblem(class, s.secretSync.Spec.ServiceAccountName); problem != "" {
		return fail(ssv1alpha1.ReasonControllerSpcError, false, nil,
			"SecretProviderClass %q cannot be read by provider %q: %s", class.Name, azureProvider, problem)
	}
	return nil
}

// azureClassProblem returns what is wrong with the parameters of an azure
// class, and how to fix it, or "" when nothing the controller can tell is.
func azureClassProblem(params map[string]string, serviceAccount string) string {
	vault := strings.TrimSpace(params["keyvaultName"])
	tenant := strings.TrimSpace(params["tenantID"])
	if tenant == "" {
		tenant = strings.TrimSpace(params["tenantId"])
	}
	otherIdentity := false
	for _, p := range []string{"usePodIdentity", "useVMManagedIdentity"} {
		if v, _ := strconv.ParseBool(strings.TrimSpace(params[p])); v {
			otherIdentity = true
		}
	}
	switch {
	case vault == "":
		return "parameter keyvaultName is not set: set it to the key vault's name (the <name> of https://<name>.vault.azure.net)"
	case !azureVaultName.MatchString(vault):
		return fmt.Sprintf("keyvaultName %q is not a valid key vault name (3 to 24 letters, digits and hyphens): set it to the <name> of https://<name>.vault.azure.net", vault)
	case tenant == "":
		return "parameter tenantID is not set: set it to the directory (tenant) ID of the key vault"
	case strings.TrimSpace(params["clientID"]) == "" && !otherIdentity:
		return fmt.Sprintf("parameter clientID is not set: set it to the client ID of the managed identity federated with ServiceAccount %q (workload identity)", serviceAccount)
	}
	objects, err := parseClassObjects(params[objectsParameter])
	if err != nil {
		return fmt.Sprintf("%v. List the objects as objects: |\\n  array:\\n    - |\\n      objectName: <name>\\n      objectType: secret", err)
	}
	for i, o := range objects {
		if problem := azureObjectProblem(o); problem != "" {
			return fmt.Sprintf("objects entry %d (file %q): %s", i, o.root, problem)
		}
	}
	return ""
}

// azureObjectProblem returns what is wrong with one entry of an azure
// class's objects, or "".
func azureObjectProblem(o classObject) string {
	typ := strings.ToLower(o.objectType)
	switch typ {
	case "secret", "key", "cert":
	case "":
		return "objectType is not set: use secret, key or cert"
	default:
		return fmt.Sprintf("objectType %q is not supported: use secret, key or cert", o.objectType)
	}
	switch format := strings.ToLower(o.objectFormat); {
	case format != "" && format != "pem" && format != "pfx":
		return fmt.Sprintf("objectFormat %q is not supported: use pem or pfx", o.objectFormat)
	case format == "pfx" && typ != "secret":
		return "objectFormat pfx is only for objectType secret (a certificate's PKCS#12 secret)"
	}
	switch enc := strings.ToLower(o.objectEncoding); {
	case enc != "" && enc != "utf-8" && enc != "base64" && enc != "hex":
		return fmt.Sprintf("objectEncoding %q is not supported: use utf-8, base64 or hex", o.objectEncoding)
	case enc != "" && typ != "secret":
		return "objectEncoding is only for objectType secret"
	}
	if path.IsAbs(o.root) || slices.Contains(strings.Split(o.root, "/"), "..") {
		return "the file name (objectAlias, or objectName) must be a relative path without '..'"
	}
	return ""
}

// validateMetadata checks the labels and annotations the SecretSync gives
// its Secret as the API server would, so that a SecretSync changed to
// invalid ones fails before anything is written.
func validateMetadata(ss *ssv1alpha1.SecretSync) field.ErrorList {
	obj := field.NewPath("spec", "secretObject")
	errs := metav1validation.ValidateLabels(ss.Spec.SecretObject.Labels, obj.Child("labels"))
	return append(errs, apivalidation.ValidateAnnotations(ss.Spec.SecretObject.Annotations, obj.Child("annotations"))...)
}
