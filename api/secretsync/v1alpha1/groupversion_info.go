// Package v1alpha1 holds the SecretSync API, group secret-sync.x-k8s.io,
// version v1alpha1: the object that asks for one Kubernetes Secret to be kept
// in sync with secrets read through a SecretProviderClass.
//
// The schema is wire-compatible with the SecretSync objects of the Azure Key
// Vault Secret Store extension, so manifests written for it apply unchanged.
//
// +kubebuilder:object:generate=true
// +groupName=secret-sync.x-k8s.io
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of the SecretSync API.
	GroupVersion = schema.GroupVersion{Group: "secret-sync.x-k8s.io", Version: "v1alpha1"}

	// SchemeBuilder registers the SecretSync types with a runtime.Scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the SecretSync types to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
