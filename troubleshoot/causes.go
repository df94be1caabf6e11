package troubleshoot

import (
	"slices"
	"strings"

	ssv1alpha1 "github.com/kvsync/kvsync/api/secretsync/v1alpha1"
)

// Cause is one cause behind a reason, in the guide's terms.
type Cause struct {
	// ID names the cause, e.g. vault-firewall.
	ID     string `json:"id"`
	Reason string `json:"reason"`
	// Summary says what is wrong, in one sentence.
	Summary string `json:"summary"`
	// Fix are the steps that remove the cause.
	Fix []Step `json:"fix,omitempty"`

	// matches reports whether the cause explains a condition message,
	// given the facts; nil matches every message (a reason's fallback).
	matches func(msg string, f *Facts) bool
}

// contains matches a message holding any of subs.
func contains(subs ...string) func(string, *Facts) bool {
	return func(msg string, _ *Facts) bool {
		return slices.ContainsFunc(subs, func(s string) bool { return strings.Contains(msg, s) })
	}
}

// deadline is the provider's message for a vault that did not answer.
const deadline = "did not answer before the mount deadline"

func unanswered(check func(n *NetworkFacts) bool) func(string, *Facts) bool {
	return func(msg string, f *Facts) bool {
		return strings.Contains(msg, deadline) && f.Network != nil && check(f.Network)
	}
}

var (
	identityFix = Step{"List the identity's federated credentials: the issuer must be the cluster's OIDC issuer and the subject system:serviceaccount:{{.Namespace}}:{{.ServiceAccount}}",
		"az identity federated-credential list --identity-name <identity> --resource-group <group>"}
	vaultNetwork = Step{"Read the vault's network rules", "az keyvault network-rule list --name {{.Vault}}"}
	resolveVault = Step{"Resolve the vault's name from a pod in the cluster", "kubectl run -it --rm dns-check --image=busybox --restart=Never -- nslookup {{.Vault}}.vault.azure.net"}
)

// causes lists every cause, grouped by reason; within a reason the first
// that matches is the diagnosis, and the last of each reason matches all.
var causes = []Cause{
	{ID: "synced", Reason: ssv1alpha1.ReasonCreateSucceeded, Summary: "The Secret was created with every item from the vault."},
	{ID: "synced", Reason: ssv1alpha1.ReasonUpdateNoValueChangeSucceeded, Summary: "The Secret holds the vault's current versions."},
	{ID: "synced", Reason: ssv1alpha1.ReasonUpdateValueChangeOrForceUpdateSucceeded, Summary: "The Secret was rewritten with the vault's current versions."},

	{ID: "vault-firewall", Reason: ssv1alpha1.ReasonProviderError, matches: contains("ForbiddenByFirewall"),
		Summary: "The vault's firewall does not allow the cluster's egress address.",
		Fix: []Step{vaultNetwork, {"Allow the cluster's egress address range, or reach the vault through a private endpoint",
			"az keyvault network-rule add --name {{.Vault}} --ip-address {{.EgressCIDR}}"}}},
	{ID: "vault-public-access-disabled", Reason: ssv1alpha1.ReasonProviderError, matches: contains("ForbiddenByConnection"),
		Summary: "The vault accepts private-endpoint connections only, and the cluster came over the public network.",
		Fix:     []Step{resolveVault, {"Link the privatelink.vaultcore.azure.net private DNS zone to the cluster's network so that the name resolves to the private endpoint", ""}}},
	{ID: "rbac-role-missing", Reason: ssv1alpha1.ReasonProviderError, matches: contains("ForbiddenByRbac"),
		Summary: "The workload identity has no Key Vault role that allows reading the object (RBAC permission model).",
		Fix: []Step{{"Give the identity the Key Vault Secrets User role on the vault",
			"az role assignment create --role \"Key Vault Secrets User\" --assignee {{.ClientID}} --scope $(az keyvault show --name {{.Vault}} --query id -o tsv)"}}},
	{ID: "access-policy-missing", Reason: ssv1alpha1.ReasonProviderError, matches: contains("AccessDenied", "does not have secrets get permission", "does not have keys get permission", "does not have certificates get permission"),
		Summary: "The vault's access policies do not let the workload identity read the object (access policy permission model).",
		Fix: []Step{{"Grant the identity get on secrets (and keys, certificates as needed)",
			"az keyvault set-policy --name {{.Vault}} --spn {{.ClientID}} --secret-permissions get"}}},
	{ID: "federated-credential-mismatch", Reason: ssv1alpha1.ReasonProviderError, matches: contains("AADSTS70021", "AADSTS700213", "AADSTS700211"),
		Summary: "Entra ID found no federated credential matching the ServiceAccount token's issuer and subject.",
		Fix:     []Step{identityFix}},
	{ID: "identity-not-found", Reason: ssv1alpha1.ReasonProviderError, matches: contains("AADSTS700016", "AADSTS90002"),
		Summary: "The clientID or tenantID of the SecretProviderClass names no application or tenant Entra ID knows.",
		Fix:     []Step{{"Check clientID and tenantID", "kubectl get secretproviderclass {{.SecretProviderClass}} -n {{.Namespace}} -o jsonpath='{.spec.parameters}'"}}},
	{ID: "identity-exchange-failed", Reason: ssv1alpha1.ReasonProviderError, matches: contains("AADSTS", "token exchange failed"),
		Summary: "Entra ID refused to exchange the ServiceAccount token for a vault token.",
		Fix:     []Step{identityFix}},
	{ID: "object-not-found", Reason: ssv1alpha1.ReasonProviderError, matches: contains("SecretNotFound", "KeyNotFound", "CertificateNotFound", "(HTTP 404)"),
		Summary: "An object the SecretProviderClass names does not exist in the vault (or is deleted).",
		Fix: []Step{{"Check that the object exists and is not deleted", "az keyvault secret show --vault-name {{.Vault}} --name {{.Object}}"},
			{"List the vault's secrets and compare with the class's objectName values", "az keyvault secret list --vault-name {{.Vault}} --query [].name"}}},
	{ID: "object-disabled", Reason: ssv1alpha1.ReasonProviderError, matches: contains("SecretDisabled", "Disabled", "no enabled version"),
		Summary: "The object's version is disabled in the vault.",
		Fix:     []Step{{"Enable the version, or pin objectVersion to an enabled one", "az keyvault secret set-attributes --vault-name {{.Vault}} --name {{.Object}} --enabled true"}}},
	{ID: "vault-throttled", Reason: ssv1alpha1.ReasonProviderError, matches: contains("Throttled", "(HTTP 429)", "waiting for the vault rate limit"),
		Summary: "The vault throttled the reads.",
		Fix:     []Step{{"Poll less often (rotationPollIntervalInSeconds) or spread SecretSyncs over more vaults", ""}}},
	{ID: "vault-name-not-resolved", Reason: ssv1alpha1.ReasonProviderError, matches: contains("DNS lookup of", "no such host", "server misbehaving"),
		Summary: "The vault's name does not resolve: a wrong keyvaultName, or a private DNS zone the cluster does not use.",
		Fix:     []Step{resolveVault, {"Check keyvaultName", "kubectl get secretproviderclass {{.SecretProviderClass}} -n {{.Namespace}} -o jsonpath='{.spec.parameters.keyvaultName}'"}}},
	{ID: "tls-intercepted", Reason: ssv1alpha1.ReasonProviderError, matches: contains("TLS verification"),
		Summary: "The vault's certificate did not verify: a proxy or gateway intercepts TLS, or the name reaches something else.",
		Fix:     []Step{{"Exempt *.vault.azure.net and login.microsoftonline.com from TLS inspection", ""}}},
	{ID: "vault-connection-refused", Reason: ssv1alpha1.ReasonProviderError, matches: contains("cannot connect to the key vault"),
		Summary: "Connections to the vault are refused or reset on the way.",
		Fix:     []Step{vaultNetwork}},
	{ID: "private-endpoint-unreachable", Reason: ssv1alpha1.ReasonProviderError,
		matches: unanswered(func(n *NetworkFacts) bool { return !n.Vault.OK && n.Private() }),
		Summary: "The vault's name resolves to a private endpoint address that does not answer: the private link is not routed from the cluster.",
		Fix:     []Step{resolveVault, {"Route the cluster's network to the private endpoint's subnet (peering, Arc private link scope) and check its network security groups", ""}}},
	{ID: "egress-blocks-vault", Reason: ssv1alpha1.ReasonProviderError,
		matches: unanswered(func(n *NetworkFacts) bool { return !n.Vault.OK && n.Login.OK }),
		Summary: "Entra ID is reachable but the vault is not: an egress firewall or the Azure Arc gateway does not cover {{.Vault}}.vault.azure.net.",
		Fix:     []Step{{"Allow egress to {{.Vault}}.vault.azure.net:443 (the Arc gateway does not carry Key Vault traffic)", ""}}},
	{ID: "network-unreachable", Reason: ssv1alpha1.ReasonProviderError,
		matches: unanswered(func(n *NetworkFacts) bool { return !n.Vault.OK && !n.Login.OK }),
		Summary: "Neither the vault nor Entra ID answers: the cluster has no egress to Azure.",
		Fix:     []Step{{"Check the cluster's egress (proxy settings, firewall, routes) to *.vault.azure.net and login.microsoftonline.com on 443", ""}}},
	{ID: "vault-slow", Reason: ssv1alpha1.ReasonProviderError,
		matches: unanswered(func(n *NetworkFacts) bool { return n.Vault.OK }),
		Summary: "The vault answers now but did not before the deadline: slow or intermittent connectivity.",
		Fix:     []Step{{"Watch for the next check; if it recurs, raise mountTimeout and check the path's latency", ""}}},
	{ID: "vault-unreachable", Reason: ssv1alpha1.ReasonProviderError, matches: contains(deadline),
		Summary: "The vault did not answer in time: a firewall, a gateway that does not cover the vault, or a private endpoint not routed from the cluster.",
		Fix:     []Step{resolveVault, vaultNetwork}},
	{ID: "provider-failed", Reason: ssv1alpha1.ReasonProviderError,
		Summary: "The provider could not read the vault.",
		Fix:     []Step{providerLog}},

	{ID: "secret-not-managed", Reason: ssv1alpha1.ReasonInvalidClusterSecretLabelError,
		Summary: "A Secret of the same name exists that the controller did not create (no secrets-store.sync.x-k8s.io label).",
		Fix:     []Step{{"If the Secret may be replaced, delete it; the controller creates its own at once", "kubectl delete secret {{.SecretSync}} -n {{.Namespace}}"}}},
	{ID: "secret-not-provably-managed", Reason: ssv1alpha1.ReasonInvalidClusterSecretAnnotationError,
		Summary: "A Secret of the same name carries the controller's label but not its annotation.",
		Fix:     []Step{{"If the Secret may be replaced, delete it; the controller creates its own at once", "kubectl delete secret {{.SecretSync}} -n {{.Namespace}}"}}},

	{ID: "secret-type-not-allowed", Reason: ssv1alpha1.ReasonUserInputValidationFailed, matches: contains("is not allowed"),
		Summary: "spec.secretObject.type is not among the Secret types the controller may write.",
		Fix:     []Step{replaceType, {"Or ask the cluster administrator to allow the type (validatingAdmissionPolicies.allowedSecretTypes)", ""}}},
	{ID: "secret-type-changed", Reason: ssv1alpha1.ReasonUserInputValidationFailed, matches: contains("the type of a Secret cannot change"),
		Summary: "spec.secretObject.type differs from the existing Secret's type, which cannot change.",
		Fix:     []Step{recreate}},
	{ID: "source-path-unknown", Reason: ssv1alpha1.ReasonUserInputValidationFailed, matches: contains("names no object of SecretProviderClass", "is not among the files provider"),
		Summary: "A sourcePath names no object of the SecretProviderClass.",
		Fix:     []Step{reapply}},
	{ID: "tls-data-invalid", Reason: ssv1alpha1.ReasonUserInputValidationFailed, matches: contains("kubernetes.io/tls"),
		Summary: "The kubernetes.io/tls Secret's data is not exactly a parsing tls.crt and tls.key.",
		Fix:     []Step{reapply}},
	{ID: "secretsync-invalid", Reason: ssv1alpha1.ReasonUserInputValidationFailed,
		Summary: "The SecretSync or the Secret it describes is invalid.",
		Fix:     []Step{describe, reapply}},

	{ID: "class-missing", Reason: ssv1alpha1.ReasonControllerSpcError,
		matches: func(msg string, f *Facts) bool {
			return !f.Class.Found || strings.Contains(msg, "not found in namespace")
		},
		Summary: "The SecretProviderClass the SecretSync names does not exist in its namespace.",
		Fix: []Step{{"List the classes of the SecretSync's namespace: a typo in spec.secretProviderClassName, or a class in another namespace?",
			"kubectl get secretproviderclass -n {{.Namespace}}"},
			{"Create the class " + "{{.SecretProviderClass}} in the SecretSync's namespace; the controller checks the SecretSync again at once",
				"kubectl apply -n {{.Namespace}} -f <secretproviderclass.yaml>"}}},
	{ID: "class-parameters-invalid", Reason: ssv1alpha1.ReasonControllerSpcError,
		matches: func(msg string, f *Facts) bool {
			return f.Class.ParseError != "" || strings.Contains(msg, "rejected the parameters")
		},
		Summary: "The SecretProviderClass's parameters are missing or invalid.",
		Fix:     []Step{{"Check the class offline", "kubectl kvsync lint <secretproviderclass.yaml>"}}},
	{ID: "provider-not-running", Reason: ssv1alpha1.ReasonControllerSpcError, matches: contains("cannot be reached"),
		Summary: "The provider the class names is not running or has no socket: spec.provider is wrong, or the provider container is down.",
		Fix:     []Step{{"Check the provider container", "kubectl get pod {{.ControllerPod}} -n {{.ControllerNamespace}}"}, providerLog}},
	{ID: "class-invalid", Reason: ssv1alpha1.ReasonControllerSpcError,
		Summary: "The SecretProviderClass could not be used.",
		Fix:     []Step{{"Check the class", "kubectl get secretproviderclass {{.SecretProviderClass}} -n {{.Namespace}} -o yaml"}}},

	{ID: "provider-response-invalid", Reason: ssv1alpha1.ReasonControllerInternalError, matches: contains("malformed response", "over the size limit"),
		Summary: "The provider answered with a malformed or oversized response.",
		Fix:     []Step{providerLog, {"Reduce the objects per class, or upgrade the provider", ""}}},
	{ID: "controller-defect", Reason: ssv1alpha1.ReasonControllerInternalError,
		Summary: "The controller hit an internal error.",
		Fix:     []Step{managerLog, events}},

	{ID: "admission-policy-denied", Reason: ssv1alpha1.ReasonValidatingAdmissionPolicyCheckFailed,
		Summary: "A ValidatingAdmissionPolicy denied the Secret write or the token request.",
		Fix:     []Step{{"Read the policies and their bindings; change the policy, its binding or the SecretSync", "kubectl get validatingadmissionpolicies,validatingadmissionpolicybindings"}}},

	{ID: "service-account-missing", Reason: ssv1alpha1.ReasonControllerSyncFailed,
		matches: func(msg string, f *Facts) bool {
			return (f.ServiceAccountFound != nil && !*f.ServiceAccountFound) || strings.Contains(msg, "does not exist in namespace")
		},
		Summary: "The ServiceAccount whose workload identity reads the vault does not exist.",
		Fix:     []Step{{"Create it, or fix spec.serviceAccountName", "kubectl create serviceaccount {{.ServiceAccount}} -n {{.Namespace}}"}}},
	{ID: "token-request-denied", Reason: ssv1alpha1.ReasonControllerSyncFailed, matches: contains("may not request a token"),
		Summary: "The controller may not request ServiceAccount tokens (its RBAC lacks create on serviceaccounts/token).",
		Fix:     []Step{{"Reinstall the controller's RBAC", "kubectl get clusterrole kvsync-controller -o yaml"}}},
	{ID: "cluster-request-failed", Reason: ssv1alpha1.ReasonControllerSyncFailed,
		Summary: "A request to the API server failed.",
		Fix:     []Step{managerLog}},

	{ID: "field-manager-conflict", Reason: ssv1alpha1.ReasonUnknownError, matches: contains("conflicts with another field manager"),
		Summary: "Another field manager took over fields of the Secret; the controller does not take them back by force.",
		Fix:     []Step{recreate}},
	{ID: "secret-write-failed", Reason: ssv1alpha1.ReasonUnknownError,
		Summary: "Writing the Secret failed.",
		Fix:     []Step{describe, recreate, managerLog}},
}

// Causes returns every cause, grouped by reason.
func Causes() []Cause { return slices.Clone(causes) }

// causeOf returns the first cause of reason that explains msg given f.
func causeOf(reason, msg string, f *Facts) (Cause, bool) {
	for _, c := range causes {
		if c.Reason == reason && (c.matches == nil || c.matches(msg, f)) {
			return c, true
		}
	}
	return Cause{}, false
}

// CauseIDs returns the IDs of the causes Diagnose may name for reason: a
// PartialSync is explained by the causes of its failed items.
func CauseIDs(reason string) []string {
	if reason == ssv1alpha1.ReasonPartialSync {
		reason = ssv1alpha1.ReasonProviderError
	}
	var ids []string
	for _, c := range causes {
		if c.Reason == reason && !slices.Contains(ids, c.ID) {
			ids = append(ids, c.ID)
		}
	}
	return ids
}
