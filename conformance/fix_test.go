package conformance

import "testing"

func TestOnlyCommandsThatChangeTheClusterOrAzureAreFollowed(t *testing.T) {
	for command, want := range map[string]bool{
		"kubectl replace --force -f <secretsync.yaml>":                                                                                    true,
		"kubectl delete secret app -n payments":                                                                                           true,
		"kubectl apply -n payments -f <secretproviderclass.yaml>":                                                                         true,
		"kubectl create serviceaccount workload -n payments":                                                                              true,
		"kubectl describe secretsync app -n payments":                                                                                     false,
		"kubectl logs -n kvsync-system pod -c provider-azure":                                                                             false,
		"kubectl get secretproviderclass -n payments":                                                                                     false,
		"az keyvault network-rule add --name kv --ip-address 203.0.113.7/32":                                                              true,
		"az keyvault network-rule list --name kv":                                                                                         false,
		"az keyvault secret set-attributes --vault-name kv --name db --enabled true":                                                      true,
		"az keyvault secret show --vault-name kv --name db":                                                                               false,
		"az keyvault set-policy --name kv --spn c1 --secret-permissions get":                                                              true,
		`az role assignment create --role "Key Vault Secrets User" --assignee c1 --scope $(az keyvault show --name kv --query id -o tsv)`: true,
		"az identity federated-credential list --identity-name id --resource-group g":                                                     false,
		"": false,
	} {
		if got := changes(command); got != want {
			t.Errorf("changes(%q) = %v, want %v", command, got, want)
		}
	}
	if m := unfilled.FindString("az role assignment create --assignee <client-id>"); m != "<client-id>" {
		t.Errorf("unfilled found %q in a command with <client-id>", m)
	}
	if m := unfilled.FindString("kubectl replace --force -f /tmp/kvsync-fix-1/secretsync.yaml"); m != "" {
		t.Errorf("unfilled found %q in a filled command", m)
	}
}
