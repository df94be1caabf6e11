package keyvault

import (
	"net/netip"
	"strings"
)

// kind is a kind of vault object.
type kind int

const (
	kindSecret kind = iota + 1
	kindKey
	kindCertificate
)

func (k kind) singular() string {
	switch k {
	case kindKey:
		return "key"
	case kindCertificate:
		return "certificate"
	default:
		return "secret"
	}
}

func (k kind) title() string {
	switch k {
	case kindKey:
		return "Key"
	case kindCertificate:
		return "Certificate"
	default:
		return "Secret"
	}
}

func (k kind) plural() string { return k.singular() + "s" }

func (k kind) notFoundCode() string { return k.title() + "NotFound" }

// permissions lists the access policy permissions of each kind.
var permissions = map[kind][]string{
	kindSecret: {"get", "list", "set", "delete", "backup", "restore", "recover", "purge"},
	kindKey: {"get", "list", "update", "create", "import", "delete", "recover", "backup", "restore",
		"decrypt", "encrypt", "unwrapkey", "wrapkey", "verify", "sign", "purge", "release", "rotate",
		"getrotationpolicy", "setrotationpolicy"},
	kindCertificate: {"get", "list", "update", "create", "import", "delete", "recover", "backup", "restore",
		"managecontacts", "manageissuers", "getissuers", "listissuers", "setissuers", "deleteissuers", "purge"},
}

func (k kind) knownPermission(p string) bool {
	if strings.EqualFold(p, "all") {
		return true
	}
	for _, q := range permissions[k] {
		if strings.EqualFold(p, q) {
			return true
		}
	}
	return false
}

// Built-in Key Vault data plane roles, by name.
const (
	RoleAdministrator               = "Key Vault Administrator"
	RoleCertificateUser             = "Key Vault Certificate User"
	RoleCertificatesOfficer         = "Key Vault Certificates Officer"
	RoleCryptoOfficer               = "Key Vault Crypto Officer"
	RoleCryptoServiceEncryptionUser = "Key Vault Crypto Service Encryption User"
	RoleCryptoUser                  = "Key Vault Crypto User"
	RoleReader                      = "Key Vault Reader"
	RoleSecretsOfficer              = "Key Vault Secrets Officer"
	RoleSecretsUser                 = "Key Vault Secrets User"
)

// builtInRole is a built-in Azure role's data actions.
type builtInRole struct {
	name        string
	id          string
	dataActions []string
}

// builtInRoles are the Key Vault data plane roles, with the data actions of
// the "Azure built-in roles for Security" reference
// (MicrosoftDocs/azure-docs, articles/role-based-access-control/built-in-roles).
var builtInRoles = []builtInRole{
	{RoleAdministrator, "00482a5a-887f-4fb3-b363-3b7fe8e74483", []string{
		"Microsoft.KeyVault/vaults/*"}},
	{RoleCertificateUser, "db79e9a7-68ee-4b58-9aeb-b90e7c24fcba", []string{
		"Microsoft.KeyVault/vaults/certificates/read",
		"Microsoft.KeyVault/vaults/secrets/getSecret/action",
		"Microsoft.KeyVault/vaults/secrets/readMetadata/action",
		"Microsoft.KeyVault/vaults/keys/read"}},
	{RoleCertificatesOfficer, "a4417e6f-fecd-4de8-b567-7b0420556985", []string{
		"Microsoft.KeyVault/vaults/certificatecas/*",
		"Microsoft.KeyVault/vaults/certificates/*",
		"Microsoft.KeyVault/vaults/certificatecontacts/write"}},
	{RoleCryptoOfficer, "14b46e9e-c2b7-41b4-b07b-48a6ebf60603", []string{
		"Microsoft.KeyVault/vaults/keys/*",
		"Microsoft.KeyVault/vaults/keyrotationpolicies/*"}},
	{RoleCryptoServiceEncryptionUser, "e147488a-f6f5-4113-8e2d-b22465e65bf6", []string{
		"Microsoft.KeyVault/vaults/keys/read",
		"Microsoft.KeyVault/vaults/keys/wrap/action",
		"Microsoft.KeyVault/vaults/keys/unwrap/action"}},
	{RoleCryptoUser, "12338af0-0e69-4776-bea7-57ae8d297424", []string{
		"Microsoft.KeyVault/vaults/keys/read",
		"Microsoft.KeyVault/vaults/keys/update/action",
		"Microsoft.KeyVault/vaults/keys/backup/action",
		"Microsoft.KeyVault/vaults/keys/encrypt/action",
		"Microsoft.KeyVault/vaults/keys/decrypt/action",
		"Microsoft.KeyVault/vaults/keys/wrap/action",
		"Microsoft.KeyVault/vaults/keys/unwrap/action",
		"Microsoft.KeyVault/vaults/keys/sign/action",
		"Microsoft.KeyVault/vaults/keys/verify/action"}},
	{RoleReader, "21090545-7ca7-4776-b22c-e363652d74d2", []string{
		"Microsoft.KeyVault/vaults/*/read",
		"Microsoft.KeyVault/vaults/secrets/readMetadata/action"}},
	{RoleSecretsOfficer, "b86a8fe4-44ce-4948-aee5-eccb2c155cd7", []string{
		"Microsoft.KeyVault/vaults/secrets/*"}},
	{RoleSecretsUser, "4633458b-17de-408a-b874-0445c86b69e6", []string{
		"Microsoft.KeyVault/vaults/secrets/getSecret/action",
		"Microsoft.KeyVault/vaults/secrets/readMetadata/action"}},
}

// BuiltInRole returns the name and role definition GUID of the built-in Key
// Vault role named, or identified, by nameOrID.
func BuiltInRole(nameOrID string) (name, id string, ok bool) {
	r, ok := lookupRole(nameOrID)
	return r.name, r.id, ok
}

func lookupRole(nameOrID string) (builtInRole, bool) {
	for _, r := range builtInRoles {
		if strings.EqualFold(r.name, nameOrID) || strings.EqualFold(r.id, nameOrID) {
			return r, true
		}
	}
	return builtInRole{}, false
}

// wildcardMatch matches an RBAC action pattern, where * stands for any run
// of characters, case-insensitively.
func wildcardMatch(pattern, action string) bool {
	pattern, action = strings.ToLower(pattern), strings.ToLower(action)
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == action
	}
	if !strings.HasPrefix(action, parts[0]) {
		return false
	}
	action = action[len(parts[0]):]
	for i := 1; i < len(parts)-1; i++ {
		idx := strings.Index(action, parts[i])
		if idx < 0 {
			return false
		}
		action = action[idx+len(parts[i]):]
	}
	return strings.HasSuffix(action, parts[len(parts)-1])
}

// operation is one data plane operation the fake answers.
type operation struct {
	// name is the operation the journal records, e.g. GetSecret.
	name string
	// kind is the kind of object the operation touches.
	kind kind
	// dataAction is the RBAC data action the operation needs.
	dataAction string
	// permission is the access policy permission the operation needs.
	permission string
	// collection marks operations on the whole collection (lists), whose
	// RBAC resource is the vault itself.
	collection bool
}

const (
	actSecretGet      = "Microsoft.KeyVault/vaults/secrets/getSecret/action"
	actSecretSet      = "Microsoft.KeyVault/vaults/secrets/setSecret/action"
	actSecretUpdate   = "Microsoft.KeyVault/vaults/secrets/update/action"
	actSecretDelete   = "Microsoft.KeyVault/vaults/secrets/delete"
	actSecretMetadata = "Microsoft.KeyVault/vaults/secrets/readMetadata/action"
	actSecretRecover  = "Microsoft.KeyVault/vaults/secrets/recover/action"
	actSecretPurge    = "Microsoft.KeyVault/vaults/secrets/purge/action"
	actSecretBackup   = "Microsoft.KeyVault/vaults/secrets/backup/action"
	actSecretRestore  = "Microsoft.KeyVault/vaults/secrets/restore/action"
	actKeyRead        = "Microsoft.KeyVault/vaults/keys/read"
	actCertRead       = "Microsoft.KeyVault/vaults/certificates/read"
)

var (
	opGetSecret            = operation{"GetSecret", kindSecret, actSecretGet, "get", false}
	opSetSecret            = operation{"SetSecret", kindSecret, actSecretSet, "set", false}
	opUpdateSecret         = operation{"UpdateSecret", kindSecret, actSecretUpdate, "set", false}
	opDeleteSecret         = operation{"DeleteSecret", kindSecret, actSecretDelete, "delete", false}
	opListSecrets          = operation{"ListSecrets", kindSecret, actSecretMetadata, "list", true}
	opListSecretVersions   = operation{"ListSecretVersions", kindSecret, actSecretMetadata, "list", false}
	opListDeletedSecrets   = operation{"ListDeletedSecrets", kindSecret, actSecretMetadata, "list", true}
	opGetDeletedSecret     = operation{"GetDeletedSecret", kindSecret, actSecretMetadata, "get", false}
	opRecoverDeletedSecret = operation{"RecoverDeletedSecret", kindSecret, actSecretRecover, "recover", false}
	opPurgeDeletedSecret   = operation{"PurgeDeletedSecret", kindSecret, actSecretPurge, "purge", false}
	opBackupSecret         = operation{"BackupSecret", kindSecret, actSecretBackup, "backup", false}
	opRestoreSecret        = operation{"RestoreSecret", kindSecret, actSecretRestore, "restore", true}

	opGetKey          = operation{"GetKey", kindKey, actKeyRead, "get", false}
	opListKeys        = operation{"ListKeys", kindKey, actKeyRead, "list", true}
	opListKeyVersions = operation{"ListKeyVersions", kindKey, actKeyRead, "list", false}

	opGetCertificate          = operation{"GetCertificate", kindCertificate, actCertRead, "get", false}
	opGetCertificatePolicy    = operation{"GetCertificatePolicy", kindCertificate, actCertRead, "get", false}
	opListCertificates        = operation{"ListCertificates", kindCertificate, actCertRead, "list", true}
	opListCertificateVersions = operation{"ListCertificateVersions", kindCertificate, actCertRead, "list", false}
)

// caller renders a principal as the service names callers in messages:
// appid=<client id>;oid=<object id>;iss=<issuer>.
func caller(p Principal) string {
	return "appid=" + p.AppID + ";oid=" + p.ObjectID + ";iss=" + p.Issuer
}

// vaultRef renders "name;location=region" as messages name a vault.
func (c *VaultConfig) vaultRef() string {
	return c.Name + ";location=" + c.Location
}

// resourceID is the ARM ID of the vault or of an object in it.
func (c *VaultConfig) resourceID(k kind, name string) string {
	id := "/subscriptions/" + c.SubscriptionID + "/resourcegroups/" + c.ResourceGroup +
		"/providers/microsoft.keyvault/vaults/" + c.Name
	if name != "" {
		id += "/" + k.plural() + "/" + name
	}
	return id
}

// checkNetwork applies the network rules to the client address and returns
// the refusal, or nil when the request may proceed.
func (c *VaultConfig) checkNetwork(addr netip.Addr, p Principal) *Error {
	n := &c.Network
	if containsAddr(n.PrivateEndpointNetworks, addr) {
		return nil
	}
	if n.PublicNetworkAccessDisabled {
		return errForbiddenByConnection(caller(p), c.vaultRef())
	}
	if (n.DefaultDeny || len(n.AllowedNetworks) > 0) && !containsAddr(n.AllowedNetworks, addr) {
		client := "unknown"
		if addr.IsValid() {
			client = addr.String()
		}
		return errForbiddenByFirewall(client, caller(p), c.vaultRef())
	}
	return nil
}

func containsAddr(prefixes []netip.Prefix, addr netip.Addr) bool {
	if !addr.IsValid() {
		return false
	}
	for _, p := range prefixes {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// authorize applies the vault's access model to op on the object name
// (empty for collection operations) and returns the refusal, or nil.
func (c *VaultConfig) authorize(p Principal, op operation, name string) *Error {
	if !c.UseAccessPolicies {
		for _, ra := range c.RoleAssignments {
			if !strings.EqualFold(ra.PrincipalID, p.ObjectID) {
				continue
			}
			if ra.Scope != "" {
				k, scoped, _ := parseScope(ra.Scope)
				if op.collection || k != op.kind || !strings.EqualFold(scoped, name) {
					continue
				}
			}
			role, _ := lookupRole(ra.Role)
			for _, pattern := range role.dataActions {
				if wildcardMatch(pattern, op.dataAction) {
					return nil
				}
			}
		}
		resourceName := name
		if op.collection {
			resourceName = ""
		}
		return errForbiddenByRbac(caller(p), op.dataAction, c.resourceID(op.kind, resourceName), c.vaultRef())
	}
	for _, ap := range c.AccessPolicies {
		if !strings.EqualFold(ap.ObjectID, p.ObjectID) {
			continue
		}
		var granted []string
		switch op.kind {
		case kindSecret:
			granted = ap.Secrets
		case kindKey:
			granted = ap.Keys
		case kindCertificate:
			granted = ap.Certificates
		}
		for _, g := range granted {
			if strings.EqualFold(g, op.permission) || strings.EqualFold(g, "all") {
				return nil
			}
		}
	}
	return errAccessDenied(caller(p), op.kind.plural(), op.permission, c.vaultRef())
}

// RoleReads reports whether the built-in role (by name or ID) lets its
// holder read an object of objectType as a provider does (secret:
// GetSecret, cert: GetCertificate, key: GetKey); known is false for a role
// the service does not have.
func RoleReads(role, objectType string) (reads, known bool) {
	r, ok := lookupRole(role)
	if !ok {
		return false, false
	}
	op := opGetSecret
	switch objectType {
	case "cert":
		op = opGetCertificate
	case "key":
		op = opGetKey
	}
	for _, pattern := range r.dataActions {
		if wildcardMatch(pattern, op.dataAction) {
			return true, true
		}
	}
	return false, true
}
