package scenarios_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/kvsync/kvsync/scenarios"
)

func TestEveryScenarioFileLoads(t *testing.T) {
	list, err := scenarios.Load(".")
	if err != nil {
		t.Fatal(err)
	}
	if len(list) < 20 {
		t.Errorf("%d scenarios, want at least 20", len(list))
	}
}

func TestEveryDocumentedReasonHasACoreScenario(t *testing.T) {
	list, err := scenarios.Load(".")
	if err != nil {
		t.Fatal(err)
	}
	expected := map[string][]string{}
	for _, s := range list {
		if s.Profile != scenarios.Core {
			continue
		}
		for _, st := range s.Steps {
			if st.Expect != nil {
				expected[st.Expect.Reason] = append(expected[st.Expect.Reason], s.Name)
			}
		}
	}
	for _, r := range scenarios.Reasons {
		if len(expected[r]) == 0 {
			t.Errorf("no core scenario expects reason %s", r)
		}
	}
}

func TestBadScenarioFilesAreReportedWithTheFileAndTheProblem(t *testing.T) {
	valid := `name: ok
description: d
labels: [reason:CreateSucceeded]
profile: core
cause: synced
secretSync:
  type: Opaque
  data: [{targetKey: k, sourcePath: s}]
steps:
  - expect: {reason: CreateSucceeded}
`
	if _, err := scenarios.Parse([]byte(valid), "ok.yaml"); err != nil {
		t.Fatalf("a valid scenario: %v", err)
	}
	tests := []struct {
		name, yaml, want string
	}{
		{"an unknown field", valid + "colour: blue\n", `unknown field "colour"`},
		{"a name that is not the file's", strings.Replace(valid, "name: ok", "name: other", 1), "does not match the file name"},
		{"no description", strings.Replace(valid, "description: d", "description: ''", 1), "description is empty"},
		{"a reason that is not documented", strings.Replace(valid, "{reason: CreateSucceeded}", "{reason: AllGood}", 1), `"AllGood" is not a documented reason`},
		{"a vault value without the canary", valid + "vault:\n  secrets: [{name: a, value: plain}]\n", `must contain "kvsync-canary"`},
		{"no documented reason", strings.Replace(valid, "labels: [reason:CreateSucceeded]\n", "", 1), "no reason: label"},
		{"a documented reason no step expects", strings.Replace(valid, "reason:CreateSucceeded", "reason:ProviderError", 1), "no step expects the documented reason ProviderError"},
		{"a cause of another reason", strings.Replace(valid, "cause: synced", "cause: vault-firewall", 1), `cause "vault-firewall" is not a cause of CreateSucceeded`},
		{"no data", strings.Replace(valid, "data: [{targetKey: k, sourcePath: s}]", "data: []", 1), "secretSync.data is empty"},
		{"no steps", strings.Replace(valid, "steps:\n  - expect: {reason: CreateSucceeded}\n", "steps: []\n", 1), "steps is empty"},
		{"two actions in a step", strings.Replace(valid, "  - expect: {reason: CreateSucceeded}", "  - {deleteSecret: true, clearFaults: true}", 1), "step 1 has 2 actions"},
		{"a bad fault", valid + "faults: [{name: f, kind: vault.everything}]\n", `unknown kind "vault.everything"`},
		{"a bad label", strings.Replace(valid, "labels: [reason:CreateSucceeded]", "labels: [reason:CreateSucceeded, fast]", 1), `label "fast" is not key:value`},
		{"no profile", strings.Replace(valid, "profile: core\n", "", 1), `profile "" is not one of core, extended`},
		{"an unknown profile", strings.Replace(valid, "profile: core", "profile: gold", 1), `profile "gold" is not one of core, extended`},
		{"no Secret type in a core scenario, which the API requires", strings.Replace(valid, "  type: Opaque\n", "", 1), "secretSync.type is empty"},
		{"a bad expected status", strings.Replace(valid, "{reason: CreateSucceeded}", "{reason: CreateSucceeded, status: maybe}", 1), `"maybe" must be True or False`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := scenarios.Parse([]byte(tt.yaml), "ok.yaml")
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "ok.yaml: ") {
				t.Errorf("Parse = %v, want an error naming ok.yaml and containing %q", err, tt.want)
			}
		})
	}
}

func TestEveryScenarioIsLabelledWithAReasonAndALayer(t *testing.T) {
	list, err := scenarios.Load(".")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range list {
		if !slices.ContainsFunc(s.Labels, func(l string) bool { return strings.HasPrefix(l, "reason:") }) {
			t.Errorf("%s has no reason label", s.Name)
		}
		if !slices.ContainsFunc(s.Labels, func(l string) bool { return strings.HasPrefix(l, "layer:") }) {
			t.Errorf("%s has no layer label", s.Name)
		}
	}
}
