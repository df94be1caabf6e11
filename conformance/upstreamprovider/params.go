package upstreamprovider

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"

	"go.yaml.in/yaml/v3"
)

// Mount attributes upstream reads: the SecretProviderClass parameters and
// the pod attributes the driver adds.
const (
	attrPodName            = "csi.storage.k8s.io/pod.name"
	attrPodNamespace       = "csi.storage.k8s.io/pod.namespace"
	attrServiceAccountToks = "csi.storage.k8s.io/serviceAccount.tokens"

	paramKeyVaultName     = "keyvaultName"
	paramCloudName        = "cloudName"
	paramTenantID         = "tenantID"
	paramTenantIDLegacy   = "tenantId"
	paramClientID         = "clientID"
	paramCloudEnvFileName = "cloudEnvFileName"
	paramObjects          = "objects"
	paramUsePodIdentity   = "usePodIdentity"
	paramUseVMIdentity    = "useVMManagedIdentity"
	paramUseTokenProxy    = "useAzureTokenProxy"
)

// Object types, formats, encodings and content types as upstream spells
// them. Types are compared case-sensitively, formats and encodings not
// (except where upstream does; see validate).
const (
	typeSecret = "secret"
	typeKey    = "key"
	typeCert   = "cert"

	formatPEM = "pem"
	formatPFX = "pfx"

	encodingHex    = "hex"
	encodingBase64 = "base64"
	encodingUTF8   = "utf-8"

	contentTypePEM    = "application/x-pem-file"
	contentTypePKCS12 = "application/x-pkcs12"
)

// mountParams are the checked attributes of one Mount.
type mountParams struct {
	vaultName string
	tenantID  string
	cloud     environment
	auth      authConfig
	objects   []object
}

// parseMount reads and checks the attributes and node-publish secrets in
// upstream's order, returning upstream's messages.
func parseMount(attrs, secrets map[string]string) (*mountParams, error) {
	if param(attrs, attrPodName) == "" {
		return nil, errors.New("pod name is not provided")
	}
	if param(attrs, attrPodNamespace) == "" {
		return nil, errors.New("pod namespace is not provided")
	}
	mode, err := identityModeOf(attrs)
	if err != nil {
		return nil, err
	}

	p := &mountParams{vaultName: param(attrs, paramKeyVaultName), tenantID: param(attrs, paramTenantID)}
	if p.vaultName == "" {
		return nil, errors.New("keyvaultName is not provided")
	}
	if p.tenantID == "" {
		p.tenantID = param(attrs, paramTenantIDLegacy)
	}
	if p.tenantID == "" {
		return nil, errors.New("tenantId is not provided")
	}
	// Upstream exports cloudEnvFileName as AZURE_ENVIRONMENT_FILEPATH for
	// Azure Stack; the double serves no Azure Stack cloud and leaves the
	// process environment alone, but fails as os.Setenv would.
	if envFile := param(attrs, paramCloudEnvFileName); strings.ContainsRune(envFile, 0) {
		return nil, fmt.Errorf("failed to set AZURE_ENVIRONMENT_FILEPATH env to %s, error %w", envFile, os.NewSyscallError("setenv", syscall.EINVAL))
	}
	cloudName := param(attrs, paramCloudName)
	if p.cloud, err = cloudEnvironment(cloudName); err != nil {
		return nil, fmt.Errorf("cloudName %s is not valid, error: %w", cloudName, err)
	}
	if p.auth, err = buildAuthConfig(mode, param(attrs, paramClientID), param(attrs, attrServiceAccountToks), secrets); err != nil {
		return nil, fmt.Errorf("failed to build auth config for mode %s: %w", mode, err)
	}

	objectsYAML := param(attrs, paramObjects)
	if objectsYAML == "" {
		return nil, errors.New("objects is not set")
	}
	if p.objects, err = parseObjects(objectsYAML); err != nil {
		return nil, err
	}
	return p, nil
}

// param returns an attribute with surrounding white space removed, as
// upstream reads every attribute.
func param(attrs map[string]string, name string) string {
	return strings.TrimSpace(attrs[name])
}

// vaultNamePattern is upstream's (looser than Key Vault's own rules: a
// leading digit or a double hyphen pass, and fail at DNS).
var vaultNamePattern = regexp.MustCompile(`^[-A-Za-z0-9]+$`)

// vaultURL checks the vault name as upstream does and returns the vault's
// URL in the cloud.
func (p *mountParams) vaultURL() (string, error) {
	if len(p.vaultName) < 3 || len(p.vaultName) > 24 {
		return "", fmt.Errorf("Invalid vault name: %q, must be between 3 and 24 chars", p.vaultName)
	}
	if !vaultNamePattern.MatchString(p.vaultName) {
		return "", fmt.Errorf("Invalid vault name: %q, must match [-a-zA-Z0-9]{3,24}", p.vaultName)
	}
	return "https://" + p.vaultName + "." + p.cloud.keyVaultDNSSuffix + "/", nil
}

// environment is what the double needs of an Azure cloud.
type environment struct {
	keyVaultDNSSuffix       string
	activeDirectoryEndpoint string
}

// publicCloud is the Azure public cloud, upstream's default.
var publicCloud = environment{keyVaultDNSSuffix: "vault.azure.net", activeDirectoryEndpoint: "https://login.microsoftonline.com/"}

// cloudEnvironment resolves a cloudName as upstream's cloud table does
// (case-insensitively, empty meaning the public cloud). Names upstream
// knows for other clouds are refused as the double's limit; names it does
// not know get upstream's message.
func cloudEnvironment(name string) (environment, error) {
	if name == "" {
		return publicCloud, nil
	}
	switch upper := strings.ToUpper(name); upper {
	case "AZUREPUBLICCLOUD", "AZURECLOUD":
		return publicCloud, nil
	case "AZURECHINACLOUD", "AZUREGERMANCLOUD", "AZUREUSGOVERNMENT", "AZUREUSGOVERNMENTCLOUD", "AZURESTACKCLOUD":
		return environment{}, fmt.Errorf("cloud %s is not supported by this upstream provider double, which serves AzurePublicCloud only (upstream %s accepts it)", name, UpstreamVersion)
	default:
		return environment{}, fmt.Errorf("autorest/azure: There is no cloud environment matching the name %q", upper)
	}
}

// object is one entry of the objects parameter, with upstream's field
// names.
type object struct {
	Name           string `yaml:"objectName"`
	Alias          string `yaml:"objectAlias"`
	Version        string `yaml:"objectVersion"`
	VersionHistory int32  `yaml:"objectVersionHistory"`
	Type           string `yaml:"objectType"`
	Format         string `yaml:"objectFormat"`
	Encoding       string `yaml:"objectEncoding"`
	FilePermission string `yaml:"filePermission"`
}

// parseObjects parses the objects parameter, YAML with an array of YAML
// strings, and checks every entry before any is read.
func parseObjects(objectsYAML string) ([]object, error) {
	var list struct {
		Array []string `yaml:"array"`
	}
	if err := yaml.Unmarshal([]byte(objectsYAML), &list); err != nil {
		return nil, fmt.Errorf("failed to yaml unmarshal objects, error: %w", err)
	}
	objects := []object{}
	for i, entry := range list.Array {
		var o object
		if err := yaml.Unmarshal([]byte(entry), &o); err != nil {
			return nil, fmt.Errorf("unmarshal failed for keyVaultObjects at index %d, error: %w", i, err)
		}
		o.trim()
		if err := o.validate(); err != nil {
			return nil, o.wrap(err)
		}
		objects = append(objects, o)
	}
	return objects, nil
}

// trim removes the white space around every string field.
func (o *object) trim() {
	for _, f := range []*string{&o.Name, &o.Alias, &o.Version, &o.Type, &o.Format, &o.Encoding, &o.FilePermission} {
		*f = strings.TrimSpace(*f)
	}
}

// validate checks the format, the encoding and the file name as upstream
// does. The pfx-only-for-secrets check compares case-sensitively, as
// upstream's does; filePermission is not checked (see fileMode).
func (o object) validate() error {
	if o.Format != "" {
		if !strings.EqualFold(o.Format, formatPEM) && !strings.EqualFold(o.Format, formatPFX) {
			return fmt.Errorf("invalid objectFormat: %v, should be PEM or PFX", o.Format)
		}
		if o.Format == formatPFX && o.Type != typeSecret {
			return errors.New("PFX format only supported for objectType: secret")
		}
	}
	if o.Encoding != "" {
		if o.Type != typeSecret {
			return errors.New("objectEncoding only supported for objectType: secret")
		}
		if !strings.EqualFold(o.Encoding, encodingHex) && !strings.EqualFold(o.Encoding, encodingBase64) && !strings.EqualFold(o.Encoding, encodingUTF8) {
			return fmt.Errorf("invalid objectEncoding: %v, should be hex, base64 or utf-8", o.Encoding)
		}
	}
	name := o.fileName()
	switch {
	case name == "":
		return errors.New("file name must not be empty")
	case filepath.IsAbs(name):
		return errors.New("file name must be a relative path")
	case strings.Contains(name, ".."):
		// Covers a ".." path element and any other "..".
		return errors.New("file name must not contain '..'")
	}
	return nil
}

// wrap prefixes an object's error as upstream does.
func (o object) wrap(err error) error {
	return fmt.Errorf("failed to get objectType:%s, objectName:%s, objectVersion:%s: %w", o.Type, o.Name, o.Version, err)
}

// fileName is the object's file: its alias, else its name.
func (o object) fileName() string {
	if o.Alias != "" {
		return o.Alias
	}
	return o.Name
}

// syncsHistory reports whether the object asks for more than one version.
func (o object) syncsHistory() bool { return o.VersionHistory > 1 }

// uid is the object's ID in the response: <type>/<name>, or for one
// version of a history <type>/<name>/<index>, the index being the last
// element of the version's file name.
func (o object) uid() string {
	if !o.syncsHistory() {
		return o.Type + "/" + o.Name
	}
	return o.Type + "/" + o.Name + "/" + filepath.Base(o.Alias)
}

// fileMode is the object's file mode: filePermission read as octal, else
// the request's permission. Upstream does not refuse an invalid
// filePermission: it answers mode 0.
func (o object) fileMode(perm os.FileMode) int32 {
	if o.FilePermission == "" {
		return int32(perm)
	}
	mode, err := strconv.ParseInt(o.FilePermission, 8, 32)
	if err != nil {
		return 0
	}
	return int32(mode)
}
