package troubleshoot

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/kvsync/kvsync/controller"
)

// metadataProblems checks what the API server checks of any object's
// metadata: the namespace's name, and the labels' and annotations' keys
// and values.
func metadataProblems(u *unstructured.Unstructured) []Problem {
	var out []Problem
	if ns, ok := nestedString(u.Object, "metadata", "namespace"); ok && ns != "" {
		for _, msg := range validation.IsDNS1123Label(ns) {
			out = append(out, Problem{Kind: u.GetKind(), Name: u.GetName(), Field: "metadata.namespace", Message: msg})
		}
	}
	meta := field.NewPath("metadata")
	for _, p := range labelProblems(u.Object, meta, "metadata") {
		p.Kind, p.Name = u.GetKind(), u.GetName()
		out = append(out, p)
	}
	return out
}

// labelProblems checks the labels and annotations maps under fields of
// obj, one problem per bad entry.
func labelProblems(obj map[string]any, at *field.Path, fields ...string) []Problem {
	var out []Problem
	for _, what := range []string{"labels", "annotations"} {
		raw, ok := nestedMap(obj, append(fields, what)...)
		if !ok {
			continue
		}
		for _, k := range sortedKeys(raw) {
			p := at.Child(what).Key(k)
			v, isString := raw[k].(string)
			if !isString {
				out = append(out, Problem{Field: p.String(), Message: fmt.Sprintf("the value of %s %q must be a string", strings.TrimSuffix(what, "s"), k)})
				continue
			}
			var errs field.ErrorList
			if what == "labels" {
				errs = metav1validation.ValidateLabels(map[string]string{k: v}, p)
			} else {
				errs = apivalidation.ValidateAnnotations(map[string]string{k: v}, p)
			}
			for _, e := range errs {
				out = append(out, Problem{Field: p.String(), Message: e.ErrorBody()})
			}
		}
	}
	return out
}

// requiredKeys are the data keys the API server requires of a Secret type:
// all of them, or (anyOf) at least one. kubernetes.io/tls is checked on its
// own: the controller asks for exactly its two keys.
var requiredKeys = map[corev1.SecretType]struct {
	keys  []string
	anyOf bool
}{
	corev1.SecretTypeBasicAuth:        {[]string{corev1.BasicAuthUsernameKey, corev1.BasicAuthPasswordKey}, true},
	corev1.SecretTypeSSHAuth:          {[]string{corev1.SSHAuthPrivateKey}, false},
	corev1.SecretTypeDockercfg:        {[]string{corev1.DockerConfigKey}, false},
	corev1.SecretTypeDockerConfigJson: {[]string{corev1.DockerConfigJsonKey}, false},
}

// secretObjectProblems checks the Secret a SecretSync describes as the
// controller and the API server will: a type the controller may write, the
// data keys the type needs (exactly tls.crt and tls.key for
// kubernetes.io/tls, as the controller asks), and its labels and
// annotations.
func (l *Linter) secretObjectProblems(u *unstructured.Unstructured) []Problem {
	var out []Problem
	add := func(fieldPath, format string, args ...any) {
		out = append(out, Problem{Field: fieldPath, Message: fmt.Sprintf(format, args...)})
	}
	t, _ := nestedString(u.Object, "spec", "secretObject", "type")
	typ := corev1.SecretType(t)
	if typ == "" {
		typ = corev1.SecretTypeOpaque
	}
	allowed := l.allowedSecretTypes()
	if typ == corev1.SecretTypeServiceAccountToken || !slices.Contains(allowed, string(typ)) {
		add("spec.secretObject.type", "%q is not a type the controller may write: it writes only %s. Change the type, or ask the cluster administrator to allow it (validatingAdmissionPolicies.allowedSecretTypes; lint --allowed-secret-types)",
			typ, strings.Join(allowed, ", "))
	}
	var keys []string
	data, _, _ := unstructured.NestedSlice(u.Object, "spec", "secretObject", "data")
	for _, d := range data {
		if m, ok := d.(map[string]any); ok {
			if k, ok := m["targetKey"].(string); ok {
				keys = append(keys, k)
			}
		}
	}
	if req, ok := requiredKeys[typ]; ok && len(data) > 0 {
		missing := slices.DeleteFunc(slices.Clone(req.keys), func(k string) bool { return slices.Contains(keys, k) })
		switch {
		case req.anyOf && len(missing) == len(req.keys):
			add("spec.secretObject.data", "a %s Secret needs the targetKey %s: map at least one", typ, strings.Join(req.keys, " or "))
		case !req.anyOf && len(missing) > 0:
			add("spec.secretObject.data", "a %s Secret needs the targetKey %s: map it from the vault object that holds it", typ, strings.Join(missing, " and "))
		}
	}
	if typ == corev1.SecretTypeTLS && len(keys) > 0 {
		if sorted := slices.Sorted(slices.Values(keys)); !slices.Equal(sorted, []string{corev1.TLSCertKey, corev1.TLSPrivateKeyKey}) {
			add("spec.secretObject.data", "a kubernetes.io/tls Secret needs exactly the targetKeys tls.crt and tls.key, got %s: map tls.crt to <object>/tls.crt and tls.key to <object>/tls.key, or use type Opaque",
				strings.Join(sorted, ", "))
		}
	}
	out = append(out, labelProblems(u.Object, field.NewPath("spec", "secretObject"), "spec", "secretObject")...)
	return out
}

func (l *Linter) allowedSecretTypes() []string {
	if l.AllowedSecretTypes != nil {
		return l.AllowedSecretTypes
	}
	out := make([]string, len(controller.DefaultAllowedSecretTypes))
	for i, t := range controller.DefaultAllowedSecretTypes {
		out[i] = string(t)
	}
	return out
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
