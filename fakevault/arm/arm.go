// Package arm is a fake of the Azure Resource Manager endpoints that the
// Azure CLI uses to sign in and to manage a key vault's network rules and
// role assignments:
// subscriptions, tenants, and Microsoft.KeyVault/vaults (list, get, and
// create-or-update of the firewall and public network access). It serves
// the vaults of a keyvault.Service as ARM resources, so `az keyvault
// network-rule add` changes the firewall the vault's data plane enforces.
//
// Role assignments of the built-in Key Vault roles on a vault (`az role
// assignment create --scope <vault ID>`) become the vault's RBAC.
//
// What it does not emulate: other resource types, resource groups as
// resources, ARM's own authorization (any identity of a vault's tenant may
// manage it), access policies, role assignments at other scopes or of other
// roles, and long-running operations (every write completes at once).
package arm

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"regexp"
	"slices"
	"strings"

	"github.com/kvsync/kvsync/fakevault/keyvault"
)

// Host is ARM's host name.
const Host = "management.azure.com"

// audiences are the token audiences ARM accepts.
var audiences = []string{"https://management.core.windows.net/", "https://management.azure.com/",
	"https://management.core.windows.net", "https://management.azure.com"}

// Options configure a Service.
type Options struct {
	// Verifier checks bearer tokens. Required.
	Verifier keyvault.TokenVerifier
	// Vaults are the vaults served as Microsoft.KeyVault/vaults. Required.
	Vaults *keyvault.Service
}

// Service is the fake ARM.
type Service struct{ opts Options }

// New returns a Service; it fails when an option is missing.
func New(opts Options) (*Service, error) {
	if opts.Verifier == nil || opts.Vaults == nil {
		return nil, fmt.Errorf("arm: Options.Verifier and Options.Vaults are required")
	}
	return &Service{opts: opts}, nil
}

// Handler serves ARM's REST API.
func (s *Service) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

// armError is ARM's error envelope.
type armError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func writeError(w http.ResponseWriter, status int, code, format string, args ...any) {
	var e armError
	e.Error.Code, e.Error.Message = code, fmt.Sprintf(format, args...)
	writeJSON(w, status, e)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Service) serveHTTP(w http.ResponseWriter, r *http.Request) {
	p, ok := s.authenticate(w, r)
	if !ok {
		return
	}
	if r.URL.Query().Get("api-version") == "" {
		writeError(w, http.StatusBadRequest, "MissingApiVersionParameter", "The api-version query parameter (?api-version=) is required for all requests.")
		return
	}
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	switch {
	case len(parts) == 1 && strings.EqualFold(parts[0], "subscriptions") && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, list(s.subscriptions(p)))
	case len(parts) == 1 && strings.EqualFold(parts[0], "tenants") && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, list([]tenantJSON{{ID: "/tenants/" + p.TenantID, TenantID: p.TenantID, TenantCategory: "Home"}}))
	case len(parts) >= 2 && strings.EqualFold(parts[0], "subscriptions"):
		s.serveSubscription(w, r, p, parts[1], parts[2:])
	default:
		writeError(w, http.StatusNotFound, "NotFound", "No route for %s %s.", r.Method, r.URL.Path)
	}
}

// authenticate checks the bearer token: a token Entra ID issued for ARM.
func (s *Service) authenticate(w http.ResponseWriter, r *http.Request) (keyvault.Principal, bool) {
	raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		writeError(w, http.StatusUnauthorized, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.")
		return keyvault.Principal{}, false
	}
	p, err := s.opts.Verifier.VerifyAccessToken(raw)
	if err != nil {
		writeError(w, http.StatusUnauthorized, "InvalidAuthenticationToken", "The access token is invalid: %v", err)
		return keyvault.Principal{}, false
	}
	if !slices.Contains(audiences, p.Audience) {
		writeError(w, http.StatusUnauthorized, "InvalidAuthenticationTokenAudience", "The access token has been obtained for wrong audience or resource '%s'. It should exactly match with one of the allowed audiences 'https://management.core.windows.net/','https://management.azure.com/'.", p.Audience)
		return keyvault.Principal{}, false
	}
	return p, true
}

// listJSON is ARM's list envelope.
type listJSON[T any] struct {
	Value []T `json:"value"`
}

func list[T any](v []T) listJSON[T] {
	if v == nil {
		v = []T{}
	}
	return listJSON[T]{Value: v}
}

type subscriptionJSON struct {
	ID                   string `json:"id"`
	SubscriptionID       string `json:"subscriptionId"`
	TenantID             string `json:"tenantId"`
	DisplayName          string `json:"displayName"`
	State                string `json:"state"`
	AuthorizationSource  string `json:"authorizationSource"`
	SubscriptionPolicies struct {
		LocationPlacementID string `json:"locationPlacementId"`
		QuotaID             string `json:"quotaId"`
		SpendingLimit       string `json:"spendingLimit"`
	} `json:"subscriptionPolicies"`
}

type tenantJSON struct {
	ID             string `json:"id"`
	TenantID       string `json:"tenantId"`
	TenantCategory string `json:"tenantCategory"`
}

// subscriptions are the subscriptions of p's tenant: those its vaults are
// in.
func (s *Service) subscriptions(p keyvault.Principal) []subscriptionJSON {
	var out []subscriptionJSON
	for _, v := range s.vaultsOf(p.TenantID, "") {
		id := v.Config().SubscriptionID
		if slices.ContainsFunc(out, func(s subscriptionJSON) bool { return s.SubscriptionID == id }) {
			continue
		}
		sub := subscriptionJSON{ID: "/subscriptions/" + id, SubscriptionID: id, TenantID: p.TenantID,
			DisplayName: "kvsync fake subscription", State: "Enabled", AuthorizationSource: "RoleBased"}
		sub.SubscriptionPolicies.LocationPlacementID, sub.SubscriptionPolicies.QuotaID, sub.SubscriptionPolicies.SpendingLimit = "Public_2014-09-01", "PayAsYouGo_2014-09-01", "Off"
		out = append(out, sub)
	}
	return out
}

// vaultsOf are the vaults of tenant (in subscription sub, unless "").
func (s *Service) vaultsOf(tenant, sub string) []*keyvault.Vault {
	var out []*keyvault.Vault
	for _, v := range s.opts.Vaults.Vaults() {
		c := v.Config()
		if strings.EqualFold(c.TenantID, tenant) && (sub == "" || strings.EqualFold(c.SubscriptionID, sub)) {
			out = append(out, v)
		}
	}
	return out
}

// serveSubscription serves /subscriptions/{sub}/rest.
func (s *Service) serveSubscription(w http.ResponseWriter, r *http.Request, p keyvault.Principal, sub string, rest []string) {
	is := func(i int, word string) bool { return len(rest) > i && strings.EqualFold(rest[i], word) }
	switch {
	case len(rest) == 1 && is(0, "resources") && r.Method == http.MethodGet:
		// The Key Vault SDK lists vaults as generic resources of their type.
		filter := strings.ToLower(strings.ReplaceAll(r.URL.Query().Get("$filter"), " ", ""))
		var out []resourceJSON
		if filter == "" || strings.Contains(filter, "resourcetypeeq'microsoft.keyvault/vaults'") {
			for _, v := range s.vaultsOf(p.TenantID, sub) {
				out = append(out, vaultResource(v).resourceJSON)
			}
		}
		writeJSON(w, http.StatusOK, list(out))
	case len(rest) == 3 && is(0, "providers") && is(1, "Microsoft.KeyVault") && is(2, "vaults") && r.Method == http.MethodGet:
		var out []vaultJSON
		for _, v := range s.vaultsOf(p.TenantID, sub) {
			out = append(out, vaultResource(v))
		}
		writeJSON(w, http.StatusOK, list(out))
	case len(rest) == 6 && is(0, "resourceGroups") && is(2, "providers") && is(3, "Microsoft.KeyVault") && is(4, "vaults"):
		s.serveVault(w, r, p, sub, rest[1], rest[5])
	case len(rest) >= 9 && is(0, "resourceGroups") && is(2, "providers") && is(3, "Microsoft.KeyVault") && is(4, "vaults") &&
		is(6, "providers") && is(7, "Microsoft.Authorization"):
		v, ok := s.vault(w, p, sub, rest[1], rest[5])
		if !ok {
			return
		}
		scope := "/subscriptions/" + sub + "/" + strings.Join(rest[:6], "/")
		switch {
		case len(rest) == 9 && is(8, "roleDefinitions") && r.Method == http.MethodGet:
			s.listRoleDefinitions(w, r, sub)
		case len(rest) == 10 && is(8, "roleAssignments") && r.Method == http.MethodPut:
			s.assignRole(w, r, v, scope, rest[9])
		default:
			writeError(w, http.StatusNotImplemented, "NotImplemented", "%s %s is not emulated by the fake Resource Manager.", r.Method, r.URL.Path)
		}
	default:
		writeError(w, http.StatusNotFound, "NotFound", "No route for %s %s.", r.Method, r.URL.Path)
	}
}

// vault finds the vault of p's tenant at sub/group/name, or answers 404.
func (s *Service) vault(w http.ResponseWriter, p keyvault.Principal, sub, group, name string) (*keyvault.Vault, bool) {
	v, ok := s.opts.Vaults.Vault(name)
	if ok {
		c := v.Config()
		ok = strings.EqualFold(c.TenantID, p.TenantID) && strings.EqualFold(c.SubscriptionID, sub) && strings.EqualFold(c.ResourceGroup, group)
	}
	if !ok {
		writeError(w, http.StatusNotFound, "ResourceNotFound", "The Resource 'Microsoft.KeyVault/vaults/%s' under resource group '%s' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix", name, group)
	}
	return v, ok
}

// serveVault serves one Microsoft.KeyVault/vaults resource.
func (s *Service) serveVault(w http.ResponseWriter, r *http.Request, p keyvault.Principal, sub, group, name string) {
	v, ok := s.vault(w, p, sub, group, name)
	if !ok {
		return
	}
	switch r.Method {
	case http.MethodGet:
		writeJSON(w, http.StatusOK, vaultResource(v))
	case http.MethodPut, http.MethodPatch:
		var body vaultJSON
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&body); err != nil {
			writeError(w, http.StatusBadRequest, "InvalidRequestContent", "The request content was invalid and could not be deserialized: %v", err)
			return
		}
		replace := r.Method == http.MethodPut
		rules, err := networkRules(v.Config().Network, body.Properties, replace)
		if err != nil {
			writeError(w, http.StatusBadRequest, "BadRequest", "%v", err)
			return
		}
		// A PUT replaces the access policies; a PATCH only when it names
		// them. They are validated before anything is written.
		if aps := body.Properties.AccessPolicies; aps != nil || replace {
			if err := v.SetAccessPolicies(accessPolicies(aps)); err != nil {
				writeError(w, http.StatusBadRequest, "BadRequest", "%v", err)
				return
			}
		}
		if err := v.SetNetworkRules(rules); err != nil {
			writeError(w, http.StatusBadRequest, "BadRequest", "%v", err)
			return
		}
		writeJSON(w, http.StatusOK, vaultResource(v))
	default:
		writeError(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "The method %s is not allowed on a vault.", r.Method)
	}
}

// resourceJSON is a resource as ARM lists it.
type resourceJSON struct {
	ID       string            `json:"id"`
	Name     string            `json:"name"`
	Type     string            `json:"type"`
	Location string            `json:"location"`
	Tags     map[string]string `json:"tags"`
}

// vaultJSON is a Microsoft.KeyVault/vaults resource.
type vaultJSON struct {
	resourceJSON
	Properties vaultProperties `json:"properties"`
}

type vaultProperties struct {
	TenantID                string          `json:"tenantId,omitempty"`
	VaultURI                string          `json:"vaultUri,omitempty"`
	Sku                     *skuJSON        `json:"sku,omitempty"`
	AccessPolicies          *[]accessPolicy `json:"accessPolicies"`
	EnableRbacAuthorization *bool           `json:"enableRbacAuthorization,omitempty"`
	EnableSoftDelete        *bool           `json:"enableSoftDelete,omitempty"`
	EnablePurgeProtection   *bool           `json:"enablePurgeProtection,omitempty"`
	SoftDeleteRetentionDays int             `json:"softDeleteRetentionInDays,omitempty"`
	NetworkAcls             *networkAcls    `json:"networkAcls,omitempty"`
	PublicNetworkAccess     string          `json:"publicNetworkAccess,omitempty"`
	ProvisioningState       string          `json:"provisioningState,omitempty"`
}

// accessPolicy is an access policy entry of a vault.
type accessPolicy struct {
	TenantID    string `json:"tenantId"`
	ObjectID    string `json:"objectId"`
	Permissions struct {
		Keys         []string `json:"keys"`
		Secrets      []string `json:"secrets"`
		Certificates []string `json:"certificates"`
		Storage      []string `json:"storage,omitempty"`
	} `json:"permissions"`
}

type skuJSON struct {
	Family string `json:"family"`
	Name   string `json:"name"`
}

type networkAcls struct {
	Bypass              string   `json:"bypass,omitempty"`
	DefaultAction       string   `json:"defaultAction,omitempty"`
	IPRules             []ipRule `json:"ipRules"`
	VirtualNetworkRules []any    `json:"virtualNetworkRules"`
}

type ipRule struct {
	Value string `json:"value"`
}

// vaultResource renders v as ARM does.
func vaultResource(v *keyvault.Vault) vaultJSON {
	c := v.Config()
	id := fmt.Sprintf("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.KeyVault/vaults/%s", c.SubscriptionID, c.ResourceGroup, c.Name)
	rbac, softDelete, purge := !c.UseAccessPolicies, !c.SoftDeleteDisabled, c.PurgeProtection
	acls := &networkAcls{Bypass: "AzureServices", DefaultAction: "Allow", IPRules: []ipRule{}, VirtualNetworkRules: []any{}}
	if c.Network.DefaultDeny || len(c.Network.AllowedNetworks) > 0 {
		acls.DefaultAction = "Deny"
	}
	for _, p := range c.Network.AllowedNetworks {
		acls.IPRules = append(acls.IPRules, ipRule{Value: p.String()})
	}
	public := "Enabled"
	if c.Network.PublicNetworkAccessDisabled {
		public = "Disabled"
	}
	retention := c.SoftDeleteRetentionDays
	if retention == 0 {
		retention = 90
	}
	return vaultJSON{
		resourceJSON: resourceJSON{ID: id, Name: c.Name, Type: "Microsoft.KeyVault/vaults", Location: c.Location, Tags: map[string]string{}},
		Properties: vaultProperties{TenantID: c.TenantID, VaultURI: v.URL(), Sku: &skuJSON{Family: "A", Name: "standard"},
			AccessPolicies: armAccessPolicies(c), EnableRbacAuthorization: &rbac, EnableSoftDelete: &softDelete, EnablePurgeProtection: &purge,
			SoftDeleteRetentionDays: retention, NetworkAcls: acls, PublicNetworkAccess: public, ProvisioningState: "Succeeded"},
	}
}

// networkRules are the vault's network rules after a write of props: a PUT
// replaces them (no networkAcls means none), a PATCH changes what it names.
func networkRules(cur keyvault.NetworkRules, props vaultProperties, replace bool) (keyvault.NetworkRules, error) {
	next := cur
	if replace {
		next.DefaultDeny, next.AllowedNetworks = false, nil
	}
	if acls := props.NetworkAcls; acls != nil {
		switch strings.ToLower(acls.DefaultAction) {
		case "deny":
			next.DefaultDeny = true
		case "allow", "":
			next.DefaultDeny = false
		default:
			return cur, fmt.Errorf("networkAcls.defaultAction %q is not Allow or Deny", acls.DefaultAction)
		}
		next.AllowedNetworks = nil
		for _, rule := range acls.IPRules {
			p, err := parseRule(rule.Value)
			if err != nil {
				return cur, err
			}
			next.AllowedNetworks = append(next.AllowedNetworks, p)
		}
	}
	switch strings.ToLower(props.PublicNetworkAccess) {
	case "disabled":
		next.PublicNetworkAccessDisabled = true
	case "enabled":
		next.PublicNetworkAccessDisabled = false
	case "":
	default:
		return cur, fmt.Errorf("publicNetworkAccess %q is not Enabled or Disabled", props.PublicNetworkAccess)
	}
	return next, nil
}

// parseRule parses an IP rule: an address or a CIDR.
func parseRule(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	return netip.Prefix{}, fmt.Errorf("networkAcls.ipRules value %q is not an IP address or CIDR", s)
}

// roleFilter is the $filter the Azure CLI sends for a role by name.
var roleFilter = regexp.MustCompile(`^roleName eq '([^']+)'$`)

// roleDefinitionJSON is a built-in role definition.
type roleDefinitionJSON struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Type       string `json:"type"`
	Properties struct {
		RoleName         string   `json:"roleName"`
		Type             string   `json:"type"`
		AssignableScopes []string `json:"assignableScopes"`
	} `json:"properties"`
}

// listRoleDefinitions answers the built-in Key Vault role a roleName
// filter names (none when it names another role).
func (s *Service) listRoleDefinitions(w http.ResponseWriter, r *http.Request, sub string) {
	var out []roleDefinitionJSON
	if m := roleFilter.FindStringSubmatch(r.URL.Query().Get("$filter")); m != nil {
		if name, id, ok := keyvault.BuiltInRole(m[1]); ok {
			d := roleDefinitionJSON{ID: "/subscriptions/" + sub + "/providers/Microsoft.Authorization/roleDefinitions/" + id, Name: id,
				Type: "Microsoft.Authorization/roleDefinitions"}
			d.Properties.RoleName, d.Properties.Type, d.Properties.AssignableScopes = name, "BuiltInRole", []string{"/"}
			out = append(out, d)
		}
	}
	writeJSON(w, http.StatusOK, list(out))
}

// roleAssignmentJSON is a role assignment.
type roleAssignmentJSON struct {
	ID         string `json:"id,omitempty"`
	Name       string `json:"name,omitempty"`
	Type       string `json:"type,omitempty"`
	Properties struct {
		RoleDefinitionID string `json:"roleDefinitionId"`
		PrincipalID      string `json:"principalId"`
		PrincipalType    string `json:"principalType,omitempty"`
		Scope            string `json:"scope,omitempty"`
	} `json:"properties"`
}

// assignRole creates a role assignment on vault v: a built-in Key Vault
// role for a principal, which the data plane enforces from the next
// request.
func (s *Service) assignRole(w http.ResponseWriter, r *http.Request, v *keyvault.Vault, scope, name string) {
	var body roleAssignmentJSON
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		writeError(w, http.StatusBadRequest, "InvalidRequestContent", "The request content was invalid and could not be deserialized: %v", err)
		return
	}
	defID := body.Properties.RoleDefinitionID
	role, _, ok := keyvault.BuiltInRole(defID[strings.LastIndex(defID, "/")+1:])
	if !ok {
		writeError(w, http.StatusBadRequest, "RoleDefinitionDoesNotExist", "The specified role definition with ID '%s' does not exist (the fake knows the built-in Key Vault roles).", defID)
		return
	}
	if err := v.AssignRole(keyvault.RoleAssignment{PrincipalID: body.Properties.PrincipalID, Role: role}); err != nil {
		writeError(w, http.StatusBadRequest, "InvalidPrincipalId", "%v", err)
		return
	}
	body.ID, body.Name, body.Type = scope+"/providers/Microsoft.Authorization/roleAssignments/"+name, name, "Microsoft.Authorization/roleAssignments"
	body.Properties.Scope = scope
	writeJSON(w, http.StatusCreated, body)
}

// armAccessPolicies are c's access policies as ARM shows them.
func armAccessPolicies(c keyvault.VaultConfig) *[]accessPolicy {
	out := []accessPolicy{}
	for _, ap := range c.AccessPolicies {
		var a accessPolicy
		a.TenantID, a.ObjectID = c.TenantID, ap.ObjectID
		a.Permissions.Keys, a.Permissions.Secrets, a.Permissions.Certificates = nonNil(ap.Keys), nonNil(ap.Secrets), nonNil(ap.Certificates)
		out = append(out, a)
	}
	return &out
}

// accessPolicies are ARM's access policies (none when nil) as the vault
// keeps them.
func accessPolicies(in *[]accessPolicy) []keyvault.AccessPolicy {
	if in == nil {
		return nil
	}
	out := make([]keyvault.AccessPolicy, 0, len(*in))
	for _, a := range *in {
		out = append(out, keyvault.AccessPolicy{ObjectID: a.ObjectID, Secrets: a.Permissions.Secrets, Keys: a.Permissions.Keys,
			Certificates: a.Permissions.Certificates})
	}
	return out
}

func nonNil(v []string) []string {
	if v == nil {
		return []string{}
	}
	return v
}
