package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	spcv1 "github.com/kvsync/kvsync/api/secretsstore/v1"
	ssv1alpha1 "github.com/kvsync/kvsync/api/secretsync/v1alpha1"
	"github.com/kvsync/kvsync/controller"
	"github.com/kvsync/kvsync/fakevault/keyvault"
	"github.com/kvsync/kvsync/provider"
)

// change is what a sim command did to the vault or the identity, as the
// SecretSyncs' items meet it.
type change struct {
	// secret is the vault secret the command changed; "" for an identity
	// change.
	secret string
	// lost says the secret can no longer be read (disabled, deleted,
	// purged), with the doctor's cause.
	lost  bool
	cause string
	// newValue says the secret has a new value (set, rotate).
	newValue bool
	// roles are the identity's roles on the vault after an identity
	// change; none after revoke.
	roles    []string
	identity bool
}

// prediction is what the next check of one SecretSync reports, by the
// controller's rules: every item fails (ProviderError), some do
// (PartialSync, partial sync being on), or none.
type prediction struct {
	namespace, name string
	// reason is the expected reason, alternatives joined by "|", or
	// "unaffected" when the change does not touch the SecretSync.
	reason string
	detail string
}

// predict applies the controller's rules to the SecretSyncs and classes of
// the sim's cluster after ch.
func predict(ctx context.Context, c client.Client, ch change) ([]prediction, error) {
	syncs := &ssv1alpha1.SecretSyncList{}
	if err := c.List(ctx, syncs); err != nil {
		return nil, fmt.Errorf("listing SecretSyncs: %w", err)
	}
	policies, err := foreignPolicies(ctx, c)
	if err != nil {
		return nil, err
	}
	var out []prediction
	for _, ss := range syncs.Items {
		p := prediction{namespace: ss.Namespace, name: ss.Name}
		class := &spcv1.SecretProviderClass{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: ss.Namespace, Name: ss.Spec.SecretProviderClassName}, class); err != nil {
			p.reason, p.detail = "unaffected", "its SecretProviderClass cannot be read: kubectl kvsync doctor says why"
			out = append(out, p)
			continue
		}
		params, err := provider.ParseParameters(class.Spec.Parameters)
		if err != nil {
			p.reason, p.detail = "unaffected", "its SecretProviderClass does not parse: kubectl kvsync doctor says why"
			out = append(out, p)
			continue
		}
		total, failed, touched := 0, 0, 0
		for _, item := range ss.Spec.SecretObject.Data {
			total++
			obj, ok := objectOf(params, item.SourcePath)
			if !ok {
				continue
			}
			switch {
			case ch.identity:
				touched++
				if !slices.ContainsFunc(ch.roles, func(role string) bool { reads, _ := keyvault.RoleReads(role, obj.Type); return reads }) {
					failed++
				}
			case obj.Type == "secret" && obj.Name == ch.secret:
				touched++
				if ch.lost {
					failed++
				}
			}
		}
		p.reason, p.detail = outcome(ch, total, failed, touched)
		writes := p.reason != "unaffected" && p.reason != ssv1alpha1.ReasonProviderError
		if owners := foreignOwners(ctx, c, &ss); writes && len(owners) > 0 {
			// The controller's apply does not take fields over by force.
			p.reason += "|" + ssv1alpha1.ReasonUnknownError
			p.detail += "; or the write conflicts with " + strings.Join(owners, ", ") + ", which own(s) keys of the Secret"
		}
		if writes && len(policies) > 0 {
			// The controller cannot tell whether a policy it did not
			// write admits the Secret until it writes it.
			p.reason += "|" + ssv1alpha1.ReasonValidatingAdmissionPolicyCheckFailed
			p.detail += "; or the ValidatingAdmissionPolicy " + strings.Join(policies, ", ") + " denies the write"
		}
		out = append(out, p)
	}
	return out, nil
}

// foreignPolicies names the bound ValidatingAdmissionPolicies that are not
// kvsync's own: they may deny a Secret write the vault side allows.
func foreignPolicies(ctx context.Context, c client.Client) ([]string, error) {
	bindings := &admissionregistrationv1.ValidatingAdmissionPolicyBindingList{}
	if err := c.List(ctx, bindings); err != nil {
		return nil, fmt.Errorf("listing ValidatingAdmissionPolicyBindings: %w", err)
	}
	var names []string
	for _, b := range bindings.Items {
		if name := b.Spec.PolicyName; !strings.HasPrefix(name, "kvsync-") && !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	return names, nil
}

// foreignOwners names the field managers other than the controller that
// own data keys of the SecretSync's Secret: an apply that changes one of
// them conflicts.
func foreignOwners(ctx context.Context, c client.Client, ss *ssv1alpha1.SecretSync) []string {
	secret := &corev1.Secret{}
	if c.Get(ctx, client.ObjectKey{Namespace: ss.Namespace, Name: ss.Name}, secret) != nil {
		return nil
	}
	var owners []string
	for _, mf := range secret.ManagedFields {
		if mf.Manager == ssv1alpha1.FieldManager || mf.FieldsV1 == nil || slices.Contains(owners, mf.Manager) {
			continue
		}
		var fields struct {
			Data map[string]any `json:"f:data"`
		}
		if json.Unmarshal(mf.FieldsV1.Raw, &fields) != nil {
			continue
		}
		for _, d := range ss.Spec.SecretObject.Data {
			if _, ok := fields.Data["f:"+d.TargetKey]; ok {
				owners = append(owners, mf.Manager)
				break
			}
		}
	}
	return owners
}

// objectOf finds the class object a sourcePath reads.
func objectOf(params provider.Parameters, sourcePath string) (provider.ObjectRef, bool) {
	root, _, _ := strings.Cut(sourcePath, "/")
	for _, o := range params.Objects {
		if o.Alias == root || (o.Alias == "" && o.Name == root) {
			return o, true
		}
	}
	return provider.ObjectRef{}, false
}

// outcome is the controller's rule for a check where failed of total
// items fail, touched of them being read through what ch changed.
func outcome(ch change, total, failed, touched int) (reason, detail string) {
	what := "secret " + ch.secret
	cause := ch.cause
	if ch.identity {
		what, cause = "the identity's roles ("+strings.Join(ch.roles, ", ")+")", "rbac-role-missing"
		if len(ch.roles) == 0 {
			what = "no role"
		}
	}
	if touched == 0 {
		return "unaffected", "it reads no version of " + what
	}
	// The sim's controller runs with partial sync on, as the SSE's default.
	switch reason := controller.FailedItemsReason(failed, total, true); reason {
	case ssv1alpha1.ReasonProviderError:
		return reason, fmt.Sprintf("cause %s: every item (%d) fails; nothing is written", cause, total)
	case ssv1alpha1.ReasonPartialSync:
		return reason, fmt.Sprintf("cause %s: %d of %d items fail and keep their value; the others are written", cause, failed, total)
	}
	switch {
	case ch.newValue:
		return ssv1alpha1.ReasonUpdateValueChangeOrForceUpdateSucceeded, fmt.Sprintf("%d item(s) read %s, which has a new value", touched, what)
	}
	again := fmt.Sprintf("%d item(s) read %s again", touched, what)
	if ch.identity {
		again = fmt.Sprintf("the identity may read all %d item(s)", touched)
	}
	return ssv1alpha1.ReasonUpdateNoValueChangeSucceeded + "|" + ssv1alpha1.ReasonUpdateValueChangeOrForceUpdateSucceeded,
		again + "; the reason says whether the Secret's value changed (a SecretSync already in sync keeps the reason it shows)"
}

// printPredictions prints what the next check of each SecretSync reports,
// one line each: "  NAMESPACE/NAME: REASON  (detail)".
func printPredictions(out io.Writer, st state, ps []prediction) {
	fmt.Fprintf(out, "Expect at the next check (within the poll interval, %s; now with kvsync-sim poll), if nothing else fails:\n", st.Poll)
	for _, p := range ps {
		fmt.Fprintf(out, "  %s/%s: %s  (%s)\n", p.namespace, p.name, p.reason, p.detail)
	}
	if len(ps) == 0 {
		fmt.Fprintln(out, "  no SecretSync yet (kubectl apply -f examples/)")
	}
}

// hint prints the predictions for ch: what the next check of every
// SecretSync of the sim reports.
func hint(ctx context.Context, out io.Writer, st state, ch change) error {
	c, err := kubeClient(st.Kubeconfig)
	if err != nil {
		return err
	}
	ps, err := predict(ctx, c, ch)
	if err != nil {
		return err
	}
	printPredictions(out, st, ps)
	return nil
}
