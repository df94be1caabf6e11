package faults

import (
	"context"
	"errors"
	"fmt"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// managedMarker is the label and annotation key of Secrets the controller
// manages.
const managedMarker = "secrets-store.sync.x-k8s.io"

// The cluster faults below are states of the world rather than answers to
// requests: they create the real objects that make the controller fail.

// ForeignSecret creates a Secret the controller must never modify, named
// like a SecretSync: without the managed label, or, with labelled, with the
// label but without the managed annotation.
func ForeignSecret(ctx context.Context, c client.Client, namespace, name string, labelled bool, data map[string][]byte) (*corev1.Secret, error) {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}, Data: data}
	if labelled {
		s.Labels = map[string]string{managedMarker: ""}
	}
	if err := c.Create(ctx, s); err != nil {
		return nil, fmt.Errorf("creating foreign Secret %s/%s: %w", namespace, name, err)
	}
	return s, nil
}

// DenyPolicy creates a ValidatingAdmissionPolicy and its binding that deny
// creating and updating resource ("secrets", or "serviceaccounts/token" for
// token requests) in namespace with message, where the CEL expression
// allow is false. It returns a function that deletes both.
func DenyPolicy(ctx context.Context, c client.Client, name, namespace, resource, allow, message string) (func(context.Context) error, error) {
	policy := &admissionregistrationv1.ValidatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
			FailurePolicy: ptr.To(admissionregistrationv1.Fail),
			MatchConstraints: &admissionregistrationv1.MatchResources{ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
				RuleWithOperations: admissionregistrationv1.RuleWithOperations{
					Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
					Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{resource}},
				},
			}}},
			Validations: []admissionregistrationv1.Validation{{Expression: allow, Message: message}},
		},
	}
	binding := &admissionregistrationv1.ValidatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{
			PolicyName:        name,
			ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny},
			MatchResources: &admissionregistrationv1.MatchResources{NamespaceSelector: &metav1.LabelSelector{
				MatchLabels: map[string]string{"kubernetes.io/metadata.name": namespace}}},
		},
	}
	if err := c.Create(ctx, policy); err != nil {
		return nil, fmt.Errorf("creating ValidatingAdmissionPolicy %s: %w", name, err)
	}
	if err := c.Create(ctx, binding); err != nil {
		_ = c.Delete(ctx, policy)
		return nil, fmt.Errorf("creating ValidatingAdmissionPolicyBinding %s: %w", name, err)
	}
	return func(ctx context.Context) error {
		return errors.Join(client.IgnoreNotFound(c.Delete(ctx, binding)), client.IgnoreNotFound(c.Delete(ctx, policy)))
	}, nil
}

// TakeOwnership makes manager the owner of one data key of a Secret, as a
// person or tool applying it with force would: the controller's next write
// of that key conflicts.
func TakeOwnership(ctx context.Context, c client.Client, namespace, name, manager, key string, value []byte) error {
	apply := corev1ac.Secret(name, namespace).WithData(map[string][]byte{key: value})
	if err := c.Apply(ctx, apply, client.FieldOwner(manager), client.ForceOwnership); err != nil {
		return fmt.Errorf("taking ownership of %s/%s data %q as %s: %w", namespace, name, key, manager, err)
	}
	return nil
}
