package keyvault_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"github.com/kvsync/kvsync/fakevault/keyvault"
)

func TestARateLimitedVaultThrottlesWithRetryAfter(t *testing.T) {
	// The real clock: the SDK sleeps for Retry-After between attempts.
	h := newHarness(t, func(o *keyvault.Options) { o.Now = time.Now })
	cfg := rbacVault("kv-throttled")
	cfg.RateLimit = &keyvault.RateLimit{Requests: 2, Window: time.Second}
	v := h.vault(t, cfg)
	if _, err := v.SetSecret("s", "v", nil); err != nil {
		t.Fatal(err)
	}

	t.Run("the request past the limit is 429 Throttled with Retry-After", func(t *testing.T) {
		var last *http.Response
		var body []byte
		for range 3 {
			last, body = h.raw(t, http.MethodGet, v.URL()+"secrets/s/?api-version=7.6", tokenOwner, "")
		}
		se := parseEnvelope(t, last.StatusCode, last.Header, body)
		if se.Status != 429 || se.Code != "Throttled" || last.Header.Get("Retry-After") != "1" {
			t.Errorf("got %d %s Retry-After %q", se.Status, se.Code, last.Header.Get("Retry-After"))
		}
	})

	t.Run("the SDK waits for Retry-After and then succeeds", func(t *testing.T) {
		time.Sleep(time.Second)
		c, _ := h.secrets(t, v, tokenOwner)
		start := time.Now()
		for i := range 3 {
			if _, err := c.GetSecret(context.Background(), "s", "", nil); err != nil {
				t.Fatalf("GetSecret %d: %v", i, err)
			}
		}
		if time.Since(start) < 500*time.Millisecond {
			t.Errorf("three gets within %v: nothing was throttled", time.Since(start))
		}
		throttled := h.journal.Filter(func(e journalEntry) bool { return e.ErrorCode == "Throttled" })
		if len(throttled) < 2 {
			t.Errorf("journal has %d throttled entries, want at least 2", len(throttled))
		}
	})
}

// The limit's window slides, and refused requests count: a request is
// refused when Requests others arrived within the Window before it.
func TestARateLimitCountsEveryRequestOfTheWindowBeforeIt(t *testing.T) {
	h := newHarness(t)
	cfg := rbacVault("kv-sliding")
	cfg.RateLimit = &keyvault.RateLimit{Requests: 2, Window: 10 * time.Second}
	v := h.vault(t, cfg)
	if _, err := v.SetSecret("s", "kvsync-canary-sliding", nil); err != nil {
		t.Fatal(err)
	}
	get := func() (int, string) {
		resp, _ := h.raw(t, http.MethodGet, v.URL()+"secrets/s/?api-version=7.6", tokenOwner, "")
		return resp.StatusCode, resp.Header.Get("Retry-After")
	}
	steps := []struct {
		advance    time.Duration
		status     int
		retryAfter string
	}{
		{0, 200, ""},                // t=0
		{6 * time.Second, 200, ""},  // t=6: one other within 10 s
		{3 * time.Second, 429, "7"}, // t=9: 0 and 6 within; 9 counts too, so a retry waits until only one remains: 6 leaves at 16
		{2 * time.Second, 429, "8"}, // t=11: 6 and 9 within; a retry waits until 9 leaves at 19
		{6 * time.Second, 429, "4"}, // t=17: 9 and 11 within; 11 leaves at 21
		{20 * time.Second, 200, ""}, // t=37: nothing within
	}
	for i, st := range steps {
		h.now.Advance(st.advance)
		if status, retry := get(); status != st.status || retry != st.retryAfter {
			t.Errorf("request %d: %d Retry-After %q, want %d %q", i+1, status, retry, st.status, st.retryAfter)
		}
	}
}

func TestTheJournalRecordsOneEntryPerAnsweredRequest(t *testing.T) {
	h := newHarness(t)
	v := h.vault(t, rbacVault("kv-journal", keyvault.RoleAssignment{PrincipalID: oidApp1, Role: "Key Vault Secrets User"}))
	version, err := v.SetSecret("s", "v", nil)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := h.secrets(t, v, tokenApp1)
	ctx := context.Background()
	if _, err := c.GetSecret(ctx, "s", version, nil); err != nil {
		t.Fatal(err)
	}
	_, err = c.SetSecret(ctx, "s", azsecrets.SetSecretParameters{Value: ptr("x")}, nil)
	if err == nil {
		t.Fatal("Secrets User could set")
	}
	entries := h.journal.Entries()
	if len(entries) != 3 {
		t.Fatalf("%d entries, want challenge, get, denied set: %+v", len(entries), entries)
	}
	get, denied := entries[1], entries[2]
	want := journalEntry{Service: "keyvault", Host: "kv-journal.vault.azure.net", Method: "GET", Path: "/secrets/s/" + version,
		APIVersion: "2026-04-01", Operation: "GetSecret", Tenant: tenantA, Identity: "appid=" + appidApp + ";oid=" + oidApp1,
		Object: "s/" + version, Status: 200}
	get.Time, get.RequestID = time.Time{}, ""
	if get != want {
		t.Errorf("get entry = %+v\nwant %+v", get, want)
	}
	if denied.Operation != "SetSecret" || denied.Status != 403 || denied.ErrorCode != "ForbiddenByRbac" || !guid.MatchString(denied.RequestID) {
		t.Errorf("denied entry = %+v", denied)
	}
}

func TestASecretValueNeverReachesTheJournalOrAnErrorMessage(t *testing.T) {
	h := newHarness(t)
	const canary = "canary-7f3a9d2e-do-not-leak"
	v := h.vault(t, keyvault.VaultConfig{Name: "kv-canary", PurgeProtection: true, RoleAssignments: []keyvault.RoleAssignment{
		{PrincipalID: oidApp1, Role: "Key Vault Secrets Officer"}, {PrincipalID: oidApp2, Role: "Key Vault Reader"}}})
	officer, _ := h.secrets(t, v, tokenApp1)
	reader, _ := h.secrets(t, v, tokenApp2)
	ctx := context.Background()
	set, err := officer.SetSecret(ctx, "canary", azsecrets.SetSecretParameters{Value: ptr(canary)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var errs []error
	record := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	_, err = reader.GetSecret(ctx, "canary", "", nil) // ForbiddenByRbac
	record(err)
	_, err = reader.SetSecret(ctx, "canary", azsecrets.SetSecretParameters{Value: ptr(canary)}, nil) // ForbiddenByRbac with a body
	record(err)
	_, err = officer.UpdateSecretProperties(ctx, "canary", set.ID.Version(), azsecrets.UpdateSecretPropertiesParameters{
		SecretAttributes: &azsecrets.SecretAttributes{Enabled: ptr(false)}}, nil)
	record(err)
	_, err = officer.GetSecret(ctx, "canary", "", nil) // SecretDisabled
	record(err)
	_, err = officer.DeleteSecret(ctx, "canary", nil)
	record(err)
	_, err = officer.SetSecret(ctx, "canary", azsecrets.SetSecretParameters{Value: ptr(canary)}, nil) // Conflict
	record(err)
	_, err = officer.GetDeletedSecret(ctx, "canary", nil) // SecretDisabled (deleted)
	record(err)
	_, err = officer.PurgeDeletedSecret(ctx, "canary", nil) // purge protection
	record(err)
	_, err = officer.SetSecret(ctx, "bad_name", azsecrets.SetSecretParameters{Value: ptr(canary)}, nil) // BadParameter
	record(err)
	resp, body := h.raw(t, http.MethodPut, v.URL()+"secrets/x?api-version=7.6", tokenApp1, `{"value":"`+canary+`",`) // malformed body
	if resp.StatusCode != 400 {
		t.Errorf("malformed body answered %d", resp.StatusCode)
	}
	if len(errs) < 7 {
		t.Fatalf("only %d of the failing calls failed: %v", len(errs), errs)
	}
	for _, err := range errs {
		if strings.Contains(err.Error(), canary) {
			t.Errorf("error message leaks the value: %v", err)
		}
	}
	if strings.Contains(string(body), canary) {
		t.Errorf("error body leaks the value: %s", body)
	}
	for _, e := range h.journal.Entries() {
		b, _ := json.Marshal(e)
		if strings.Contains(string(b), canary) {
			t.Errorf("journal entry leaks the value: %s", b)
		}
		if strings.Contains(string(b), tokenApp1) || strings.Contains(string(b), tokenApp2) {
			t.Errorf("journal entry leaks a token: %s", b)
		}
	}
	if _, err := v.SetSecret("canary", canary, nil); err == nil || strings.Contains(err.Error(), canary) {
		t.Errorf("seeding error = %v", err)
	}
}

func TestConcurrentClientsSeeAConsistentVault(t *testing.T) {
	h := newHarness(t)
	v := h.vault(t, rbacVault("kv-concurrent"))
	c, _ := h.secrets(t, v, tokenOwner)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for w := range 8 {
		wg.Go(func() {
			name := fmt.Sprintf("s-%d", w%4)
			for i := range 10 {
				value := fmt.Sprintf("%d-%d", w, i)
				set, err := c.SetSecret(ctx, name, azsecrets.SetSecretParameters{Value: &value}, nil)
				if err != nil {
					errs <- err
					return
				}
				got, err := c.GetSecret(ctx, name, set.ID.Version(), nil)
				if err != nil || *got.Value != value {
					errs <- fmt.Errorf("read back %v, %v; want %s", got.Value, err, value)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	total := 0
	for i := range 4 {
		infos, err := v.SecretVersions(fmt.Sprintf("s-%d", i))
		if err != nil {
			t.Fatal(err)
		}
		total += len(infos)
	}
	if total != 80 {
		t.Errorf("%d versions, want 80", total)
	}
}

func TestWriteErrorWritesTheServiceEnvelope(t *testing.T) {
	tests := []struct {
		name  string
		err   *keyvault.Error
		body  string
		retry string
	}{
		{"an error with an inner code", &keyvault.Error{Status: 403, Code: "Forbidden", Message: "m", InnerCode: "ForbiddenByRbac"},
			`{"error":{"code":"Forbidden","message":"m","innererror":{"code":"ForbiddenByRbac"}}}`, ""},
		{"a throttle with Retry-After rounded up to seconds", &keyvault.Error{Status: 429, Code: "Throttled", Message: "slow down", RetryAfter: 1500 * time.Millisecond},
			`{"error":{"code":"Throttled","message":"slow down"}}`, "2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			r := httptest.NewRequest(http.MethodGet, "https://kv.vault.azure.net/secrets", nil)
			keyvault.WriteError(rec, r, tt.err)
			if rec.Code != tt.err.Status || rec.Body.String() != tt.body || rec.Header().Get("Retry-After") != tt.retry {
				t.Errorf("got %d %s Retry-After %q", rec.Code, rec.Body, rec.Header().Get("Retry-After"))
			}
			if rec.Header().Get("Content-Type") != "application/json; charset=utf-8" || !guid.MatchString(rec.Header().Get("x-ms-request-id")) ||
				rec.Header().Get("x-ms-keyvault-region") != keyvault.DefaultRegion {
				t.Errorf("headers = %v", rec.Header())
			}
		})
	}
	t.Run("the service's WriteError adds the vault's challenge to a 401", func(t *testing.T) {
		h := newHarness(t)
		h.vault(t, keyvault.VaultConfig{Name: "kv-write", Location: "northeurope"})
		rec := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodGet, "https://kv-write.vault.azure.net/secrets", nil)
		h.svc.WriteError(rec, r, &keyvault.Error{Status: 401, Code: "Unauthorized", Message: "AKV10000: Request is missing a Bearer or PoP token."})
		if rec.Header().Get("WWW-Authenticate") != challengeValue || rec.Header().Get("x-ms-keyvault-region") != "northeurope" {
			t.Errorf("headers = %v", rec.Header())
		}
	})
	t.Run("errors match templates with errors.Is", func(t *testing.T) {
		err := fmt.Errorf("wrapped: %w", &keyvault.Error{Status: 409, Code: "Conflict", InnerCode: "ObjectIsDeletedButRecoverable"})
		if !errors.Is(err, &keyvault.Error{InnerCode: "ObjectIsDeletedButRecoverable"}) || errors.Is(err, &keyvault.Error{Status: 404}) {
			t.Error("errors.Is does not match by template")
		}
	})
}

func TestVaultConfigurationsAreValidatedAsTheServiceValidatesThem(t *testing.T) {
	svc, err := keyvault.New(keyvault.Options{Verifier: stubVerifier{}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CreateVault(keyvault.VaultConfig{Name: "taken", TenantID: tenantA}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  keyvault.VaultConfig
		ok   bool
	}{
		{"a plain name is accepted", keyvault.VaultConfig{Name: "kv-prod-01"}, true},
		{"a 24-character name is accepted", keyvault.VaultConfig{Name: strings.Repeat("a", 24)}, true},
		{"a two-character name is refused", keyvault.VaultConfig{Name: "kv"}, false},
		{"a 25-character name is refused", keyvault.VaultConfig{Name: strings.Repeat("a", 25)}, false},
		{"a name starting with a digit is refused", keyvault.VaultConfig{Name: "1vault"}, false},
		{"a name ending with a hyphen is refused", keyvault.VaultConfig{Name: "vault-"}, false},
		{"consecutive hyphens are refused", keyvault.VaultConfig{Name: "my--vault"}, false},
		{"an underscore is refused", keyvault.VaultConfig{Name: "my_vault"}, false},
		{"a name in use is refused whatever its case", keyvault.VaultConfig{Name: "TAKEN"}, false},
		{"an unknown role is refused", keyvault.VaultConfig{Name: "kv-role", RoleAssignments: []keyvault.RoleAssignment{{PrincipalID: "x", Role: "Owner"}}}, false},
		{"an unknown permission is refused", keyvault.VaultConfig{Name: "kv-perm", AccessPolicies: []keyvault.AccessPolicy{{ObjectID: "x", Secrets: []string{"read"}}}}, false},
		{"a retention under 7 days is refused", keyvault.VaultConfig{Name: "kv-retention", SoftDeleteRetentionDays: 3}, false},
		{"purge protection without soft delete is refused", keyvault.VaultConfig{Name: "kv-purge", SoftDeleteDisabled: true, PurgeProtection: true}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.TenantID = tenantA
			_, err := svc.CreateVault(tt.cfg)
			if (err == nil) != tt.ok {
				t.Errorf("CreateVault err = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, keyvault.ErrInvalidConfig) {
				t.Errorf("error %v does not wrap ErrInvalidConfig", err)
			}
		})
	}
	t.Run("a tenant that is not a GUID is refused", func(t *testing.T) {
		if _, err := svc.CreateVault(keyvault.VaultConfig{Name: "kv-tenant", TenantID: "contoso"}); !errors.Is(err, keyvault.ErrInvalidConfig) {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("a service needs a verifier", func(t *testing.T) {
		if _, err := keyvault.New(keyvault.Options{}); err == nil {
			t.Error("New without a verifier succeeded")
		}
	})
}

func TestUnsupportedOperationsAnswerAsJSON(t *testing.T) {
	h := newHarness(t)
	v := h.vault(t, rbacVault("kv-unsupported"))
	tests := []struct {
		name   string
		method string
		path   string
		status int
		code   string
	}{
		{"backup is not implemented", http.MethodPost, "secrets/s/backup", 501, "NotImplemented"},
		{"creating a key over HTTP is not implemented", http.MethodPost, "keys/k/create", 501, "NotImplemented"},
		{"an unknown collection is not found", http.MethodGet, "widgets", 404, "NotFound"},
		{"POST on the secret list is not allowed", http.MethodPost, "secrets", 405, "MethodNotAllowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := h.raw(t, tt.method, v.URL()+tt.path+"?api-version=7.6", tokenOwner, "")
			se := parseEnvelope(t, resp.StatusCode, resp.Header, body)
			if se.Status != tt.status || se.Code != tt.code {
				t.Errorf("got %d %s", se.Status, se.Code)
			}
		})
	}
}
