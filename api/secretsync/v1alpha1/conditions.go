package v1alpha1

// Condition types of a SecretSync. At most one of each is present.
const (
	// ConditionTypeCreate reports the first creation of the Secret. It is set
	// by every check until the Secret has been created once, so failures that
	// happen before the Secret exists are reported here.
	ConditionTypeCreate = "Create"

	// ConditionTypeUpdate reports every check after the Secret exists.
	ConditionTypeUpdate = "Update"
)

// Reasons that report success. The condition status is True.
const (
	// ReasonCreateSucceeded is set on Create when the Secret was created with
	// every item of secretObject.data.
	ReasonCreateSucceeded = "CreateSucceeded"

	// ReasonUpdateNoValueChangeSucceeded is set on Update when a check found
	// the Secret already equal to the secret store; nothing was written.
	ReasonUpdateNoValueChangeSucceeded = "UpdateNoValueChangeSucceeded"

	// ReasonUpdateValueChangeOrForceUpdateSucceeded is set on Update when the
	// whole Secret was rewritten: a new version in the secret store, a changed
	// SecretSync or SecretProviderClass, or a new forceSynchronization value.
	ReasonUpdateValueChangeOrForceUpdateSucceeded = "UpdateValueChangeOrForceUpdateSucceeded"
)

// Reasons that report failure. The condition status is False for each of
// them, ReasonPartialSync included: some items were written, but the Secret
// is not fully up to date.
const (
	// ReasonPartialSync is set when partial sync is enabled and some, but not
	// all, items failed. Succeeded items were written; failed items keep their
	// previous value. The message is a JSON summary with one entry per item.
	ReasonPartialSync = "PartialSync"

	// ReasonProviderError is set when the provider failed to return the
	// secrets: the secret store was unreachable or denied access, an object was
	// missing or disabled, the identity exchange failed, or the provider did
	// not answer. The message carries the provider's error.
	ReasonProviderError = "ProviderError"

	// ReasonInvalidClusterSecretLabelError is set when a Secret with the
	// target name exists without the managed label: it belongs to someone
	// else and is never modified.
	ReasonInvalidClusterSecretLabelError = "InvalidClusterSecretLabelError"

	// ReasonInvalidClusterSecretAnnotationError is set when a Secret with the
	// target name carries the managed label but not the managed annotation:
	// it is not provably ours and is never modified.
	ReasonInvalidClusterSecretAnnotationError = "InvalidClusterSecretAnnotationError"

	// ReasonUserInputValidationFailed is set when the SecretSync itself is
	// wrong: a Secret type that is not allowed or differs from the existing
	// Secret's, a sourcePath the provider did not return, kubernetes.io/tls
	// data with keys other than tls.crt and tls.key, or certificate material
	// that does not parse.
	ReasonUserInputValidationFailed = "UserInputValidationFailed"

	// ReasonControllerSpcError is set when the SecretProviderClass cannot be
	// read or is structurally wrong: missing, unknown provider, no provider
	// socket, missing or invalid parameters.
	ReasonControllerSpcError = "ControllerSpcError"

	// ReasonControllerInternalError is set on a defect or impossible state
	// inside the controller, such as a malformed or oversized provider
	// response or a recovered panic.
	ReasonControllerInternalError = "ControllerInternalError"

	// ReasonValidatingAdmissionPolicyCheckFailed is set when the API server
	// denied the Secret write or the token request and the denial names a
	// ValidatingAdmissionPolicy.
	ReasonValidatingAdmissionPolicyCheckFailed = "ValidatingAdmissionPolicyCheckFailed"

	// ReasonControllerSyncFailed is set when the controller could not
	// assemble the sync on the cluster side, for example when the
	// ServiceAccount token request failed.
	ReasonControllerSyncFailed = "ControllerSyncFailed"

	// ReasonUnknownError is set when writing the Secret failed for any other
	// reason, typically because another field manager owns fields of the
	// Secret (a server-side apply conflict).
	ReasonUnknownError = "UnknownError"
)

// Markers of a Secret written by the controller. A Secret is managed only if
// it carries both.
const (
	// ManagedLabel is the label, with an empty value, on every Secret the
	// controller writes. The controller only caches Secrets with this label.
	ManagedLabel = "secrets-store.sync.x-k8s.io"

	// ManagedAnnotation is the annotation, with an empty value, on every
	// Secret the controller writes.
	ManagedAnnotation = "secrets-store.sync.x-k8s.io"

	// FieldManager is the server-side apply field manager of the controller.
	// It is the Secret Store extension's, so Secrets it created are taken
	// over without conflicts.
	FieldManager = "v1-secrets-store-sync-controller"
)
