package upstreamprovider

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/pkcs12"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"sigs.k8s.io/secrets-store-csi-driver/provider/v1alpha1"

	"github.com/kvsync/kvsync/fakevault"
	"github.com/kvsync/kvsync/fakevault/journal"
	"github.com/kvsync/kvsync/fakevault/keyvault"
	"github.com/kvsync/kvsync/fakevault/pki"
)

const canary = "kvsync-canary-upstream-7f3a"

// mountFailure returns the message of a Mount error, failing the test
// unless the error is a plain one (gRPC code Unknown), as upstream's are,
// and free of secret values.
func mountFailure(t *testing.T, err error) string {
	t.Helper()
	if err == nil {
		t.Fatal("Mount succeeded, want an error")
	}
	if code := status.Code(err); code != codes.Unknown {
		t.Errorf("code %s, want Unknown: %v", code, err)
	}
	msg := status.Convert(err).Message()
	if strings.Contains(msg, canary) {
		t.Errorf("the message holds a secret value: %s", msg)
	}
	return msg
}

func TestVersionNamesTheUpstreamProvider(t *testing.T) {
	h := newHarness(t, Options{})
	resp, err := h.client.Version(context.Background(), &v1alpha1.VersionRequest{Version: "v1alpha1"})
	must(t, err)
	if resp.GetVersion() != "v1alpha1" || resp.GetRuntimeName() != "secrets-store-csi-driver-provider-azure" || resp.GetRuntimeVersion() != "v1.8.2-double" {
		t.Errorf("Version = %v", resp)
	}
}

func TestMountReturnsOneFilePerObjectNamedByAliasOrName(t *testing.T) {
	h := newHarness(t, Options{})
	va, err := h.vault.SetSecret("a", canary+"-a", nil)
	must(t, err)
	vb, err := h.vault.SetSecret("b", canary+"-b", nil)
	must(t, err)

	files, resp, err := h.mount(t, h.attributes(t, []string{
		"objectName: a\nobjectType: secret\nobjectAlias: first",
		"objectName: b\nobjectType: secret\nfilePermission: \"0600\"",
	}, nil))
	if err != nil {
		t.Fatalf("Mount: %v", err)
	}
	if len(resp.GetFiles()) != 2 {
		t.Fatalf("%d files, want 2", len(resp.GetFiles()))
	}
	if f := files["first"]; f == nil || string(f.Contents) != canary+"-a" || f.Mode != 0o644 {
		t.Errorf("file first: want a's value with mode 0644")
	}
	if f := files["b"]; f == nil || string(f.Contents) != canary+"-b" || f.Mode != 0o600 {
		t.Errorf("file b: want b's value with mode 0600")
	}
	// Upstream names object versions by object name, not by alias.
	want := map[string]string{"secret/a": va, "secret/b": vb}
	got := map[string]string{}
	for _, v := range resp.GetObjectVersion() {
		got[v.GetId()] = v.GetVersion()
	}
	if len(got) != 2 || got["secret/a"] != want["secret/a"] || got["secret/b"] != want["secret/b"] {
		t.Errorf("object versions %v, want %v", got, want)
	}
}

func TestMountStopsAtTheFirstObjectThatCannotBeRead(t *testing.T) {
	h := newHarness(t, Options{})
	_, err := h.vault.SetSecret("a", canary+"-a", nil)
	must(t, err)
	_, err = h.vault.SetSecret("c", canary+"-c", nil)
	must(t, err)

	_, _, err = h.mount(t, h.attributes(t, []string{
		"objectName: a\nobjectType: secret",
		"objectName: b\nobjectType: secret",
		"objectName: c\nobjectType: secret",
	}, nil))
	msg := mountFailure(t, err)
	const prefix = "failed to mount objects, error: failed to get objectType:secret, objectName:b, objectVersion:: "
	if !strings.HasPrefix(msg, prefix) {
		t.Errorf("message does not start with %q:\n%s", prefix, msg)
	}
	for _, want := range []string{"GET https://contoso.vault.azure.net/secrets/b/", "RESPONSE 404", "SecretNotFound"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q:\n%s", want, msg)
		}
	}
	// The SDK's first request is answered 401 with the challenge; count
	// the authenticated ones.
	read := h.fake.Journal().Filter(func(e journal.Entry) bool { return e.Operation == "GetSecret" && e.Status != 401 })
	var names []string
	for _, e := range read {
		names = append(names, strings.Split(e.Object, "/")[0])
	}
	if strings.Join(names, ",") != "a,b" {
		t.Errorf("secrets read %v, want a then b and nothing after the failure", names)
	}
}

func TestMountReportsAForbiddenAnswerOfTheVault(t *testing.T) {
	h := newHarness(t, Options{})
	_, err := h.vault.SetSecret("a", canary, nil)
	must(t, err)
	h.vault.RemoveRoleAssignments(clientID)

	_, _, err = h.mount(t, h.attributes(t, []string{"objectName: a\nobjectType: secret"}, nil))
	msg := mountFailure(t, err)
	for _, want := range []string{
		"failed to mount objects, error: failed to get objectType:secret, objectName:a, objectVersion:: GET https://contoso.vault.azure.net/secrets/a/",
		"RESPONSE 403: 403 Forbidden", "ERROR CODE: Forbidden", "ForbiddenByRbac",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q:\n%s", want, msg)
		}
	}
}

func TestMountRefusesBadRequestsWithUpstreamMessages(t *testing.T) {
	h := newHarness(t, Options{})
	one := []string{"objectName: a\nobjectType: secret"}
	object := func(entry string) map[string]string {
		return map[string]string{"objects": objectsParameter([]string{entry})}
	}
	const mountErr = "failed to mount objects, error: "
	for _, tc := range []struct {
		name      string
		overrides map[string]string
		// attributes, secrets and permission replace the request's fields
		// when set.
		attributes, secrets, permission string
		want                            string
		// prefix: want is the start of the message.
		prefix bool
	}{
		{name: "attributes that are not JSON are refused", attributes: "{",
			want: "failed to unmarshal attributes, error: unexpected end of JSON input"},
		{name: "secrets that are not JSON are refused", secrets: " ",
			want: "failed to unmarshal secrets, error: unexpected end of JSON input"},
		{name: "a permission that is not a file mode is refused", permission: `"0644"`,
			want: "failed to unmarshal file permission, error: json: cannot unmarshal string into Go value of type fs.FileMode"},
		{name: "a missing pod name is refused", overrides: map[string]string{attrPodName: ""},
			want: mountErr + "pod name is not provided"},
		{name: "a blank pod namespace is refused", overrides: map[string]string{attrPodNamespace: "  "},
			want: mountErr + "pod namespace is not provided"},
		{name: "a mode flag that is not a bool is refused", overrides: map[string]string{"usePodIdentity": "maybe"},
			want: mountErr + `failed to parse usePodIdentity flag, error: strconv.ParseBool: parsing "maybe": invalid syntax`},
		{name: "two identity modes are refused", overrides: map[string]string{"useVMManagedIdentity": "true", "useAzureTokenProxy": " TRUE "},
			want: mountErr + "only one identity mode can be enabled at a time: usePodIdentity, useVMManagedIdentity, or useAzureTokenProxy"},
		{name: "a missing keyvaultName is refused", overrides: map[string]string{"keyvaultName": ""},
			want: mountErr + "keyvaultName is not provided"},
		{name: "a missing tenant is refused", overrides: map[string]string{"tenantID": "", "tenantId": " "},
			want: mountErr + "tenantId is not provided"},
		{name: "an unknown cloud is refused", overrides: map[string]string{"cloudName": "Mars"},
			want: mountErr + `cloudName Mars is not valid, error: autorest/azure: There is no cloud environment matching the name "MARS"`},
		{name: "a sovereign cloud is refused as the double's limit", overrides: map[string]string{"cloudName": "AzureChinaCloud"},
			want: mountErr + "cloudName AzureChinaCloud is not valid, error: cloud AzureChinaCloud is not supported by this upstream provider double", prefix: true},
		{name: "a clientID without ServiceAccount tokens is refused", overrides: map[string]string{attrServiceAccountToks: ""},
			want: mountErr + "failed to build auth config for mode None: failed to parse workload identity tokens, error: service account tokens not found"},
		{name: "ServiceAccount tokens that are not JSON are refused", overrides: map[string]string{attrServiceAccountToks: "tokens"},
			want: mountErr + "failed to build auth config for mode None: failed to parse workload identity tokens, error: failed to unmarshal service account tokens, error: invalid character 'o' in literal true (expecting 'r')"},
		{name: "a token for another audience is refused", overrides: map[string]string{attrServiceAccountToks: `{"api://other":{"token":"t"}}`},
			want: mountErr + "failed to build auth config for mode None: failed to parse workload identity tokens, error: token for audience api://AzureADTokenExchange not found"},
		{name: "no clientID and no node-publish secrets are refused", overrides: map[string]string{"clientID": ""}, secrets: "null",
			want: mountErr + "failed to build auth config for mode None: failed to get credentials, nodePublishSecretRef secret is not set"},
		{name: "node-publish secrets without clientid are refused", overrides: map[string]string{"clientID": ""},
			want: mountErr + "failed to build auth config for mode None: could not find clientid in secrets"},
		{name: "node-publish secrets without clientsecret are refused", overrides: map[string]string{"clientID": ""}, secrets: `{"ClientID":"x"}`,
			want: mountErr + "failed to build auth config for mode None: could not find clientsecret in secrets"},
		{name: "a token proxy mode without clientID is refused", overrides: map[string]string{"clientID": "", "useAzureTokenProxy": "true"},
			want: mountErr + "failed to build auth config for mode AzureTokenProxy: clientID is required for identity binding"},
		{name: "missing objects are refused", overrides: map[string]string{"objects": ""},
			want: mountErr + "objects is not set"},
		{name: "objects that are not YAML are refused", overrides: map[string]string{"objects": "array: [unclosed"},
			want: mountErr + "failed to yaml unmarshal objects, error: ", prefix: true},
		{name: "an object that does not parse is refused by index", overrides: object("objectName: a\nobjectVersionHistory: many"),
			want: mountErr + "unmarshal failed for keyVaultObjects at index 0, error: yaml: unmarshal errors:\n  line 2: cannot unmarshal !!str `many` into int32"},
		{name: "an unknown objectFormat is refused", overrides: object("objectName: a\nobjectType: secret\nobjectFormat: der"),
			want: mountErr + "failed to get objectType:secret, objectName:a, objectVersion:: invalid objectFormat: der, should be PEM or PFX"},
		{name: "pfx for a key is refused", overrides: object("objectName: a\nobjectType: key\nobjectFormat: pfx"),
			want: mountErr + "failed to get objectType:key, objectName:a, objectVersion:: PFX format only supported for objectType: secret"},
		{name: "an objectEncoding for a certificate is refused", overrides: object("objectName: a\nobjectType: cert\nobjectEncoding: base64"),
			want: mountErr + "failed to get objectType:cert, objectName:a, objectVersion:: objectEncoding only supported for objectType: secret"},
		{name: "an unknown objectEncoding is refused", overrides: object("objectName: a\nobjectType: secret\nobjectEncoding: utf-16\nobjectVersion: v1"),
			want: mountErr + "failed to get objectType:secret, objectName:a, objectVersion:v1: invalid objectEncoding: utf-16, should be hex, base64 or utf-8"},
		{name: "an object without a name is refused", overrides: object("objectType: secret"),
			want: mountErr + "failed to get objectType:secret, objectName:, objectVersion:: file name must not be empty"},
		{name: "an absolute alias is refused", overrides: object("objectName: a\nobjectType: secret\nobjectAlias: /etc/a"),
			want: mountErr + "failed to get objectType:secret, objectName:a, objectVersion:: file name must be a relative path"},
		{name: "an alias climbing out of the mount is refused", overrides: object("objectName: a\nobjectType: secret\nobjectAlias: x/../../a"),
			want: mountErr + "failed to get objectType:secret, objectName:a, objectVersion:: file name must not contain '..'"},
		{name: "a vault name too short is refused", overrides: map[string]string{"keyvaultName": "kv"},
			want: mountErr + `failed to get vault: Invalid vault name: "kv", must be between 3 and 24 chars`},
		{name: "a vault name with other characters is refused", overrides: map[string]string{"keyvaultName": "kv_prod"},
			want: mountErr + `failed to get vault: Invalid vault name: "kv_prod", must match [-a-zA-Z0-9]{3,24}`},
		{name: "pod identity is refused as the double's limit", overrides: map[string]string{"usePodIdentity": "true"},
			want: mountErr + "failed to get keyvault client: identity mode not supported by this upstream provider double: usePodIdentity=true", prefix: true},
		{name: "an objectType in capitals is refused when read", overrides: object("objectName: a\nobjectType: Secret"),
			want: mountErr + "failed to get objectType:Secret, objectName:a, objectVersion:: Invalid vaultObjectTypes. Should be secret, key, or cert"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := &v1alpha1.MountRequest{Attributes: marshal(t, h.attributes(t, one, tc.overrides)), Secrets: "{}", Permission: "420"}
			if tc.attributes != "" {
				req.Attributes = tc.attributes
			}
			if tc.secrets != "" {
				req.Secrets = tc.secrets
			}
			if tc.permission != "" {
				req.Permission = tc.permission
			}
			_, _, err := h.mountRequest(t, req)
			msg := mountFailure(t, err)
			if tc.prefix && !strings.HasPrefix(msg, tc.want) || !tc.prefix && msg != tc.want {
				t.Errorf("message\n%s\nwant\n%s", msg, tc.want)
			}
		})
	}
	if n := len(h.fake.Journal().Entries()); n != 0 {
		t.Errorf("refused Mounts sent %d requests to Entra ID or Key Vault, want none", n)
	}
}

func TestMountOfNoObjectsSucceedsWithoutFiles(t *testing.T) {
	h := newHarness(t, Options{})
	_, resp, err := h.mount(t, h.attributes(t, nil, map[string]string{"objects": "array: []", "keyvaultName": "x"}))
	if err != nil {
		t.Fatalf("Mount: %v", err)
	}
	if len(resp.GetFiles()) != 0 || len(resp.GetObjectVersion()) != 0 {
		t.Errorf("response %v, want no files", resp)
	}
}

func TestMountRendersACertificateSecretAsKeyThenCertificates(t *testing.T) {
	h := newHarness(t, Options{})
	for name, contentType := range map[string]string{"web-pfx": keyvault.ContentTypePKCS12, "web-pem": keyvault.ContentTypePEM} {
		t.Run(contentType, func(t *testing.T) {
			cert, err := h.vault.CreateCertificate(name, keyvault.CertificateOptions{CA: h.fake.CA(), DNSNames: []string{"web.example"}, ContentType: contentType})
			must(t, err)
			files, resp, err := h.mount(t, h.attributes(t, []string{"objectName: " + name + "\nobjectType: secret"}, nil))
			if err != nil {
				t.Fatalf("Mount: %v", err)
			}
			if len(resp.GetFiles()) != 1 || files[name] == nil {
				t.Fatalf("files %v, want only %s", files, name)
			}
			if v := resp.GetObjectVersion(); len(v) != 1 || v[0].GetId() != "secret/"+name || v[0].GetVersion() != cert.Version {
				t.Errorf("object versions %v, want secret/%s at %s", v, name, cert.Version)
			}
			var keyPEM, certPEM []byte
			var types []string
			for rest := files[name].Contents; ; {
				var b *pem.Block
				if b, rest = pem.Decode(rest); b == nil {
					break
				}
				types = append(types, b.Type)
				if len(b.Headers) != 0 {
					t.Errorf("%s block has headers %v", b.Type, b.Headers)
				}
				if b.Type == "CERTIFICATE" {
					certPEM = append(certPEM, pem.EncodeToMemory(b)...)
				} else {
					keyPEM = append(keyPEM, pem.EncodeToMemory(b)...)
				}
			}
			if len(types) < 2 || types[0] != "PRIVATE KEY" || types[1] != "CERTIFICATE" {
				t.Fatalf("blocks %v, want the private key then the certificates", types)
			}
			pair, err := tls.X509KeyPair(certPEM, keyPEM)
			if err != nil {
				t.Fatalf("the certificates and the key do not form a pair: %v", err)
			}
			if !bytes.Equal(pair.Certificate[0], cert.Leaf.Certificate.Raw) {
				t.Error("the first certificate is not the leaf")
			}
		})
	}
}

func TestMountWritesCertAndKeyInSeparateFilesWhenAsked(t *testing.T) {
	h := newHarness(t, Options{WriteCertAndKeyInSeparateFiles: true})
	_, err := h.vault.CreateCertificate("web", keyvault.CertificateOptions{CA: h.fake.CA(), DNSNames: []string{"web.example"}})
	must(t, err)
	_, err = h.vault.SetSecret("plain", canary, nil)
	must(t, err)
	files, resp, err := h.mount(t, h.attributes(t, []string{"objectName: web\nobjectType: secret\nobjectAlias: tls", "objectName: plain\nobjectType: secret"}, nil))
	if err != nil {
		t.Fatalf("Mount: %v", err)
	}
	var paths []string
	for _, f := range resp.GetFiles() {
		paths = append(paths, f.GetPath())
	}
	if strings.Join(paths, ",") != "tls.crt,tls.key,tls,plain" {
		t.Fatalf("files %v, want tls.crt, tls.key, tls, plain in that order", paths)
	}
	if !bytes.Equal(files["tls"].Contents, append(append([]byte{}, files["tls.key"].Contents...), files["tls.crt"].Contents...)) {
		t.Error("tls is not tls.key followed by tls.crt")
	}
	if _, err := tls.X509KeyPair(files["tls.crt"].Contents, files["tls.key"].Contents); err != nil {
		t.Errorf("tls.crt and tls.key do not form a pair: %v", err)
	}
	if ids := resp.GetObjectVersion(); len(ids) != 4 || ids[0].GetId() != "secret/web" || ids[1].GetId() != "secret/web" {
		t.Errorf("object versions %v, want one per file, secret/web for the split files", ids)
	}
}

func TestMountReturnsAPFXSecretAsStoredWhenAsked(t *testing.T) {
	h := newHarness(t, Options{})
	_, err := h.vault.CreateCertificate("web", keyvault.CertificateOptions{CA: h.fake.CA(), DNSNames: []string{"web.example"}})
	must(t, err)
	files, _, err := h.mount(t, h.attributes(t, []string{"objectName: web\nobjectType: secret\nobjectFormat: PFX\nobjectEncoding: Base64"}, nil))
	if err != nil {
		t.Fatalf("Mount: %v", err)
	}
	if _, err := pkcs12.ToPEM(files["web"].GetContents(), ""); err != nil {
		t.Errorf("web is not the PKCS#12 archive: %v", err)
	}
}

func TestMountRendersKeysAndCertificatesAsPEM(t *testing.T) {
	h := newHarness(t, Options{})
	rsaVersion, err := h.vault.CreateKey("rsa", keyvault.KeyOptions{Type: pki.RSA2048})
	must(t, err)
	_, err = h.vault.CreateKey("ec", keyvault.KeyOptions{Type: pki.ECP256})
	must(t, err)
	cert, err := h.vault.CreateCertificate("web", keyvault.CertificateOptions{CA: h.fake.CA(), DNSNames: []string{"web.example"}})
	must(t, err)

	files, resp, err := h.mount(t, h.attributes(t, []string{
		"objectName: rsa\nobjectType: key",
		"objectName: ec\nobjectType: key",
		"objectName: web\nobjectType: cert",
	}, nil))
	if err != nil {
		t.Fatalf("Mount: %v", err)
	}
	for _, name := range []string{"rsa", "ec"} {
		b, rest := pem.Decode(files[name].GetContents())
		if b == nil || b.Type != "PUBLIC KEY" || len(rest) != 0 {
			t.Fatalf("%s is not one PEM public key", name)
		}
		if _, err := x509.ParsePKIXPublicKey(b.Bytes); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	b, rest := pem.Decode(files["web"].GetContents())
	if b == nil || b.Type != "CERTIFICATE" || len(rest) != 0 || !bytes.Equal(b.Bytes, cert.Leaf.Certificate.Raw) {
		t.Error("web is not the certificate as one PEM block")
	}
	if v := resp.GetObjectVersion(); v[0].GetId() != "key/rsa" || v[0].GetVersion() != rsaVersion || v[2].GetId() != "cert/web" || v[2].GetVersion() != cert.Version {
		t.Errorf("object versions %v", v)
	}
}

func TestMountDecodesSecretsByObjectEncoding(t *testing.T) {
	h := newHarness(t, Options{})
	_, err := h.vault.SetSecret("b64", base64.StdEncoding.EncodeToString([]byte(canary+"-b64")), nil)
	must(t, err)
	_, err = h.vault.SetSecret("hexed", hex.EncodeToString([]byte(canary+"-hex")), nil)
	must(t, err)
	_, err = h.vault.SetSecret("raw", canary+"-raw", nil)
	must(t, err)

	files, _, err := h.mount(t, h.attributes(t, []string{
		"objectName: b64\nobjectType: secret\nobjectEncoding: BASE64",
		"objectName: hexed\nobjectType: secret\nobjectEncoding: hex",
		"objectName: raw\nobjectType: secret\nobjectEncoding: utf-8",
	}, nil))
	if err != nil {
		t.Fatalf("Mount: %v", err)
	}
	for name, want := range map[string]string{"b64": canary + "-b64", "hexed": canary + "-hex", "raw": canary + "-raw"} {
		if string(files[name].GetContents()) != want {
			t.Errorf("%s is not decoded", name)
		}
	}

	// A value that does not decode fails with the decoder's error alone,
	// without the object prefix, as upstream reports it.
	_, _, err = h.mount(t, h.attributes(t, []string{"objectName: raw\nobjectType: secret\nobjectEncoding: base64"}, nil))
	if msg := mountFailure(t, err); msg != "failed to mount objects, error: illegal base64 data at input byte 6" {
		t.Errorf("message %q", msg)
	}
}

func TestMountAnswersAnInvalidFilePermissionWithModeZero(t *testing.T) {
	h := newHarness(t, Options{})
	_, err := h.vault.SetSecret("a", canary, nil)
	must(t, err)
	files, _, err := h.mount(t, h.attributes(t, []string{
		"objectName: a\nobjectType: secret\nfilePermission: \"0640\"",
		"objectName: a\nobjectType: secret\nobjectAlias: bad\nfilePermission: rw-r--r--",
	}, nil))
	if err != nil {
		t.Fatalf("Mount: %v", err)
	}
	if files["a"].GetMode() != 0o640 || files["bad"].GetMode() != 0 {
		t.Errorf("modes %o and %o, want 0640 and 0", files["a"].GetMode(), files["bad"].GetMode())
	}
}

func TestMountReadsTheVersionHistoryNewestFirst(t *testing.T) {
	h := newHarness(t, Options{})
	var versions []string
	for i := range 3 {
		v, err := h.vault.SetSecret("rotated", canary+"-"+string(rune('0'+i)), nil)
		must(t, err)
		versions = append(versions, v)
		h.clock.Advance(time.Second)
	}
	_, err := h.vault.SetSecret("pair", canary+"-old", nil)
	must(t, err)
	h.clock.Advance(time.Second)
	_, err = h.vault.SetSecret("pair", canary+"-new", nil)
	must(t, err)

	files, resp, err := h.mount(t, h.attributes(t, []string{
		"objectName: pair\nobjectType: secret\nobjectVersionHistory: 2",
		"objectName: rotated\nobjectType: secret\nobjectAlias: all\nobjectVersionHistory: 2",
		"objectName: rotated\nobjectType: secret\nobjectAlias: from-middle\nobjectVersionHistory: 5\nobjectVersion: " + versions[1],
	}, nil))
	if err != nil {
		t.Fatalf("Mount: %v", err)
	}
	want := map[string]string{
		"pair/0": canary + "-new", "pair/1": canary + "-old",
		// Upstream's loop takes one version more than the history asks for
		// when the object has more.
		"all/0": canary + "-2", "all/1": canary + "-1", "all/2": canary + "-0",
		"from-middle/0": canary + "-1", "from-middle/1": canary + "-0",
	}
	if len(files) != len(want) {
		t.Errorf("%d files, want %d", len(files), len(want))
	}
	for path, value := range want {
		if string(files[path].GetContents()) != value {
			t.Errorf("%s does not hold the expected version", path)
		}
	}
	ids := map[string]string{}
	for _, v := range resp.GetObjectVersion() {
		ids[v.GetId()] = v.GetVersion()
	}
	if ids["secret/rotated/0"] != versions[1] || ids["secret/rotated/1"] != versions[0] || ids["secret/pair/1"] == "" {
		// from-middle is listed after all, so its IDs win in the map.
		t.Errorf("object versions %v", ids)
	}
}

func TestMountAuthenticatesTheServicePrincipalOfNodePublishSecrets(t *testing.T) {
	h := newHarness(t, Options{})
	vault, err := h.fake.CreateVault(keyvault.VaultConfig{Name: "spvault"})
	must(t, err)
	_, err = vault.SetSecret("a", canary, nil)
	must(t, err)
	attrs := h.attributes(t, []string{"objectName: a\nobjectType: secret"}, map[string]string{"clientID": "", "keyvaultName": "spvault", "tenantID": fakevault.DefaultTenantID})
	files, _, err := h.mountRequest(t, &v1alpha1.MountRequest{Attributes: marshal(t, attrs), Permission: "420",
		Secrets: marshal(t, map[string]string{"clientId": fakevault.DefaultClientID, "clientSecret": fakevault.DefaultClientSecret})})
	if err != nil {
		t.Fatalf("Mount: %v", err)
	}
	if string(files["a"].GetContents()) != canary {
		t.Error("a does not hold the secret")
	}
}

func TestMountReportsAFailedVersionListWithoutTheObjectPrefix(t *testing.T) {
	h := newHarness(t, Options{})
	_, _, err := h.mount(t, h.attributes(t, []string{"objectName: gone\nobjectType: secret\nobjectVersionHistory: 3"}, nil))
	msg := mountFailure(t, err)
	const prefix = "failed to mount objects, error: GET https://contoso.vault.azure.net/secrets/gone/versions\n"
	if !strings.HasPrefix(msg, prefix) || !strings.Contains(msg, "RESPONSE 404") {
		t.Errorf("message\n%s\nwant it to start with %q, as upstream returns a list failure unwrapped", msg, prefix)
	}
}
