// Package troubleshoot is the Secret Store extension's troubleshooting guide
// as code: every status reason with its meaning and fix (Reasons), the
// causes behind them (Causes), a pure Diagnose from what was observed of a
// SecretSync, its cluster and its network (Facts) to the reason, the cause
// and the next steps with real names filled in, Gather to observe those
// facts, and Lint to check manifests before they are applied. kubectl-kvsync
// is its command line; the conformance suite proves that Diagnose names the
// cause of every scenario.
package troubleshoot

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"text/template"

	ssv1alpha1 "github.com/kvsync/kvsync/api/secretsync/v1alpha1"
)

// Step is one step of a fix: what to do, and the command that does it, a
// template over Names.
type Step struct {
	Text    string `json:"text"`
	Command string `json:"command,omitempty"`
}

// Names fill the commands of a fix.
type Names struct {
	Namespace           string
	SecretSync          string
	SecretProviderClass string
	ServiceAccount      string
	Vault               string
	// Object is the vault object the failure names.
	Object              string
	ControllerNamespace string
	ControllerPod       string
	// ClientID and TenantID are the workload identity's, from the class.
	ClientID string
	TenantID string
	// EgressCIDR is the address the vault's firewall saw the cluster come
	// from (its "Client address"), as a one-address CIDR.
	EgressCIDR string
}

// Render fills s's text and command with names.
func (s Step) Render(n Names) Step {
	s.Text = n.Fill(s.Text)
	s.Command = n.Fill(s.Command)
	return s
}

// Fill fills a template over Names (a step's text or command, a cause's
// summary); one that does not render is returned as written.
func (n Names) Fill(text string) string {
	if !strings.Contains(text, "{{") {
		return text
	}
	t, err := template.New("").Option("missingkey=error").Parse(text)
	if err != nil {
		return text
	}
	var b bytes.Buffer
	if t.Execute(&b, n) != nil {
		return text
	}
	return b.String()
}

// Reason is one row of the guide's table of status reasons.
type Reason struct {
	Name string `json:"name"`
	// Success is true for the three reasons of an up-to-date Secret.
	Success bool `json:"success"`
	// Meaning is the guide's one-line explanation.
	Meaning string `json:"meaning"`
	// Details says what sets it and what was (not) written.
	Details string `json:"details"`
	// Fix are the guide's steps to fix or investigate further.
	Fix []Step `json:"fix,omitempty"`
}

// The names of the controller's pod: kvsync's, and those the Secret Store
// extension's guide uses in its commands.
const (
	// ManagerContainer is the controller's container, in both.
	ManagerContainer = "manager"
	// ProviderContainer is the Azure provider's container in kvsync's pod.
	ProviderContainer = "provider-azure"
	// GuideProviderContainer is the provider's container in the guide.
	GuideProviderContainer = "provider-azure-installer"
	// GuideNamespace is the controller's namespace in the guide.
	GuideNamespace = "azure-secret-store"
)

// GuideNamesNote says how the guide's names map to kvsync's, for output
// that shows log commands: the guide reads logs in namespace
// azure-secret-store, containers manager and provider-azure-installer.
func GuideNamesNote(controllerNamespace string) string {
	return fmt.Sprintf("The guide's namespace %s is %s here (the chart's release namespace); its container %s is %s; %s is %s.",
		GuideNamespace, controllerNamespace, GuideProviderContainer, ProviderContainer, ManagerContainer, ManagerContainer)
}

// ReadsLogs reports whether a step is a kubectl logs command.
func (s Step) ReadsLogs() bool { return strings.HasPrefix(s.Command, "kubectl logs ") }

var (
	describe    = Step{"Read the condition's message", "kubectl describe secretsync {{.SecretSync}} -n {{.Namespace}}"}
	providerLog = Step{"Read the provider's log", "kubectl logs -n {{.ControllerNamespace}} {{.ControllerPod}} -c " + ProviderContainer + " --since=1h"}
	managerLog  = Step{"Read the controller's log", "kubectl logs -n {{.ControllerNamespace}} {{.ControllerPod}} -c " + ManagerContainer + " --since=1h"}
	events      = Step{"Read the controller's events for this SecretSync", "kubectl events -n {{.Namespace}} --for secretsync/{{.SecretSync}}"}
	recreate    = Step{"Delete the Secret; the controller recreates it at once", "kubectl delete secret {{.SecretSync}} -n {{.Namespace}}"}
	reapply     = Step{"Fix the SecretSync and apply it again; the controller checks it at once", "kubectl apply -f <secretsync.yaml>"}
	replaceType = Step{"Set an allowed spec.secretObject.type in the manifest and replace the SecretSync: its type cannot change once created, so apply refuses it (nothing was written, nothing is lost)", "kubectl replace --force -f <secretsync.yaml>"}
	doctor      = Step{"Let kubectl-kvsync name the cause", "kubectl kvsync doctor {{.SecretSync}} -n {{.Namespace}}"}
)

// reasons is the guide's table, in its order.
var reasons = []Reason{
	{Name: ssv1alpha1.ReasonCreateSucceeded, Success: true,
		Meaning: "The Secret was created from the vault.",
		Details: "The first check wrote every item of secretObject.data."},
	{Name: ssv1alpha1.ReasonUpdateNoValueChangeSucceeded, Success: true,
		Meaning: "The Secret is up to date with the vault; no change was needed.",
		Details: "The latest check found the Secret equal to the vault's versions and wrote nothing."},
	{Name: ssv1alpha1.ReasonUpdateValueChangeOrForceUpdateSucceeded, Success: true,
		Meaning: "The whole Secret was updated to the vault's version.",
		Details: "A new version in the vault, a changed SecretSync or SecretProviderClass, or a new forceSynchronization value made the latest check rewrite the Secret."},
	{Name: ssv1alpha1.ReasonPartialSync,
		Meaning: "Some items of the Secret could not be updated.",
		Details: "Partial sync is on and some, not all, items failed: the items that succeeded were written, the failed ones keep their previous value. The message is a JSON summary with one entry per item.",
		Fix:     []Step{{Text: "Read which items failed and why", Command: "kubectl kvsync status -n {{.Namespace}}"}, describe, providerLog}},
	{Name: ssv1alpha1.ReasonProviderError,
		Meaning: "The provider could not read the vault (connectivity, permissions, configuration).",
		Details: "Nothing was written: the existing Secret, if any, keeps its values. The message carries the provider's error: the Key Vault error code, the Entra ID AADSTS code, the DNS or TLS failure, or the deadline.",
		Fix:     []Step{describe, providerLog, doctor}},
	{Name: ssv1alpha1.ReasonInvalidClusterSecretLabelError,
		Meaning: "A Secret with this name exists that is not managed by the controller.",
		Details: "The Secret lacks the label secrets-store.sync.x-k8s.io: it belongs to someone else and is never modified.",
		Fix:     []Step{{Text: "If the Secret may be replaced, delete it; the controller creates its own at once", Command: "kubectl delete secret {{.SecretSync}} -n {{.Namespace}}"}}},
	{Name: ssv1alpha1.ReasonInvalidClusterSecretAnnotationError,
		Meaning: "A Secret with this name exists that is not managed by the controller.",
		Details: "The Secret carries the label secrets-store.sync.x-k8s.io but not the annotation: it is not provably the controller's and is never modified.",
		Fix:     []Step{{Text: "If the Secret may be replaced, delete it; the controller creates its own at once", Command: "kubectl delete secret {{.SecretSync}} -n {{.Namespace}}"}}},
	{Name: ssv1alpha1.ReasonUserInputValidationFailed,
		Meaning: "The SecretSync is configured incorrectly.",
		Details: "A Secret type that is not allowed or differs from the existing Secret's, a sourcePath the provider did not return, kubernetes.io/tls data with other keys than tls.crt and tls.key, or certificate material that does not parse. Nothing was written.",
		Fix:     []Step{describe, reapply, replaceType}},
	{Name: ssv1alpha1.ReasonControllerSpcError,
		Meaning: "The SecretProviderClass is missing or misconfigured.",
		Details: "The SecretProviderClass could not be read, names an unknown provider or one without a socket, or its parameters are missing or invalid. Nothing was written.",
		Fix: []Step{{Text: "Check the SecretProviderClass", Command: "kubectl get secretproviderclass {{.SecretProviderClass}} -n {{.Namespace}} -o yaml"},
			{Text: "Check it offline", Command: "kubectl kvsync lint <secretproviderclass.yaml>"}}},
	{Name: ssv1alpha1.ReasonControllerInternalError,
		Meaning: "An internal error of the controller.",
		Details: "A malformed or oversized provider response, or a defect in the controller. Nothing was written.",
		Fix:     []Step{managerLog, providerLog, events}},
	{Name: ssv1alpha1.ReasonValidatingAdmissionPolicyCheckFailed,
		Meaning: "A ValidatingAdmissionPolicy denied the write.",
		Details: "The API server denied the Secret write or the ServiceAccount token request, and the denial names a ValidatingAdmissionPolicy. Nothing was written.",
		Fix:     []Step{describe, {Text: "Read the policies and their bindings", Command: "kubectl get validatingadmissionpolicies,validatingadmissionpolicybindings"}, events}},
	{Name: ssv1alpha1.ReasonControllerSyncFailed,
		Meaning: "The controller could not assemble the sync on the cluster side.",
		Details: "For example the ServiceAccount token request failed because the ServiceAccount does not exist. Nothing was written.",
		Fix:     []Step{describe, managerLog, events}},
	{Name: ssv1alpha1.ReasonUnknownError,
		Meaning: "Patching the Secret failed, e.g. someone else modified it.",
		Details: "Another field manager owns fields of the Secret, or the API server refused the write for another reason. The Secret keeps its values.",
		Fix:     []Step{describe, recreate, managerLog}},
}

// Reasons returns the guide's table of status reasons, in its order.
func Reasons() []Reason { return slices.Clone(reasons) }

// LookupReason returns the reason called name.
func LookupReason(name string) (Reason, bool) {
	i := slices.IndexFunc(reasons, func(r Reason) bool { return r.Name == name })
	if i < 0 {
		return Reason{}, false
	}
	return reasons[i], true
}
