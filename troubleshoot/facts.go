package troubleshoot

import (
	"net"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Facts are what was observed of one SecretSync, its cluster and its
// network. Gather collects them; Diagnose reads nothing else. Facts never
// hold a secret value: Secrets are described by their markers, type, owners
// and field managers only.
type Facts struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Found is false when the SecretSync does not exist.
	Found bool `json:"found"`
	// Condition is the SecretSync's latest condition; nil before the
	// controller's first check.
	Condition *metav1.Condition `json:"condition,omitempty"`
	// LastSync is status.lastSuccessfulSyncTime: since when the Secret has
	// held the store's values. Checks that find nothing new leave it.
	LastSync *time.Time `json:"lastSync,omitempty"`
	// LastCheck is the time of the controller's latest check, read from its
	// metrics (LastCheckMetric); nil when they were not read.
	LastCheck *time.Time `json:"lastCheck,omitempty"`
	// SecretType is spec.secretObject.type.
	SecretType     string `json:"secretType,omitempty"`
	ServiceAccount string `json:"serviceAccount,omitempty"`

	Class               ClassFacts      `json:"class"`
	ServiceAccountFound *bool           `json:"serviceAccountFound,omitempty"`
	Secret              SecretFacts     `json:"secret"`
	Network             *NetworkFacts   `json:"network,omitempty"`
	Controller          ControllerFacts `json:"controller"`
	Events              []EventFact     `json:"events,omitempty"`
}

// ClassFacts describe the SecretProviderClass a SecretSync names.
type ClassFacts struct {
	Name     string `json:"name"`
	Found    bool   `json:"found"`
	Provider string `json:"provider,omitempty"`
	// ParseError is the provider's verdict on the parameters ("" when they
	// parse); only set for the azure provider.
	ParseError string `json:"parseError,omitempty"`
	Vault      string `json:"vault,omitempty"`
	VaultHost  string `json:"vaultHost,omitempty"`
	ClientID   string `json:"clientID,omitempty"`
	TenantID   string `json:"tenantID,omitempty"`
}

// SecretFacts describe the Secret with the SecretSync's name.
type SecretFacts struct {
	Exists        bool     `json:"exists"`
	Type          string   `json:"type,omitempty"`
	HasLabel      bool     `json:"hasLabel"`
	HasAnnotation bool     `json:"hasAnnotation"`
	Owners        []string `json:"owners,omitempty"`
	Managers      []string `json:"managers,omitempty"`
	Keys          []string `json:"keys,omitempty"`
}

// NetworkFacts are live checks of the paths the provider takes, from where
// they were run.
type NetworkFacts struct {
	// From says where the checks ran (this machine, a pod).
	From      string   `json:"from"`
	VaultHost string   `json:"vaultHost"`
	Addresses []string `json:"addresses,omitempty"`
	// ResolveError is the DNS failure, "" when the name resolved.
	ResolveError string `json:"resolveError,omitempty"`
	// Vault is a TCP and TLS connection to the vault on 443.
	Vault Probe `json:"vault"`
	// Login is a TCP connection to the Entra ID authority on 443.
	Login Probe `json:"login"`
}

// Probe is the outcome of one connection attempt.
type Probe struct {
	Host string `json:"host"`
	OK   bool   `json:"ok"`
	// Stage is where it failed: dns, tcp or tls.
	Stage   string        `json:"stage,omitempty"`
	Error   string        `json:"error,omitempty"`
	Timeout bool          `json:"timeout,omitempty"`
	Took    time.Duration `json:"took"`
}

// Private reports whether any resolved address is private (RFC 1918 or
// RFC 4193): a private endpoint's.
func (n *NetworkFacts) Private() bool {
	for _, a := range n.Addresses {
		if ip := net.ParseIP(a); ip != nil && ip.IsPrivate() {
			return true
		}
	}
	return false
}

// ControllerFacts describe the controller's pod and the provider's recent
// errors.
type ControllerFacts struct {
	Namespace string `json:"namespace"`
	Pod       string `json:"pod,omitempty"`
	// ProviderErrors are recent error lines of the provider container's log
	// that name the SecretSync's vault or class.
	ProviderErrors []string `json:"providerErrors,omitempty"`
	// LogError says why the log could not be read.
	LogError string `json:"logError,omitempty"`
}

// EventFact is one Event about the SecretSync.
type EventFact struct {
	Type   string    `json:"type"`
	Reason string    `json:"reason"`
	Note   string    `json:"note"`
	Time   time.Time `json:"time"`
}
