package conformance

import (
	"slices"
	"testing"

	"github.com/kvsync/kvsync/scenarios"
	"github.com/kvsync/kvsync/troubleshoot"
)

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

// TestEveryFixThatChangesSomethingIsFollowedByAScenario holds the printed
// fixes to being followed: every command that changes the cluster or
// Azure, of every cause's steps (the doctor's) and every reason's (explain's
// and docs/reasons.md's), is one a scenario follows as printed, and every
// cause a scenario proves has its fix followed by some scenario.
func TestEveryFixThatChangesSomethingIsFollowedByAScenario(t *testing.T) {
	all, err := scenarios.Load("../scenarios")
	if err != nil {
		t.Fatal(err)
	}
	proven, followed := map[string]bool{}, map[string]bool{}
	for _, s := range all {
		proven[s.Cause] = true
		if slices.ContainsFunc(s.Steps, func(st scenarios.Step) bool { return st.FollowFix != nil }) {
			followed[s.Cause] = true
		}
	}
	// fix is what the doctor prints for a cause: its steps, or its reason's.
	fix := func(c troubleshoot.Cause) []troubleshoot.Step {
		if r, ok := troubleshoot.LookupReason(c.Reason); ok && len(c.Fix) == 0 {
			return r.Fix
		}
		return c.Fix
	}
	changing := func(steps []troubleshoot.Step) (out []string) {
		for _, s := range steps {
			if changes(s.Command) {
				out = append(out, s.Command)
			}
		}
		return out
	}
	followedCommands := map[string]bool{}
	for _, c := range troubleshoot.Causes() {
		if followed[c.ID] {
			for _, command := range changing(fix(c)) {
				followedCommands[command] = true
			}
		}
	}
	for _, c := range troubleshoot.Causes() {
		commands := changing(fix(c))
		if proven[c.ID] && len(commands) > 0 && !followed[c.ID] {
			t.Errorf("cause %s: scenarios prove it, but none follows its fix %q", c.ID, commands)
		}
		for _, command := range commands {
			if !followedCommands[command] {
				t.Errorf("cause %s: no scenario follows %q", c.ID, command)
			}
		}
	}
	for _, r := range troubleshoot.Reasons() {
		for _, command := range changing(r.Fix) {
			if !followedCommands[command] {
				t.Errorf("reason %s: no scenario follows %q", r.Name, command)
			}
		}
	}
}
