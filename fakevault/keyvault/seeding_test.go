package keyvault_test

import (
	"context"
	"errors"
	"net/netip"
	"testing"

	"github.com/kvsync/kvsync/fakevault/keyvault"
	"github.com/kvsync/kvsync/fakevault/pki"
)

func TestSeedingMethodsChangeTheVaultForTheNextRequest(t *testing.T) {
	h := newHarness(t)
	v := h.vault(t, keyvault.VaultConfig{Name: "kv-seeding", UseAccessPolicies: true, AccessPolicies: []keyvault.AccessPolicy{{ObjectID: oidApp1, Secrets: []string{"get"}}}})
	c, _ := h.secrets(t, v, tokenApp1)
	ctx := context.Background()
	version, err := v.SetSecret("s", "v", &keyvault.SecretOptions{ContentType: "text/plain", Tags: map[string]string{"k": "v"}})
	if err != nil {
		t.Fatal(err)
	}
	if v.Name() != "kv-seeding" || v.URL() != "https://kv-seeding.vault.azure.net/" {
		t.Errorf("name %q url %q", v.Name(), v.URL())
	}

	t.Run("disabling a version refuses it, enabling it again serves it", func(t *testing.T) {
		if err := v.SetSecretEnabled("s", version, false); err != nil {
			t.Fatal(err)
		}
		if _, err := c.GetSecret(ctx, "s", "", nil); asServiceError(t, err).InnerCode != "SecretDisabled" {
			t.Errorf("disabled secret served: %v", err)
		}
		if err := v.SetSecretEnabled("s", "", true); err != nil {
			t.Fatal(err)
		}
		if _, err := c.GetSecret(ctx, "s", "", nil); err != nil {
			t.Errorf("enabled secret refused: %v", err)
		}
	})

	t.Run("an access policy change applies at once", func(t *testing.T) {
		if err := v.SetAccessPolicy(keyvault.AccessPolicy{ObjectID: oidApp1, Secrets: []string{"list"}}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.GetSecret(ctx, "s", "", nil); asServiceError(t, err).InnerCode != "AccessDenied" {
			t.Errorf("get after losing the permission: %v", err)
		}
		if err := v.SetAccessPolicy(keyvault.AccessPolicy{ObjectID: oidApp1, Secrets: []string{"all"}}); err != nil {
			t.Fatal(err)
		}
		if err := v.SetAccessPolicy(keyvault.AccessPolicy{ObjectID: oidApp1, Secrets: []string{"fly"}}); !errors.Is(err, keyvault.ErrInvalidConfig) {
			t.Errorf("unknown permission accepted: %v", err)
		}
	})

	t.Run("a network change applies at once", func(t *testing.T) {
		if err := v.SetNetworkRules(keyvault.NetworkRules{AllowedNetworks: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.GetSecret(ctx, "s", "", nil); asServiceError(t, err).InnerCode != "ForbiddenByFirewall" {
			t.Errorf("firewall did not apply: %v", err)
		}
		if err := v.SetNetworkRules(keyvault.NetworkRules{}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.GetSecret(ctx, "s", "", nil); err != nil {
			t.Errorf("open network refused: %v", err)
		}
		if got := v.Config().Network; got.DefaultDeny || len(got.AllowedNetworks) != 0 {
			t.Errorf("Config().Network = %+v", got)
		}
	})

	t.Run("a rate limit can be set and cleared", func(t *testing.T) {
		if err := v.SetRateLimit(&keyvault.RateLimit{Requests: 1, Window: 3600e9}); err != nil {
			t.Fatal(err)
		}
		resp, _ := h.raw(t, "GET", v.URL()+"secrets/s/?api-version=7.6", tokenApp1, "")
		resp2, _ := h.raw(t, "GET", v.URL()+"secrets/s/?api-version=7.6", tokenApp1, "")
		if resp.StatusCode != 200 || resp2.StatusCode != 429 || resp2.Header.Get("Retry-After") != "3600" {
			t.Errorf("statuses %d %d Retry-After %q", resp.StatusCode, resp2.StatusCode, resp2.Header.Get("Retry-After"))
		}
		if err := v.SetRateLimit(nil); err != nil {
			t.Fatal(err)
		}
		if resp, _ := h.raw(t, "GET", v.URL()+"secrets/s/?api-version=7.6", tokenApp1, ""); resp.StatusCode != 200 {
			t.Errorf("after clearing the limit: %d", resp.StatusCode)
		}
		if err := v.SetRateLimit(&keyvault.RateLimit{}); !errors.Is(err, keyvault.ErrInvalidConfig) {
			t.Errorf("empty rate limit accepted: %v", err)
		}
	})

	t.Run("deleting and purging through the seeding methods", func(t *testing.T) {
		if err := v.DeleteSecret("s"); err != nil {
			t.Fatal(err)
		}
		if err := v.PurgeDeletedSecret("s"); err != nil {
			t.Fatal(err)
		}
		err := v.PurgeDeletedSecret("s")
		if !errors.Is(err, &keyvault.Error{Status: 404, Code: "SecretNotFound"}) {
			t.Errorf("second purge = %v", err)
		}
		if _, err := v.SecretVersions("s"); err == nil {
			t.Error("purged secret still has versions")
		}
	})

	t.Run("keys and certificates list and toggle their versions", func(t *testing.T) {
		k1, err := v.CreateKey("signing", keyvault.KeyOptions{Type: pki.ECP256})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.CreateKey("signing", keyvault.KeyOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := v.SetKeyEnabled("signing", k1, false); err != nil {
			t.Fatal(err)
		}
		infos, err := v.KeyVersions("signing")
		if err != nil || len(infos) != 2 || infos[0].Enabled || !infos[1].Enabled {
			t.Errorf("KeyVersions = %+v, %v", infos, err)
		}
		cert, err := v.CreateCertificate("web", keyvault.CertificateOptions{CA: h.ca, ContentType: keyvault.ContentTypePEM})
		if err != nil {
			t.Fatal(err)
		}
		cinfos, err := v.CertificateVersions("web")
		if err != nil || len(cinfos) != 1 || cinfos[0].Version != cert.Version || cinfos[0].ContentType != keyvault.ContentTypePEM {
			t.Errorf("CertificateVersions = %+v, %v", cinfos, err)
		}
		sinfos, err := v.SecretVersions("web")
		if err != nil || len(sinfos) != 1 || !sinfos[0].Managed || sinfos[0].Version != cert.Version {
			t.Errorf("SecretVersions of a certificate = %+v, %v", sinfos, err)
		}
		if _, err := v.CreateCertificate("signing", keyvault.CertificateOptions{CA: h.ca}); !errors.Is(err, keyvault.ErrNameInUse) {
			t.Errorf("certificate over a standalone key: %v", err)
		}
		if _, err := v.CreateCertificate("web", keyvault.CertificateOptions{CA: h.ca, ContentType: "text/plain"}); !errors.Is(err, keyvault.ErrInvalidConfig) {
			t.Errorf("unknown content type accepted: %v", err)
		}
		if _, err := v.SetSecret("web", "x", nil); !errors.Is(err, &keyvault.Error{Status: 403}) {
			t.Errorf("seeding over a managed secret: %v", err)
		}
	})
}
