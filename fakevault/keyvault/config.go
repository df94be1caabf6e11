package keyvault

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"time"
)

// ErrInvalidConfig is wrapped by the errors CreateVault and the Vault
// setters return for a configuration the real service would refuse.
var ErrInvalidConfig = errors.New("invalid vault configuration")

// VaultConfig describes a vault to create.
type VaultConfig struct {
	// Name is the vault name, the first label of its host. Key Vault rules
	// apply: 3-24 characters, letters, digits and hyphens, starting with a
	// letter, ending with a letter or digit, no consecutive hyphens.
	Name string `json:"name"`
	// TenantID is the Entra tenant the vault trusts. Required.
	TenantID string `json:"tenantId,omitempty"`
	// SubscriptionID and ResourceGroup place the vault in Azure Resource
	// Manager; they appear in RBAC denial messages. They default to the
	// zero GUID and "kvsync".
	SubscriptionID string `json:"subscriptionId,omitempty"`
	ResourceGroup  string `json:"resourceGroup,omitempty"`
	// Location is the region the vault reports (x-ms-keyvault-region and
	// "Vault: <name>;location=<region>" in messages). Defaults to
	// Options.Region.
	Location string `json:"location,omitempty"`

	// UseAccessPolicies selects the legacy access policy model: requests
	// are authorized by AccessPolicies (enableRbacAuthorization=false in
	// ARM). By default the vault uses Azure RBAC, the model Azure
	// recommends, and authorizes by RoleAssignments; the other list is
	// ignored, as the service ignores it.
	UseAccessPolicies bool `json:"useAccessPolicies,omitempty"`
	// RoleAssignments grant built-in roles to principals (RBAC model).
	RoleAssignments []RoleAssignment `json:"roleAssignments,omitempty"`
	// AccessPolicies grant per-kind permissions to principals (access
	// policy model).
	AccessPolicies []AccessPolicy `json:"accessPolicies,omitempty"`

	// Network holds the firewall and private endpoint settings.
	Network NetworkRules `json:"network,omitzero"`

	// SoftDeleteDisabled turns soft delete off: deletes purge at once and
	// the recovery level is Purgeable. Soft delete is on by default.
	SoftDeleteDisabled bool `json:"softDeleteDisabled,omitempty"`
	// SoftDeleteRetentionDays is how long deleted objects stay recoverable,
	// 7 to 90; zero means 90.
	SoftDeleteRetentionDays int `json:"softDeleteRetentionDays,omitempty"`
	// PurgeProtection forbids purging deleted objects before their
	// retention ends.
	PurgeProtection bool `json:"purgeProtection,omitempty"`

	// RateLimit, when set, throttles the vault: more than Requests
	// authenticated requests in a Window are answered 429 Throttled with
	// Retry-After.
	RateLimit *RateLimit `json:"rateLimit,omitempty"`

	// InterleaveEmptyPages makes every list answer that has a next page
	// followed by an empty page with a nextLink, as the real service
	// sometimes answers. Clients must follow nextLink past empty pages.
	InterleaveEmptyPages bool `json:"interleaveEmptyPages,omitempty"`
}

// RoleAssignment grants a built-in Key Vault role to a principal.
type RoleAssignment struct {
	// PrincipalID is the object ID (oid claim) of the user, service
	// principal or managed identity.
	PrincipalID string `json:"principalId"`
	// Role is a built-in role name such as RoleSecretsUser ("Key Vault
	// Secrets User") or its role definition GUID.
	Role string `json:"role"`
	// Scope narrows the assignment to one object, e.g. "secrets/db-password"
	// or "certificates/tls". Empty means the whole vault.
	Scope string `json:"scope,omitempty"`
}

// AccessPolicy grants permissions to a principal under the access policy
// model. Permission names are the service's, case-insensitive: for secrets
// get, list, set, delete, backup, restore, recover, purge; for keys get,
// list, update, create, import, delete, recover, backup, restore, decrypt,
// encrypt, unwrapKey, wrapKey, verify, sign, purge, release, rotate,
// getrotationpolicy, setrotationpolicy; for certificates get, list, update,
// create, import, delete, recover, backup, restore, managecontacts,
// manageissuers, getissuers, listissuers, setissuers, deleteissuers, purge.
// "all" grants every permission of its kind.
type AccessPolicy struct {
	// ObjectID is the principal's object ID (oid claim).
	ObjectID     string   `json:"objectId"`
	Secrets      []string `json:"secrets,omitempty"`
	Keys         []string `json:"keys,omitempty"`
	Certificates []string `json:"certificates,omitempty"`
}

// NetworkRules are a vault's network settings. A request passes when its
// client address is in PrivateEndpointNetworks; otherwise it is refused
// with ForbiddenByConnection when public network access is disabled, and
// with ForbiddenByFirewall when the firewall is on (DefaultDeny, or any
// AllowedNetworks) and the address is in none of AllowedNetworks.
type NetworkRules struct {
	// PublicNetworkAccessDisabled turns public network access off.
	PublicNetworkAccessDisabled bool `json:"publicNetworkAccessDisabled,omitempty"`
	// DefaultDeny turns the firewall on even with no AllowedNetworks.
	DefaultDeny bool `json:"defaultDeny,omitempty"`
	// AllowedNetworks are the IP rules of the firewall.
	AllowedNetworks []netip.Prefix `json:"allowedNetworks,omitempty"`
	// PrivateEndpointNetworks are the client addresses that reach the vault
	// through a private endpoint.
	PrivateEndpointNetworks []netip.Prefix `json:"privateEndpointNetworks,omitempty"`
}

// RateLimit throttles a vault: a request is answered 429 Throttled when
// Requests others arrived within the Window before it (the window slides;
// refused requests count too).
type RateLimit struct {
	Requests int           `json:"requests"`
	Window   time.Duration `json:"window"`
}

// SecretsLimit is Key Vault's documented service limit for secret reads:
// 4,000 per vault per 10 seconds.
var SecretsLimit = RateLimit{Requests: 4000, Window: 10 * time.Second}

var (
	vaultNamePattern  = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9-]{1,22}[A-Za-z0-9]$`)
	objectNamePattern = regexp.MustCompile(`^[0-9A-Za-z-]{1,127}$`)
	guidPattern       = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
)

// ValidVaultName reports whether name follows the Key Vault naming rules.
func ValidVaultName(name string) bool {
	return vaultNamePattern.MatchString(name) && !strings.Contains(name, "--")
}

// ValidObjectName reports whether name is a valid secret, key or
// certificate name: 1-127 letters, digits and hyphens.
func ValidObjectName(name string) bool {
	return objectNamePattern.MatchString(name)
}

func (c *VaultConfig) normalize(defaultRegion string) error {
	if !ValidVaultName(c.Name) {
		return fmt.Errorf("%w: vault name %q: 3-24 letters, digits and hyphens, starting with a letter, ending with a letter or digit, no consecutive hyphens", ErrInvalidConfig, c.Name)
	}
	if !guidPattern.MatchString(c.TenantID) {
		return fmt.Errorf("%w: vault %q: tenant ID %q is not a GUID", ErrInvalidConfig, c.Name, c.TenantID)
	}
	if c.SubscriptionID == "" {
		c.SubscriptionID = "00000000-0000-0000-0000-000000000000"
	}
	if c.ResourceGroup == "" {
		c.ResourceGroup = "kvsync"
	}
	if c.Location == "" {
		c.Location = defaultRegion
	}
	if c.SoftDeleteRetentionDays == 0 {
		c.SoftDeleteRetentionDays = 90
	}
	if c.SoftDeleteRetentionDays < 7 || c.SoftDeleteRetentionDays > 90 {
		return fmt.Errorf("%w: vault %q: soft delete retention %d days is outside 7-90", ErrInvalidConfig, c.Name, c.SoftDeleteRetentionDays)
	}
	if c.PurgeProtection && c.SoftDeleteDisabled {
		return fmt.Errorf("%w: vault %q: purge protection needs soft delete", ErrInvalidConfig, c.Name)
	}
	if c.RateLimit != nil && (c.RateLimit.Requests < 1 || c.RateLimit.Window <= 0) {
		return fmt.Errorf("%w: vault %q: rate limit needs positive Requests and Window", ErrInvalidConfig, c.Name)
	}
	for _, ra := range c.RoleAssignments {
		if err := validateRoleAssignment(ra); err != nil {
			return fmt.Errorf("vault %q: %w", c.Name, err)
		}
	}
	for _, ap := range c.AccessPolicies {
		if err := validateAccessPolicy(ap); err != nil {
			return fmt.Errorf("vault %q: %w", c.Name, err)
		}
	}
	for _, p := range append(append([]netip.Prefix(nil), c.Network.AllowedNetworks...), c.Network.PrivateEndpointNetworks...) {
		if !p.IsValid() {
			return fmt.Errorf("%w: vault %q: invalid network prefix", ErrInvalidConfig, c.Name)
		}
	}
	// Own the slices so later changes by the caller do not race.
	c.RoleAssignments = append([]RoleAssignment(nil), c.RoleAssignments...)
	c.AccessPolicies = append([]AccessPolicy(nil), c.AccessPolicies...)
	c.Network = c.Network.clone()
	return nil
}

func (n NetworkRules) clone() NetworkRules {
	n.AllowedNetworks = append([]netip.Prefix(nil), n.AllowedNetworks...)
	n.PrivateEndpointNetworks = append([]netip.Prefix(nil), n.PrivateEndpointNetworks...)
	return n
}

func validateRoleAssignment(ra RoleAssignment) error {
	if ra.PrincipalID == "" {
		return fmt.Errorf("%w: role assignment without a principal ID", ErrInvalidConfig)
	}
	if _, ok := lookupRole(ra.Role); !ok {
		return fmt.Errorf("%w: unknown role %q", ErrInvalidConfig, ra.Role)
	}
	if ra.Scope != "" {
		if _, _, ok := parseScope(ra.Scope); !ok {
			return fmt.Errorf("%w: role assignment scope %q is not <secrets|keys|certificates>/<name>", ErrInvalidConfig, ra.Scope)
		}
	}
	return nil
}

func validateAccessPolicy(ap AccessPolicy) error {
	if ap.ObjectID == "" {
		return fmt.Errorf("%w: access policy without an object ID", ErrInvalidConfig)
	}
	check := func(k kind, perms []string) error {
		for _, p := range perms {
			if !k.knownPermission(p) {
				return fmt.Errorf("%w: unknown %s permission %q", ErrInvalidConfig, k.plural(), p)
			}
		}
		return nil
	}
	return errors.Join(check(kindSecret, ap.Secrets), check(kindKey, ap.Keys), check(kindCertificate, ap.Certificates))
}

// parseScope splits "secrets/name" into its kind and name.
func parseScope(scope string) (kind, string, bool) {
	scope = strings.Trim(scope, "/")
	collection, name, ok := strings.Cut(scope, "/")
	if !ok || !ValidObjectName(name) {
		return 0, "", false
	}
	for _, k := range []kind{kindSecret, kindKey, kindCertificate} {
		if strings.EqualFold(collection, k.plural()) {
			return k, name, true
		}
	}
	return 0, "", false
}

// recoveryLevel is the deletion recovery level attributes report.
func (c *VaultConfig) recoveryLevel() string {
	switch {
	case c.SoftDeleteDisabled:
		return "Purgeable"
	case c.PurgeProtection && c.SoftDeleteRetentionDays < 90:
		return "CustomizedRecoverable"
	case c.PurgeProtection:
		return "Recoverable"
	case c.SoftDeleteRetentionDays < 90:
		return "CustomizedRecoverable+Purgeable"
	default:
		return "Recoverable+Purgeable"
	}
}

func (c *VaultConfig) recoverableDays() int {
	if c.SoftDeleteDisabled {
		return 0
	}
	return c.SoftDeleteRetentionDays
}

// rateLimitJSON is the JSON form of RateLimit: the window as a duration
// string such as "10s".
type rateLimitJSON struct {
	Requests int    `json:"requests"`
	Window   string `json:"window"`
}

// MarshalJSON encodes the window as a duration string.
func (r RateLimit) MarshalJSON() ([]byte, error) {
	return json.Marshal(rateLimitJSON{Requests: r.Requests, Window: r.Window.String()})
}

// UnmarshalJSON decodes the window from a duration string such as "10s".
func (r *RateLimit) UnmarshalJSON(data []byte) error {
	var j rateLimitJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return err
	}
	w, err := time.ParseDuration(j.Window)
	if err != nil {
		return fmt.Errorf("rate limit window: %w", err)
	}
	*r = RateLimit{Requests: j.Requests, Window: w}
	return nil
}
