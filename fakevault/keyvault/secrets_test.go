package keyvault_test

import (
	"context"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"github.com/kvsync/kvsync/fakevault/keyvault"
)

var versionedID = regexp.MustCompile(`^https://[a-z0-9-]+\.vault\.azure\.net/secrets/[A-Za-z0-9-]+/[0-9a-f]{32}$`)

func TestSecretsRoundTripThroughAzsecrets(t *testing.T) {
	h := newHarness(t)
	v := h.vault(t, rbacVault("kv-roundtrip", keyvault.RoleAssignment{PrincipalID: oidApp1, Role: "Key Vault Secrets Officer"}))
	c, _ := h.secrets(t, v, tokenApp1)
	ctx := context.Background()
	created := h.now.Now()

	first, err := c.SetSecret(ctx, "db-password", azsecrets.SetSecretParameters{
		Value:            ptr("v1"),
		ContentType:      ptr("text/plain"),
		Tags:             map[string]*string{"team": ptr("infra")},
		SecretAttributes: &azsecrets.SecretAttributes{Expires: ptr(created.Add(48 * time.Hour))},
	}, nil)
	if err != nil {
		t.Fatalf("SetSecret: %v", err)
	}
	h.now.Advance(time.Minute)
	second, err := c.SetSecret(ctx, "db-password", azsecrets.SetSecretParameters{Value: ptr("v2")}, nil)
	if err != nil {
		t.Fatalf("second SetSecret: %v", err)
	}

	t.Run("each PUT makes a new version with a 32-hex-digit ID", func(t *testing.T) {
		for _, id := range []azsecrets.ID{*first.ID, *second.ID} {
			if !versionedID.MatchString(string(id)) {
				t.Errorf("id %q is not https://<vault>.vault.azure.net/secrets/<name>/<32 hex>", id)
			}
		}
		if first.ID.Version() == second.ID.Version() {
			t.Errorf("both PUTs answered version %s", first.ID.Version())
		}
		if got := *first.Value; got != "v1" {
			t.Errorf("SetSecret answered value %q, want v1", got)
		}
	})

	t.Run("the set answer carries attributes as the service sends them", func(t *testing.T) {
		a := first.Attributes
		if !*a.Enabled || a.Created.Unix() != created.Unix() || a.Updated.Unix() != created.Unix() {
			t.Errorf("attributes = enabled %v created %v updated %v", *a.Enabled, a.Created, a.Updated)
		}
		if a.Expires.Unix() != created.Add(48*time.Hour).Unix() {
			t.Errorf("exp = %v", a.Expires)
		}
		if *a.RecoveryLevel != "Recoverable+Purgeable" || *a.RecoverableDays != 90 {
			t.Errorf("recovery = %s/%d, want Recoverable+Purgeable/90", *a.RecoveryLevel, *a.RecoverableDays)
		}
		if *first.ContentType != "text/plain" || *first.Tags["team"] != "infra" {
			t.Errorf("contentType %q tags %v", *first.ContentType, first.Tags)
		}
	})

	t.Run("getting without a version answers the latest version", func(t *testing.T) {
		got, err := c.GetSecret(ctx, "db-password", "", nil)
		if err != nil {
			t.Fatalf("GetSecret: %v", err)
		}
		if *got.Value != "v2" || *got.ID != *second.ID {
			t.Errorf("latest = %q %s, want v2 %s", *got.Value, *got.ID, *second.ID)
		}
	})

	t.Run("getting by version answers that version", func(t *testing.T) {
		got, err := c.GetSecret(ctx, "db-password", first.ID.Version(), nil)
		if err != nil {
			t.Fatalf("GetSecret: %v", err)
		}
		if *got.Value != "v1" || *got.ID != *first.ID {
			t.Errorf("got %q %s", *got.Value, *got.ID)
		}
	})

	t.Run("names are case-insensitive and keep the case they were created with", func(t *testing.T) {
		got, err := c.GetSecret(ctx, "DB-PASSWORD", "", nil)
		if err != nil {
			t.Fatalf("GetSecret: %v", err)
		}
		if got.ID.Name() != "db-password" {
			t.Errorf("name = %q", got.ID.Name())
		}
	})

	t.Run("updating properties changes attributes and tags but not the value", func(t *testing.T) {
		h.now.Advance(time.Minute)
		up, err := c.UpdateSecretProperties(ctx, "db-password", first.ID.Version(), azsecrets.UpdateSecretPropertiesParameters{
			ContentType:      ptr("application/json"),
			Tags:             map[string]*string{"rotated": ptr("yes")},
			SecretAttributes: &azsecrets.SecretAttributes{Enabled: ptr(false)},
		}, nil)
		if err != nil {
			t.Fatalf("UpdateSecretProperties: %v", err)
		}
		if up.Value != nil {
			t.Errorf("update answered a value")
		}
		if *up.Attributes.Enabled || *up.ContentType != "application/json" || *up.Tags["rotated"] != "yes" || up.Tags["team"] != nil {
			t.Errorf("update = enabled %v ct %q tags %v", *up.Attributes.Enabled, *up.ContentType, up.Tags)
		}
		if !up.Attributes.Updated.After(*up.Attributes.Created) {
			t.Errorf("updated %v not after created %v", up.Attributes.Updated, up.Attributes.Created)
		}
	})

	t.Run("listing versions names every version without values", func(t *testing.T) {
		var ids []string
		pager := c.NewListSecretPropertiesVersionsPager("db-password", nil)
		for pager.More() {
			page, err := pager.NextPage(ctx)
			if err != nil {
				t.Fatalf("NextPage: %v", err)
			}
			for _, p := range page.Value {
				ids = append(ids, string(*p.ID))
			}
		}
		want := []string{string(*first.ID), string(*second.ID)}
		slices.Sort(want) // by version ID, as the service lists them
		if !slices.Equal(ids, want) {
			t.Errorf("versions = %v, want %v", ids, want)
		}
	})
}

func TestSecretErrorsAreReachedByTheirRealCause(t *testing.T) {
	h := newHarness(t)
	v := h.vault(t, keyvault.VaultConfig{Name: "kv-errors", PurgeProtection: true,
		RoleAssignments: []keyvault.RoleAssignment{{PrincipalID: oidApp1, Role: "Key Vault Secrets Officer"}}})
	c, _ := h.secrets(t, v, tokenApp1)
	ctx := context.Background()
	disabledVersion, err := v.SetSecret("switched-off", "value", &keyvault.SecretOptions{Disabled: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.SetSecret("gone", "value", nil); err != nil {
		t.Fatal(err)
	}
	if err := v.DeleteSecret("gone"); err != nil {
		t.Fatal(err)
	}
	if _, err := v.SetSecret("present", "value", nil); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name      string
		call      func() error
		status    int
		code      string
		innerCode string
		message   string
	}{
		{
			name:    "a secret that does not exist is SecretNotFound",
			call:    func() error { _, err := c.GetSecret(ctx, "no-such-secret", "", nil); return err },
			status:  404,
			code:    "SecretNotFound",
			message: "A secret with (name/id) no-such-secret was not found in this key vault. If you recently deleted this secret you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182",
		},
		{
			name: "a version that does not exist is SecretNotFound naming name/version",
			call: func() error {
				_, err := c.GetSecret(ctx, "present", "0123456789abcdef0123456789abcdef", nil)
				return err
			},
			status:  404,
			code:    "SecretNotFound",
			message: "A secret with (name/id) present/0123456789abcdef0123456789abcdef was not found in this key vault.",
		},
		{
			name:      "a disabled version is refused with SecretDisabled",
			call:      func() error { _, err := c.GetSecret(ctx, "switched-off", disabledVersion, nil); return err },
			status:    403,
			code:      "Forbidden",
			innerCode: "SecretDisabled",
			message:   "Operation get is not allowed on a disabled secret.",
		},
		{
			name:      "the latest version being disabled refuses a get without version",
			call:      func() error { _, err := c.GetSecret(ctx, "switched-off", "", nil); return err },
			status:    403,
			code:      "Forbidden",
			innerCode: "SecretDisabled",
		},
		{
			name: "setting a soft-deleted name is a Conflict",
			call: func() error {
				_, err := c.SetSecret(ctx, "gone", azsecrets.SetSecretParameters{Value: ptr("again")}, nil)
				return err
			},
			status:    409,
			code:      "Conflict",
			innerCode: "ObjectIsDeletedButRecoverable",
			message:   "Secret gone is currently in a deleted but recoverable state, and its name cannot be reused; in this state, the secret can only be recovered or purged.",
		},
		{
			name: "a name with an underscore is BadParameter",
			call: func() error {
				_, err := c.SetSecret(ctx, "db_password", azsecrets.SetSecretParameters{Value: ptr("x")}, nil)
				return err
			},
			status:  400,
			code:    "BadParameter",
			message: "The request URI contains an invalid name: db_password",
		},
		{
			name:    "a name longer than 127 characters is BadParameter",
			call:    func() error { _, err := c.GetSecret(ctx, strings.Repeat("a", 128), "", nil); return err },
			status:  400,
			code:    "BadParameter",
			message: "The request URI contains an invalid name: " + strings.Repeat("a", 128),
		},
		{
			name:    "purging under purge protection is Forbidden",
			call:    func() error { _, err := c.PurgeDeletedSecret(ctx, "gone", nil); return err },
			status:  403,
			code:    "Forbidden",
			message: `Operation "purge" is not allowed because purge protection is enabled for this vault. Key Vault service will automatically purge it after the retention period has passed. Vault: kv-errors;location=eastus`,
		},
		{
			name:    "recovering a secret that is not deleted is SecretNotFound",
			call:    func() error { _, err := c.RecoverDeletedSecret(ctx, "present", nil); return err },
			status:  404,
			code:    "SecretNotFound",
			message: "Deleted Secret not found: present",
		},
		{
			name:    "deleting a secret that does not exist is SecretNotFound",
			call:    func() error { _, err := c.DeleteSecret(ctx, "no-such-secret", nil); return err },
			status:  404,
			code:    "SecretNotFound",
			message: "A secret with (name/id) no-such-secret was not found in this key vault.",
		},
		{
			name:    "listing the versions of a missing secret is SecretNotFound",
			call:    func() error { _, err := c.NewListSecretPropertiesVersionsPager("nope", nil).NextPage(ctx); return err },
			status:  404,
			code:    "SecretNotFound",
			message: "A secret with (name/id) nope was not found",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if err == nil {
				t.Fatal("call succeeded")
			}
			se := asServiceError(t, err)
			if se.Status != tt.status || se.Code != tt.code || se.InnerCode != tt.innerCode {
				t.Errorf("got %d %s/%s, want %d %s/%s", se.Status, se.Code, se.InnerCode, tt.status, tt.code, tt.innerCode)
			}
			if !strings.HasPrefix(se.Message, tt.message) {
				t.Errorf("message = %q, want prefix %q", se.Message, tt.message)
			}
		})
	}
}

func TestSoftDeleteLifecycle(t *testing.T) {
	h := newHarness(t)
	v := h.vault(t, keyvault.VaultConfig{Name: "kv-softdelete", SoftDeleteRetentionDays: 7,
		RoleAssignments: []keyvault.RoleAssignment{{PrincipalID: oidApp1, Role: "Key Vault Secrets Officer"}}})
	c, _ := h.secrets(t, v, tokenApp1)
	ctx := context.Background()
	set, err := c.SetSecret(ctx, "api-key", azsecrets.SetSecretParameters{Value: ptr("s3cret"), Tags: map[string]*string{"a": ptr("b")}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	deletedAt := h.now.Now()

	t.Run("deleting answers the deleted secret with recovery ID and purge date", func(t *testing.T) {
		del, err := c.DeleteSecret(ctx, "api-key", nil)
		if err != nil {
			t.Fatalf("DeleteSecret: %v", err)
		}
		if *del.RecoveryID != "https://kv-softdelete.vault.azure.net/deletedsecrets/api-key" {
			t.Errorf("recoveryId = %s", *del.RecoveryID)
		}
		if del.DeletedDate.Unix() != deletedAt.Unix() || del.ScheduledPurgeDate.Unix() != deletedAt.Add(7*24*time.Hour).Unix() {
			t.Errorf("dates = %v / %v", del.DeletedDate, del.ScheduledPurgeDate)
		}
		if *del.ID != *set.ID || del.Value != nil || *del.Attributes.RecoveryLevel != "CustomizedRecoverable+Purgeable" {
			t.Errorf("deleted = id %s value %v level %s", *del.ID, del.Value, *del.Attributes.RecoveryLevel)
		}
	})

	t.Run("a deleted secret is gone from get and from the list", func(t *testing.T) {
		_, err := c.GetSecret(ctx, "api-key", "", nil)
		if se := asServiceError(t, err); se.Code != "SecretNotFound" {
			t.Errorf("get after delete = %+v", se)
		}
		page, err := c.NewListSecretPropertiesPager(nil).NextPage(ctx)
		if err != nil || len(page.Value) != 0 {
			t.Errorf("list after delete = %d items, %v", len(page.Value), err)
		}
	})

	t.Run("the deleted secret can be read and listed", func(t *testing.T) {
		got, err := c.GetDeletedSecret(ctx, "api-key", nil)
		if err != nil {
			t.Fatalf("GetDeletedSecret: %v", err)
		}
		if *got.Tags["a"] != "b" || got.Value != nil {
			t.Errorf("deleted secret = %+v", got)
		}
		page, err := c.NewListDeletedSecretPropertiesPager(nil).NextPage(ctx)
		if err != nil {
			t.Fatalf("list deleted: %v", err)
		}
		if len(page.Value) != 1 || string(*page.Value[0].ID) != "https://kv-softdelete.vault.azure.net/secrets/api-key" {
			t.Errorf("deleted list = %+v", page.Value)
		}
	})

	t.Run("recovering brings the secret back with its value", func(t *testing.T) {
		rec, err := c.RecoverDeletedSecret(ctx, "api-key", nil)
		if err != nil {
			t.Fatalf("Recover: %v", err)
		}
		if *rec.ID != *set.ID {
			t.Errorf("recovered %s, want %s", *rec.ID, *set.ID)
		}
		got, err := c.GetSecret(ctx, "api-key", "", nil)
		if err != nil || *got.Value != "s3cret" {
			t.Errorf("get after recover = %v, %v", got.Value, err)
		}
	})

	t.Run("purging frees the name", func(t *testing.T) {
		if _, err := c.DeleteSecret(ctx, "api-key", nil); err != nil {
			t.Fatal(err)
		}
		resp, err := c.PurgeDeletedSecret(ctx, "api-key", nil)
		if err != nil {
			t.Fatalf("Purge: %v (%+v)", err, resp)
		}
		if _, err := c.GetDeletedSecret(ctx, "api-key", nil); asServiceError(t, err).Message != "Deleted Secret not found: api-key" {
			t.Errorf("deleted secret still there: %v", err)
		}
		if _, err := c.SetSecret(ctx, "api-key", azsecrets.SetSecretParameters{Value: ptr("fresh")}, nil); err != nil {
			t.Errorf("set after purge: %v", err)
		}
	})

	t.Run("the service purges a deleted secret when its retention ends", func(t *testing.T) {
		if _, err := c.DeleteSecret(ctx, "api-key", nil); err != nil {
			t.Fatal(err)
		}
		h.now.Advance(7*24*time.Hour + time.Second)
		if _, err := c.GetDeletedSecret(ctx, "api-key", nil); asServiceError(t, err).Status != http.StatusNotFound {
			t.Errorf("deleted secret survived its retention: %v", err)
		}
	})
}

func TestAVaultWithoutSoftDeletePurgesOnDelete(t *testing.T) {
	h := newHarness(t)
	v := h.vault(t, keyvault.VaultConfig{Name: "kv-nosoftdelete", SoftDeleteDisabled: true,
		RoleAssignments: []keyvault.RoleAssignment{{PrincipalID: oidApp1, Role: "Key Vault Administrator"}}})
	c, _ := h.secrets(t, v, tokenApp1)
	ctx := context.Background()
	set, err := c.SetSecret(ctx, "x", azsecrets.SetSecretParameters{Value: ptr("y")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if *set.Attributes.RecoveryLevel != "Purgeable" || set.Attributes.RecoverableDays != nil {
		t.Errorf("recovery = %s %v", *set.Attributes.RecoveryLevel, set.Attributes.RecoverableDays)
	}
	del, err := c.DeleteSecret(ctx, "x", nil)
	if err != nil {
		t.Fatal(err)
	}
	if del.RecoveryID != nil {
		t.Errorf("a purged secret has recovery ID %s", *del.RecoveryID)
	}
	if _, err := c.SetSecret(ctx, "x", azsecrets.SetSecretParameters{Value: ptr("again")}, nil); err != nil {
		t.Errorf("name not free after delete: %v", err)
	}
}
