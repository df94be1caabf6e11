// Package scenarios reads conformance scenarios: YAML files, one per case,
// that an operator can read without Go. A scenario describes a world (vault
// contents, identity, SecretProviderClass, SecretSync, cluster objects,
// faults), the steps taken in it and what each step must lead to.
//
// Load reads a directory of scenarios and reports every file that does not
// fit the schema with its name and the field at fault.
package scenarios

import (
	"strings"

	"github.com/kvsync/kvsync/faults"
)

// Canary is the marker every vault value of a scenario must contain: the
// suite fails if it appears anywhere but in Secrets.
const Canary = "kvsync-canary"

// Scenario is one conformance case.
type Scenario struct {
	// Name identifies the scenario; it is also its file's base name.
	Name string `json:"name"`
	// Description says, in the guide's words, what the scenario shows.
	Description string `json:"description"`
	// Profile is the conformance profile the scenario belongs to: Core
	// (the guide's reasons with the API as the SSE documents it, which any
	// implementation must pass) or Extended (kvsync's extensions).
	Profile string `json:"profile"`
	// Labels select scenarios, e.g. reason:ProviderError, layer:dns. The
	// reason label names the documented reason the scenario proves.
	Labels []string `json:"labels,omitempty"`
	// Cause is the cause `kubectl kvsync doctor` must name (with the
	// documented reason) after the first step that expects the documented
	// reason: a cause ID of package troubleshoot, e.g. vault-firewall.
	Cause string `json:"cause"`

	// Vault is the content of the scenario's vault.
	Vault Vault `json:"vault,omitzero"`
	// Class is the SecretProviderClass "azure-kv" of the scenario.
	Class Class `json:"class,omitzero"`
	// SecretSync is the SecretSync under test.
	SecretSync SecretSync `json:"secretSync"`
	// Cluster lists objects that exist, or are missing, before the
	// SecretSync is created.
	Cluster Cluster `json:"cluster,omitzero"`
	// Faults are active from the start, scoped to the scenario's vault
	// unless they say otherwise.
	Faults []faults.Fault `json:"faults,omitempty"`
	// Steps run in order after the SecretSync is created.
	Steps []Step `json:"steps"`
}

// Conformance profiles, as gateway-api has them.
const (
	// Core is what any implementation of the SecretSync API, with any
	// Azure provider, must pass: the guide's reasons with the API as the
	// SSE documents it (spec.secretObject.type set, plain and /N source
	// paths), checked against facts a user sees (the reason, the vault's
	// error code, the vault host, the item), never one implementation's
	// wording.
	Core = "core"
	// Extended covers kvsync's extensions: tls.crt and tls.key source
	// paths, defaults, kvsync's own messages, the doctor, metrics.
	Extended = "extended"
)

// Profiles are the conformance profiles, in order.
var Profiles = []string{Core, Extended}

// VaultHostVar in a message fragment stands for the scenario's vault host,
// e.g. kv-1a2b3c.vault.azure.net.
const VaultHostVar = "$(vaultHost)"

// Documented returns the reason the scenario proves (its reason: label).
func (s Scenario) Documented() string {
	for _, l := range s.Labels {
		if r, ok := strings.CutPrefix(l, "reason:"); ok {
			return r
		}
	}
	return ""
}

// Vault is the scenario's vault and the identity that reads it.
type Vault struct {
	Secrets      []VaultSecret      `json:"secrets,omitempty"`
	Certificates []VaultCertificate `json:"certificates,omitempty"`
	Keys         []VaultKey         `json:"keys,omitempty"`
	// Roles are the identity's RBAC roles on the vault; Key Vault
	// Certificate User (secrets, keys and certificates) when empty. An
	// explicit empty list is not possible: use the fault or step that
	// removes access instead.
	Roles []string `json:"roles,omitempty"`
	// AccessPolicy, when set, switches the vault to the access policy
	// model with this policy for the identity (Roles are then unused).
	AccessPolicy *AccessPolicy `json:"accessPolicy,omitempty"`
	// Network are the vault's network rules.
	Network *VaultNetwork `json:"network,omitempty"`
	// Federated is false when the identity has no federated credential for
	// the SecretSync's ServiceAccount (AADSTS70021); true by default.
	Federated *bool `json:"federated,omitempty"`
}

// VaultSecret is one secret and its versions, oldest first.
type VaultSecret struct {
	Name string `json:"name"`
	// Value is the newest version's value; it must contain Canary.
	Value string `json:"value,omitempty"`
	// Versions are values of successive versions, oldest first, when
	// Value is not enough; each must contain Canary.
	Versions    []string `json:"versions,omitempty"`
	ContentType string   `json:"contentType,omitempty"`
	// Disabled disables the newest version.
	Disabled bool `json:"disabled,omitempty"`
}

// VaultCertificate is a certificate minted from the fake's CA.
type VaultCertificate struct {
	Name        string   `json:"name"`
	KeyType     string   `json:"keyType,omitempty"`
	ContentType string   `json:"contentType,omitempty"`
	DNSNames    []string `json:"dnsNames,omitempty"`
}

// VaultKey is a standalone key.
type VaultKey struct {
	Name    string `json:"name"`
	KeyType string `json:"keyType,omitempty"`
}

// AccessPolicy lists the identity's permissions per object kind, e.g.
// secrets: [list] (without get).
type AccessPolicy struct {
	Secrets      []string `json:"secrets,omitempty"`
	Keys         []string `json:"keys,omitempty"`
	Certificates []string `json:"certificates,omitempty"`
}

// VaultNetwork are a vault's network rules.
type VaultNetwork struct {
	// DefaultDeny turns the firewall on with no allowed network: every
	// client address is ForbiddenByFirewall.
	DefaultDeny bool `json:"defaultDeny,omitempty"`
	// PublicAccessDisabled refuses everything not on a private endpoint
	// (ForbiddenByConnection).
	PublicAccessDisabled bool `json:"publicAccessDisabled,omitempty"`
}

// Class is the scenario's SecretProviderClass.
type Class struct {
	// Objects are the entries of the objects parameter.
	Objects []ClassObject `json:"objects,omitempty"`
	// Parameters override the generated parameters (keyvaultName,
	// tenantID, clientID); an empty value removes one.
	Parameters map[string]string `json:"parameters,omitempty"`
}

// ClassObject is one entry of the objects parameter.
type ClassObject struct {
	ObjectName           string `json:"objectName"`
	ObjectType           string `json:"objectType,omitempty"`
	ObjectAlias          string `json:"objectAlias,omitempty"`
	ObjectVersion        string `json:"objectVersion,omitempty"`
	ObjectVersionHistory int    `json:"objectVersionHistory,omitempty"`
	ObjectEncoding       string `json:"objectEncoding,omitempty"`
	ObjectFormat         string `json:"objectFormat,omitempty"`
}

// SecretSync is the scenario's SecretSync.
type SecretSync struct {
	// Name is the SecretSync's (and Secret's) name; app when empty.
	Name string `json:"name,omitempty"`
	// ServiceAccount is spec.serviceAccountName; workload when empty.
	ServiceAccount string `json:"serviceAccount,omitempty"`
	// Type is spec.secretObject.type, which the API as the SSE documents
	// it requires; only an extended scenario may leave it to kvsync's
	// default (Opaque).
	Type                 string            `json:"type,omitempty"`
	Data                 []DataItem        `json:"data"`
	Labels               map[string]string `json:"labels,omitempty"`
	Annotations          map[string]string `json:"annotations,omitempty"`
	ForceSynchronization string            `json:"forceSynchronization,omitempty"`
}

// DataItem maps a file to a Secret key.
type DataItem struct {
	TargetKey  string `json:"targetKey"`
	SourcePath string `json:"sourcePath"`
}

// Cluster are the cluster-side conditions of a scenario.
type Cluster struct {
	// ForeignSecret is a Secret with the SecretSync's name that exists
	// first.
	ForeignSecret *ForeignSecret `json:"foreignSecret,omitempty"`
	// DenyPolicy is a ValidatingAdmissionPolicy in the namespace.
	DenyPolicy *DenyPolicy `json:"denyPolicy,omitempty"`
	// NoServiceAccount leaves the ServiceAccount uncreated.
	NoServiceAccount bool `json:"noServiceAccount,omitempty"`
	// NoClass leaves the SecretProviderClass uncreated.
	NoClass bool `json:"noClass,omitempty"`
}

// ForeignSecret is a pre-existing Secret the controller must not touch.
type ForeignSecret struct {
	// Labelled gives it the managed label (but not the annotation).
	Labelled bool              `json:"labelled,omitempty"`
	Data     map[string]string `json:"data,omitempty"`
}

// DenyPolicy denies writes of Resource (secrets, or serviceaccounts/token)
// where the CEL expression Allow is false.
type DenyPolicy struct {
	Resource string `json:"resource"`
	Allow    string `json:"allow"`
	Message  string `json:"message"`
}

// Step is one action, or none, followed by an optional expectation.
type Step struct {
	// SetSecret adds a version to a vault secret.
	SetSecret *VaultSecret `json:"setSecret,omitempty"`
	// DisableSecret disables the newest version of a vault secret.
	DisableSecret string `json:"disableSecret,omitempty"`
	// SetNetwork replaces the vault's network rules, as its owner does in
	// the portal: the firewall and public access, enforced by the fake
	// vault itself; {} allows every network again.
	SetNetwork *VaultNetwork `json:"setNetwork,omitempty"`
	// AddFaults activates faults; ClearFaults clears every fault.
	AddFaults   []faults.Fault `json:"addFaults,omitempty"`
	ClearFaults bool           `json:"clearFaults,omitempty"`
	// ForceSynchronization sets spec.forceSynchronization.
	ForceSynchronization string `json:"forceSynchronization,omitempty"`
	// DeleteSecret deletes the managed Secret.
	DeleteSecret bool `json:"deleteSecret,omitempty"`
	// TakeOwnership makes another field manager own a data key.
	TakeOwnership *TakeOwnership `json:"takeOwnership,omitempty"`
	// SetClassParameters changes parameters of the SecretProviderClass.
	SetClassParameters map[string]string `json:"setClassParameters,omitempty"`
	// SetType changes spec.secretObject.type.
	SetType string `json:"setType,omitempty"`
	// FollowFix follows the fix `kubectl kvsync doctor` prints, literally:
	// its kubectl commands that change the cluster run as printed, an
	// operator's manifest standing for <secretsync.yaml> and
	// <secretproviderclass.yaml>. It runs with the extended profile only
	// (the doctor is kvsync's); elsewhere the scenario ends before it.
	FollowFix *FollowFix `json:"followFix,omitempty"`
	// Expect is what must hold after the action.
	Expect *Expectation `json:"expect,omitempty"`
}

// FollowFix is what the operator's manifests hold when a fix is followed:
// the scenario's objects, with these edits.
type FollowFix struct {
	// Type is spec.secretObject.type in the operator's SecretSync file.
	Type string `json:"type,omitempty"`
	// Data, when set, is spec.secretObject.data in the operator's
	// SecretSync file.
	Data []DataItem `json:"data,omitempty"`
	// Instead is the guide's fix, one action, that the suite takes where
	// the doctor's fixes are not followed (outside the extended profile),
	// so that the scenario goes on there too.
	Instead *Step `json:"instead,omitempty"`
}

// TakeOwnership is a forced apply of one data key by another manager.
type TakeOwnership struct {
	Manager string `json:"manager"`
	Key     string `json:"key"`
	Value   string `json:"value"`
}

// Expectation is what must hold after a step.
type Expectation struct {
	// Type, Status and Reason are the latest condition's.
	Type   string `json:"type,omitempty"`
	Status string `json:"status,omitempty"`
	Reason string `json:"reason"`
	// Message lists fragments the condition message contains: facts any
	// implementation shows (the vault's error code, $(vaultHost), the item).
	Message []string `json:"message,omitempty"`
	// ExtendedMessage lists fragments of kvsync's own wording, checked only
	// when the extended profile is under test.
	ExtendedMessage []string `json:"extendedMessage,omitempty"`
	// Secret is what the managed Secret holds.
	Secret *SecretExpectation `json:"secret,omitempty"`
	// Items are the PartialSync summary's items, by targetKey: Succeeded
	// or Failed.
	Items map[string]string `json:"items,omitempty"`
	// Event is a reason an Event was recorded with.
	Event string `json:"event,omitempty"`
	// Journal are requests fakevault answered during the step, for the
	// scenario's vault or identity: each must match at least one entry.
	Journal []JournalEntry `json:"journal,omitempty"`
	// Injected are faults (by name) that fired during the step.
	Injected []string `json:"injected,omitempty"`
}

// JournalEntry matches an entry of fakevault's journal; empty fields match
// anything.
type JournalEntry struct {
	// Service is keyvault or entra.
	Service string `json:"service,omitempty"`
	// Operation is e.g. GetSecret, ListSecretVersions, Token.
	Operation string `json:"operation,omitempty"`
	// Status is the HTTP status answered.
	Status int `json:"status,omitempty"`
	// ErrorCode is the error code answered, e.g. SecretNotFound, AADSTS70021.
	ErrorCode string `json:"errorCode,omitempty"`
}

// SecretExpectation is what the Secret holds.
type SecretExpectation struct {
	// Absent: no Secret of that name exists.
	Absent bool `json:"absent,omitempty"`
	// Unchanged: the Secret is byte for byte what it was before the step.
	Unchanged bool `json:"unchanged,omitempty"`
	// Data are values of keys.
	Data map[string]string `json:"data,omitempty"`
	// Type is the Secret type.
	Type string `json:"type,omitempty"`
	// PEM are the PEM block types each key holds, in order (e.g. tls.crt:
	// [CERTIFICATE], tls.key: [PRIVATE KEY]): what certificate material
	// went where, without its values.
	PEM map[string][]string `json:"pem,omitempty"`
}
