package keyvault_test

import (
	"testing"

	"github.com/kvsync/kvsync/fakevault/keyvault"
)

func TestRoleReadsIsWhatTheBuiltInRolesLetAProviderRead(t *testing.T) {
	for _, tt := range []struct {
		role, objectType string
		reads, known     bool
	}{
		{keyvault.RoleSecretsUser, "secret", true, true},
		{keyvault.RoleSecretsUser, "cert", false, true},
		{keyvault.RoleCertificateUser, "secret", true, true},
		{keyvault.RoleCertificateUser, "cert", true, true},
		{keyvault.RoleCertificateUser, "key", true, true},
		{keyvault.RoleReader, "secret", false, true}, // metadata only, never a value
		{keyvault.RoleAdministrator, "key", true, true},
		{"Contributor", "secret", false, false},
	} {
		reads, known := keyvault.RoleReads(tt.role, tt.objectType)
		if reads != tt.reads || known != tt.known {
			t.Errorf("RoleReads(%q, %q) = %v, %v; want %v, %v", tt.role, tt.objectType, reads, known, tt.reads, tt.known)
		}
	}
}
