package keyvault_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"slices"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
	pkcs12 "software.sslmate.com/src/go-pkcs12"

	"github.com/kvsync/kvsync/fakevault/keyvault"
	"github.com/kvsync/kvsync/fakevault/pki"
)

// sameKey reports whether priv is the private half of pub.
func sameKey(priv any, pub any) bool {
	switch k := priv.(type) {
	case *rsa.PrivateKey:
		return k.PublicKey.Equal(pub)
	case *ecdsa.PrivateKey:
		return k.PublicKey.Equal(pub)
	}
	return false
}

func TestACertificateExistsAsCertificateKeyAndManagedSecret(t *testing.T) {
	tests := []struct {
		name        string
		keyType     pki.KeyType
		contentType string
	}{
		{"an RSA certificate with a PKCS#12 secret", pki.RSA2048, keyvault.ContentTypePKCS12},
		{"an EC certificate with a PEM secret", pki.ECP256, keyvault.ContentTypePEM},
		{"an EC P-384 certificate with a PKCS#12 secret", pki.ECP384, keyvault.ContentTypePKCS12},
	}
	h := newHarness(t)
	v := h.vault(t, keyvault.VaultConfig{Name: "kv-certs", RoleAssignments: []keyvault.RoleAssignment{
		{PrincipalID: oidApp1, Role: "Key Vault Certificate User"}}})
	certs := h.certificates(t, v, tokenApp1)
	keys := h.keys(t, v, tokenApp1)
	secrets, _ := h.secrets(t, v, tokenApp1)
	ctx := context.Background()
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := "tls-" + string(rune('a'+i))
			created, err := v.CreateCertificate(name, keyvault.CertificateOptions{CA: h.ca, DNSNames: []string{"app.example.com"},
				KeyType: tt.keyType, ContentType: tt.contentType, Tags: map[string]string{"env": "test"}})
			if err != nil {
				t.Fatalf("CreateCertificate: %v", err)
			}
			leaf := created.Leaf
			base := "https://kv-certs.vault.azure.net/"

			// As a certificate, latest and by version.
			for _, version := range []string{"", created.Version} {
				got, err := certs.GetCertificate(ctx, name, version, nil)
				if err != nil {
					t.Fatalf("GetCertificate(%q): %v", version, err)
				}
				if string(got.CER) != string(leaf.Certificate.Raw) {
					t.Error("cer is not the DER of the issued certificate")
				}
				sum := sha1.Sum(leaf.Certificate.Raw)
				if string(got.X509Thumbprint) != string(sum[:]) {
					t.Error("x5t is not the SHA-1 thumbprint")
				}
				if string(*got.ID) != base+"certificates/"+name+"/"+created.Version ||
					string(*got.KID) != base+"keys/"+name+"/"+created.Version ||
					string(*got.SID) != base+"secrets/"+name+"/"+created.Version {
					t.Errorf("ids = %s %s %s", *got.ID, *got.KID, *got.SID)
				}
				if got.Policy == nil || *got.Policy.SecretProperties.ContentType != tt.contentType {
					t.Errorf("policy = %+v", got.Policy)
				}
				if got.Attributes.Expires.Unix() != leaf.Certificate.NotAfter.Unix() || *got.Tags["env"] != "test" {
					t.Errorf("attributes/tags = %+v %v", got.Attributes, got.Tags)
				}
			}

			// As a key: the public JWK.
			key, err := keys.GetKey(ctx, name, created.Version, nil)
			if err != nil {
				t.Fatalf("GetKey: %v", err)
			}
			if !*key.Managed || string(*key.Key.KID) != base+"keys/"+name+"/"+created.Version {
				t.Errorf("key managed %v kid %s", *key.Managed, *key.Key.KID)
			}
			switch pub := leaf.Certificate.PublicKey.(type) {
			case *rsa.PublicKey:
				if string(*key.Key.Kty) != "RSA" || new(big.Int).SetBytes(key.Key.N).Cmp(pub.N) != 0 ||
					new(big.Int).SetBytes(key.Key.E).Int64() != int64(pub.E) {
					t.Error("RSA JWK does not match the certificate key")
				}
				if len(key.Key.KeyOps) != 6 {
					t.Errorf("key_ops = %d", len(key.Key.KeyOps))
				}
			case *ecdsa.PublicKey:
				raw, _ := pub.Bytes()
				coord := raw[1:]
				wantCrv := map[pki.KeyType]string{pki.ECP256: "P-256", pki.ECP384: "P-384"}[tt.keyType]
				if string(*key.Key.Kty) != "EC" || string(*key.Key.Crv) != wantCrv ||
					string(key.Key.X) != string(coord[:len(coord)/2]) || string(key.Key.Y) != string(coord[len(coord)/2:]) {
					t.Error("EC JWK does not match the certificate key")
				}
			}

			// As a managed secret.
			sec, err := secrets.GetSecret(ctx, name, created.Version, nil)
			if err != nil {
				t.Fatalf("GetSecret: %v", err)
			}
			if !*sec.Managed || string(*sec.KID) != base+"keys/"+name+"/"+created.Version || *sec.ContentType != tt.contentType {
				t.Errorf("secret managed %v kid %v ct %v", *sec.Managed, *sec.KID, *sec.ContentType)
			}
			checkCertificateSecret(t, *sec.Value, tt.contentType, leaf)

			// outContentType converts to the other format.
			other := keyvault.ContentTypePEM
			if tt.contentType == keyvault.ContentTypePEM {
				other = keyvault.ContentTypePKCS12
			}
			ct := azsecrets.ContentType(other)
			conv, err := secrets.GetSecret(ctx, name, "", &azsecrets.GetSecretOptions{OutContentType: &ct})
			if err != nil {
				t.Fatalf("GetSecret(outContentType): %v", err)
			}
			if *conv.ContentType != other {
				t.Errorf("converted content type = %s", *conv.ContentType)
			}
			checkCertificateSecret(t, *conv.Value, other, leaf)
		})
	}

	t.Run("versions of certificates and keys page through the SDKs", func(t *testing.T) {
		second, err := v.CreateCertificate("tls-a", keyvault.CertificateOptions{CA: h.ca})
		if err != nil {
			t.Fatal(err)
		}
		var certVersions, keyVersions []string
		cp := certs.NewListCertificatePropertiesVersionsPager("tls-a", nil)
		for cp.More() {
			page, err := cp.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range page.Value {
				certVersions = append(certVersions, p.ID.Version())
			}
		}
		kp := keys.NewListKeyPropertiesVersionsPager("tls-a", nil)
		for kp.More() {
			page, err := kp.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range page.Value {
				keyVersions = append(keyVersions, p.KID.Version())
			}
		}
		// Both list by version ID, the certificate's and its key's IDs
		// being the same.
		if len(certVersions) != 2 || !slices.Contains(certVersions, second.Version) || !slices.IsSorted(certVersions) || !slices.Equal(keyVersions, certVersions) {
			t.Errorf("cert versions %v, key versions %v, want both with %s, by version ID", certVersions, keyVersions, second.Version)
		}
		var listed int
		lp := certs.NewListCertificatePropertiesPager(nil)
		for lp.More() {
			page, err := lp.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			listed += len(page.Value)
		}
		if listed != 3 {
			t.Errorf("listed %d certificates, want 3", listed)
		}
	})

	t.Run("the secret of a certificate cannot be set or deleted directly", func(t *testing.T) {
		admin, _ := h.secrets(t, v, tokenOwner)
		if err := v.AssignRole(keyvault.RoleAssignment{PrincipalID: oidOwner, Role: "Key Vault Administrator"}); err != nil {
			t.Fatal(err)
		}
		defer v.RemoveRoleAssignments(oidOwner)
		_, err := admin.SetSecret(ctx, "tls-a", azsecrets.SetSecretParameters{Value: ptr("x")}, nil)
		if se := asServiceError(t, err); se.Status != 403 {
			t.Errorf("set of a managed secret = %+v", se)
		}
		_, err = admin.DeleteSecret(ctx, "tls-a", nil)
		if se := asServiceError(t, err); se.Status != 403 {
			t.Errorf("delete of a managed secret = %+v", se)
		}
	})

	t.Run("disabling a certificate disables its secret", func(t *testing.T) {
		if err := v.SetCertificateEnabled("tls-b", "", false); err != nil {
			t.Fatal(err)
		}
		_, err := secrets.GetSecret(ctx, "tls-b", "", nil)
		if se := asServiceError(t, err); se.InnerCode != "SecretDisabled" {
			t.Errorf("get of a disabled certificate's secret = %+v", se)
		}
		got, err := certs.GetCertificate(ctx, "tls-b", "", nil)
		if err != nil || *got.Attributes.Enabled {
			t.Errorf("certificate after disable: %v %v", got.Attributes, err)
		}
	})
}

func checkCertificateSecret(t *testing.T, value, contentType string, leaf *pki.Leaf) {
	t.Helper()
	switch contentType {
	case keyvault.ContentTypePEM:
		rest := []byte(value)
		block, rest := pem.Decode(rest)
		if block == nil || block.Type != "PRIVATE KEY" {
			t.Fatalf("PEM does not start with a private key")
		}
		key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil || !sameKey(key, leaf.Certificate.PublicKey) {
			t.Errorf("PEM key does not match: %v", err)
		}
		var chain [][]byte
		for {
			block, rest = pem.Decode(rest)
			if block == nil {
				break
			}
			chain = append(chain, block.Bytes)
		}
		if len(chain) != 2 || string(chain[0]) != string(leaf.Chain[0]) || string(chain[1]) != string(leaf.Chain[1]) {
			t.Errorf("PEM chain has %d certificates, want leaf then CA", len(chain))
		}
	case keyvault.ContentTypePKCS12:
		pfx, err := base64.StdEncoding.DecodeString(value)
		if err != nil {
			t.Fatalf("PKCS#12 value is not base64: %v", err)
		}
		key, cert, cas, err := pkcs12.DecodeChain(pfx, "")
		if err != nil {
			t.Fatalf("decoding password-less PKCS#12: %v", err)
		}
		if !sameKey(key, leaf.Certificate.PublicKey) || !cert.Equal(leaf.Certificate) || len(cas) != 1 {
			t.Errorf("PKCS#12 content does not match the certificate")
		}
	}
}

func TestStandaloneKeysAnswerTheirPublicJWK(t *testing.T) {
	h := newHarness(t)
	v := h.vault(t, keyvault.VaultConfig{Name: "kv-keys", UseAccessPolicies: true, AccessPolicies: []keyvault.AccessPolicy{{ObjectID: oidApp1, Keys: []string{"get", "list"}}}})
	tests := []struct {
		name    string
		keyType pki.KeyType
		kty     string
		ops     []string
	}{
		{"an RSA key", pki.RSA2048, "RSA", nil},
		{"an EC key limited to sign", pki.ECP256, "EC", []string{"sign"}},
	}
	keys := h.keys(t, v, tokenApp1)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := "key-" + string(rune('a'+i))
			version, err := v.CreateKey(name, keyvault.KeyOptions{Type: tt.keyType, Operations: tt.ops})
			if err != nil {
				t.Fatal(err)
			}
			got, err := keys.GetKey(context.Background(), name, "", nil)
			if err != nil {
				t.Fatalf("GetKey: %v", err)
			}
			if got.Key.KID.Version() != version || string(*got.Key.Kty) != tt.kty || got.Managed != nil {
				t.Errorf("key = %s %s managed %v", *got.Key.KID, *got.Key.Kty, got.Managed)
			}
			if tt.ops != nil && (len(got.Key.KeyOps) != 1 || string(*got.Key.KeyOps[0]) != "sign") {
				t.Errorf("key_ops = %v", got.Key.KeyOps)
			}
			if got.Key.D != nil {
				t.Error("the private key left the vault")
			}
		})
	}
	t.Run("a missing key is KeyNotFound", func(t *testing.T) {
		_, err := keys.GetKey(context.Background(), "nope", "", nil)
		se := asServiceError(t, err)
		if se.Status != 404 || se.Code != "KeyNotFound" {
			t.Errorf("got %+v", se)
		}
	})
	t.Run("keys list through the SDK pager", func(t *testing.T) {
		page, err := keys.NewListKeyPropertiesPager(nil).NextPage(context.Background())
		if err != nil || len(page.Value) != 2 {
			t.Errorf("listed %d keys: %v", len(page.Value), err)
		}
	})
	t.Run("an access policy without certificates permissions refuses certificates", func(t *testing.T) {
		_, err := h.certificates(t, v, tokenApp1).GetCertificate(context.Background(), "x", "", nil)
		se := asServiceError(t, err)
		if se.InnerCode != "AccessDenied" {
			t.Errorf("got %+v", se)
		}
	})
}
