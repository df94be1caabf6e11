package keyvault

import (
	"encoding/base64"
	"testing"
)

func TestRoleWildcardsMatchAsAzureRBACMatches(t *testing.T) {
	tests := []struct {
		pattern, action string
		want            bool
	}{
		{"Microsoft.KeyVault/vaults/*", actSecretGet, true},
		{"Microsoft.KeyVault/vaults/secrets/*", actSecretGet, true},
		{"Microsoft.KeyVault/vaults/secrets/*", actKeyRead, false},
		{"Microsoft.KeyVault/vaults/*/read", actKeyRead, true},
		{"Microsoft.KeyVault/vaults/*/read", actCertRead, true},
		{"Microsoft.KeyVault/vaults/*/read", actSecretGet, false},
		{"microsoft.keyvault/vaults/secrets/getsecret/action", actSecretGet, true},
		{actSecretMetadata, actSecretGet, false},
	}
	for _, tt := range tests {
		if got := wildcardMatch(tt.pattern, tt.action); got != tt.want {
			t.Errorf("wildcardMatch(%q, %q) = %v, want %v", tt.pattern, tt.action, got, tt.want)
		}
	}
}

func TestPathsMapToTheOperationsTheSDKsCall(t *testing.T) {
	tests := []struct {
		method, path string
		op           string
		name, ver    string
		code         string
	}{
		{"GET", "/secrets/db/", "GetSecret", "db", "", ""},
		{"GET", "/secrets/db/0123", "GetSecret", "db", "0123", ""},
		{"GET", "/secrets/db", "GetSecret", "db", "", ""},
		{"PUT", "/secrets/db", "SetSecret", "db", "", ""},
		{"PATCH", "/secrets/db/", "UpdateSecret", "db", "", ""},
		{"DELETE", "/secrets/db", "DeleteSecret", "db", "", ""},
		{"GET", "/secrets", "ListSecrets", "", "", ""},
		{"GET", "/Secrets/", "ListSecrets", "", "", ""},
		{"GET", "/secrets/db/versions", "ListSecretVersions", "db", "", ""},
		{"GET", "/deletedsecrets", "ListDeletedSecrets", "", "", ""},
		{"GET", "/deletedsecrets/db", "GetDeletedSecret", "db", "", ""},
		{"POST", "/deletedsecrets/db/recover", "RecoverDeletedSecret", "db", "", ""},
		{"DELETE", "/deletedsecrets/db", "PurgeDeletedSecret", "db", "", ""},
		{"GET", "/keys/k/", "GetKey", "k", "", ""},
		{"GET", "/keys/k/versions", "ListKeyVersions", "k", "", ""},
		{"GET", "/certificates/c/", "GetCertificate", "c", "", ""},
		{"GET", "/certificates/c/policy", "GetCertificatePolicy", "c", "", ""},
		{"GET", "//secrets/db/", "GetSecret", "db", "", ""},
		{"GET", "/secrets/db_x/", "GetSecret", "db_x", "", "BadParameter"},
		{"GET", "/secrets//", "GetSecret", "", "", "BadParameter"},
		{"GET", "/secrets/a%2Fb/", "GetSecret", "a/b", "", "BadParameter"},
		{"POST", "/secrets", "ListSecrets", "", "", "MethodNotAllowed"},
		{"GET", "/nothing", "", "", "", "NotFound"},
		{"GET", "/secrets/a/b/c", "", "", "", "NotFound"},
	}
	for _, tt := range tests {
		rt, e := parseRoute(tt.method, tt.path)
		code := ""
		if e != nil {
			code = e.Code
		}
		if rt.op.name != tt.op || rt.name != tt.name || rt.version != tt.ver || code != tt.code {
			t.Errorf("%s %s = %s %q %q %q, want %s %q %q %q", tt.method, tt.path, rt.op.name, rt.name, rt.version, code, tt.op, tt.name, tt.ver, tt.code)
		}
	}
}

func TestEmptyPagesCarryTheMarkerOfThePageBefore(t *testing.T) {
	keys := []string{"a", "b", "c"}
	c := &call{svc: &Service{}, cfg: VaultConfig{InterleaveEmptyPages: true}}
	start, end, next := c.paginate(keys, pageRequest{size: 2}, vaultWide)
	if start != 0 || end != 2 || next == nil || !next.empty || next.after != "b" {
		t.Fatalf("first page = %d %d %+v", start, end, next)
	}
	start, end, next = c.paginate(keys, pageRequest{size: 2, token: *next, hasToken: true}, vaultWide)
	if start != end || next == nil || next.empty || next.after != "b" {
		t.Fatalf("empty page = %d %d %+v", start, end, next)
	}
	start, end, next = c.paginate(keys, pageRequest{size: 2, token: *next, hasToken: true}, vaultWide)
	if start != 2 || end != 3 || next != nil {
		t.Fatalf("last page = %d %d %+v", start, end, next)
	}
}

func TestATrailingEmptyPageEndsVaultWideListsButNotVersionLists(t *testing.T) {
	keys := []string{"a", "b", "c"}
	c := &call{svc: &Service{opts: Options{Fidelity: Fidelity{TrailingEmptyPage: true}}}}
	_, end, next := c.paginate(keys, pageRequest{size: 3}, vaultWide)
	if end != 3 || next == nil || !next.last {
		t.Fatalf("last page of items = %d %+v, want a link to a trailing page", end, next)
	}
	start, end, next := c.paginate(keys, pageRequest{size: 3, token: *next, hasToken: true}, vaultWide)
	if start != end || next != nil {
		t.Fatalf("trailing page = %d %d %+v, want empty and last", start, end, next)
	}
	if _, _, next := c.paginate(keys, pageRequest{size: 3}, versions); next != nil {
		t.Errorf("a version list's last page links on: %+v", next)
	}
	if _, _, next := c.paginate(nil, pageRequest{size: 3}, vaultWide); next != nil {
		t.Errorf("an empty list links on: %+v", next)
	}
}

func TestPageTokensAreAcceptedOnlyByTheListThatIssuedThem(t *testing.T) {
	s := &Service{pageKey: []byte("0123456789abcdef0123456789abcdef")}
	list := "https://kv.vault.azure.net/secrets"
	for _, tok := range []pageToken{{after: "db-password"}, {after: "b", empty: true}, {after: "z!x", last: true}} {
		raw := s.encodePageToken(list, tok)
		got, err := s.decodePageToken(list, raw)
		if err != nil || got != tok {
			t.Errorf("round trip of %+v = %+v, %v", tok, got, err)
		}
		if _, err := s.decodePageToken("https://kv.vault.azure.net/deletedsecrets", raw); err == nil {
			t.Errorf("a token of %s was accepted by another list", list)
		}
		other := &Service{pageKey: []byte("another key, another fake's run.")}
		if _, err := other.decodePageToken(list, raw); err == nil {
			t.Errorf("a token was accepted by a service that did not issue it")
		}
	}
	// A token shaped as the service's that the fake did not sign.
	forged := base64.RawURLEncoding.EncodeToString([]byte(`{"NextMarker":"2!16!MCEwMCFkYi1wYXNzd29yZA==","TargetLocation":0}`))
	if _, err := s.decodePageToken(list, forged); err == nil {
		t.Error("an unsigned token was accepted")
	}
}
