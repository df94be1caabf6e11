package troubleshoot

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"slices"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	spcv1 "github.com/kvsync/kvsync/api/secretsstore/v1"
	ssv1alpha1 "github.com/kvsync/kvsync/api/secretsync/v1alpha1"
	"github.com/kvsync/kvsync/provider"
)

// Resolver resolves host names; *net.Resolver is one.
type Resolver interface {
	LookupHost(ctx context.Context, host string) ([]string, error)
}

// GatherOptions configure Gather.
type GatherOptions struct {
	// Client reads SecretSyncs, SecretProviderClasses, ServiceAccounts,
	// Secrets, Events and Pods.
	Client client.Client
	// Logs reads the provider container's log; nil skips it.
	Logs kubernetes.Interface
	// ControllerNamespace is where the controller's pod runs.
	ControllerNamespace string
	// Network runs the live DNS, TCP and TLS checks of the vault and
	// Entra ID.
	Network bool
	// From says where the network checks run, e.g. "this machine".
	From string
	// Resolver, Dial and RootCAs are the network seams; nil means the
	// system's.
	Resolver Resolver
	Dial     func(ctx context.Context, network, addr string) (net.Conn, error)
	RootCAs  *x509.CertPool
	// ProbeTimeout bounds each network check (default 5s).
	ProbeTimeout time.Duration
	// LastChecks are the times of the controller's latest checks, as
	// LastChecks reads them from its metrics; nil when not read.
	LastChecks map[types.NamespacedName]time.Time
}

// Gather observes the SecretSync namespace/name: its status, its class, its
// ServiceAccount, the Secret of its name, the network path to its vault,
// the provider's recent errors and its Events. It fails only when the API
// server cannot be read; what cannot be observed is left out of Facts.
func Gather(ctx context.Context, opts GatherOptions, namespace, name string) (Facts, error) {
	ss := &ssv1alpha1.SecretSync{}
	if err := opts.Client.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, ss); err != nil {
		if apierrors.IsNotFound(err) {
			return Facts{Namespace: namespace, Name: name, Controller: ControllerFacts{Namespace: opts.ControllerNamespace}}, nil
		}
		return Facts{}, fmt.Errorf("reading SecretSync %s/%s: %w", namespace, name, err)
	}
	f := FactsOf(ss)
	if t, ok := opts.LastChecks[types.NamespacedName{Namespace: namespace, Name: name}]; ok {
		f.LastCheck = &t
	}
	f.Controller.Namespace = opts.ControllerNamespace
	f.Class = ClassFacts{}
	if err := gatherClass(ctx, opts.Client, &f, ss.Spec.SecretProviderClassName); err != nil {
		return f, err
	}
	if err := gatherServiceAccount(ctx, opts.Client, &f); err != nil {
		return f, err
	}
	if err := gatherSecret(ctx, opts.Client, &f); err != nil {
		return f, err
	}
	if opts.Network && f.Class.VaultHost != "" {
		f.Network = probeNetwork(ctx, opts, f.Class.VaultHost, loginHost(f.Class))
	}
	gatherController(ctx, opts, &f)
	if err := gatherEvents(ctx, opts.Client, &f); err != nil {
		return f, err
	}
	return f, nil
}

// FactsOf returns the facts a SecretSync's own object holds: its status,
// secret type, ServiceAccount and class name. The class is assumed to exist
// until Gather looks.
func FactsOf(ss *ssv1alpha1.SecretSync) Facts {
	f := Facts{Namespace: ss.Namespace, Name: ss.Name, Found: true, ServiceAccount: ss.Spec.ServiceAccountName,
		SecretType: string(ss.Spec.SecretObject.Type), Class: ClassFacts{Name: ss.Spec.SecretProviderClassName, Found: true}}
	if f.SecretType == "" {
		f.SecretType = string(corev1.SecretTypeOpaque)
	}
	if n := len(ss.Status.Conditions); n > 0 {
		c := ss.Status.Conditions[n-1]
		f.Condition = &c
	}
	if t := ss.Status.LastSuccessfulSyncTime; t != nil {
		lt := t.Time
		f.LastSync = &lt
	}
	return f
}

func gatherClass(ctx context.Context, c client.Client, f *Facts, name string) error {
	f.Class.Name = name
	class := &spcv1.SecretProviderClass{}
	err := c.Get(ctx, types.NamespacedName{Namespace: f.Namespace, Name: name}, class)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading SecretProviderClass %s/%s: %w", f.Namespace, name, err)
	}
	f.Class.Found = true
	f.Class.Provider = string(class.Spec.Provider)
	if f.Class.Provider != provider.Name {
		return nil
	}
	params, err := provider.ParseParameters(class.Spec.Parameters)
	if err != nil {
		f.Class.ParseError = err.Error()
		return nil
	}
	f.Class.Vault, f.Class.VaultHost, f.Class.ClientID, f.Class.TenantID = params.Vault, params.VaultHost, params.ClientID, params.TenantID
	return nil
}

func gatherServiceAccount(ctx context.Context, c client.Client, f *Facts) error {
	if f.ServiceAccount == "" {
		return nil
	}
	err := c.Get(ctx, types.NamespacedName{Namespace: f.Namespace, Name: f.ServiceAccount}, &corev1.ServiceAccount{})
	switch {
	case err == nil:
		found := true
		f.ServiceAccountFound = &found
	case apierrors.IsNotFound(err):
		found := false
		f.ServiceAccountFound = &found
	default:
		return fmt.Errorf("reading ServiceAccount %s/%s: %w", f.Namespace, f.ServiceAccount, err)
	}
	return nil
}

// gatherSecret describes the Secret of the SecretSync's name by its
// metadata and key names, never its values.
func gatherSecret(ctx context.Context, c client.Client, f *Facts) error {
	secret := &corev1.Secret{}
	err := c.Get(ctx, types.NamespacedName{Namespace: f.Namespace, Name: f.Name}, secret)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading Secret %s/%s: %w", f.Namespace, f.Name, err)
	}
	s := &f.Secret
	s.Exists, s.Type = true, string(secret.Type)
	_, s.HasLabel = secret.Labels[ssv1alpha1.ManagedLabel]
	_, s.HasAnnotation = secret.Annotations[ssv1alpha1.ManagedAnnotation]
	for _, o := range secret.OwnerReferences {
		s.Owners = append(s.Owners, o.Kind+"/"+o.Name)
	}
	for _, m := range secret.ManagedFields {
		if !slices.Contains(s.Managers, m.Manager) {
			s.Managers = append(s.Managers, m.Manager)
		}
	}
	for k := range secret.Data {
		s.Keys = append(s.Keys, k)
	}
	sort.Strings(s.Keys)
	return nil
}

// loginHost is the Entra ID authority of the class's cloud.
func loginHost(c ClassFacts) string {
	switch {
	case strings.HasSuffix(c.VaultHost, ".vault.azure.cn"):
		return "login.chinacloudapi.cn"
	case strings.HasSuffix(c.VaultHost, ".vault.usgovcloudapi.net"):
		return "login.microsoftonline.us"
	}
	return "login.microsoftonline.com"
}

func probeNetwork(ctx context.Context, opts GatherOptions, vaultHost, login string) *NetworkFacts {
	n := &NetworkFacts{From: opts.From, VaultHost: vaultHost}
	if n.From == "" {
		n.From = "this machine"
	}
	timeout := opts.ProbeTimeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	var resolver Resolver = net.DefaultResolver
	if opts.Resolver != nil {
		resolver = opts.Resolver
	}
	rctx, cancel := context.WithTimeout(ctx, timeout)
	addrs, err := resolver.LookupHost(rctx, vaultHost)
	cancel()
	if err != nil {
		n.ResolveError = err.Error()
	}
	n.Addresses = addrs
	n.Vault = probe(ctx, opts, vaultHost, timeout)
	n.Login = probe(ctx, opts, login, timeout)
	return n
}

// probe opens a TCP connection to host:443 and completes a TLS handshake,
// as the provider's client does.
func probe(ctx context.Context, opts GatherOptions, host string, timeout time.Duration) Probe {
	p := Probe{Host: host}
	dial := opts.Dial
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	defer func() { p.Took = time.Since(start) }()
	fail := func(stage string, err error) Probe {
		p.Stage, p.Error = stage, err.Error()
		var dnsErr *net.DNSError
		if errors.As(err, &dnsErr) {
			p.Stage = "dns"
		}
		var ne net.Error
		p.Timeout = errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
		p.Took = time.Since(start)
		return p
	}
	conn, err := dial(ctx, "tcp", net.JoinHostPort(host, "443"))
	if err != nil {
		return fail("tcp", err)
	}
	defer conn.Close()
	tc := tls.Client(conn, &tls.Config{ServerName: host, RootCAs: opts.RootCAs, MinVersion: tls.VersionTLS12})
	if err := tc.HandshakeContext(ctx); err != nil {
		return fail("tls", err)
	}
	p.OK = true
	p.Took = time.Since(start)
	return p
}

// gatherController finds the controller's pod and the provider's recent
// failures for this SecretSync's vault or class.
func gatherController(ctx context.Context, opts GatherOptions, f *Facts) {
	ctl := &f.Controller
	if opts.ControllerNamespace == "" {
		ctl.LogError = "no controller namespace given"
		return
	}
	pods := &corev1.PodList{}
	if err := opts.Client.List(ctx, pods, client.InNamespace(opts.ControllerNamespace)); err != nil {
		ctl.LogError = fmt.Sprintf("listing pods in %s: %v", opts.ControllerNamespace, err)
		return
	}
	for _, p := range pods.Items {
		if slices.ContainsFunc(p.Spec.Containers, func(c corev1.Container) bool { return c.Name == ProviderContainer }) {
			ctl.Pod = p.Name
			if p.Status.Phase == corev1.PodRunning {
				break
			}
		}
	}
	if ctl.Pod == "" {
		ctl.LogError = fmt.Sprintf("no pod with a %s container in namespace %s", ProviderContainer, opts.ControllerNamespace)
		return
	}
	if opts.Logs == nil {
		ctl.LogError = "reading logs is off"
		return
	}
	since, tail := int64(3600), int64(2000)
	stream, err := opts.Logs.CoreV1().Pods(opts.ControllerNamespace).GetLogs(ctl.Pod,
		&corev1.PodLogOptions{Container: ProviderContainer, SinceSeconds: &since, TailLines: &tail}).Stream(ctx)
	if err != nil {
		ctl.LogError = fmt.Sprintf("reading the provider's log: %v", err)
		return
	}
	defer stream.Close()
	ctl.ProviderErrors = providerErrors(bufio.NewScanner(stream), f.Class.Vault, f.Class.Name)
}

// providerErrors keeps the last five "Mount failed" lines that name vault
// (or class, when the vault is unknown).
func providerErrors(sc *bufio.Scanner, vault, class string) []string {
	var out []string
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if !strings.Contains(line, "Mount failed") {
			continue
		}
		if (vault != "" && strings.Contains(line, vault)) || (vault == "" && strings.Contains(line, class)) {
			out = append(out, line)
		}
	}
	if len(out) > 5 {
		out = out[len(out)-5:]
	}
	return out
}

// gatherEvents lists the Events regarding the SecretSync, oldest first.
func gatherEvents(ctx context.Context, c client.Client, f *Facts) error {
	list := &eventsv1.EventList{}
	sel := fields.SelectorFromSet(fields.Set{"regarding.name": f.Name, "regarding.kind": "SecretSync"})
	if err := c.List(ctx, list, client.InNamespace(f.Namespace), client.MatchingFieldsSelector{Selector: sel}); err != nil {
		return fmt.Errorf("listing Events of SecretSync %s/%s: %w", f.Namespace, f.Name, err)
	}
	for _, e := range list.Items {
		t := e.EventTime.Time
		if t.IsZero() {
			t = e.CreationTimestamp.Time
		}
		f.Events = append(f.Events, EventFact{Type: e.Type, Reason: e.Reason, Note: e.Note, Time: t})
	}
	sort.SliceStable(f.Events, func(i, j int) bool { return f.Events[i].Time.Before(f.Events[j].Time) })
	return nil
}
