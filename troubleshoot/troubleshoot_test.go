package troubleshoot

import (
	"bufio"
	"fmt"
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	ssv1alpha1 "github.com/kvsync/kvsync/api/secretsync/v1alpha1"
)

var documented = []string{
	ssv1alpha1.ReasonCreateSucceeded, ssv1alpha1.ReasonUpdateNoValueChangeSucceeded, ssv1alpha1.ReasonUpdateValueChangeOrForceUpdateSucceeded,
	ssv1alpha1.ReasonPartialSync, ssv1alpha1.ReasonProviderError, ssv1alpha1.ReasonInvalidClusterSecretLabelError,
	ssv1alpha1.ReasonInvalidClusterSecretAnnotationError, ssv1alpha1.ReasonUserInputValidationFailed, ssv1alpha1.ReasonControllerSpcError,
	ssv1alpha1.ReasonControllerInternalError, ssv1alpha1.ReasonValidatingAdmissionPolicyCheckFailed, ssv1alpha1.ReasonControllerSyncFailed,
	ssv1alpha1.ReasonUnknownError,
}

func TestEveryDocumentedReasonIsInTheGuideWithACauseThatMatchesAll(t *testing.T) {
	for _, r := range documented {
		doc, ok := LookupReason(r)
		if !ok || doc.Meaning == "" || doc.Details == "" {
			t.Errorf("%s: not in the guide, or without meaning and details", r)
		}
		if !doc.Success && len(doc.Fix) == 0 {
			t.Errorf("%s: a failure without fix steps", r)
		}
		if r == ssv1alpha1.ReasonPartialSync {
			continue // explained by its items' causes
		}
		if _, ok := causeOf(r, "a message no cause names", &Facts{Class: ClassFacts{Found: true}}); !ok {
			t.Errorf("%s: no cause matches every message", r)
		}
	}
	if len(Reasons()) != len(documented) {
		t.Errorf("the guide has %d reasons, want %d", len(Reasons()), len(documented))
	}
}

func TestEveryFixCommandRendersWithRealNames(t *testing.T) {
	n := Names{Namespace: "payments", SecretSync: "db", SecretProviderClass: "azure-kv", ServiceAccount: "workload",
		Vault: "kv-payments", Object: "db-password", ControllerNamespace: "kvsync-system", ControllerPod: "kvsync-controller-abc",
		ClientID: "00000000-0000-0000-0000-0000000000c1", TenantID: "00000000-0000-0000-0000-0000000000aa", EgressCIDR: "203.0.113.7/32"}
	var steps []Step
	for _, r := range Reasons() {
		steps = append(steps, r.Fix...)
	}
	for _, c := range Causes() {
		steps = append(steps, c.Fix...)
	}
	for _, s := range steps {
		got := s.Render(n)
		if strings.Contains(got.Command+got.Text, "{{") || strings.Contains(got.Command+got.Text, "<client-id>") || strings.Contains(got.Command+got.Text, "<vault>") ||
			strings.Contains(got.Command+got.Text, "<egress-cidr>") {
			t.Errorf("%+v does not render: %+v", s, got)
		}
		if strings.TrimSpace(got.Text) == "" {
			t.Errorf("a step without text: %+v", s)
		}
	}
}

func TestEveryCauseSummaryRendersWithRealNames(t *testing.T) {
	n := Names{Vault: "kv-payments", ClientID: "c1"}
	for _, c := range Causes() {
		if got := n.Fill(c.Summary); strings.Contains(got, "{{") || strings.Contains(got, "<vault>") {
			t.Errorf("cause %s: summary %q", c.ID, got)
		}
	}
}

func TestDiagnoseFillsTheNamesItKnows(t *testing.T) {
	f := failed("ProviderError", "Forbidden/ForbiddenByRbac (HTTP 403): Caller is not authorized to perform action")
	f.Class.ClientID = "00000000-0000-0000-0000-0000000000c1"
	d := Diagnose(f)
	if len(d.Next) == 0 || !strings.Contains(d.Next[0].Command, "--assignee 00000000-0000-0000-0000-0000000000c1") || !strings.Contains(d.Next[0].Command, "--name kv-payments") {
		t.Errorf("the fix does not name the class's client and vault: %+v", d.Next)
	}
	for _, tt := range []struct{ msg, want string }{
		{"Forbidden/ForbiddenByFirewall (HTTP 403): Client address is not authorized and caller is not a trusted service. Client address: 203.0.113.7 Caller: appid=00000000-0000-0000-0000-0000000000c1", "--ip-address 203.0.113.7/32"},
		{"Forbidden/ForbiddenByFirewall (HTTP 403): Client address is not authorized and caller is not a trusted service. Client address: 2001:db8::7", "--ip-address 2001:db8::7/128"},
		{"Forbidden/ForbiddenByFirewall (HTTP 403): Client address is not authorized and caller is not a trusted service.", "--ip-address <egress-cidr>"},
	} {
		d := Diagnose(failed("ProviderError", tt.msg))
		if d.Cause.ID != "vault-firewall" || !slices.ContainsFunc(d.Next, func(s Step) bool { return strings.HasSuffix(s.Command, tt.want) }) {
			t.Errorf("%q: cause %s, next %+v; want a network rule %q", tt.msg, d.Cause.ID, d.Next, tt.want)
		}
	}
	blocked := failed("ProviderError", `reading secret "db" in key vault "kv-payments": the key vault `+deadline+`: context deadline exceeded`)
	blocked.Network = &NetworkFacts{VaultHost: "kv-payments.vault.azure.net", Addresses: []string{"52.1.2.3"},
		Vault: Probe{Host: "kv-payments.vault.azure.net", Stage: "tcp"}, Login: Probe{Host: "login.microsoftonline.com", OK: true}}
	if d := Diagnose(blocked); d.Cause.ID != "egress-blocks-vault" || !strings.Contains(d.Cause.Summary, "kv-payments.vault.azure.net") {
		t.Errorf("cause %q: %q, want the vault's host named", d.Cause.ID, d.Cause.Summary)
	}
}

func failed(reason, msg string) Facts {
	return Facts{Namespace: "payments", Name: "db", Found: true, ServiceAccount: "workload",
		Condition: &metav1.Condition{Type: "Create", Status: metav1.ConditionFalse, Reason: reason, Message: msg},
		Class:     ClassFacts{Name: "azure-kv", Found: true, Provider: "azure", Vault: "kv-payments", VaultHost: "kv-payments.vault.azure.net"}}
}

func TestDiagnoseNamesTheCause(t *testing.T) {
	unreachable := `provider "azure" failed to read 1 of 1 item(s): reading secret "db" in key vault "kv-payments": the key vault ` + deadline + `: context deadline exceeded`
	network := func(private, vaultOK, loginOK bool) *NetworkFacts {
		addr := "52.1.2.3"
		if private {
			addr = "10.1.2.3"
		}
		return &NetworkFacts{VaultHost: "kv-payments.vault.azure.net", Addresses: []string{addr},
			Vault: Probe{Host: "kv-payments.vault.azure.net", OK: vaultOK, Stage: "tcp"}, Login: Probe{Host: "login.microsoftonline.com", OK: loginOK}}
	}
	with := func(f Facts, edit func(*Facts)) Facts { edit(&f); return f }
	no := false
	tests := []struct {
		name  string
		facts Facts
		want  string
	}{
		{"a firewall 403", failed("ProviderError", "Forbidden/ForbiddenByFirewall (HTTP 403): Client address is not authorized"), "vault-firewall"},
		{"an RBAC 403", failed("ProviderError", "Forbidden/ForbiddenByRbac (HTTP 403): Caller is not authorized to perform action"), "rbac-role-missing"},
		{"no federated credential", failed("ProviderError", "workload identity token exchange failed: AADSTS70021: No matching federated identity record found"), "federated-credential-mismatch"},
		{"a deadline without network checks", failed("ProviderError", unreachable), "vault-unreachable"},
		{"a deadline, private address not answering", with(failed("ProviderError", unreachable), func(f *Facts) { f.Network = network(true, false, true) }), "private-endpoint-unreachable"},
		{"a deadline, Entra ID reachable but not the vault", with(failed("ProviderError", unreachable), func(f *Facts) { f.Network = network(false, false, true) }), "egress-blocks-vault"},
		{"a deadline, nothing reachable", with(failed("ProviderError", unreachable), func(f *Facts) { f.Network = network(false, false, false) }), "network-unreachable"},
		{"a deadline, the vault answers now", with(failed("ProviderError", unreachable), func(f *Facts) { f.Network = network(false, true, true) }), "vault-slow"},
		{"a missing class", with(failed("ControllerSpcError", `SecretProviderClass "azure-kv" not found in namespace "payments"`), func(f *Facts) { f.Class.Found = false }), "class-missing"},
		{"a missing ServiceAccount", with(failed("ControllerSyncFailed", "x"), func(f *Facts) { f.ServiceAccountFound = &no }), "service-account-missing"},
		{"a PartialSync names its first failed item's cause", failed("PartialSync",
			`{"items":[{"targetKey":"a","sourcePath":"a","status":"Succeeded"},{"targetKey":"b","sourcePath":"b","status":"Failed","error":"SecretDisabled (HTTP 403): Operation get is not allowed on a disabled secret."}]}`), "object-disabled"},
		{"no SecretSync", Facts{Namespace: "payments", Name: "db"}, "secretsync-missing"},
		{"not checked yet", Facts{Namespace: "payments", Name: "db", Found: true}, "not-checked"},
		{"a reason from the future", failed("SomethingNew", "x"), "unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Diagnose(tt.facts)
			if d.Cause.ID != tt.want {
				t.Errorf("cause %q (%s), want %q", d.Cause.ID, d.Cause.Summary, tt.want)
			}
			for _, s := range d.Next {
				if strings.Contains(s.Command, "{{") {
					t.Errorf("next step not rendered: %q", s.Command)
				}
			}
		})
	}
}

func TestDiagnoseDecodesPartialSyncItems(t *testing.T) {
	d := Diagnose(failed("PartialSync", `{"items":[{"targetKey":"a","sourcePath":"a","status":"Succeeded"},{"targetKey":"b","sourcePath":"b","status":"Failed","error":"SecretNotFound (HTTP 404)"}]}`))
	if len(d.Items) != 2 || d.Items[1].Cause != "object-not-found" || d.Items[0].Cause != "" {
		t.Errorf("items %+v", d.Items)
	}
}

func TestCauseIDsOfAReason(t *testing.T) {
	if ids := CauseIDs(ssv1alpha1.ReasonPartialSync); !slices.Contains(ids, "object-disabled") {
		t.Errorf("PartialSync causes %v lack the items' causes", ids)
	}
	if ids := CauseIDs(ssv1alpha1.ReasonCreateSucceeded); !slices.Equal(ids, []string{"synced"}) {
		t.Errorf("CreateSucceeded causes %v", ids)
	}
}

func TestProviderErrorsKeepTheLatestFailuresOfTheVault(t *testing.T) {
	var log strings.Builder
	for i := range 8 {
		fmt.Fprintf(&log, `time=2026-11-27T03:0%d:00Z level=INFO msg="Mount failed" code=PermissionDenied error="reading secret \"db\" in key vault \"kv-payments\": Forbidden/ForbiddenByFirewall (HTTP 403) #%d"`+"\n", i, i)
		fmt.Fprintf(&log, `time=2026-11-27T03:0%d:01Z level=INFO msg="Mount failed" code=NotFound error="reading secret \"x\" in key vault \"kv-other\": SecretNotFound"`+"\n", i)
		fmt.Fprintf(&log, `time=2026-11-27T03:0%d:02Z level=INFO msg="Mount succeeded"`+"\n", i)
	}
	got := providerErrors(bufio.NewScanner(strings.NewReader(log.String())), "kv-payments", "azure-kv")
	if len(got) != 5 || !strings.Contains(got[4], "#7") || !strings.Contains(got[0], "#3") {
		t.Errorf("provider errors %q, want the last five of kv-payments", got)
	}
	for _, l := range got {
		if strings.Contains(l, "kv-other") {
			t.Errorf("a line of another vault: %s", l)
		}
	}
}
