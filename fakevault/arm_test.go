package fakevault_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kvsync/kvsync/fakevault"
	"github.com/kvsync/kvsync/fakevault/entra"
	"github.com/kvsync/kvsync/fakevault/keyvault"
)

// armDo sends one request to Resource Manager with a token for audience.
func armDo(t *testing.T, srv *fakevault.Server, audience, method, path, body string) (int, map[string]any) {
	t.Helper()
	token, err := srv.Entra().IssueAccessToken(fakevault.DefaultTenantID, fakevault.DefaultClientID, audience)
	must(t, err)
	req, err := http.NewRequest(method, "https://management.azure.com"+path, strings.NewReader(body))
	must(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Transport: srv.Transport()}).Do(req)
	must(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	must(t, err)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%s %s: %d %s: not JSON: %v", method, path, resp.StatusCode, raw, err)
	}
	return resp.StatusCode, out
}

const armAudience = "https://management.core.windows.net/"

func TestResourceManagerListsTheTenantsSubscriptionsAndVaults(t *testing.T) {
	srv := newServer(t, fakevault.Options{})
	createVault(t, srv, keyvault.VaultConfig{Name: "contoso", SubscriptionID: "11111111-0000-4000-8000-000000000001", ResourceGroup: "payments"})

	status, subs := armDo(t, srv, armAudience, http.MethodGet, "/subscriptions?api-version=2022-12-01", "")
	if status != 200 || !strings.Contains(mustJSON(t, subs), `"subscriptionId":"11111111-0000-4000-8000-000000000001"`) {
		t.Errorf("subscriptions: %d %v", status, subs)
	}
	status, list := armDo(t, srv, armAudience, http.MethodGet,
		"/subscriptions/11111111-0000-4000-8000-000000000001/resources?$filter=resourceType%20eq%20%27Microsoft.KeyVault%2Fvaults%27&api-version=2015-11-01", "")
	if want := `"id":"/subscriptions/11111111-0000-4000-8000-000000000001/resourceGroups/payments/providers/Microsoft.KeyVault/vaults/contoso"`; status != 200 || !strings.Contains(mustJSON(t, list), want) {
		t.Errorf("vaults as resources: %d %v, want %s", status, list, want)
	}
	status, vault := armDo(t, srv, armAudience, http.MethodGet,
		"/subscriptions/11111111-0000-4000-8000-000000000001/resourceGroups/payments/providers/Microsoft.KeyVault/vaults/contoso?api-version=2022-07-01", "")
	if status != 200 || !strings.Contains(mustJSON(t, vault), `"vaultUri":"https://contoso.vault.azure.net/"`) {
		t.Errorf("vault: %d %v", status, vault)
	}
	status, missing := armDo(t, srv, armAudience, http.MethodGet,
		"/subscriptions/11111111-0000-4000-8000-000000000001/resourceGroups/other/providers/Microsoft.KeyVault/vaults/contoso?api-version=2022-07-01", "")
	if status != 404 || !strings.Contains(mustJSON(t, missing), "ResourceNotFound") {
		t.Errorf("a vault in another resource group: %d %v, want 404 ResourceNotFound", status, missing)
	}
	if status, body := armDo(t, srv, "https://vault.azure.net", http.MethodGet, "/subscriptions?api-version=2022-12-01", ""); status != 401 ||
		!strings.Contains(mustJSON(t, body), "InvalidAuthenticationTokenAudience") {
		t.Errorf("a vault token: %d %v, want 401 InvalidAuthenticationTokenAudience", status, body)
	}
}

func TestAVaultsNetworkRulesWrittenThroughResourceManagerAreTheFirewallItsDataPlaneEnforces(t *testing.T) {
	srv := newServer(t, fakevault.Options{})
	vault := createVault(t, srv, keyvault.VaultConfig{Name: "contoso"})
	path := "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/kvsync/providers/Microsoft.KeyVault/vaults/contoso?api-version=2022-07-01"

	status, body := armDo(t, srv, armAudience, http.MethodPut, path,
		`{"location":"eastus","properties":{"tenantId":"`+fakevault.DefaultTenantID+`","sku":{"family":"A","name":"standard"},"networkAcls":{"defaultAction":"Deny","ipRules":[{"value":"203.0.113.7"},{"value":"198.51.100.0/24"}]}}}`)
	if status != 200 {
		t.Fatalf("PUT: %d %v", status, body)
	}
	got := vault.Config().Network
	want := []netip.Prefix{netip.MustParsePrefix("203.0.113.7/32"), netip.MustParsePrefix("198.51.100.0/24")}
	if !got.DefaultDeny || !slices.Equal(got.AllowedNetworks, want) {
		t.Errorf("network rules after PUT: %+v, want deny except %v", got, want)
	}
	status, body = armDo(t, srv, armAudience, http.MethodPatch, path, `{"properties":{"publicNetworkAccess":"Disabled"}}`)
	if got := vault.Config().Network; status != 200 || !got.PublicNetworkAccessDisabled || !slices.Equal(got.AllowedNetworks, want) {
		t.Errorf("PATCH of public network access: %d %v; rules %+v, want it off and the IP rules kept", status, body, got)
	}
	if status, body := armDo(t, srv, armAudience, http.MethodPatch, path, `{"properties":{"networkAcls":{"defaultAction":"Deny","ipRules":[{"value":"not-an-address"}]}}}`); status != 400 {
		t.Errorf("a malformed IP rule: %d %v, want 400", status, body)
	}
}

func TestRoleAssignmentsAndAccessPoliciesWrittenThroughResourceManagerAuthorizeTheDataPlane(t *testing.T) {
	srv := newServer(t, fakevault.Options{})
	rbac := createVault(t, srv, keyvault.VaultConfig{Name: "contoso"})
	legacy := createVault(t, srv, keyvault.VaultConfig{Name: "legacy", UseAccessPolicies: true})
	const oid = "00000000-0000-4000-8000-0000000000d1"
	vaultPath := func(name string) string {
		return "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/kvsync/providers/Microsoft.KeyVault/vaults/" + name
	}

	status, defs := armDo(t, srv, armAudience, http.MethodGet, vaultPath("contoso")+"/providers/Microsoft.Authorization/roleDefinitions?$filter=roleName%20eq%20%27Key%20Vault%20Secrets%20User%27&api-version=2022-04-01", "")
	if want := `"name":"4633458b-17de-408a-b874-0445c86b69e6"`; status != 200 || !strings.Contains(mustJSON(t, defs), want) {
		t.Fatalf("role definitions by name: %d %v, want %s", status, defs, want)
	}
	status, ra := armDo(t, srv, armAudience, http.MethodPut, vaultPath("contoso")+"/providers/Microsoft.Authorization/roleAssignments/5b1e0c1e-0000-4000-8000-000000000001?api-version=2022-04-01",
		`{"properties":{"roleDefinitionId":"/subscriptions/00000000-0000-0000-0000-000000000000/providers/Microsoft.Authorization/roleDefinitions/4633458b-17de-408a-b874-0445c86b69e6","principalId":"`+oid+`","principalType":"ServicePrincipal"}}`)
	if status != 201 || !slices.Contains(rbac.RoleAssignments(), keyvault.RoleAssignment{PrincipalID: oid, Role: keyvault.RoleSecretsUser}) {
		t.Errorf("role assignment: %d %v; the vault's assignments: %+v", status, ra, rbac.RoleAssignments())
	}

	status, body := armDo(t, srv, armAudience, http.MethodPut, vaultPath("legacy")+"?api-version=2022-07-01",
		`{"location":"eastus","properties":{"tenantId":"`+fakevault.DefaultTenantID+`","sku":{"family":"A","name":"standard"},"accessPolicies":[{"tenantId":"`+fakevault.DefaultTenantID+`","objectId":"`+oid+`","permissions":{"secrets":["get"],"keys":[],"certificates":[]}}]}}`)
	if got := legacy.Config().AccessPolicies; status != 200 || len(got) != 1 || got[0].ObjectID != oid || !slices.Equal(got[0].Secrets, []string{"get"}) {
		t.Errorf("access policies after PUT: %d %v; the vault's: %+v", status, body, got)
	}
	if status, body := armDo(t, srv, armAudience, http.MethodPatch, vaultPath("legacy")+"?api-version=2022-07-01", `{"properties":{"publicNetworkAccess":"Enabled"}}`); status != 200 || len(legacy.Config().AccessPolicies) != 1 {
		t.Errorf("a PATCH that names no access policies: %d %v; the vault's: %+v, want them kept", status, body, legacy.Config().AccessPolicies)
	}
}

func TestGraphResolvesAClientIDToItsServicePrincipalInTheCallersTenant(t *testing.T) {
	srv := newServer(t, fakevault.Options{})
	must(t, srv.Entra().AddApplication(fakevault.DefaultTenantID, entra.Application{ClientID: "00000000-0000-4000-8000-0000000000c1", ObjectID: "00000000-0000-4000-8000-0000000000d1"}))
	token, err := srv.Entra().IssueAccessToken(fakevault.DefaultTenantID, fakevault.DefaultClientID, "https://graph.microsoft.com")
	must(t, err)
	get := func(filter string) string {
		req, err := http.NewRequest(http.MethodGet, "https://graph.microsoft.com/v1.0/servicePrincipals?$filter="+url.QueryEscape(filter), nil)
		must(t, err)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := (&http.Client{Transport: srv.Transport()}).Do(req)
		must(t, err)
		defer resp.Body.Close()
		raw, err := io.ReadAll(resp.Body)
		must(t, err)
		return resp.Status + " " + string(raw)
	}
	for _, filter := range []string{"servicePrincipalNames/any(c:c eq '00000000-0000-4000-8000-0000000000c1')", "appId eq '00000000-0000-4000-8000-0000000000c1'"} {
		if got := get(filter); !strings.HasPrefix(got, "200") || !strings.Contains(got, `"id":"00000000-0000-4000-8000-0000000000d1"`) {
			t.Errorf("%s: %s, want the service principal's object ID", filter, got)
		}
	}
	if got := get("appId eq '00000000-0000-4000-8000-0000000000ff'"); !strings.Contains(got, `"value":[]`) {
		t.Errorf("an unknown client ID: %s, want no service principal", got)
	}
}

// TestTheAzureCLISignsInAndMakesEachOfTheDoctorsAzFixes runs the Azure CLI
// (hack/azcli.sh's, named by $KVSYNC_AZ, or az on PATH) against the fake
// through its proxy: the doctor's firewall fix, `az keyvault network-rule
// add`, its access-policy fix, `az keyvault set-policy --spn`, its RBAC fix,
// `az role assignment create --scope $(az keyvault show ...)`, and its fix
// for a disabled secret, `az keyvault secret set-attributes --enabled true`,
// each change what the vault enforces.
func TestTheAzureCLISignsInAndMakesEachOfTheDoctorsAzFixes(t *testing.T) {
	az := os.Getenv("KVSYNC_AZ")
	if az == "" {
		az = "az"
	}
	az, err := exec.LookPath(az)
	if err != nil {
		t.Skip("no Azure CLI: run hack/azcli.sh and set KVSYNC_AZ to the az it prints (make test does)")
	}
	srv := newServer(t, fakevault.Options{})
	vault := createVault(t, srv, keyvault.VaultConfig{Name: "contoso-kv", Network: keyvault.NetworkRules{DefaultDeny: true}})
	proxy := startProxy(t, srv)
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	must(t, os.WriteFile(ca, srv.CAPEM(), 0o644))
	sh := func(command string) string {
		t.Helper()
		cmd := exec.Command("sh", "-c", command)
		cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(az)+string(os.PathListSeparator)+os.Getenv("PATH"),
			"HTTPS_PROXY=http://"+proxy, "REQUESTS_CA_BUNDLE="+ca, "AZURE_CONFIG_DIR="+filepath.Join(dir, "az"),
			"AZURE_CORE_COLLECT_TELEMETRY=false", "AZURE_CORE_ONLY_SHOW_ERRORS=true")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", command, err, out)
		}
		return string(out)
	}
	sh("az login --service-principal -u " + fakevault.DefaultClientID + " -p " + fakevault.DefaultClientSecret + " --tenant " + fakevault.DefaultTenantID)
	sh("az keyvault network-rule add --name contoso-kv --ip-address 203.0.113.7/32")
	if got := vault.Config().Network; !got.DefaultDeny || !slices.Equal(got.AllowedNetworks, []netip.Prefix{netip.MustParsePrefix("203.0.113.7/32")}) {
		t.Errorf("after az keyvault network-rule add: %+v, want the firewall to allow 203.0.113.7/32 only", got)
	}
	if out := sh("az keyvault network-rule list --name contoso-kv -o json"); !strings.Contains(out, `"203.0.113.7/32"`) {
		t.Errorf("az keyvault network-rule list:\n%s", out)
	}

	// The access-policy fix: az resolves the client ID through Graph and
	// writes the vault's policies through Resource Manager.
	legacy := createVault(t, srv, keyvault.VaultConfig{Name: "legacy-kv", UseAccessPolicies: true})
	must(t, srv.Entra().AddApplication(fakevault.DefaultTenantID, entra.Application{ClientID: "00000000-0000-4000-8000-0000000000c1", ObjectID: "00000000-0000-4000-8000-0000000000d1"}))
	sh("az keyvault set-policy --name legacy-kv --spn 00000000-0000-4000-8000-0000000000c1 --secret-permissions get")
	if got := legacy.Config().AccessPolicies; len(got) != 1 || got[0].ObjectID != "00000000-0000-4000-8000-0000000000d1" || !slices.Equal(got[0].Secrets, []string{"get"}) {
		t.Errorf("after az keyvault set-policy: %+v, want get on secrets for the service principal", got)
	}

	// The RBAC fix: az resolves the role by name at the vault's scope and
	// the client ID through Graph, and assigns the role at that scope.
	rbac := createVault(t, srv, keyvault.VaultConfig{Name: "rbac-kv"})
	sh(`az role assignment create --role "Key Vault Secrets User" --assignee 00000000-0000-4000-8000-0000000000c1 --scope $(az keyvault show --name rbac-kv --query id -o tsv)`)
	if got := rbac.RoleAssignments(); !slices.Contains(got, keyvault.RoleAssignment{PrincipalID: "00000000-0000-4000-8000-0000000000d1", Role: keyvault.RoleSecretsUser}) {
		t.Errorf("after az role assignment create: %+v, want Key Vault Secrets User for the service principal", got)
	}

	// The fix for a disabled secret, through the data plane: the operator
	// (the vault's administrator here) enables the newest version again.
	must(t, rbac.AssignRole(keyvault.RoleAssignment{PrincipalID: fakevault.DefaultClientID, Role: "Key Vault Administrator"}))
	_, err = rbac.SetSecret("db-password", "kvsync-canary-az", &keyvault.SecretOptions{Disabled: true})
	must(t, err)
	sh("az keyvault secret set-attributes --vault-name rbac-kv --name db-password --enabled true")
	if got, err := rbac.SecretVersions("db-password"); err != nil || len(got) != 1 || !got[0].Enabled {
		t.Errorf("after az keyvault secret set-attributes --enabled true: %+v, %v, want the newest version enabled", got, err)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	raw, err := json.Marshal(v)
	must(t, err)
	return string(raw)
}
