// Package faults injects the failures of the troubleshooting guide into the
// path between a client and the fake Azure services: DNS, transport, vault
// HTTP answers, Entra ID answers and an egress gateway that does not cover
// the vault. One model describes a fault (what, where, when); the same value
// is built in Go, read from YAML in scenarios, or posted to the fake's admin
// API.
//
// An Injector holds the active faults. Its seams wrap the real components,
// which stay unmodified: Dialer wraps the dial function clients are given
// (DNS and transport faults), Handler wraps fakevault's handler (vault and
// identity faults). Decisions are deterministic for a seed and a request
// sequence, and every injection is journaled with its scope.
package faults

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Kind is what a fault does.
type Kind string

// Kinds, by layer. The layer is the prefix before the dot.
const (
	// DNSNXDomain: the name does not exist (a typo, a private DNS zone the
	// cluster does not use).
	DNSNXDomain Kind = "dns.nxdomain"
	// DNSServFail: the resolver fails (SERVFAIL).
	DNSServFail Kind = "dns.servfail"
	// DNSTimeout: the resolver does not answer until the caller gives up.
	DNSTimeout Kind = "dns.timeout"
	// DNSMisroute: the name resolves to an address that never answers, as
	// with a private endpoint whose address is not routed from the cluster.
	DNSMisroute Kind = "dns.misroute"

	// TransportRefused: the connection is refused.
	TransportRefused Kind = "transport.refused"
	// TransportReset: the connection is reset after it opens.
	TransportReset Kind = "transport.reset"
	// TransportBlackhole: the connection never completes.
	TransportBlackhole Kind = "transport.blackhole"
	// TransportLatency: the connection opens after Latency (plus up to
	// Jitter).
	TransportLatency Kind = "transport.latency"
	// TransportTLSUntrusted: the server presents a certificate from a CA
	// the client does not trust (a TLS-intercepting proxy).
	TransportTLSUntrusted Kind = "transport.tls-untrusted"
	// TransportTLSWrongName: the server presents a trusted certificate for
	// another name.
	TransportTLSWrongName Kind = "transport.tls-wrong-name"

	// GatewayVaultBlocked: an egress gateway reaches everything except
	// <vault>.vault.azure.net: connections to vault hosts never complete
	// while Entra ID still works.
	GatewayVaultBlocked Kind = "gateway.vault-blocked"

	// VaultError: the vault answers Status with the error Code (and
	// InnerCode), e.g. 403 Forbidden/ForbiddenByFirewall, 404
	// SecretNotFound, 500 InternalServerError.
	VaultError Kind = "vault.error"
	// VaultThrottle: the vault answers 429 Throttled, with Retry-After when
	// RetryAfter is set.
	VaultThrottle Kind = "vault.throttle"
	// VaultMalformed: the vault answers 200 with a body that is not JSON.
	VaultMalformed Kind = "vault.malformed"
	// VaultTruncated: the vault answers 200 and closes the connection in the
	// middle of the body.
	VaultTruncated Kind = "vault.truncated"

	// IdentityError: the token endpoint answers the AADSTS error AADSTS.
	IdentityError Kind = "identity.aadsts"
	// IdentityUnavailable: Entra ID answers Status (default 503).
	IdentityUnavailable Kind = "identity.unavailable"
	// IdentityEarlyExpiry: access tokens stop being accepted Latency after
	// they were issued, before the expiry they announce: the vault answers
	// 401 TokenExpired while the client still holds the token as valid.
	IdentityEarlyExpiry Kind = "identity.early-expiry"

	// ProviderSlow: Mount answers after Latency, or at the caller's
	// deadline if that comes first.
	ProviderSlow Kind = "provider.slow"
	// ProviderCrash: the Mount ends as when the provider process dies
	// during it: the caller sees gRPC Unavailable. The injector answers in
	// the provider's place and kills nothing; process kills are the
	// soak's (see docs/reliability.md).
	ProviderCrash Kind = "provider.crash"
	// ProviderOversized: Mount answers a response of Size bytes (default
	// 5 MiB), over the caller's limit.
	ProviderOversized Kind = "provider.oversized"
	// ProviderMalformed: Mount answers the same file path twice.
	ProviderMalformed Kind = "provider.malformed"

	// ClusterError: the API server answers Status (default 500) to the
	// scoped verb and resource.
	ClusterError Kind = "cluster.error"
	// ClusterLatency: the API server answers the scoped verb and resource
	// after Latency (plus up to Jitter).
	ClusterLatency Kind = "cluster.latency"
)

// Layer returns the layer of a kind: dns, transport, gateway, vault or
// identity.
func (k Kind) Layer() string {
	layer, _, _ := strings.Cut(string(k), ".")
	return layer
}

// kinds lists every kind, for validation and documentation.
var kinds = []Kind{DNSNXDomain, DNSServFail, DNSTimeout, DNSMisroute,
	TransportRefused, TransportReset, TransportBlackhole, TransportLatency, TransportTLSUntrusted, TransportTLSWrongName,
	GatewayVaultBlocked, VaultError, VaultThrottle, VaultMalformed, VaultTruncated, IdentityError, IdentityUnavailable, IdentityEarlyExpiry,
	ProviderSlow, ProviderCrash, ProviderOversized, ProviderMalformed, ClusterError, ClusterLatency}

// Fault is one injected failure: what (Kind and its parameters), where
// (Scope) and when (When).
type Fault struct {
	// Name identifies the fault, to clear it and in the journal.
	Name string `json:"name"`
	// Kind is what the fault does.
	Kind  Kind  `json:"kind"`
	Scope Scope `json:"scope,omitzero"`
	When  When  `json:"when,omitzero"`

	// Status is the HTTP status of vault.error and identity.unavailable.
	Status int `json:"status,omitempty"`
	// Code and InnerCode are the Key Vault error codes of vault.error.
	Code      string `json:"code,omitempty"`
	InnerCode string `json:"innerCode,omitempty"`
	// Message replaces the default message of vault.error.
	Message string `json:"message,omitempty"`
	// RetryAfter is the Retry-After of vault.throttle; zero sends none.
	RetryAfter Duration `json:"retryAfter,omitempty"`
	// Latency and Jitter are the delay of transport.latency.
	Latency Duration `json:"latency,omitempty"`
	Jitter  Duration `json:"jitter,omitempty"`
	// AADSTS is the error code of identity.aadsts, e.g. 70021.
	AADSTS int `json:"aadsts,omitempty"`
	// Size is the response size of provider.oversized, in bytes.
	Size int `json:"size,omitempty"`
}

// Scope says which requests a fault applies to. Empty fields match
// everything.
type Scope struct {
	// Vault is a vault name: its host and the requests to it.
	Vault string `json:"vault,omitempty"`
	// Object is a vault object name (secret, key or certificate).
	Object string `json:"object,omitempty"`
	// Identity is a client ID: the appid of a vault token, or the client_id
	// at the token endpoint.
	Identity string `json:"identity,omitempty"`
	// Host is a host name, e.g. login.microsoftonline.com.
	Host string `json:"host,omitempty"`
	// Namespace is a Kubernetes namespace: of the SecretSync a Mount is
	// for, or of an API request.
	Namespace string `json:"namespace,omitempty"`
	// SPC is a SecretProviderClass name (provider faults).
	SPC string `json:"spc,omitempty"`
	// Verb and Resource select API requests (cluster faults): get, list,
	// watch, create, update, patch, delete; e.g. secrets,
	// serviceaccounts/token, secretsyncs/status.
	Verb     string `json:"verb,omitempty"`
	Resource string `json:"resource,omitempty"`
}

// When says how often a fault fires among the requests it matches.
type When struct {
	// After skips the first After matching requests.
	After int `json:"after,omitempty"`
	// Count stops after Count injections; zero means no limit.
	Count int `json:"count,omitempty"`
	// Probability fires with this probability (from the injector's seeded
	// source); zero means always.
	Probability float64 `json:"probability,omitempty"`
	// For stops the fault this long after it was added; zero means never.
	For Duration `json:"for,omitempty"`
}

// Validate checks a fault's kind and parameters.
func (f Fault) Validate() error {
	switch {
	case f.Name == "":
		return fmt.Errorf("fault of kind %q has no name", f.Kind)
	case !knownKind(f.Kind):
		return fmt.Errorf("fault %q: unknown kind %q", f.Name, f.Kind)
	case f.When.Probability < 0 || f.When.Probability > 1:
		return fmt.Errorf("fault %q: probability %v is not between 0 and 1", f.Name, f.When.Probability)
	case f.When.After < 0 || f.When.Count < 0:
		return fmt.Errorf("fault %q: after and count must not be negative", f.Name)
	case f.Kind == VaultError && (f.Status < 400 || f.Status > 599 || f.Code == ""):
		return fmt.Errorf("fault %q: vault.error needs a status 400-599 and a code", f.Name)
	case f.Kind == IdentityError && f.AADSTS <= 0:
		return fmt.Errorf("fault %q: identity.aadsts needs an AADSTS code", f.Name)
	case (f.Kind == TransportLatency || f.Kind == ClusterLatency || f.Kind == ProviderSlow || f.Kind == IdentityEarlyExpiry) && f.Latency <= 0:
		return fmt.Errorf("fault %q: %s needs a latency", f.Name, f.Kind)
	case f.Kind == ClusterError && f.Status != 0 && (f.Status < 400 || f.Status > 599):
		return fmt.Errorf("fault %q: cluster.error needs a status 400-599", f.Name)
	}
	return nil
}

func knownKind(k Kind) bool {
	for _, known := range kinds {
		if k == known {
			return true
		}
	}
	return false
}

// Duration is a time.Duration written as a string such as "2s" in JSON and
// YAML.
type Duration time.Duration

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads a duration string, or a number of seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var secs float64
		if err := json.Unmarshal(b, &secs); err != nil {
			return fmt.Errorf("duration must be a string such as \"2s\" or a number of seconds: %s", b)
		}
		*d = Duration(secs * float64(time.Second))
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration %q: %w", s, err)
	}
	*d = Duration(v)
	return nil
}
