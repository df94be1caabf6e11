package provider

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"sigs.k8s.io/yaml"
)

// Mount attributes the provider reads: the SecretProviderClass parameters
// plus the pod attributes the caller adds, named as the upstream Azure
// provider names them.
const (
	paramKeyVaultName      = "keyvaultName"
	paramTenantID          = "tenantID"
	paramTenantIDLegacy    = "tenantId"
	paramClientID          = "clientID"
	paramCloudName         = "cloudName"
	paramObjects           = "objects"
	paramUsePodIdentity    = "usePodIdentity"
	paramUseVMIdentity     = "useVMManagedIdentity"
	paramUserAssignedID    = "userAssignedIdentityID"
	paramCloudEnvFileName  = "cloudEnvFileName"
	attrPodName            = "csi.storage.k8s.io/pod.name"
	attrPodNamespace       = "csi.storage.k8s.io/pod.namespace"
	attrPodUID             = "csi.storage.k8s.io/pod.uid"
	attrServiceAccountName = "csi.storage.k8s.io/serviceAccount.name"
	attrServiceAccountToks = "csi.storage.k8s.io/serviceAccount.tokens"
)

// TokenAudience is the audience of the ServiceAccount token the provider
// exchanges for a vault token (workload identity federation).
const TokenAudience = "api://AzureADTokenExchange"

// Object types, formats and encodings of the objects parameter.
const (
	typeSecret = "secret"
	typeKey    = "key"
	typeCert   = "cert"

	formatPEM = "pem"
	formatPFX = "pfx"

	encodingUTF8   = "utf-8"
	encodingBase64 = "base64"
	encodingHex    = "hex"
)

// maxVersionHistory bounds objectVersionHistory.
const maxVersionHistory = 100

var (
	vaultNamePattern  = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9-]{1,22}[A-Za-z0-9]$`)
	objectNamePattern = regexp.MustCompile(`^[0-9A-Za-z-]{1,127}$`)
	guidPattern       = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	aliasPattern      = regexp.MustCompile(`^[-._A-Za-z0-9]+$`)
)

// errInvalidParameters marks a MountRequest whose parameters are wrong: the
// SecretProviderClass must be fixed. It is answered InvalidArgument.
var errInvalidParameters = errors.New("invalid SecretProviderClass parameters")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errInvalidParameters, fmt.Sprintf(format, args...))
}

// mountParams are the validated attributes of one MountRequest.
type mountParams struct {
	vault    string
	tenantID string
	clientID string
	cloud    cloudSettings
	objects  []object

	podNamespace   string
	serviceAccount string
	// token is the ServiceAccount token for TokenAudience; never logged.
	token string
	// mode is the default file mode.
	mode int32
}

// object is one entry of the objects parameter.
type object struct {
	Name           string `json:"objectName"`
	Alias          string `json:"objectAlias"`
	Type           string `json:"objectType"`
	Version        string `json:"objectVersion"`
	VersionHistory int32  `json:"objectVersionHistory"`
	Format         string `json:"objectFormat"`
	Encoding       string `json:"objectEncoding"`
	FilePermission string `json:"filePermission"`

	// mode is the file mode: FilePermission, or the request's permission.
	mode int32
}

// path is the file path of the object: its alias, or its name.
func (o object) path() string {
	if o.Alias != "" {
		return o.Alias
	}
	return o.Name
}

// describe names the object in messages, e.g. secret "db-password".
func (o object) describe() string {
	return fmt.Sprintf("%s %q", o.Type, o.Name)
}

// cloudSettings are what a cloudName selects.
type cloudSettings struct {
	name        string
	config      cloud.Configuration
	vaultSuffix string
}

var clouds = map[string]cloudSettings{
	"azurepubliccloud":       {name: "AzurePublicCloud", config: cloud.AzurePublic, vaultSuffix: "vault.azure.net"},
	"azurechinacloud":        {name: "AzureChinaCloud", config: cloud.AzureChina, vaultSuffix: "vault.azure.cn"},
	"azureusgovernmentcloud": {name: "AzureUSGovernmentCloud", config: cloud.AzureGovernment, vaultSuffix: "vault.usgovcloudapi.net"},
}

// parseMountRequest validates the attributes and permission of a
// MountRequest. Every error wraps errInvalidParameters and names the
// parameter and the fix.
func parseMountRequest(attributesJSON, permissionJSON string) (*mountParams, error) {
	var attrs map[string]string
	if err := json.Unmarshal([]byte(attributesJSON), &attrs); err != nil {
		return nil, invalid("the mount attributes are not a JSON object of strings: %v", err)
	}
	mode := int32(0o644)
	if permissionJSON != "" {
		var perm os.FileMode
		if err := json.Unmarshal([]byte(permissionJSON), &perm); err != nil {
			return nil, invalid("the mount permission %q is not a file mode: %v", permissionJSON, err)
		}
		mode = int32(perm.Perm())
	}
	p, err := parseParameters(attrs, mode)
	if err != nil {
		return nil, err
	}
	token, err := serviceAccountToken(attrs[attrServiceAccountToks])
	if err != nil {
		return nil, err
	}
	p.token = token
	return p, nil
}

// Parameters are a SecretProviderClass's parameters as the provider reads
// them.
type Parameters struct {
	// Vault is the key vault's name; VaultHost its host name in the cloud.
	Vault     string `json:"vault"`
	VaultHost string `json:"vaultHost"`
	TenantID  string `json:"tenantID"`
	ClientID  string `json:"clientID"`
	Cloud     string `json:"cloud"`
	// Objects are the objects read, by the file name (alias or name) the
	// provider returns them under.
	Objects []ObjectRef `json:"objects"`
}

// ObjectRef is one object of the objects parameter.
type ObjectRef struct {
	Name    string `json:"name"`
	Alias   string `json:"alias,omitempty"`
	Type    string `json:"type"`
	Version string `json:"version,omitempty"`
	// VersionHistory is objectVersionHistory: above 1, the object's newest
	// versions are read, after a list of its versions.
	VersionHistory int32 `json:"versionHistory,omitempty"`
}

// Requests is the number of vault requests one read of the object costs:
// one, or with a version history a list of its versions and a read of
// each version kept.
func (o ObjectRef) Requests() int {
	if o.VersionHistory > 1 {
		return 1 + int(o.VersionHistory)
	}
	return 1
}

// ParseParameters checks a SecretProviderClass's spec.parameters offline, as
// Mount checks them: every error names the parameter and the fix. The pod
// attributes and the token a Mount also needs are not checked.
func ParseParameters(params map[string]string) (Parameters, error) {
	p, err := parseParameters(params, 0o644)
	if err != nil {
		return Parameters{}, err
	}
	out := Parameters{Vault: p.vault, VaultHost: p.vault + "." + p.cloud.vaultSuffix, TenantID: p.tenantID, ClientID: p.clientID, Cloud: p.cloud.name}
	for _, o := range p.objects {
		out.Objects = append(out.Objects, ObjectRef{Name: o.Name, Alias: o.Alias, Type: o.Type, Version: o.Version, VersionHistory: o.VersionHistory})
	}
	return out, nil
}

// parseParameters validates the SecretProviderClass parameters and pod
// attributes of attrs; mode is the default file mode.
func parseParameters(attrs map[string]string, mode int32) (*mountParams, error) {
	p := &mountParams{
		vault:          strings.TrimSpace(attrs[paramKeyVaultName]),
		tenantID:       strings.TrimSpace(attrs[paramTenantID]),
		clientID:       strings.TrimSpace(attrs[paramClientID]),
		podNamespace:   attrs[attrPodNamespace],
		serviceAccount: attrs[attrServiceAccountName],
		mode:           mode,
	}
	if p.tenantID == "" {
		p.tenantID = strings.TrimSpace(attrs[paramTenantIDLegacy])
	}

	for _, name := range []string{paramUsePodIdentity, paramUseVMIdentity} {
		if v, _ := strconv.ParseBool(attrs[name]); v {
			return nil, invalid("%s=true is not supported: kvsync's Azure provider authenticates with workload identity only; remove %s and set clientID to the client ID of the identity federated with the ServiceAccount", name, name)
		}
	}
	if attrs[paramUserAssignedID] != "" && p.clientID == "" {
		return nil, invalid("userAssignedIdentityID is not supported: set clientID to the client ID of the identity federated with the ServiceAccount (workload identity)")
	}

	switch {
	case p.vault == "":
		return nil, invalid("keyvaultName is not set: set it to the name of the key vault (the <name> of https://<name>.vault.azure.net)")
	case !vaultNamePattern.MatchString(p.vault) || strings.Contains(p.vault, "--"):
		return nil, invalid("keyvaultName %q is not a valid key vault name: 3-24 letters, digits and single hyphens, starting with a letter and ending with a letter or digit", p.vault)
	case p.tenantID == "":
		return nil, invalid("tenantID is not set: set it to the directory (tenant) ID of the key vault")
	case !guidPattern.MatchString(p.tenantID):
		return nil, invalid("tenantID %q is not a GUID: set it to the directory (tenant) ID of the key vault", p.tenantID)
	case p.clientID == "":
		return nil, invalid("clientID is not set: set it to the client ID of the managed identity or application federated with ServiceAccount %q (workload identity)", p.serviceAccount)
	case !guidPattern.MatchString(p.clientID):
		return nil, invalid("clientID %q is not a GUID: set it to the client ID of the identity federated with the ServiceAccount", p.clientID)
	}

	cloudName := strings.TrimSpace(attrs[paramCloudName])
	if cloudName == "" {
		cloudName = "AzurePublicCloud"
	}
	c, ok := clouds[strings.ToLower(cloudName)]
	if !ok {
		if strings.EqualFold(cloudName, "AzureStackCloud") || attrs[paramCloudEnvFileName] != "" {
			return nil, invalid("cloudName %q is not supported: Azure Stack clouds (cloudEnvFileName) are not supported; use AzurePublicCloud, AzureChinaCloud or AzureUSGovernmentCloud", cloudName)
		}
		return nil, invalid("cloudName %q is not known: use AzurePublicCloud (the default), AzureChinaCloud or AzureUSGovernmentCloud", cloudName)
	}
	p.cloud = c

	objects, err := parseObjects(attrs[paramObjects], p.mode)
	if err != nil {
		return nil, err
	}
	p.objects = objects
	return p, nil
}

// serviceAccountToken returns the token for TokenAudience from the
// csi.storage.k8s.io/serviceAccount.tokens attribute.
func serviceAccountToken(tokensJSON string) (string, error) {
	if tokensJSON == "" {
		return "", invalid("no ServiceAccount token was passed (attribute %s): the caller must request a token for audience %s", attrServiceAccountToks, TokenAudience)
	}
	var tokens map[string]struct {
		Token               string    `json:"token"`
		ExpirationTimestamp time.Time `json:"expirationTimestamp"`
	}
	if err := json.Unmarshal([]byte(tokensJSON), &tokens); err != nil {
		return "", invalid("attribute %s is not a JSON map of audience to token: %v", attrServiceAccountToks, err)
	}
	t, ok := tokens[TokenAudience]
	if !ok || t.Token == "" {
		auds := make([]string, 0, len(tokens))
		for a := range tokens {
			auds = append(auds, a)
		}
		return "", invalid("no ServiceAccount token for audience %s was passed (got audiences %v): the caller's token audience must be %s", TokenAudience, auds, TokenAudience)
	}
	return t.Token, nil
}

// parseObjects parses the objects parameter: YAML with an "array" of YAML
// strings, each describing one object.
func parseObjects(objectsYAML string, mode int32) ([]object, error) {
	if strings.TrimSpace(objectsYAML) == "" {
		return nil, invalid("objects is not set: list the key vault objects to read, e.g. objects: |\\n  array:\\n    - |\\n      objectName: db-password\\n      objectType: secret")
	}
	var list struct {
		Array []string `json:"array"`
	}
	if err := yaml.Unmarshal([]byte(objectsYAML), &list); err != nil {
		return nil, invalid("objects is not valid YAML with an array of strings: %v", err)
	}
	if len(list.Array) == 0 {
		return nil, invalid("objects has no entries under array: list at least one object")
	}
	objects := make([]object, 0, len(list.Array))
	paths := map[string]int{}
	for i, entry := range list.Array {
		var o object
		if err := yaml.Unmarshal([]byte(entry), &o); err != nil {
			return nil, invalid("objects entry %d is not valid YAML: %v", i, err)
		}
		if err := o.validate(i, mode); err != nil {
			return nil, err
		}
		if j, dup := paths[o.path()]; dup {
			return nil, invalid("objects entries %d and %d both write file %q: set objectAlias on one of them", j, i, o.path())
		}
		paths[o.path()] = i
		objects = append(objects, o)
	}
	return objects, nil
}

// validate checks and defaults one object; i is its index for messages.
func (o *object) validate(i int, mode int32) error {
	o.Name = strings.TrimSpace(o.Name)
	o.Type = strings.ToLower(strings.TrimSpace(o.Type))
	o.Format = strings.ToLower(strings.TrimSpace(o.Format))
	o.Encoding = strings.ToLower(strings.TrimSpace(o.Encoding))
	o.Version = strings.TrimSpace(o.Version)
	if strings.EqualFold(o.Version, "latest") {
		o.Version = ""
	}
	switch {
	case o.Name == "":
		return invalid("objects entry %d has no objectName", i)
	case !objectNamePattern.MatchString(o.Name):
		return invalid("objects entry %d: objectName %q is not a valid key vault object name (1-127 letters, digits and hyphens)", i, o.Name)
	case o.Alias != "" && (!aliasPattern.MatchString(o.Alias) || o.Alias == "." || o.Alias == ".."):
		return invalid("objects entry %d: objectAlias %q must be a file name of letters, digits, '-', '_' and '.'", i, o.Alias)
	}
	switch o.Type {
	case typeSecret, typeKey, typeCert:
	case "":
		return invalid("objects entry %d (%q) has no objectType: use secret, key or cert", i, o.Name)
	default:
		return invalid("objects entry %d (%q): objectType %q is not supported: use secret, key or cert", i, o.Name, o.Type)
	}
	switch o.Format {
	case "":
		o.Format = formatPEM
	case formatPEM:
	case formatPFX:
		if o.Type != typeSecret {
			return invalid("objects entry %d (%q): objectFormat pfx is only supported with objectType secret (a certificate's PKCS#12 secret)", i, o.Name)
		}
	default:
		return invalid("objects entry %d (%q): objectFormat %q is not supported: use pem or pfx", i, o.Name, o.Format)
	}
	switch o.Encoding {
	case "":
		o.Encoding = encodingUTF8
	case encodingUTF8, encodingBase64, encodingHex:
		if o.Type != typeSecret && o.Encoding != encodingUTF8 {
			return invalid("objects entry %d (%q): objectEncoding is only supported with objectType secret", i, o.Name)
		}
	default:
		return invalid("objects entry %d (%q): objectEncoding %q is not supported: use utf-8, base64 or hex", i, o.Name, o.Encoding)
	}
	switch {
	case o.VersionHistory < 0 || o.VersionHistory > maxVersionHistory:
		return invalid("objects entry %d (%q): objectVersionHistory %d must be between 0 and %d", i, o.Name, o.VersionHistory, maxVersionHistory)
	case o.VersionHistory > 1 && o.Version != "":
		return invalid("objects entry %d (%q): objectVersion %q cannot be combined with objectVersionHistory %d, which reads the newest versions: remove one of them", i, o.Name, o.Version, o.VersionHistory)
	}
	o.mode = mode
	if o.FilePermission != "" {
		perm, err := strconv.ParseUint(o.FilePermission, 8, 32)
		if err != nil || perm > 0o777 {
			return invalid("objects entry %d (%q): filePermission %q is not an octal file mode such as 0644", i, o.Name, o.FilePermission)
		}
		o.mode = int32(perm)
	}
	return nil
}
