package keyvault

import "testing"

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
	start, end, next := paginate(keys, pageRequest{size: 2}, true)
	if start != 0 || end != 2 || next == nil || !next.Empty || next.NextMarker != "b" {
		t.Fatalf("first page = %d %d %+v", start, end, next)
	}
	start, end, next = paginate(keys, pageRequest{size: 2, token: *next, hasToken: true}, true)
	if start != end || next == nil || next.Empty || next.NextMarker != "b" {
		t.Fatalf("empty page = %d %d %+v", start, end, next)
	}
	start, end, next = paginate(keys, pageRequest{size: 2, token: *next, hasToken: true}, true)
	if start != 2 || end != 3 || next != nil {
		t.Fatalf("last page = %d %d %+v", start, end, next)
	}
}
