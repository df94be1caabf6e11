package provider

import (
	"strings"
	"testing"
)

// FuzzParseParameters feeds any SecretProviderClass parameters to the
// provider's parser: it never panics, decides the same twice, and what it
// accepts names a vault and at least one object, each with a name.
func FuzzParseParameters(f *testing.F) {
	f.Add("contoso", "5f0c1d2e-0000-4000-8000-0000000000a1", "0e1f2a3b-0000-4000-8000-00000000cc01", "",
		"array:\n  - |\n    objectName: a\n    objectType: secret\n    objectVersionHistory: 3\n")
	f.Add("contoso", "tenant", "client", "AzureUSGovernmentCloud", "array:\n  - |\n    objectName: cert\n    objectType: cert\n    objectFormat: pfx\n    objectEncoding: base64\n")
	f.Add("kv", "t", "c", "", "array: [\"objectName: a\\nobjectAlias: ../x\"]")
	f.Add("", "", "", "", "")
	f.Fuzz(func(t *testing.T, vault, tenant, client, cloud, objects string) {
		params := map[string]string{"keyvaultName": vault, "tenantID": tenant, "clientID": client, "cloudName": cloud, "objects": objects}
		p, err := ParseParameters(params)
		_, again := ParseParameters(params)
		if (err == nil) != (again == nil) {
			t.Fatal("the parameters were decided differently twice")
		}
		if err != nil {
			if err.Error() == "" {
				t.Fatal("an empty error")
			}
			return
		}
		if p.Vault == "" || len(p.Objects) == 0 {
			t.Fatalf("accepted without a vault or objects: %+v", p)
		}
		for _, o := range p.Objects {
			if strings.TrimSpace(o.Name) == "" {
				t.Fatalf("accepted an object without a name: %+v", o)
			}
		}
	})
}
