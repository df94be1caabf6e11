package provider_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"software.sslmate.com/src/go-pkcs12"

	"github.com/kvsync/kvsync/fakevault"
	"github.com/kvsync/kvsync/fakevault/entra"
	"github.com/kvsync/kvsync/fakevault/keyvault"
	"github.com/kvsync/kvsync/fakevault/pki"
)

const canary = "kvsync-canary-provider-9c4e"

func TestMountReadsEveryObjectTypeFormatAndEncoding(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	v := h.vault
	v1, err := v.SetSecret("db-password", canary+"-v1", nil)
	must(t, err)
	v2, err := v.SetSecret("db-password", canary+"-v2", nil)
	must(t, err)
	_, err = v.SetSecret("b64", base64.StdEncoding.EncodeToString([]byte(canary+"-b64")), nil)
	must(t, err)
	_, err = v.SetSecret("hexed", hex.EncodeToString([]byte(canary+"-hex")), nil)
	must(t, err)
	_, err = v.CreateKey("rsa-key", keyvault.KeyOptions{Type: pki.RSA2048})
	must(t, err)
	_, err = v.CreateKey("ec-key", keyvault.KeyOptions{Type: pki.ECP256})
	must(t, err)
	pemCert, err := v.CreateCertificate("web-pem", keyvault.CertificateOptions{CA: h.fake.CA(), DNSNames: []string{"web.example"}, ContentType: keyvault.ContentTypePEM, KeyType: pki.ECP256})
	must(t, err)
	pfxCert, err := v.CreateCertificate("web-pfx", keyvault.CertificateOptions{CA: h.fake.CA(), DNSNames: []string{"pfx.example"}, ContentType: keyvault.ContentTypePKCS12})
	must(t, err)

	files, resp, err := h.mount(t, h.attributes(t, []string{
		"objectName: db-password\nobjectType: secret",
		"objectName: db-password\nobjectType: secret\nobjectAlias: first-password\nobjectVersion: " + v1,
		"objectName: b64\nobjectType: secret\nobjectEncoding: base64",
		"objectName: hexed\nobjectType: secret\nobjectEncoding: hex\nfilePermission: \"0600\"",
		"objectName: rsa-key\nobjectType: key",
		"objectName: ec-key\nobjectType: key",
		"objectName: web-pem\nobjectType: cert",
		"objectName: web-pem\nobjectType: secret\nobjectAlias: web-pem-secret",
		"objectName: web-pfx\nobjectType: secret",
		"objectName: web-pfx\nobjectType: secret\nobjectAlias: web-pfx-raw\nobjectFormat: pfx\nobjectEncoding: base64",
	}, nil))
	if err != nil {
		t.Fatalf("Mount: %v", err)
	}

	expect := func(path, want string) {
		t.Helper()
		f, ok := files[path]
		if !ok {
			t.Errorf("no file %q", path)
			return
		}
		if string(f.Contents) != want {
			t.Errorf("%s: unexpected contents", path)
		}
	}
	expect("db-password", canary+"-v2")
	expect("first-password", canary+"-v1")
	expect("b64", canary+"-b64")
	expect("hexed", canary+"-hex")
	if files["hexed"].Mode != 0o600 || files["db-password"].Mode != 0o644 {
		t.Errorf("modes: hexed %o, db-password %o", files["hexed"].Mode, files["db-password"].Mode)
	}
	for _, k := range []string{"rsa-key", "ec-key"} {
		block, _ := pem.Decode(files[k].GetContents())
		if block == nil || block.Type != "PUBLIC KEY" {
			t.Fatalf("%s is not a PEM public key", k)
		}
		if _, err := x509.ParsePKIXPublicKey(block.Bytes); err != nil {
			t.Errorf("%s: %v", k, err)
		}
	}
	block, _ := pem.Decode(files["web-pem"].GetContents())
	if block == nil || block.Type != "CERTIFICATE" || !bytes.Equal(block.Bytes, pemCert.Leaf.Certificate.Raw) {
		t.Error("web-pem is not the certificate")
	}
	for _, name := range []string{"web-pem-secret", "web-pfx"} {
		whole := files[name].GetContents()
		first, _ := pem.Decode(whole)
		if first == nil || first.Type != "PRIVATE KEY" {
			t.Errorf("%s does not start with the private key", name)
		}
		crt, key := files[name+"/tls.crt"], files[name+"/tls.key"]
		if crt == nil || key == nil {
			t.Fatalf("%s has no tls.crt/tls.key files", name)
		}
		if !bytes.Equal(whole, append(append([]byte{}, key.Contents...), crt.Contents...)) {
			t.Errorf("%s is not tls.key followed by tls.crt", name)
		}
		pair, err := tls.X509KeyPair(crt.Contents, key.Contents)
		if err != nil {
			t.Errorf("%s: tls.crt and tls.key do not form a pair: %v", name, err)
			continue
		}
		if len(pair.Certificate) != 2 {
			t.Errorf("%s: chain has %d certificates, want leaf and CA", name, len(pair.Certificate))
		}
	}
	_, leaf, _, err := pkcs12.DecodeChain(files["web-pfx-raw"].GetContents(), "")
	if err != nil || !bytes.Equal(leaf.Raw, pfxCert.Leaf.Certificate.Raw) {
		t.Errorf("web-pfx-raw is not the PKCS#12 of the certificate: %v", err)
	}

	versions := map[string]string{}
	for _, ov := range resp.GetObjectVersion() {
		versions[ov.GetId()] = ov.GetVersion()
	}
	if versions["secret/db-password"] != v2 || versions["secret/first-password"] != v1 || versions["cert/web-pem"] != pemCert.Version {
		t.Errorf("object versions = %v", versions)
	}
	if strings.Contains(h.logs.String(), canary) {
		t.Error("a secret value was logged")
	}
}

func TestVersionHistoryReturnsExactlyTheNewestNEnabledVersions(t *testing.T) {
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	h := newHarness(t, harnessOptions{now: clock})
	var ids []string
	for i := range 5 {
		id, err := h.vault.SetSecret("rotated", canary+"-"+string(rune('a'+i)), nil)
		must(t, err)
		ids = append(ids, id)
		mu.Lock()
		now = now.Add(time.Minute)
		mu.Unlock()
	}
	must(t, h.vault.SetSecretEnabled("rotated", ids[3], false))

	files, resp, err := h.mount(t, h.attributes(t, []string{"objectName: rotated\nobjectType: secret\nobjectVersionHistory: 3"}, nil))
	if err != nil {
		t.Fatalf("Mount: %v", err)
	}
	if len(files) != 3 {
		t.Fatalf("got %d files, want exactly 3: %v", len(files), keys(files))
	}
	want := map[string]string{"rotated/0": canary + "-e", "rotated/1": canary + "-c", "rotated/2": canary + "-b"}
	for path, value := range want {
		if f := files[path]; f == nil || string(f.Contents) != value {
			t.Errorf("%s: wrong or missing", path)
		}
	}
	if len(resp.GetObjectVersion()) != 3 {
		t.Errorf("object versions = %v", resp.GetObjectVersion())
	}
}

// TestVersionHistoryTakesTheCurrentVersionAsNewestWithinOneSecond: the
// service lists versions by ID and times them to the second, so two
// versions created within one second are ordered by the object's current
// version. With random version IDs, listed order alone would put the
// older first in about half of the secrets.
func TestVersionHistoryTakesTheCurrentVersionAsNewestWithinOneSecond(t *testing.T) {
	now := time.Now().Truncate(time.Second)
	h := newHarness(t, harnessOptions{now: func() time.Time { return now }})
	var objects []string
	for i := range 8 {
		name := fmt.Sprintf("rotated-%d", i)
		for _, suffix := range []string{"-old", "-new"} {
			_, err := h.vault.SetSecret(name, canary+suffix, nil)
			must(t, err)
		}
		objects = append(objects, "objectName: "+name+"\nobjectType: secret\nobjectVersionHistory: 2")
	}
	files, _, err := h.mount(t, h.attributes(t, objects, nil))
	if err != nil {
		t.Fatalf("Mount: %v", err)
	}
	for i := range 8 {
		newest, previous := files[fmt.Sprintf("rotated-%d/0", i)], files[fmt.Sprintf("rotated-%d/1", i)]
		if newest == nil || previous == nil || string(newest.Contents) != canary+"-new" || string(previous.Contents) != canary+"-old" {
			t.Errorf("rotated-%d: /0 and /1 are not the newest and the previous version", i)
		}
	}
}

func TestParameterErrorsAreInvalidArgumentWithAnActionableMessage(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	ok := []string{"objectName: db-password\nobjectType: secret"}
	tests := []struct {
		name      string
		objects   []string
		overrides map[string]string
		want      string
	}{
		{"a missing keyvaultName", ok, map[string]string{"keyvaultName": ""}, "keyvaultName is not set"},
		{"an invalid vault name", ok, map[string]string{"keyvaultName": "bad_name"}, `keyvaultName "bad_name" is not a valid key vault name`},
		{"a missing tenant", ok, map[string]string{"tenantID": ""}, "tenantID is not set"},
		{"a tenant that is not a GUID", ok, map[string]string{"tenantID": "contoso.onmicrosoft.com"}, "is not a GUID"},
		{"a missing clientID", ok, map[string]string{"clientID": ""}, "clientID is not set"},
		{"pod identity", ok, map[string]string{"usePodIdentity": "true"}, "usePodIdentity=true is not supported"},
		{"an unknown cloud", ok, map[string]string{"cloudName": "AzureMoonCloud"}, `cloudName "AzureMoonCloud" is not known`},
		{"no ServiceAccount token", ok, map[string]string{"csi.storage.k8s.io/serviceAccount.tokens": ""}, "no ServiceAccount token was passed"},
		{"a token for another audience", ok, map[string]string{"csi.storage.k8s.io/serviceAccount.tokens": `{"api://other":{"token":"x"}}`}, "no ServiceAccount token for audience api://AzureADTokenExchange"},
		{"no objects", nil, map[string]string{"objects": ""}, "objects is not set"},
		{"objects that are not YAML", nil, map[string]string{"objects": "array: [unclosed"}, "objects is not valid YAML"},
		{"an object without a name", []string{"objectType: secret"}, nil, "objects entry 0 has no objectName"},
		{"an unknown object type", []string{"objectName: a\nobjectType: blob"}, nil, `objectType "blob" is not supported`},
		{"an unknown encoding", []string{"objectName: a\nobjectType: secret\nobjectEncoding: rot13"}, nil, `objectEncoding "rot13" is not supported`},
		{"pfx on a key", []string{"objectName: a\nobjectType: key\nobjectFormat: pfx"}, nil, "objectFormat pfx is only supported with objectType secret"},
		{"two objects writing one file", []string{"objectName: a\nobjectType: secret", "objectName: a\nobjectType: cert"}, nil, `both write file "a"`},
		{"a pinned version with history", []string{"objectName: a\nobjectType: secret\nobjectVersion: 0123\nobjectVersionHistory: 2"}, nil, "cannot be combined"},
		{"a bad file permission", []string{"objectName: a\nobjectType: secret\nfilePermission: rw-r--r--"}, nil, "is not an octal file mode"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := h.mount(t, h.attributes(t, tt.objects, tt.overrides))
			st := status.Convert(err)
			if st.Code() != codes.InvalidArgument || !strings.Contains(st.Message(), tt.want) {
				t.Errorf("Mount = %v, want InvalidArgument containing %q", err, tt.want)
			}
		})
	}
}

func TestVaultAndIdentityFailuresKeepTheirRealCause(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	_, err := h.vault.SetSecret("disabled", canary, &keyvault.SecretOptions{Disabled: true})
	must(t, err)
	_, err = h.vault.SetSecret("plain", canary, nil)
	must(t, err)
	locked, err := h.fake.CreateVault(keyvault.VaultConfig{Name: "locked", TenantID: tenantID})
	must(t, err)
	_, err = locked.SetSecret("db-password", canary, nil)
	must(t, err)
	walled, err := h.fake.CreateVault(keyvault.VaultConfig{Name: "walled", TenantID: tenantID,
		RoleAssignments: []keyvault.RoleAssignment{{PrincipalID: clientID, Role: keyvault.RoleSecretsUser}},
		Network:         keyvault.NetworkRules{DefaultDeny: true}})
	must(t, err)
	_, err = walled.SetSecret("db-password", canary, nil)
	must(t, err)
	private, err := h.fake.CreateVault(keyvault.VaultConfig{Name: "private", TenantID: tenantID,
		RoleAssignments: []keyvault.RoleAssignment{{PrincipalID: clientID, Role: keyvault.RoleSecretsUser}},
		Network:         keyvault.NetworkRules{PublicNetworkAccessDisabled: true}})
	must(t, err)
	_, err = private.SetSecret("db-password", canary, nil)
	must(t, err)

	secret := []string{"objectName: db-password\nobjectType: secret"}
	tests := []struct {
		name      string
		objects   []string
		overrides map[string]string
		code      codes.Code
		want      []string
	}{
		{"a missing secret is NotFound naming it and SecretNotFound", secret, nil, codes.NotFound, []string{`secret "db-password" in key vault "contoso"`, "SecretNotFound (HTTP 404)"}},
		{"a disabled secret is PermissionDenied with SecretDisabled", []string{"objectName: disabled\nobjectType: secret"}, nil, codes.PermissionDenied, []string{`secret "disabled"`, "Forbidden/SecretDisabled (HTTP 403)"}},
		{"a missing role is PermissionDenied with ForbiddenByRbac", secret, map[string]string{"keyvaultName": "locked"}, codes.PermissionDenied, []string{`key vault "locked"`, "Forbidden/ForbiddenByRbac"}},
		{"the vault firewall is PermissionDenied with ForbiddenByFirewall", secret, map[string]string{"keyvaultName": "walled"}, codes.PermissionDenied, []string{"Forbidden/ForbiddenByFirewall", "Client address"}},
		{"disabled public access is PermissionDenied with ForbiddenByConnection", secret, map[string]string{"keyvaultName": "private"}, codes.PermissionDenied, []string{"Forbidden/ForbiddenByConnection"}},
		{"an unknown vault name fails its DNS lookup", secret, map[string]string{"keyvaultName": "typo-vault"}, codes.Unavailable, []string{"DNS lookup of typo-vault.vault.azure.net failed", "no such host"}},
		{"an identity not federated with the ServiceAccount fails with AADSTS70021", secret, map[string]string{"csi.storage.k8s.io/serviceAccount.name": "other", "csi.storage.k8s.io/pod.namespace": "other"}, codes.Unknown, nil},
		{"an unknown client ID fails with AADSTS700016", secret, map[string]string{"clientID": "0e1f2a3b-0000-4000-8000-0000000000ff"}, codes.Unauthenticated, []string{"AADSTS700016"}},
		{"pfx on a plain secret fails naming the content type", []string{"objectName: plain\nobjectType: secret\nobjectFormat: pfx"}, nil, codes.FailedPrecondition, []string{"objectFormat pfx needs a certificate's PKCS#12 secret"}},
		{"a version history of a missing secret is NotFound", []string{"objectName: nothing\nobjectType: secret\nobjectVersionHistory: 2"}, nil, codes.NotFound, []string{"SecretNotFound"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			attrs := h.attributes(t, tt.objects, tt.overrides)
			if tt.want == nil { // the token names another ServiceAccount than the federated one
				token, err := h.issuer.Assertion("system:serviceaccount:other:other", "api://AzureADTokenExchange", time.Hour)
				must(t, err)
				attrs["csi.storage.k8s.io/serviceAccount.tokens"] = `{"api://AzureADTokenExchange":{"token":"` + token + `"}}`
				tt.code, tt.want = codes.Unauthenticated, []string{"AADSTS70021", "No matching federated identity record"}
			}
			_, _, err := h.mount(t, attrs)
			st := status.Convert(err)
			if st.Code() != tt.code {
				t.Errorf("code = %s, want %s: %s", st.Code(), tt.code, st.Message())
			}
			for _, w := range tt.want {
				if !strings.Contains(st.Message(), w) {
					t.Errorf("message %q does not contain %q", st.Message(), w)
				}
			}
			if strings.Contains(st.Message(), canary) {
				t.Error("the message contains the secret value")
			}
		})
	}
	if strings.Contains(h.logs.String(), canary) {
		t.Error("a secret value was logged")
	}
}

func TestAThrottledVaultIsRetriedWithinTheMountDeadline(t *testing.T) {
	h := newHarness(t, harnessOptions{mountTimeout: 20 * time.Second})
	for _, n := range []string{"a", "b", "c"} {
		_, err := h.vault.SetSecret(n, canary+n, nil)
		must(t, err)
	}
	objects := []string{"objectName: a\nobjectType: secret", "objectName: b\nobjectType: secret", "objectName: c\nobjectType: secret"}
	// Warm the token cache, then allow one request per second: the second
	// and third reads get 429 with Retry-After and succeed on retry.
	if _, _, err := h.mount(t, h.attributes(t, objects[:1], nil)); err != nil {
		t.Fatal(err)
	}
	must(t, h.vault.SetRateLimit(&keyvault.RateLimit{Requests: 1, Window: time.Second}))
	start := time.Now()
	files, _, err := h.mount(t, h.attributes(t, objects, nil))
	if err != nil {
		t.Fatalf("Mount against a throttling vault: %v", err)
	}
	if len(files) != 3 {
		t.Errorf("got %d files", len(files))
	}
	throttled := requestCount(t, h, "GetSecret", "429")
	if throttled < 1 {
		t.Errorf("no request was throttled (kvsync_provider_requests_total{code=429} = %v)", throttled)
	}
	t.Logf("3 reads with %v throttled tries took %s", throttled, time.Since(start))
}

func TestAVaultThatNeverAnswersFailsAtTheMountDeadline(t *testing.T) {
	blackhole, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	defer blackhole.Close()
	go func() {
		for {
			c, err := blackhole.Accept()
			if err != nil {
				return
			}
			defer c.Close() // accept and never answer
		}
	}()
	h := newHarness(t, harnessOptions{mountTimeout: 2 * time.Second, transport: func(f *fakevault.Server) *http.Client {
		tr := f.Transport()
		tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			if strings.HasPrefix(addr, "silent.") {
				var d net.Dialer
				return d.DialContext(ctx, "tcp", blackhole.Addr().String())
			}
			return f.DialContext(ctx, network, addr)
		}
		return &http.Client{Transport: tr}
	}})
	_, err = h.fake.CreateVault(keyvault.VaultConfig{Name: "silent", TenantID: tenantID})
	must(t, err)
	start := time.Now()
	_, _, err = h.mount(t, h.attributes(t, []string{"objectName: a\nobjectType: secret"}, map[string]string{"keyvaultName": "silent"}))
	elapsed := time.Since(start)
	st := status.Convert(err)
	if st.Code() != codes.DeadlineExceeded || !strings.Contains(st.Message(), `key vault "silent"`) {
		t.Errorf("Mount = %v, want DeadlineExceeded naming the vault", err)
	}
	if elapsed < 2*time.Second || elapsed > 5*time.Second {
		t.Errorf("Mount failed after %s, want at its 2s deadline", elapsed)
	}
}

func TestTokensAreCachedAcrossMountsPerServiceAccount(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	_, err := h.vault.SetSecret("db-password", canary, nil)
	must(t, err)
	attrs := h.attributes(t, []string{"objectName: db-password\nobjectType: secret"}, nil)
	for range 3 {
		if _, _, err := h.mount(t, attrs); err != nil {
			t.Fatal(err)
		}
	}
	if got := requestCount(t, h, "Token", "200"); got != 1 {
		t.Errorf("%v token requests for 3 Mounts of one identity, want 1", got)
	}
}

func TestAnIdentityDroppedFromTheCacheMountsWithItsNewServiceAccountToken(t *testing.T) {
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	// Vault tokens live a minute, so the SDK asks Entra ID for a new one,
	// presenting the identity's ServiceAccount token, on every Mount.
	h := newHarness(t, harnessOptions{now: clock, tokenLifetime: time.Minute, maxCachedIdentities: 2})
	_, err := h.vault.SetSecret("db-password", canary, nil)
	must(t, err)
	clientIDs := []string{clientID, "0e1f2a3b-0000-4000-8000-00000000cc02", "0e1f2a3b-0000-4000-8000-00000000cc03"}
	for _, id := range clientIDs[1:] {
		must(t, h.fake.Entra().AddApplication(tenantID, entra.Application{ClientID: id, ObjectID: id,
			FederatedCredentials: []entra.FederatedCredential{{Issuer: h.issuer.URL(), Subject: "system:serviceaccount:" + namespace + ":" + saName}}}))
		must(t, h.vault.AssignRole(keyvault.RoleAssignment{PrincipalID: id, Role: keyvault.RoleSecretsUser}))
	}
	objects := []string{"objectName: db-password\nobjectType: secret"}

	// Three identities share a cache of two, so every Mount after the first
	// two brings back an identity that was dropped. Before each round the
	// previous round's ServiceAccount tokens (valid for 10 minutes) expire,
	// beyond the 5 minutes of clock skew Entra ID allows.
	for round := range 12 {
		for _, id := range clientIDs {
			files, _, err := h.mount(t, h.attributes(t, objects, map[string]string{"clientID": id}))
			if err != nil {
				t.Fatalf("round %d, Mount as %s: %v", round, id, err)
			}
			if f := files["db-password"]; f == nil || string(f.Contents) != canary {
				t.Fatalf("round %d, Mount as %s: db-password is wrong or missing", round, id)
			}
		}
		mu.Lock()
		now = now.Add(20 * time.Minute)
		mu.Unlock()
	}
	if got, want := requestCount(t, h, "Token", "200"), float64(12*len(clientIDs)); got != want {
		t.Errorf("%v token requests, want one per Mount (%v)", got, want)
	}
}

func TestTheSocketIsOwnerOnly(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	info, err := os.Stat(h.socket)
	must(t, err)
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("socket mode %o, want 600", perm)
	}
}

// requestCount returns kvsync_provider_requests_total for an operation and
// code.
func requestCount(t *testing.T, h *harness, operation, code string) float64 {
	t.Helper()
	families, err := h.registry.Gather()
	must(t, err)
	for _, f := range families {
		if f.GetName() != "kvsync_provider_requests_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["operation"] == operation && labels["code"] == code {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestAThrottledVaultsRetryAfterReachesTheController(t *testing.T) {
	h := newHarness(t, harnessOptions{mountTimeout: 2 * time.Second})
	for _, name := range []string{"a", "b"} {
		_, err := h.vault.SetSecret(name, canary, nil)
		must(t, err)
	}
	must(t, h.vault.SetRateLimit(&keyvault.RateLimit{Requests: 1, Window: 30 * time.Second}))
	_, _, err := h.mount(t, h.attributes(t, []string{"objectName: a\nobjectType: secret", "objectName: b\nobjectType: secret"}, nil))
	st := status.Convert(err)
	if st.Code() != codes.ResourceExhausted || !strings.Contains(st.Message(), "Throttled") {
		t.Fatalf("Mount = %v, want ResourceExhausted naming Throttled", err)
	}
	var delay time.Duration
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.RetryInfo); ok {
			delay = info.GetRetryDelay().AsDuration()
		}
	}
	if delay < 25*time.Second || delay > 30*time.Second {
		t.Errorf("RetryInfo delay = %s, want the vault's Retry-After (about 30s)", delay)
	}
}
