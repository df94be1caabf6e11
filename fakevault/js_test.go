package fakevault_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kvsync/kvsync/fakevault"
	"github.com/kvsync/kvsync/fakevault/keyvault"
	"github.com/kvsync/kvsync/fakevault/pki"
)

// jsSummary is what testdata/js/sdks.mjs prints on success.
type jsSummary struct {
	Secrets struct {
		Secret       string   `json:"secret"`
		Versions     []string `json:"versions"`
		Disabled     string   `json:"disabled"`
		VersionPages int      `json:"versionPages"`
		Listed       []string `json:"listed"`
		ListPages    int      `json:"listPages"`
		Purged       string   `json:"purged"`
	} `json:"secrets"`
	Keys struct {
		RSA       jsKey    `json:"rsa"`
		EC        jsKey    `json:"ec"`
		Listed    []string `json:"listed"`
		ListPages int      `json:"listPages"`
	} `json:"keys"`
	Certificates struct {
		PEM       jsCertificate `json:"pem"`
		PFX       jsCertificate `json:"pfx"`
		Listed    []string      `json:"listed"`
		ListPages int           `json:"listPages"`
	} `json:"certificates"`
	Steps []string `json:"steps"`
}

type jsKey struct {
	Name     string   `json:"name"`
	Versions []string `json:"versions"`
}

type jsCertificate struct {
	Name         string `json:"name"`
	Version      string `json:"version"`
	ContentType  string `json:"contentType"`
	SecretSHA256 string `json:"secretSha256"`
}

// jsSDKs returns node and the node_modules directory of the Azure
// JavaScript SDKs hack/npm.sh installed ($KVSYNC_JS), or skips the test
// when either is missing.
func jsSDKs(t *testing.T) (node, modules string) {
	t.Helper()
	dir := os.Getenv("KVSYNC_JS")
	if dir == "" {
		t.Skip("no Azure JavaScript SDKs: run hack/npm.sh and set KVSYNC_JS to the directory it prints (make test does)")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed: the Azure JavaScript SDKs cannot run")
	}
	modules = filepath.Join(dir, "node_modules")
	for _, pkg := range []string{"identity", "keyvault-secrets", "keyvault-keys", "keyvault-certificates"} {
		if _, err := os.Stat(filepath.Join(modules, "@azure", pkg, "package.json")); err != nil {
			t.Fatalf("KVSYNC_JS=%s does not hold @azure/%s (%v): run hack/npm.sh and use the directory it prints", dir, pkg, err)
		}
	}
	return node, modules
}

// TestJavaScriptSDKsReadAndWriteThroughTheProxy runs testdata/js/sdks.mjs:
// the unmodified Azure JavaScript SDKs, with default client options and a
// ClientSecretCredential, reach the fake only through its proxy
// (HTTPS_PROXY) and its CA (NODE_EXTRA_CA_CERTS). They write, read,
// disable, list, delete, recover and purge secrets, and read keys and
// certificates seeded here as a secrets-store provider reads them. The test
// then checks through the Go SDK and the vault what the script left.
//
// It runs twice: with the fake's delays left out, and with the service's
// (keyvault.ServiceFidelity), where the SDKs' delete and recover pollers
// wait out the seconds a delete and a recover take and every vault-wide
// list ends with an empty page.
func TestJavaScriptSDKsReadAndWriteThroughTheProxy(t *testing.T) {
	node, modules := jsSDKs(t)
	for _, tt := range []struct {
		name     string
		fidelity keyvault.Fidelity
	}{
		{"with the delays left out", keyvault.Fidelity{}},
		{"with the service's delays and page shape", keyvault.ServiceFidelity},
	} {
		t.Run(tt.name, func(t *testing.T) { runJSSDKs(t, node, modules, tt.fidelity) })
	}
}

func runJSSDKs(t *testing.T, node, modules string, fidelity keyvault.Fidelity) {
	const (
		jsCanary = "kvsync-canary-js-7c41"
		secret   = "js-app-secret"
		doomed   = "js-doomed-secret"
		rsaKey   = "js-rsa"
		ecKey    = "js-ec"
		pemCert  = "js-tls-pem"
		pfxCert  = "js-tls-pfx"
	)
	seeded := []string{"js-seeded-1", "js-seeded-2", "js-seeded-3"}

	srv := newServer(t, fakevault.Options{Fidelity: fidelity})
	// The script writes, deletes and purges: Key Vault Administrator (which
	// CreateVault grants the default identity in any case).
	vault := createVault(t, srv, keyvault.VaultConfig{Name: "js-kv", RoleAssignments: []keyvault.RoleAssignment{
		{PrincipalID: fakevault.DefaultClientID, Role: keyvault.RoleAdministrator},
	}})
	for _, name := range seeded {
		must2(vault.SetSecret(name, jsCanary+"-"+name, nil))
	}
	rsaV1, err := vault.CreateKey(rsaKey, keyvault.KeyOptions{Type: pki.RSA2048})
	must(t, err)
	rsaV2, err := vault.CreateKey(rsaKey, keyvault.KeyOptions{Type: pki.RSA2048})
	must(t, err)
	ecV1, err := vault.CreateKey(ecKey, keyvault.KeyOptions{Type: pki.ECP256})
	must(t, err)
	pem, err := vault.CreateCertificate(pemCert, keyvault.CertificateOptions{CA: srv.CA(), DNSNames: []string{"pem.example.com"}, ContentType: keyvault.ContentTypePEM})
	must(t, err)
	pfx, err := vault.CreateCertificate(pfxCert, keyvault.CertificateOptions{CA: srv.CA(), DNSNames: []string{"pfx.example.com"}, ContentType: keyvault.ContentTypePKCS12})
	must(t, err)

	proxy := startProxy(t, srv)
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	must(t, os.WriteFile(caFile, srv.CAPEM(), 0o644))
	// Node resolves an ES module's imports from the node_modules next to
	// the importing file (or above it), never from NODE_PATH: the script
	// runs from a directory where node_modules links to the installed SDKs.
	scriptDir := filepath.Join(dir, "js")
	must(t, os.Mkdir(scriptDir, 0o755))
	must(t, os.Symlink(modules, filepath.Join(scriptDir, "node_modules")))
	src, err := os.ReadFile(filepath.Join("testdata", "js", "sdks.mjs"))
	must(t, err)
	script := filepath.Join(scriptDir, "sdks.mjs")
	must(t, os.WriteFile(script, src, 0o644))

	fingerprint := func(c *keyvault.Certificate) string {
		sum := sha256.Sum256(c.Leaf.Certificate.Raw)
		return hex.EncodeToString(sum[:])
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, script)
	cmd.Dir = scriptDir
	cmd.WaitDelay = 10 * time.Second
	cmd.Env = []string{
		"HOME=" + dir,
		"HTTPS_PROXY=http://" + proxy,
		"NODE_EXTRA_CA_CERTS=" + caFile,
		"KVSYNC_VAULT_URL=" + fakevault.VaultURL("js-kv"),
		"KVSYNC_TENANT_ID=" + fakevault.DefaultTenantID,
		"KVSYNC_CLIENT_ID=" + fakevault.DefaultClientID,
		"KVSYNC_CLIENT_SECRET=" + fakevault.DefaultClientSecret,
		"KVSYNC_CANARY=" + jsCanary,
		"KVSYNC_SECRET=" + secret,
		"KVSYNC_DOOMED_SECRET=" + doomed,
		"KVSYNC_SEEDED_SECRETS=" + strings.Join(seeded, ","),
		"KVSYNC_RSA_KEY=" + rsaKey,
		"KVSYNC_RSA_KEY_VERSIONS=" + rsaV1 + "," + rsaV2,
		"KVSYNC_EC_KEY=" + ecKey,
		"KVSYNC_EC_KEY_VERSIONS=" + ecV1,
		"KVSYNC_PEM_CERT=" + pem.Name + "/" + pem.Version,
		"KVSYNC_PEM_CERT_SHA256=" + fingerprint(pem),
		"KVSYNC_PFX_CERT=" + pfx.Name + "/" + pfx.Version,
		"KVSYNC_PFX_CERT_SHA256=" + fingerprint(pfx),
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	runErr := cmd.Run()
	t.Logf("node %s ran in %s", filepath.Base(script), time.Since(start).Round(time.Millisecond))
	if runErr != nil {
		t.Fatalf("node %s: %v (context: %v)\nstdout:\n%s\nstderr:\n%s", script, runErr, ctx.Err(), stdout.String(), stderr.String())
	}
	// The journal up to here is the script's alone.
	jsEntries := srv.Journal().Entries()
	var sum jsSummary
	if err := json.Unmarshal(stdout.Bytes(), &sum); err != nil {
		t.Fatalf("the script's summary is not JSON: %v\n%s", err, stdout.String())
	}
	t.Logf("steps: %s", strings.Join(sum.Steps, "; "))

	// What the script wrote, as the Go SDK and the vault see it.
	client, err := srv.Client("js-kv")
	must(t, err)
	versions, err := vault.SecretVersions(secret)
	must(t, err)
	var ids []string
	for i, v := range versions {
		ids = append(ids, v.Version)
		if wantEnabled := i != 1; v.Enabled != wantEnabled || v.ContentType != "text/plain" {
			t.Errorf("version %d of %s: enabled %v, content type %q; want enabled %v, text/plain", i+1, secret, v.Enabled, v.ContentType, wantEnabled)
		}
	}
	if len(ids) != 3 || !slices.Equal(ids, sum.Secrets.Versions) || sum.Secrets.Disabled != ids[1] {
		t.Fatalf("versions of %s in the vault: %v; the script created %v and disabled %s", secret, ids, sum.Secrets.Versions, sum.Secrets.Disabled)
	}
	for i, version := range []string{"", ids[0]} {
		resp, err := client.GetSecret(context.Background(), secret, version, nil)
		if want := jsCanary + "-" + secret + []string{"-v3", "-v1"}[i]; err != nil || resp.Value == nil || *resp.Value != want {
			t.Errorf("GetSecret %s version %q through the Go SDK: %v, want the value the script set", secret, version, err)
		}
	}
	if _, err := vault.SecretVersions(doomed); err == nil {
		t.Errorf("%s is still in the vault after the script purged it", doomed)
	}
	if _, err := client.GetDeletedSecret(context.Background(), doomed, nil); !hasStatus(err, 404) {
		t.Errorf("GetDeletedSecret %s after the purge: %v, want 404", doomed, err)
	}

	// What the script read: every list whole, in pages of two (maxresults),
	// and the certificates' secrets byte for byte.
	wantSecrets := append(slices.Clone(seeded), secret, pemCert, pfxCert)
	trailing := fidelity.TrailingEmptyPage
	checkListed(t, "listPropertiesOfSecrets", sum.Secrets.Listed, sum.Secrets.ListPages, wantSecrets, trailing)
	checkListed(t, "listPropertiesOfKeys", sum.Keys.Listed, sum.Keys.ListPages, []string{rsaKey, ecKey, pemCert, pfxCert}, trailing)
	checkListed(t, "listPropertiesOfCertificates", sum.Certificates.Listed, sum.Certificates.ListPages, []string{pemCert, pfxCert}, trailing)
	if sum.Secrets.VersionPages != 2 {
		t.Errorf("listPropertiesOfSecretVersions of 3 versions by pages of 2: %d pages, want 2", sum.Secrets.VersionPages)
	}
	var privateValues []string
	for _, c := range []struct {
		seeded *keyvault.Certificate
		read   jsCertificate
	}{{pem, sum.Certificates.PEM}, {pfx, sum.Certificates.PFX}} {
		resp, err := client.GetSecret(context.Background(), c.seeded.Name, "", nil)
		if err != nil || resp.Value == nil {
			t.Fatalf("GetSecret %s through the Go SDK: %v", c.seeded.Name, err)
		}
		privateValues = append(privateValues, *resp.Value)
		digest := sha256.Sum256([]byte(*resp.Value))
		if c.read.Version != c.seeded.Version || c.read.SecretSHA256 != hex.EncodeToString(digest[:]) {
			t.Errorf("the script read %s version %s with value digest %s; the vault holds version %s with digest %x",
				c.seeded.Name, c.read.Version, c.read.SecretSHA256, c.seeded.Version, digest)
		}
	}

	// Who asked what: the default identity only, through both services,
	// and no answer the SDKs should never have caused.
	ops := map[string]bool{}
	apiVersions := map[string]bool{}
	for _, e := range jsEntries {
		ops[e.Service+"/"+e.Operation] = true
		if e.APIVersion != "" && e.Service == "keyvault" {
			apiVersions[e.APIVersion] = true
		}
		if e.Status >= 500 || e.Status == 400 || e.Status == 405 {
			t.Errorf("journal: %s %s answered %d %s", e.Method, e.Path, e.Status, e.ErrorCode)
		}
		if e.Service == "keyvault" && e.Status != 401 && !strings.Contains(e.Identity, fakevault.DefaultClientID) {
			t.Errorf("journal: %s %s as %q, want the default identity", e.Method, e.Path, e.Identity)
		}
	}
	if fidelity.DeleteDelay > 0 {
		// The pollers met the service's 404s and waited them out.
		waited := map[string]int{}
		for _, e := range jsEntries {
			if e.Status == 404 && (e.Operation == "GetDeletedSecret" || e.Operation == "GetSecret") {
				waited[e.Operation]++
			}
		}
		if waited["GetDeletedSecret"] < 2 || waited["GetSecret"] < 2 {
			t.Errorf("404s the SDKs' pollers met: %v; want the delete poller's (GetDeletedSecret) and the recover poller's (GetSecret)", waited)
		}
	}
	leaks := append([]string{fakevault.DefaultClientSecret}, privateValues...)
	for _, e := range srv.Journal().Entries() {
		entry := fmt.Sprintf("%+v", e)
		for _, value := range append(slices.Clone(leaks), jsCanary) {
			if strings.Contains(entry, value) {
				t.Errorf("the journal holds a secret value: %s", entry)
			}
		}
	}
	for _, want := range []string{"entra/Token",
		"keyvault/SetSecret", "keyvault/GetSecret", "keyvault/UpdateSecret", "keyvault/ListSecrets", "keyvault/ListSecretVersions",
		"keyvault/DeleteSecret", "keyvault/GetDeletedSecret", "keyvault/RecoverDeletedSecret", "keyvault/PurgeDeletedSecret",
		"keyvault/GetKey", "keyvault/ListKeys", "keyvault/GetCertificate", "keyvault/ListCertificates"} {
		if !ops[want] {
			t.Errorf("the journal has no %s entry", want)
		}
	}
	t.Logf("Key Vault api-versions the SDKs sent: %v", slices.Sorted(maps.Keys(apiVersions)))

	// The script prints its canaries at most: never the certificates'
	// private keys nor the client secret.
	output := stdout.String() + stderr.String()
	for _, value := range leaks {
		for _, fragment := range leakFragments(value) {
			if strings.Contains(output, fragment) {
				t.Errorf("the script's output holds a secret value (%d bytes of it)", len(fragment))
			}
		}
	}
}

// checkListed checks that a list the script iterated holds want exactly and
// came in pages of two, as maxresults=2 asks, then an empty page when the
// list ends with one.
func checkListed(t *testing.T, what string, listed []string, pages int, want []string, trailing bool) {
	t.Helper()
	if got, want := slices.Sorted(slices.Values(listed)), slices.Sorted(slices.Values(want)); !slices.Equal(got, want) {
		t.Errorf("%s: the script listed %v, want %v", what, got, want)
	}
	wantPages := (len(want) + 1) / 2
	if trailing {
		wantPages++
	}
	if pages != wantPages {
		t.Errorf("%s of %d items by pages of 2: %d pages, want %d", what, len(want), pages, wantPages)
	}
}

// leakFragments returns the parts of a value whose presence in output
// means the value leaked: the value itself, and for PEM the body of each
// block, for base64 its first 64 characters.
func leakFragments(value string) []string {
	out := []string{value}
	if _, err := base64.StdEncoding.DecodeString(value); err == nil && len(value) > 64 {
		out = append(out, value[:64])
	}
	for _, line := range strings.Split(value, "\n") {
		if len(line) == 64 && !strings.HasPrefix(line, "-----") {
			out = append(out, line)
		}
	}
	return out
}
