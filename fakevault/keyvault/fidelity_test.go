package keyvault_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"github.com/kvsync/kvsync/fakevault/keyvault"
)

// serviceFidelity is a harness tweak: the service's timing and page shape.
func serviceFidelity(o *keyvault.Options) { o.Fidelity = keyvault.ServiceFidelity }

// wantError checks a raw answer's status, error code, inner code and
// message fragment.
func wantError(t *testing.T, what string, resp *http.Response, body []byte, status int, code, inner, message string) {
	t.Helper()
	se := parseEnvelope(t, resp.StatusCode, resp.Header, body)
	if se.Status != status || se.Code != code || se.InnerCode != inner || !strings.Contains(se.Message, message) {
		t.Errorf("%s: %d %s, want %d %s/%s %q", what, resp.StatusCode, body, status, code, inner, message)
	}
}

// deletedSecret is a vault of the service's fidelity holding
// db-password, deleted, the delete taken effect.
func deletedSecret(t *testing.T, vault string) (*harness, *keyvault.Vault) {
	t.Helper()
	h := newHarness(t, serviceFidelity)
	v := h.vault(t, rbacVault(vault))
	if _, err := v.SetSecret("db-password", "kvsync-canary-"+vault, nil); err != nil {
		t.Fatal(err)
	}
	if err := v.DeleteSecret("db-password"); err != nil {
		t.Fatal(err)
	}
	h.now.Advance(keyvault.ServiceFidelity.DeleteDelay)
	return h, v
}

// The service's soft delete takes seconds: GET /deletedsecrets/{name}
// answers 404 until the delete took effect, as the SDKs' delete pollers
// expect (recorded, e.g. azure-sdk-for-js keyvault-secrets "can wait until
// a secret is deleted": 404 SecretNotFound "Deleted Secret not found: ...",
// then 200), and the name can be neither set, recovered nor purged
// meanwhile (409 ObjectIsBeingDeleted).
func TestADeletedSecretAppearsAtDeletedSecretsOnlyAfterTheDeleteDelay(t *testing.T) {
	h := newHarness(t, serviceFidelity)
	v := h.vault(t, rbacVault("kv-deletedelay"))
	if _, err := v.SetSecret("db-password", "kvsync-canary-delay", nil); err != nil {
		t.Fatal(err)
	}
	base := v.URL()
	resp, body := h.raw(t, http.MethodDelete, base+"secrets/db-password?api-version=7.6", tokenOwner, "")
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"recoveryId":"`+base+`deletedsecrets/db-password"`) {
		t.Fatalf("DELETE: %d %s", resp.StatusCode, body)
	}
	resp, body = h.raw(t, http.MethodGet, base+"secrets/db-password?api-version=7.6", tokenOwner, "")
	wantError(t, "GET the secret at once", resp, body, 404, "SecretNotFound", "", "was not found in this key vault")
	resp, body = h.raw(t, http.MethodGet, base+"deletedsecrets/db-password?api-version=7.6", tokenOwner, "")
	wantError(t, "GET the deleted secret at once", resp, body, 404, "SecretNotFound", "", "Deleted Secret not found: db-password")
	resp, body = h.raw(t, http.MethodPut, base+"secrets/db-password?api-version=7.6", tokenOwner, `{"value":"kvsync-canary-again"}`)
	wantError(t, "PUT while the delete takes effect", resp, body, 409, "Conflict", "ObjectIsBeingDeleted",
		"Secret db-password is currently being deleted and cannot be re-created; retry later.")
	resp, body = h.raw(t, http.MethodPost, base+"deletedsecrets/db-password/recover?api-version=7.6", tokenOwner, "")
	wantError(t, "recover while the delete takes effect", resp, body, 409, "Conflict", "ObjectIsBeingDeleted", "Secret is currently being deleted.")
	resp, body = h.raw(t, http.MethodDelete, base+"deletedsecrets/db-password?api-version=7.6", tokenOwner, "")
	wantError(t, "purge while the delete takes effect", resp, body, 409, "Conflict", "ObjectIsBeingDeleted", "Secret is currently being deleted.")
	resp, body = h.raw(t, http.MethodGet, base+"deletedsecrets?api-version=7.6", tokenOwner, "")
	if resp.StatusCode != 200 || strings.Contains(string(body), "db-password") {
		t.Errorf("the deleted secrets list while the delete takes effect: %d %s", resp.StatusCode, body)
	}

	h.now.Advance(keyvault.ServiceFidelity.DeleteDelay)
	resp, body = h.raw(t, http.MethodGet, base+"deletedsecrets/db-password?api-version=7.6", tokenOwner, "")
	if resp.StatusCode != 200 {
		t.Errorf("GET the deleted secret after the delay: %d %s", resp.StatusCode, body)
	}
	resp, body = h.raw(t, http.MethodPut, base+"secrets/db-password?api-version=7.6", tokenOwner, `{"value":"kvsync-canary-again"}`)
	wantError(t, "PUT once deleted", resp, body, 409, "Conflict", "ObjectIsDeletedButRecoverable", "deleted but recoverable state")
}

// A purged name is refused for a while (recorded: azure-sdk-for-python
// test_secrets_async.test_backup_restore_7_3, 409 right after the purge and
// 200 three seconds later; the PUT's answer as reported in
// Azure/azure-sdk-for-net#34322), while GET /deletedsecrets/{name} answers
// 404 at once (azure-sdk-for-go azsecrets TestBackupSecret).
func TestAPurgedNameCannotBeSetAgainUntilThePurgeDelayPassed(t *testing.T) {
	h, v := deletedSecret(t, "kv-purgedelay")
	base := v.URL()
	if resp, body := h.raw(t, http.MethodDelete, base+"deletedsecrets/db-password?api-version=7.6", tokenOwner, ""); resp.StatusCode != 204 {
		t.Fatalf("purge: %d %s", resp.StatusCode, body)
	}
	resp, body := h.raw(t, http.MethodGet, base+"deletedsecrets/db-password?api-version=7.6", tokenOwner, "")
	wantError(t, "GET the purged secret", resp, body, 404, "SecretNotFound", "", "Deleted Secret not found")
	resp, body = h.raw(t, http.MethodPut, base+"secrets/db-password?api-version=7.6", tokenOwner, `{"value":"kvsync-canary-again"}`)
	wantError(t, "PUT right after the purge", resp, body, 409, "Conflict", "ObjectIsBeingDeleted", "is currently being deleted and cannot be re-created; retry later.")
	h.now.Advance(keyvault.ServiceFidelity.PurgeDelay)
	if resp, body := h.raw(t, http.MethodPut, base+"secrets/db-password?api-version=7.6", tokenOwner, `{"value":"kvsync-canary-again"}`); resp.StatusCode != 200 {
		t.Errorf("PUT after the purge delay: %d %s", resp.StatusCode, body)
	}
}

// A recovered secret reads 404 for a while (recorded: azure-sdk-for-net
// SecretClientLiveTests StartRecoverDeletedSecret, one 404 SecretNotFound,
// then 200 about 2 s later), which the SDKs' recover pollers wait out.
func TestARecoveredSecretIsReadableOnlyAfterTheRecoverDelay(t *testing.T) {
	h, v := deletedSecret(t, "kv-recoverdelay")
	c, _ := h.secrets(t, v, tokenOwner)
	ctx := context.Background()
	if _, err := c.RecoverDeletedSecret(ctx, "db-password", nil); err != nil {
		t.Fatalf("RecoverDeletedSecret: %v", err)
	}
	resp, body := h.raw(t, http.MethodGet, v.URL()+"secrets/db-password?api-version=7.6", tokenOwner, "")
	wantError(t, "GET at once", resp, body, 404, "SecretNotFound", "", "was not found in this key vault")
	resp, body = h.raw(t, http.MethodGet, v.URL()+"secrets?api-version=7.6", tokenOwner, "")
	if strings.Contains(string(body), "db-password") {
		t.Errorf("the secrets list while the recover takes effect: %d %s", resp.StatusCode, body)
	}
	h.now.Advance(keyvault.ServiceFidelity.RecoverDelay)
	got, err := c.GetSecret(ctx, "db-password", "", nil)
	if err != nil || got.Value == nil || *got.Value != "kvsync-canary-kv-recoverdelay" {
		t.Errorf("GetSecret after the recover delay: %v", err)
	}
}

// Vault-wide lists end, with the service's fidelity, with a page of items
// that still links on to an empty last page; the SDK's pager follows it and
// every item arrives once. Lists of one secret's versions end on their
// last item, as recorded.
func TestVaultWideListsEndWithAnEmptyPageThatThePagerFollows(t *testing.T) {
	h := newHarness(t, serviceFidelity)
	v := h.vault(t, rbacVault("kv-trailing"))
	for _, name := range []string{"a", "b", "c"} {
		if _, err := v.SetSecret(name, "kvsync-canary-"+name, nil); err != nil {
			t.Fatal(err)
		}
	}
	c, _ := h.secrets(t, v, tokenOwner)
	var sizes []int
	seen := map[string]int{}
	pager := c.NewListSecretPropertiesPager(&azsecrets.ListSecretPropertiesOptions{})
	for pager.More() {
		page, err := pager.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, len(page.Value))
		for _, p := range page.Value {
			seen[p.ID.Name()]++
		}
	}
	if len(sizes) != 2 || sizes[0] != 3 || sizes[1] != 0 || len(seen) != 3 {
		t.Errorf("page sizes %v, items %v; want 3 then an empty last page", sizes, seen)
	}
	resp, body := h.raw(t, http.MethodGet, v.URL()+"secrets/a/versions?api-version=7.6", tokenOwner, "")
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"nextLink":null`) {
		t.Errorf("a version list: %d %s, want it to end on its last item", resp.StatusCode, body)
	}
}

// The service refuses a $skiptoken it did not issue; the fake refuses one
// that decodes but was not issued for that list, or not by it.
func TestASkipTokenIsAcceptedOnlyFromTheListThatIssuedIt(t *testing.T) {
	h := newHarness(t)
	v := h.vault(t, rbacVault("kv-skiptoken"))
	for _, name := range []string{"a", "b", "c"} {
		if _, err := v.SetSecret(name, "kvsync-canary-"+name, nil); err != nil {
			t.Fatal(err)
		}
	}
	resp, body := h.raw(t, http.MethodGet, v.URL()+"secrets?api-version=7.6&maxresults=1", tokenOwner, "")
	var page struct {
		NextLink *string `json:"nextLink"`
	}
	if err := json.Unmarshal(body, &page); err != nil || resp.StatusCode != 200 || page.NextLink == nil {
		t.Fatalf("first page: %d %s", resp.StatusCode, body)
	}
	u, err := url.Parse(*page.NextLink)
	if err != nil {
		t.Fatal(err)
	}
	token := u.Query().Get("$skiptoken")
	for name, query := range map[string]string{
		"a token of another list": "deletedsecrets?api-version=7.6&$skiptoken=" + url.QueryEscape(token),
		"a token shaped as the service's, not issued": "secrets?api-version=7.6&$skiptoken=" +
			base64.RawURLEncoding.EncodeToString([]byte(`{"NextMarker":"2!92!MDAwMDIwIXNlY3JldC9BITAwMDAyOCE5OTk5LTEyLTMxVDIzOjU5OjU5Ljk5OTk5OTlaIQ--","TargetLocation":0}`)),
	} {
		resp, body := h.raw(t, http.MethodGet, v.URL()+query, tokenOwner, "")
		wantError(t, name, resp, body, 400, "BadParameter", "", "$skiptoken")
	}
	if resp, body := h.raw(t, http.MethodGet, *page.NextLink, tokenOwner, ""); resp.StatusCode != 200 {
		t.Errorf("the issued nextLink: %d %s", resp.StatusCode, body)
	}
}

// A deleted secret whose latest version is disabled is refused as recorded
// (azure-sdk-for-js keyvault-secrets "can update a disabled secret": 403
// Forbidden, inner SecretDisabled, "Operation get is not allowed on a
// disabled secret.").
func TestADeletedDisabledSecretIsRefusedAsTheServiceRefusesIt(t *testing.T) {
	h := newHarness(t)
	v := h.vault(t, rbacVault("kv-deleteddisabled"))
	if _, err := v.SetSecret("db-password", "kvsync-canary-disabled", &keyvault.SecretOptions{Disabled: true}); err != nil {
		t.Fatal(err)
	}
	if err := v.DeleteSecret("db-password"); err != nil {
		t.Fatal(err)
	}
	resp, body := h.raw(t, http.MethodGet, v.URL()+"deletedsecrets/db-password?api-version=7.6", tokenOwner, "")
	wantError(t, "GET the deleted disabled secret", resp, body, 403, "Forbidden", "SecretDisabled", "Operation get is not allowed on a disabled secret.")
}
