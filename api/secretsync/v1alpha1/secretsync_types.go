package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// SecretSyncSpec is the desired state: which SecretProviderClass to read
// through, with whose identity, and what Secret to write.
type SecretSyncSpec struct {
	// secretSyncControllerName names the controller that should handle this
	// object. It is accepted for compatibility with the Secret Store extension
	// and is otherwise unused.
	// +kubebuilder:default=""
	// +kubebuilder:validation:MaxLength=253
	// +optional
	SecretSyncControllerName string `json:"secretSyncControllerName"`

	// secretProviderClassName is the name of a SecretProviderClass in the same
	// namespace. It says which provider to use and with which parameters.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +required
	SecretProviderClassName string `json:"secretProviderClassName"`

	// serviceAccountName is the ServiceAccount, in the same namespace, whose
	// token the provider exchanges for access to the secret store (workload
	// identity). The token's audience is a controller setting.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +required
	ServiceAccountName string `json:"serviceAccountName"`

	// secretObject describes the Secret to write. The Secret has the same name
	// as this SecretSync.
	// +required
	SecretObject SecretObject `json:"secretObject"`

	// forceSynchronization forces a full rewrite of the Secret whenever its
	// value changes, without waiting for the rotation poll interval. Any value
	// works; a timestamp is a common choice. It is unrelated to server-side
	// apply's force option: ownership conflicts are never overridden.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	ForceSynchronization string `json:"forceSynchronization,omitempty"`
}

// SecretObject describes the Kubernetes Secret a SecretSync writes.
type SecretObject struct {
	// type is the Secret type, for example Opaque, kubernetes.io/tls,
	// kubernetes.io/basic-auth. The controller only writes the types it is
	// configured to allow; the type of an existing Secret cannot change.
	// +kubebuilder:default=Opaque
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[^\s]+$`
	// +optional
	Type string `json:"type,omitempty"`

	// data maps files returned by the provider to keys of the Secret.
	// Target keys are unique.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=256
	// +listType=map
	// +listMapKey=targetKey
	// +required
	Data []SecretObjectData `json:"data"`

	// labels are added to the Secret. Keys with the prefix
	// secrets-store.sync.x-k8s.io are reserved for the controller.
	// +kubebuilder:validation:XValidation:rule="self.all(k, !k.startsWith('secrets-store.sync.x-k8s.io'))",message="labels must not use the prefix secrets-store.sync.x-k8s.io: it is reserved for the controller"
	// +optional
	Labels map[string]string `json:"labels,omitempty"`

	// annotations are added to the Secret. Keys with the prefix
	// secrets-store.sync.x-k8s.io are reserved for the controller.
	// +kubebuilder:validation:XValidation:rule="self.all(k, !k.startsWith('secrets-store.sync.x-k8s.io'))",message="annotations must not use the prefix secrets-store.sync.x-k8s.io: it is reserved for the controller"
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`
}

// SecretObjectData copies one file returned by the provider into one key of
// the Secret.
type SecretObjectData struct {
	// sourcePath is the path of a file the provider returns: the object's name
	// (or alias), name/N for version N of its history (name/0 is the newest),
	// or name/tls.crt and name/tls.key for the parts of a certificate. The
	// schema also accepts every path the upstream secrets-store-sync-controller's
	// does, so that SecretSyncs written for it apply here; a path the class's
	// provider does not return is reported as UserInputValidationFailed.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^([-._A-Za-z0-9]*[-_A-Za-z0-9][-._A-Za-z0-9]*(/([0-9]+|tls\.crt|tls\.key))?|[A-Za-z0-9.]([-A-Za-z0-9]+([-._a-zA-Z0-9]?[A-Za-z0-9])*)?(/[0-9]+)*)$`
	// +required
	SourcePath string `json:"sourcePath"`

	// targetKey is the key of the Secret's data that receives the file. It
	// must be a valid Secret data key: letters, digits, '-', '_' and '.',
	// not '.' and not starting with '..'.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^(\.[-_A-Za-z0-9]|[-_A-Za-z0-9])[-._A-Za-z0-9]*$`
	// +required
	TargetKey string `json:"targetKey"`
}

// SecretSyncStatus is what the controller observed at its latest check.
type SecretSyncStatus struct {
	// conditions are Create (the first creation of the Secret, and failures
	// before it exists) and Update (every later check). The reason says what
	// happened; the message says why and what to do.
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=16
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// syncHash is a keyed digest of what was last written to the Secret. It
	// changes when the written content changes, and cannot be used to guess
	// secret values. kvsync writes 64 characters; the bound leaves room for
	// the 132 the upstream secrets-store-sync-controller v0.0.4 writes, so
	// that a cluster moving from it keeps accepting its status.
	// +kubebuilder:validation:MaxLength=256
	// +optional
	SyncHash string `json:"syncHash,omitempty"`

	// lastSuccessfulSyncTime is the time since which the Secret has held the
	// secret store's values: set by a check that writes the Secret, and by a
	// check that succeeds after one that did not. A check that finds nothing
	// new leaves it, so that the steady state writes nothing; the time of the
	// latest check is in the controller's metrics
	// (kvsync_secretsync_last_check_timestamp_seconds), which
	// `kubectl kvsync status` shows.
	// +optional
	LastSuccessfulSyncTime *metav1.Time `json:"lastSuccessfulSyncTime,omitempty"`
}

// SecretSync keeps one Kubernetes Secret, of the same name and namespace, in
// sync with secrets read through a SecretProviderClass. The Secret is owned by
// the SecretSync and is garbage collected with it.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:storageversion
// +kubebuilder:resource:shortName=ss
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[-1:].reason`,description="Reason of the latest check"
// +kubebuilder:printcolumn:name="In Sync Since",type=date,JSONPath=`.status.lastSuccessfulSyncTime`,description="Since when the Secret has held the store's values (lastSuccessfulSyncTime); checks that find nothing new do not move it"
// +kubebuilder:printcolumn:name="Class",type=string,JSONPath=`.spec.secretProviderClassName`,priority=1
// +kubebuilder:printcolumn:name="Message",type=string,JSONPath=`.status.conditions[-1:].message`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type SecretSync struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec SecretSyncSpec `json:"spec"`
	// +optional
	Status SecretSyncStatus `json:"status,omitempty"`
}

// SecretSyncList is a list of SecretSync objects.
//
// +kubebuilder:object:root=true
type SecretSyncList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []SecretSync `json:"items"`
}

func init() {
	SchemeBuilder.Register(&SecretSync{}, &SecretSyncList{})
}
