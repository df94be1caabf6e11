package controller

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	spcv1 "github.com/kvsync/kvsync/api/secretsstore/v1"
)

func TestAnAzureClassThatNoAzureProviderCanReadIsRefusedBeforeAnyMount(t *testing.T) {
	valid := func() map[string]string {
		return map[string]string{
			"keyvaultName": "kv-app",
			"tenantID":     "5f0c1d2e-0000-4000-8000-00000000c0f1",
			"clientID":     "0b6a9c1e-0000-4000-8000-000000000001",
			"objects":      "array:\n  - |\n    objectName: db\n    objectType: secret\n",
		}
	}
	with := func(k, v string) map[string]string {
		p := valid()
		if v == "" {
			delete(p, k)
		} else {
			p[k] = v
		}
		return p
	}
	tests := []struct {
		name    string
		params  map[string]string
		problem string // a fragment of the problem; "" for none
	}{
		{"a class with vault, tenant, client and objects is fine", valid(), ""},
		{"the legacy tenantId is read as tenantID", func() map[string]string {
			p := with("tenantID", "")
			p["tenantId"] = "5f0c1d2e-0000-4000-8000-00000000c0f1"
			return p
		}(), ""},
		{"VM managed identity needs no clientID", func() map[string]string {
			p := with("clientID", "")
			p["useVMManagedIdentity"] = "true"
			return p
		}(), ""},
		{"an upper-case object type is the provider's to judge", with("objects", "array:\n  - |\n    objectName: db\n    objectType: Secret\n"), ""},
		{"a missing keyvaultName", with("keyvaultName", ""), "keyvaultName is not set"},
		{"a blank keyvaultName", with("keyvaultName", "  "), "keyvaultName is not set"},
		{"a keyvaultName that is a URL", with("keyvaultName", "https://kv-app.vault.azure.net"), "is not a valid key vault name"},
		{"a missing tenantID", with("tenantID", ""), "tenantID is not set"},
		{"a missing clientID", with("clientID", ""), "clientID is not set"},
		{"missing objects", with("objects", ""), "objects is not set"},
		{"objects that are not YAML", with("objects", "array: [unclosed"), "objects is not valid YAML"},
		{"objects without array entries", with("objects", "array: []"), "no entries under array"},
		{"an entry without objectName", with("objects", "array:\n  - |\n    objectType: secret\n"), "objects entry 0 has no objectName"},
		{"an entry without objectType", with("objects", "array:\n  - |\n    objectName: db\n"), "objectType is not set"},
		{"an entry of an unknown type", with("objects", "array:\n  - |\n    objectName: db\n    objectType: password\n"), `objectType "password" is not supported`},
		{"two entries writing one file", with("objects", "array:\n  - |\n    objectName: db\n    objectType: secret\n  - |\n    objectName: db\n    objectType: key\n"), `both write file "db"`},
		{"pfx for a key", with("objects", "array:\n  - |\n    objectName: db\n    objectType: key\n    objectFormat: pfx\n"), "pfx is only for objectType secret"},
		{"an unknown encoding", with("objects", "array:\n  - |\n    objectName: db\n    objectType: secret\n    objectEncoding: rot13\n"), `objectEncoding "rot13" is not supported`},
		{"an alias that climbs out of the mount", with("objects", "array:\n  - |\n    objectName: db\n    objectType: secret\n    objectAlias: ../etc/passwd\n"), "relative path without '..'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := azureClassProblem(tt.params, "workload")
			switch {
			case tt.problem == "" && got != "":
				t.Errorf("problem %q, want none", got)
			case tt.problem != "" && !strings.Contains(got, tt.problem):
				t.Errorf("problem %q, want one containing %q", got, tt.problem)
			}
		})
	}
}

func TestTheCheckOfAnAzureClassIsCachedPerClassGeneration(t *testing.T) {
	class := &spcv1.SecretProviderClass{ObjectMeta: metav1.ObjectMeta{Name: "c", UID: "u1", Generation: 1}, Spec: spcv1.SecretProviderClassSpec{
		Provider: "azure", Parameters: map[string]string{"tenantID": "t", "clientID": "c", "objects": "array:\n  - |\n    objectName: a\n    objectType: secret\n"}}}
	var c planCache
	if problem := c.classProblem(class, "workload"); !strings.Contains(problem, "keyvaultName is not set") {
		t.Fatalf("problem %q, want keyvaultName", problem)
	}
	class.Spec.Parameters["keyvaultName"] = "kv-app"
	if problem := c.classProblem(class, "workload"); !strings.Contains(problem, "keyvaultName is not set") {
		t.Errorf("the same generation was checked again: %q", problem)
	}
	class.Generation = 2
	if problem := c.classProblem(class, "workload"); problem != "" {
		t.Errorf("a new generation kept the old answer: %q", problem)
	}
}

func TestABoundedMapStartsAfreshWhenFull(t *testing.T) {
	var b boundedMap[int, int]
	for i := range maxCachedPlans + 1 {
		b.put(i, i)
	}
	if len(b.m) != 1 {
		t.Errorf("%d entries after %d puts, want 1 (emptied when full)", len(b.m), maxCachedPlans+1)
	}
	if v, ok := b.get(maxCachedPlans); !ok || v != maxCachedPlans {
		t.Errorf("the last entry put = %d, %v", v, ok)
	}
}
