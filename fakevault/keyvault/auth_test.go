package keyvault_test

import (
	"context"
	"net/http"
	"net/netip"
	"regexp"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"github.com/kvsync/kvsync/fakevault/keyvault"
)

func TestARequestWithoutATokenGetsTheChallenge(t *testing.T) {
	h := newHarness(t)
	h.vault(t, rbacVault("kv-challenge"))
	resp, body := h.raw(t, http.MethodGet, "https://kv-challenge.vault.azure.net/secrets/x/?api-version=2026-04-01", "", "")
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("status = %d", resp.StatusCode)
	}
	if got := resp.Header.Get("WWW-Authenticate"); got != challengeValue {
		t.Errorf("WWW-Authenticate = %q\nwant %q", got, challengeValue)
	}
	if want := `{"error":{"code":"Unauthorized","message":"AKV10000: Request is missing a Bearer or PoP token."}}`; string(body) != want {
		t.Errorf("body = %s\nwant %s", body, want)
	}
}

func TestTheSDKAsksForTheChallengeTenantAndTheVaultScope(t *testing.T) {
	h := newHarness(t)
	v := h.vault(t, rbacVault("kv-scope", keyvault.RoleAssignment{PrincipalID: oidApp1, Role: "Key Vault Secrets Officer"}))
	c, cred := h.secrets(t, v, tokenApp1)
	// A PUT first: the SDK sends it without body until the challenge.
	if _, err := c.SetSecret(context.Background(), "first", azsecrets.SetSecretParameters{Value: ptr("with body")}, nil); err != nil {
		t.Fatalf("SetSecret: %v", err)
	}
	asked := cred.asked()
	if len(asked) != 1 {
		t.Fatalf("credential asked %d times, want 1", len(asked))
	}
	if asked[0].TenantID != tenantA || len(asked[0].Scopes) != 1 || asked[0].Scopes[0] != vaultScope {
		t.Errorf("credential asked for tenant %q scopes %v, want %q [%s]", asked[0].TenantID, asked[0].Scopes, tenantA, vaultScope)
	}
	got, err := c.GetSecret(context.Background(), "first", "", nil)
	if err != nil || *got.Value != "with body" {
		t.Errorf("the PUT lost its body: %v %v", got.Value, err)
	}
	challenged := h.journal.Filter(func(e journalEntry) bool { return e.Status == 401 })
	if len(challenged) != 1 || challenged[0].Method != http.MethodPut || challenged[0].ErrorCode != "Unauthorized" {
		t.Errorf("challenge entries = %+v", challenged)
	}
}

func TestTokensAreCheckedAsTheVaultChecksThem(t *testing.T) {
	h := newHarness(t)
	v := h.vault(t, rbacVault("kv-tokens", keyvault.RoleAssignment{PrincipalID: oidApp1, Role: "Key Vault Secrets User"}))
	if _, err := v.SetSecret("s", "v", nil); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		token   string
		status  int
		message string
	}{
		{"an expired token is TokenExpired", tokenExpired, 401, "[TokenExpired] Error validating token: 'S2S12086'."},
		{"a token not valid yet is TokenNotYetValid", tokenNotYet, 401, "[TokenNotYetValid] Error validating token: 'S2S12086'."},
		{"a token whose signature does not verify is AKV10046", tokenGarbage, 401,
			"AKV10046: Unable to resolve the key used for signature validation. EncodedJwtHeader: 'eyJhbGciOiJSUzI1NiJ9'."},
		{"a token for another audience is AKV10022", tokenARM, 401,
			"AKV10022: Invalid audience. Expected https://vault.azure.net, found: https://management.azure.com/."},
		{"a token from another tenant is AKV10032", tokenForeign, 401,
			"AKV10032: Invalid issuer. Expected one of https://sts.windows.net/" + tenantA + "/, found https://sts.windows.net/" + tenantB + "/."},
		{"a v2.0 token of the vault tenant is accepted", tokenV2Issuer, 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, cred := h.secrets(t, v, tt.token)
			_, err := c.GetSecret(context.Background(), "s", "", nil)
			if tt.status == 200 {
				if err != nil {
					t.Fatalf("GetSecret: %v", err)
				}
				return
			}
			se := asServiceError(t, err)
			if se.Status != tt.status || se.Code != "Unauthorized" || se.Message != tt.message {
				t.Errorf("got %d %s %q\nwant %d Unauthorized %q", se.Status, se.Code, se.Message, tt.status, tt.message)
			}
			if se.Header.Get("WWW-Authenticate") != challengeValue {
				t.Errorf("a 401 without the challenge: %q", se.Header.Get("WWW-Authenticate"))
			}
			// The SDK answers the challenge once more with a fresh token for
			// the same tenant before giving up.
			for _, a := range cred.asked() {
				if a.TenantID != tenantA {
					t.Errorf("credential asked for tenant %q", a.TenantID)
				}
			}
		})
	}
}

func TestTheAccessModelDecidesAsTheServiceDecides(t *testing.T) {
	h := newHarness(t)
	rbac := h.vault(t, keyvault.VaultConfig{Name: "kv-rbac", SubscriptionID: "77bd5893-0a63-449a-b3cf-e1ad7dcadaee",
		ResourceGroup: "rg-Sample", RoleAssignments: []keyvault.RoleAssignment{
			{PrincipalID: oidApp1, Role: "Key Vault Secrets User"},
			{PrincipalID: oidApp2, Role: "Key Vault Reader"},
			{PrincipalID: oidOwner, Role: "4633458b-17de-408a-b874-0445c86b69e6", Scope: "secrets/only-this"},
		}})
	policies := h.vault(t, keyvault.VaultConfig{Name: "kv-policies", UseAccessPolicies: true, AccessPolicies: []keyvault.AccessPolicy{
		{ObjectID: oidApp1, Secrets: []string{"Get", "List"}},
	}})
	for _, v := range []*keyvault.Vault{rbac, policies} {
		for _, name := range []string{"s", "only-this"} {
			if _, err := v.SetSecret(name, "value", nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	ctx := context.Background()
	get := func(v *keyvault.Vault, token, name string) func() error {
		return func() error {
			c, _ := h.secrets(t, v, token)
			_, err := c.GetSecret(ctx, name, "", nil)
			return err
		}
	}
	set := func(v *keyvault.Vault, token string) func() error {
		return func() error {
			c, _ := h.secrets(t, v, token)
			_, err := c.SetSecret(ctx, "s", azsecrets.SetSecretParameters{Value: ptr("new")}, nil)
			return err
		}
	}
	list := func(v *keyvault.Vault, token string) func() error {
		return func() error {
			c, _ := h.secrets(t, v, token)
			_, err := c.NewListSecretPropertiesPager(nil).NextPage(ctx)
			return err
		}
	}
	const rbacPrefix = "Caller is not authorized to perform action on resource.\r\n" +
		"If role assignments, deny assignments or role definitions were changed recently, please observe propagation time.\r\n" +
		"Caller: appid=" + appidApp + ";oid=%s;iss=" + stsA + "\r\n"
	tests := []struct {
		name      string
		call      func() error
		innerCode string
		message   []string // substrings
	}{
		{name: "a Secrets User may get a secret", call: get(rbac, tokenApp1, "s")},
		{name: "a Secrets User may list secrets", call: list(rbac, tokenApp1)},
		{name: "a Secrets User may not set a secret", call: set(rbac, tokenApp1), innerCode: "ForbiddenByRbac", message: []string{
			strings.Replace(rbacPrefix, "%s", oidApp1, 1),
			"Action: 'Microsoft.KeyVault/vaults/secrets/setSecret/action'\r\n",
			"Resource: '/subscriptions/77bd5893-0a63-449a-b3cf-e1ad7dcadaee/resourcegroups/rg-sample/providers/microsoft.keyvault/vaults/kv-rbac/secrets/s'\r\n",
			"Assignment: (not found)\r\nDenyAssignmentId: null\r\nDecisionReason: 'DeniedWithNoValidRBAC' \r\nVault: kv-rbac;location=eastus\r\n",
		}},
		{name: "a Reader may list secrets", call: list(rbac, tokenApp2)},
		{name: "a Reader may not read a value", call: get(rbac, tokenApp2, "s"), innerCode: "ForbiddenByRbac", message: []string{
			"Action: 'Microsoft.KeyVault/vaults/secrets/getSecret/action'"}},
		{name: "a role scoped to one secret reaches that secret", call: get(rbac, tokenOwner, "only-this")},
		{name: "a role scoped to one secret does not reach another", call: get(rbac, tokenOwner, "s"), innerCode: "ForbiddenByRbac",
			message: []string{strings.Replace(rbacPrefix, "%s", oidOwner, 1)}},
		{name: "a role scoped to one secret does not list the vault", call: list(rbac, tokenOwner), innerCode: "ForbiddenByRbac", message: []string{
			"Action: 'Microsoft.KeyVault/vaults/secrets/readMetadata/action'",
			"Resource: '/subscriptions/77bd5893-0a63-449a-b3cf-e1ad7dcadaee/resourcegroups/rg-sample/providers/microsoft.keyvault/vaults/kv-rbac'\r\n"}},
		{name: "access policies ignore role assignments", call: get(policies, tokenOwner, "s"), innerCode: "AccessDenied", message: []string{
			"The user, group or application 'appid=" + appidApp + ";oid=" + oidOwner + ";iss=" + stsA +
				"' does not have secrets get permission on key vault 'kv-policies;location=eastus'. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125287"}},
		{name: "an access policy with get may get", call: get(policies, tokenApp1, "s")},
		{name: "an access policy with list may list", call: list(policies, tokenApp1)},
		{name: "an access policy without set may not set", call: set(policies, tokenApp1), innerCode: "AccessDenied", message: []string{
			"does not have secrets set permission on key vault 'kv-policies;location=eastus'"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if tt.innerCode == "" {
				if err != nil {
					t.Fatalf("call failed: %v", err)
				}
				return
			}
			se := asServiceError(t, err)
			if se.Status != 403 || se.Code != "Forbidden" || se.InnerCode != tt.innerCode {
				t.Fatalf("got %d %s/%s, want 403 Forbidden/%s", se.Status, se.Code, se.InnerCode, tt.innerCode)
			}
			for _, m := range tt.message {
				if !strings.Contains(se.Message, m) {
					t.Errorf("message %q\nlacks %q", se.Message, m)
				}
			}
		})
	}
}

func TestNetworkRulesAreCheckedAfterTheTokenAndBeforeTheAccessModel(t *testing.T) {
	h := newHarness(t)
	loopback := netip.MustParsePrefix("127.0.0.0/8")
	corp := netip.MustParsePrefix("10.0.0.0/8")
	tests := []struct {
		name      string
		rules     keyvault.NetworkRules
		innerCode string
		message   string
	}{
		{name: "a firewall that does not allow 127.0.0.1 refuses it", rules: keyvault.NetworkRules{AllowedNetworks: []netip.Prefix{corp}},
			innerCode: "ForbiddenByFirewall",
			message: "Client address is not authorized and caller is not a trusted service.\r\nClient address: 127.0.0.1\r\n" +
				"Caller: appid=" + appidApp + ";oid=" + oidApp2 + ";iss=" + stsA + "\r\nVault: kv-net-0;location=eastus"},
		{name: "a firewall that denies by default refuses every public address", rules: keyvault.NetworkRules{DefaultDeny: true},
			innerCode: "ForbiddenByFirewall", message: "Client address: 127.0.0.1"},
		{name: "a firewall that allows 127.0.0.0/8 lets the request through to the access model", rules: keyvault.NetworkRules{AllowedNetworks: []netip.Prefix{loopback}},
			innerCode: "ForbiddenByRbac"},
		{name: "disabled public access refuses the request", rules: keyvault.NetworkRules{PublicNetworkAccessDisabled: true, AllowedNetworks: []netip.Prefix{loopback}},
			innerCode: "ForbiddenByConnection",
			message: "Public network access is disabled and request is not from a trusted service nor via an approved private link.\r\n" +
				"Caller: appid=" + appidApp + ";oid=" + oidApp2 + ";iss=" + stsA + "\r\nVault: kv-net-3;location=eastus"},
		{name: "a private endpoint address passes with public access disabled", rules: keyvault.NetworkRules{PublicNetworkAccessDisabled: true,
			PrivateEndpointNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}, innerCode: "ForbiddenByRbac"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// app2 has no role: once the network admits the request the
			// access model refuses it.
			name := "kv-net-" + string(rune('0'+i))
			v := h.vault(t, keyvault.VaultConfig{Name: name, Network: tt.rules})
			c, _ := h.secrets(t, v, tokenApp2)
			_, err := c.GetSecret(context.Background(), "whatever", "", nil)
			se := asServiceError(t, err)
			if se.Status != 403 || se.InnerCode != tt.innerCode {
				t.Fatalf("got %d %s/%s %q, want 403 %s", se.Status, se.Code, se.InnerCode, se.Message, tt.innerCode)
			}
			if !strings.Contains(se.Message, tt.message) {
				t.Errorf("message %q\nlacks %q", se.Message, tt.message)
			}
		})
	}
	t.Run("an unauthenticated request is challenged before the firewall", func(t *testing.T) {
		h.vault(t, keyvault.VaultConfig{Name: "kv-net-closed", Network: keyvault.NetworkRules{DefaultDeny: true}})
		resp, _ := h.raw(t, http.MethodGet, "https://kv-net-closed.vault.azure.net/secrets?api-version=7.4", "", "")
		if resp.StatusCode != 401 {
			t.Errorf("status = %d, want 401", resp.StatusCode)
		}
	})
}

func TestAPIVersionsAreCheckedAsTheServiceChecksThem(t *testing.T) {
	h := newHarness(t)
	v := h.vault(t, rbacVault("kv-versions"))
	if _, err := v.SetSecret("s", "v", nil); err != nil {
		t.Fatal(err)
	}
	for _, version := range []string{"7.0", "7.1", "7.2", "7.3", "7.4", "7.5", "7.6", "2025-07-01", "2026-04-01"} {
		t.Run("api-version "+version+" is accepted", func(t *testing.T) {
			resp, body := h.raw(t, http.MethodGet, v.URL()+"secrets/s/?api-version="+version, tokenOwner, "")
			if resp.StatusCode != 200 {
				t.Errorf("status %d: %s", resp.StatusCode, body)
			}
		})
	}
	tests := []struct {
		name  string
		query string
		body  string
	}{
		{"an unknown api-version is BadParameter", "?api-version=2099-01-01",
			`{"error":{"code":"BadParameter","message":"The specified version (2099-01-01) is not recognized. Consider using the latest supported version (2026-04-01)."}}`},
		{"an empty api-version is BadParameter", "?api-version=",
			`{"error":{"code":"BadParameter","message":"The specified version () is not recognized. Consider using the latest supported version (2026-04-01)."}}`},
		{"a missing api-version is BadParameter", "",
			`{"error":{"code":"BadParameter","message":"The api-version query parameter is missing. Consider using the latest supported version (2026-04-01)."}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, token := range []string{"", tokenOwner} {
				resp, body := h.raw(t, http.MethodGet, v.URL()+"secrets/s/"+tt.query, token, "")
				if resp.StatusCode != 400 || string(body) != tt.body {
					t.Errorf("token %q: %d %s\nwant 400 %s", token, resp.StatusCode, body, tt.body)
				}
			}
		})
	}
}

var guid = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestEveryAnswerCarriesTheServiceHeaders(t *testing.T) {
	h := newHarness(t)
	v := h.vault(t, keyvault.VaultConfig{Name: "kv-headers", Location: "westeurope",
		RoleAssignments: []keyvault.RoleAssignment{{PrincipalID: oidOwner, Role: "Key Vault Administrator"}}})
	if _, err := v.SetSecret("s", "v", nil); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		path   string
		token  string
		status int
	}{
		{"a success", "secrets/s/?api-version=7.6", tokenOwner, 200},
		{"a challenge", "secrets/s/?api-version=7.6", "", 401},
		{"a not found", "secrets/t/?api-version=7.6", tokenOwner, 404},
		{"a bad version", "secrets/s/?api-version=1", tokenOwner, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, _ := h.raw(t, http.MethodGet, v.URL()+tt.path, tt.token, "")
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
			want := map[string]string{
				"Content-Type":                  "application/json; charset=utf-8",
				"Cache-Control":                 "no-cache",
				"x-ms-keyvault-region":          "westeurope",
				"x-ms-keyvault-service-version": keyvault.ServiceVersion,
				"x-ms-keyvault-network-info":    "conn_type=Ipv4;addr=127.0.0.1;act_addr_fam=InterNetwork;",
			}
			for k, w := range want {
				if got := resp.Header.Get(k); got != w {
					t.Errorf("%s = %q, want %q", k, got, w)
				}
			}
			if id := resp.Header.Get("x-ms-request-id"); !guid.MatchString(id) {
				t.Errorf("x-ms-request-id %q is not a GUID", id)
			}
			if resp.Header.Get("x-ms-error-code") != "" {
				t.Errorf("x-ms-error-code sent; the service does not send it")
			}
		})
	}
}

func TestAnUnknownVaultIsNotFound(t *testing.T) {
	h := newHarness(t)
	h.vault(t, rbacVault("kv-known"))
	if !h.svc.Resolves("KV-KNOWN.vault.azure.net:443") || h.svc.Resolves("kv-unknown.vault.azure.net") || h.svc.Resolves("kv-known.example.com") {
		t.Error("Resolves answers wrongly")
	}
	resp, body := h.raw(t, http.MethodGet, "https://kv-unknown.vault.azure.net/secrets?api-version=7.4", tokenOwner, "")
	se := parseEnvelope(t, resp.StatusCode, resp.Header, body)
	if se.Status != 404 || se.Code != "VaultNotFound" {
		t.Errorf("got %+v", se)
	}
}
