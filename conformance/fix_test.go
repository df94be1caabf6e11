package conformance

import "testing"

func TestOnlyKubectlCommandsThatChangeTheClusterAreFollowed(t *testing.T) {
	for command, want := range map[string]bool{
		"kubectl replace --force -f <secretsync.yaml>":             true,
		"kubectl delete secret app -n payments":                    true,
		"kubectl apply -n payments -f <secretproviderclass.yaml>":  true,
		"kubectl create serviceaccount workload -n payments":       true,
		"kubectl describe secretsync app -n payments":              false,
		"kubectl logs -n kvsync-system pod -c provider-azure":      false,
		"kubectl get secretproviderclass -n payments":              false,
		"az keyvault network-rule add --name kv --ip-address <ip>": false,
		"": false,
	} {
		if got := changesCluster(command); got != want {
			t.Errorf("changesCluster(%q) = %v, want %v", command, got, want)
		}
	}
	if m := unfilled.FindString("az role assignment create --assignee <client-id>"); m != "<client-id>" {
		t.Errorf("unfilled found %q in a command with <client-id>", m)
	}
	if m := unfilled.FindString("kubectl replace --force -f /tmp/kvsync-fix-1/secretsync.yaml"); m != "" {
		t.Errorf("unfilled found %q in a filled command", m)
	}
}
