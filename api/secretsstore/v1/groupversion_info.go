// Package v1 holds the SecretProviderClass API, group
// secrets-store.csi.x-k8s.io, version v1: which provider reads secrets and
// with which parameters.
//
// The schema is that of the Secrets Store CSI driver, so SecretProviderClass
// objects written for it, or for the Secret Store extension, apply unchanged.
//
// +kubebuilder:object:generate=true
// +groupName=secrets-store.csi.x-k8s.io
package v1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of the SecretProviderClass API.
	GroupVersion = schema.GroupVersion{Group: "secrets-store.csi.x-k8s.io", Version: "v1"}

	// SchemeBuilder registers the SecretProviderClass types with a runtime.Scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the SecretProviderClass types to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
