package v1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Provider is the name of a secrets provider, such as azure. The controller
// reaches it on the unix socket <provider>.sock in its provider directory.
type Provider string

// SecretProviderClassSpec says which provider to use and what to pass it.
type SecretProviderClassSpec struct {
	// provider is the name of the provider, for example azure.
	// +optional
	Provider Provider `json:"provider,omitempty"`

	// parameters are passed to the provider as they are. For the azure
	// provider: keyvaultName, tenantID (or tenantId), clientID, cloudName and
	// objects.
	// +optional
	Parameters map[string]string `json:"parameters,omitempty"`

	// secretObjects is used by the Secrets Store CSI driver to sync mounted
	// content into Secrets. It is accepted for compatibility and ignored:
	// SecretSync objects say what to write.
	// +optional
	SecretObjects []*SecretObject `json:"secretObjects,omitempty"`
}

// SecretObject is the CSI driver's description of a synced Secret. It is
// accepted for compatibility and ignored.
type SecretObject struct {
	// secretName is the name of the Secret.
	// +optional
	SecretName string `json:"secretName,omitempty"`
	// type is the type of the Secret.
	// +optional
	Type string `json:"type,omitempty"`
	// labels of the Secret.
	// +optional
	Labels map[string]string `json:"labels,omitempty"`
	// annotations of the Secret.
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`
	// data maps mounted objects to Secret keys.
	// +optional
	Data []*SecretObjectData `json:"data,omitempty"`
}

// SecretObjectData maps one mounted object to one Secret key.
type SecretObjectData struct {
	// objectName is the name of the mounted object.
	// +optional
	ObjectName string `json:"objectName,omitempty"`
	// key is the Secret data key.
	// +optional
	Key string `json:"key,omitempty"`
}

// SecretProviderClassStatus is empty; it exists for compatibility.
type SecretProviderClassStatus struct{}

// SecretProviderClass names a provider and the parameters that tell it which
// secrets to read and how to authenticate.
//
// +kubebuilder:object:root=true
// +kubebuilder:storageversion
// +kubebuilder:resource:shortName=spc
// +kubebuilder:printcolumn:name="Provider",type=string,JSONPath=`.spec.provider`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type SecretProviderClass struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +optional
	Spec SecretProviderClassSpec `json:"spec,omitempty"`
	// +optional
	Status SecretProviderClassStatus `json:"status,omitempty"`
}

// SecretProviderClassList is a list of SecretProviderClass objects.
//
// +kubebuilder:object:root=true
type SecretProviderClassList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []SecretProviderClass `json:"items"`
}

func init() {
	SchemeBuilder.Register(&SecretProviderClass{}, &SecretProviderClassList{})
}
