package troubleshoot

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"time"

	ssv1alpha1 "github.com/kvsync/kvsync/api/secretsync/v1alpha1"
)

// Diagnosis is the doctor's verdict on one SecretSync.
type Diagnosis struct {
	Namespace  string `json:"namespace"`
	SecretSync string `json:"secretSync"`
	// Reason is the latest condition's reason; "" when there is none.
	Reason  string `json:"reason"`
	Success bool   `json:"success"`
	// LastCheck is the time of the controller's latest check (from its
	// metrics) and LastSync status.lastSuccessfulSyncTime; nil when unknown.
	LastCheck *time.Time `json:"lastCheck,omitempty"`
	LastSync  *time.Time `json:"lastSync,omitempty"`
	Meaning   string     `json:"meaning,omitempty"`
	Message   string     `json:"message,omitempty"`
	// Cause is what is wrong (or "synced"), in the guide's terms.
	Cause CauseRef `json:"cause"`
	// Items are the PartialSync items, decoded.
	Items []Item `json:"items,omitempty"`
	// Checks are the observations the verdict rests on.
	Checks []Check `json:"checks"`
	// Next are the steps to take, with the real names filled in.
	Next []Step `json:"next,omitempty"`
	// ControllerNamespace is the namespace of the controller's pod, whose
	// logs the next steps may read.
	ControllerNamespace string `json:"controllerNamespace,omitempty"`
}

// CauseRef names a cause in a Diagnosis.
type CauseRef struct {
	ID      string `json:"id"`
	Summary string `json:"summary"`
}

// Item is one item of a PartialSync summary, with the cause of its failure.
type Item struct {
	TargetKey  string `json:"targetKey"`
	SourcePath string `json:"sourcePath"`
	Status     string `json:"status"`
	Error      string `json:"error,omitempty"`
	Cause      string `json:"cause,omitempty"`
}

// Check is one observation: ok, fail, warn or skip.
type Check struct {
	Name   string `json:"name"`
	Result string `json:"result"`
	Detail string `json:"detail"`
}

// Results of a Check.
const (
	OK   = "ok"
	Fail = "fail"
	Warn = "warn"
	Skip = "skip"
)

// Diagnose names the reason of f's SecretSync, its cause and the next steps,
// from f alone.
func Diagnose(f Facts) Diagnosis {
	names := f.names()
	d := Diagnosis{Namespace: f.Namespace, SecretSync: f.Name, ControllerNamespace: names.ControllerNamespace,
		LastCheck: f.LastCheck, LastSync: f.LastSync}
	switch {
	case !f.Found:
		d.Cause = CauseRef{ID: "secretsync-missing", Summary: fmt.Sprintf("There is no SecretSync %q in namespace %q.", f.Name, f.Namespace)}
		d.Next = []Step{Step{"List the namespace's SecretSyncs", "kubectl get secretsyncs -n {{.Namespace}}"}.Render(names)}
		return d
	case f.Condition == nil:
		d.Cause = CauseRef{ID: "not-checked", Summary: "The controller has not checked this SecretSync yet: it is not running, or cannot read SecretSyncs."}
		d.Checks = f.checks()
		d.Next = render([]Step{managerLog, events}, names)
		return d
	}
	d.Reason, d.Message = f.Condition.Reason, f.Condition.Message
	if r, ok := LookupReason(d.Reason); ok {
		d.Success, d.Meaning = r.Success, r.Meaning
	}
	var cause Cause
	var found bool
	if d.Reason == ssv1alpha1.ReasonPartialSync {
		d.Items = decodeItems(d.Message)
		for i, it := range d.Items {
			if it.Status == "Failed" {
				c, _ := causeOf(ssv1alpha1.ReasonProviderError, it.Error, &f)
				d.Items[i].Cause = c.ID
				if !found {
					cause, found = c, true
				}
			}
		}
	} else {
		cause, found = causeOf(d.Reason, d.Message, &f)
	}
	if !found {
		d.Cause = CauseRef{ID: "unknown", Summary: fmt.Sprintf("The reason %q is not in the guide.", d.Reason)}
		d.Checks = f.checks()
		d.Next = render([]Step{describe, managerLog}, names)
		return d
	}
	d.Cause = CauseRef{ID: cause.ID, Summary: names.Fill(cause.Summary)}
	d.Checks = f.checks()
	names.Object = objectOf(d)
	names.EgressCIDR = egressOf(d)
	next := cause.Fix
	if r, ok := LookupReason(d.Reason); ok && len(next) == 0 {
		next = r.Fix
	}
	d.Next = render(next, names)
	return d
}

func render(steps []Step, n Names) []Step {
	out := make([]Step, len(steps))
	for i, s := range steps {
		out[i] = s.Render(n)
	}
	return out
}

// objectNamed finds the object a provider message names: `secret "db" in
// key vault`.
var objectNamed = regexp.MustCompile(`(?:secret|key|cert) "([^"]+)"(?: version \S+)? in key vault`)

// objectOf is the vault object the diagnosis is about, "<object>" when
// none is named.
func objectOf(d Diagnosis) string {
	msg := d.Message
	for _, it := range d.Items {
		if it.Status == "Failed" {
			msg = it.Error
			break
		}
	}
	if m := objectNamed.FindStringSubmatch(msg); m != nil {
		return m[1]
	}
	return "<object>"
}

// clientAddress finds the address a vault's firewall names in its refusal:
// "Client address: 203.0.113.7".
var clientAddress = regexp.MustCompile(`Client address: ([0-9A-Fa-f.:]+)`)

// egressOf is the address the vault's firewall saw, as a CIDR of that
// address alone; "<egress-cidr>" when no refusal names one.
func egressOf(d Diagnosis) string {
	msgs := []string{d.Message}
	for _, it := range d.Items {
		msgs = append(msgs, it.Error)
	}
	for _, msg := range msgs {
		m := clientAddress.FindStringSubmatch(msg)
		if m == nil {
			continue
		}
		if addr, err := netip.ParseAddr(m[1]); err == nil {
			return netip.PrefixFrom(addr, addr.BitLen()).String()
		}
	}
	return "<egress-cidr>"
}

// decodeItems decodes a PartialSync message; nil when it is not one.
func decodeItems(msg string) []Item {
	var sum struct {
		Items []Item `json:"items"`
	}
	if json.Unmarshal([]byte(msg), &sum) != nil {
		return nil
	}
	return sum.Items
}

// names are the real names that fill the fix commands.
func (f *Facts) names() Names {
	n := Names{Namespace: f.Namespace, SecretSync: f.Name, SecretProviderClass: f.Class.Name, ServiceAccount: f.ServiceAccount,
		Vault: f.Class.Vault, ControllerNamespace: f.Controller.Namespace, ControllerPod: f.Controller.Pod}
	if n.Vault == "" {
		n.Vault = "<vault>"
	}
	n.ClientID, n.TenantID = f.Class.ClientID, f.Class.TenantID
	if n.ClientID == "" {
		n.ClientID = "<client-id>"
	}
	if n.TenantID == "" {
		n.TenantID = "<tenant-id>"
	}
	if n.ControllerPod == "" {
		n.ControllerPod = "<controller-pod>"
	}
	n.Object = "<object>"
	n.EgressCIDR = "<egress-cidr>"
	if n.ControllerNamespace == "" {
		n.ControllerNamespace = "<controller-namespace>"
	}
	return n
}

// checks renders the facts as the doctor's observations.
func (f *Facts) checks() []Check {
	var cs []Check
	add := func(name, result, format string, args ...any) {
		cs = append(cs, Check{Name: name, Result: result, Detail: fmt.Sprintf(format, args...)})
	}
	switch c := f.Class; {
	case !c.Found:
		add("SecretProviderClass", Fail, "%q does not exist in namespace %q", c.Name, f.Namespace)
	case c.ParseError != "":
		add("SecretProviderClass", Fail, "%q (provider %s) does not parse: %s", c.Name, c.Provider, c.ParseError)
	case c.Vault != "":
		add("SecretProviderClass", OK, "%q reads key vault %q as client %s", c.Name, c.Vault, c.ClientID)
	default:
		add("SecretProviderClass", OK, "%q exists (provider %s)", c.Name, c.Provider)
	}
	switch {
	case f.ServiceAccountFound == nil:
	case *f.ServiceAccountFound:
		add("ServiceAccount", OK, "%q exists", f.ServiceAccount)
	default:
		add("ServiceAccount", Fail, "%q does not exist in namespace %q", f.ServiceAccount, f.Namespace)
	}
	switch s := f.Secret; {
	case !s.Exists:
		add("Secret", Warn, "%q does not exist (yet)", f.Name)
	case !s.HasLabel:
		add("Secret", Fail, "%q exists without the label %s: owned by %s, written by %s", f.Name, ssv1alpha1.ManagedLabel, list(s.Owners), list(s.Managers))
	case !s.HasAnnotation:
		add("Secret", Fail, "%q carries the label but not the annotation %s: owned by %s, written by %s", f.Name, ssv1alpha1.ManagedAnnotation, list(s.Owners), list(s.Managers))
	case f.SecretType != "" && s.Type != f.SecretType:
		add("Secret", Fail, "%q has type %s, the SecretSync asks for %s", f.Name, s.Type, f.SecretType)
	default:
		add("Secret", OK, "%q is managed (type %s, keys %s, written by %s)", f.Name, s.Type, list(s.Keys), list(s.Managers))
	}
	if n := f.Network; n != nil {
		if n.ResolveError != "" {
			add("DNS", Fail, "%s does not resolve from %s: %s", n.VaultHost, n.From, n.ResolveError)
		} else {
			kind := "public"
			if n.Private() {
				kind = "private (a private endpoint)"
			}
			add("DNS", OK, "%s resolves to %s, %s, from %s", n.VaultHost, list(n.Addresses), kind, n.From)
		}
		for _, p := range []struct {
			name  string
			probe Probe
		}{{"Vault", n.Vault}, {"Entra ID", n.Login}} {
			if p.probe.Host == "" {
				continue
			}
			if p.probe.OK {
				add(p.name, OK, "%s:443 answers TLS in %s", p.probe.Host, p.probe.Took.Round(1e6))
			} else {
				add(p.name, Fail, "%s:443 fails at %s after %s: %s", p.probe.Host, p.probe.Stage, p.probe.Took.Round(1e6), p.probe.Error)
			}
		}
	} else {
		add("Network", Skip, "not checked (--network=false, or no vault name)")
	}
	switch ctl := f.Controller; {
	case ctl.LogError != "":
		add("Provider log", Skip, "%s", ctl.LogError)
	case len(ctl.ProviderErrors) > 0:
		add("Provider log", Warn, "%d recent error line(s); the latest: %s", len(ctl.ProviderErrors), ctl.ProviderErrors[len(ctl.ProviderErrors)-1])
	case ctl.Pod != "":
		add("Provider log", OK, "no recent errors in %s/%s provider-azure", ctl.Namespace, ctl.Pod)
	}
	if len(f.Events) > 0 {
		e := f.Events[len(f.Events)-1]
		result := OK
		if e.Type == "Warning" {
			result = Warn
		}
		add("Events", result, "%d event(s); the latest: %s %s: %s", len(f.Events), e.Type, e.Reason, e.Note)
	}
	return cs
}

func list(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}
