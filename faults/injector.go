package faults

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/kvsync/kvsync/fakevault/pki"
)

// Default host names of the services the faults target.
const (
	DefaultVaultDomain = "vault.azure.net"
	DefaultLoginHost   = "login.microsoftonline.com"
)

// Options configure an Injector.
type Options struct {
	// Seed makes decisions (probabilities, jitter) reproducible.
	Seed uint64
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// CA is the CA clients trust; transport.tls-wrong-name presents a
	// certificate it signed for another name. Without it, that kind
	// presents an untrusted certificate.
	CA *pki.CA
	// VaultDomain and LoginHost name the services; defaults above.
	VaultDomain, LoginHost string
	// DNSTimeout is how long a dns.timeout lookup takes before it fails
	// when the caller's deadline is later; 5s when zero.
	DNSTimeout time.Duration
}

// Injection is one journaled injection.
type Injection struct {
	// Seq numbers injections from 1.
	Seq   int    `json:"seq"`
	Fault string `json:"fault"`
	Kind  Kind   `json:"kind"`
	// Host, Object and Identity are what the request named.
	Host     string    `json:"host,omitempty"`
	Object   string    `json:"object,omitempty"`
	Identity string    `json:"identity,omitempty"`
	Time     time.Time `json:"time"`
}

// Injector holds the active faults and decides, request by request, which
// one fires. It is safe for concurrent use; for a given seed and the same
// sequence of requests it makes the same decisions.
type Injector struct {
	opts Options

	mu      sync.Mutex
	rng     *rand.Rand
	active  []*activeFault
	journal []Injection

	interceptCA *pki.CA
}

type activeFault struct {
	Fault
	added time.Time
	seen  int
	fired int
}

// New returns an Injector with no faults.
func New(opts Options) (*Injector, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.VaultDomain == "" {
		opts.VaultDomain = DefaultVaultDomain
	}
	if opts.LoginHost == "" {
		opts.LoginHost = DefaultLoginHost
	}
	if opts.DNSTimeout <= 0 {
		opts.DNSTimeout = 5 * time.Second
	}
	intercept, err := pki.NewCA("TLS inspection proxy CA")
	if err != nil {
		return nil, err
	}
	return &Injector{opts: opts, rng: rand.New(rand.NewPCG(opts.Seed, 0x6b7673796e63)), interceptCA: intercept}, nil
}

// Add activates a fault, replacing an active one of the same name.
func (i *Injector) Add(f Fault) error {
	if err := f.Validate(); err != nil {
		return err
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	i.active = slices.DeleteFunc(i.active, func(a *activeFault) bool { return a.Name == f.Name })
	i.active = append(i.active, &activeFault{Fault: f, added: i.opts.Now()})
	return nil
}

// Clear deactivates the named fault and reports whether it was active.
func (i *Injector) Clear(name string) bool {
	i.mu.Lock()
	defer i.mu.Unlock()
	n := len(i.active)
	i.active = slices.DeleteFunc(i.active, func(a *activeFault) bool { return a.Name == name })
	return len(i.active) != n
}

// ClearAll deactivates every fault.
func (i *Injector) ClearAll() {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.active = nil
}

// Faults returns the active faults in the order they were added.
func (i *Injector) Faults() []Fault {
	i.mu.Lock()
	defer i.mu.Unlock()
	out := make([]Fault, len(i.active))
	for n, a := range i.active {
		out[n] = a.Fault
	}
	return out
}

// Journal returns every injection so far, oldest first.
func (i *Injector) Journal() []Injection {
	i.mu.Lock()
	defer i.mu.Unlock()
	return slices.Clone(i.journal)
}

// target is what a request names, for scope matching.
type target struct {
	host, vault, object, identity  string
	namespace, spc, verb, resource string
}

// vaultOf returns the vault name of a vault host, or "".
func (i *Injector) vaultOf(host string) string {
	name, ok := strings.CutSuffix(strings.ToLower(host), "."+i.opts.VaultDomain)
	if !ok || strings.Contains(name, ".") {
		return ""
	}
	return name
}

// inLayers accepts the faults of the given layers, except the vault-side
// identity.early-expiry, which only the token-age check considers.
func inLayers(layers ...string) func(*Fault) bool {
	return func(f *Fault) bool { return f.Kind != IdentityEarlyExpiry && slices.Contains(layers, f.Kind.Layer()) }
}

// decide returns the first active fault that accept takes, matches t and
// fires now, journaling the injection, or nil.
func (i *Injector) decide(t target, accept func(*Fault) bool) *Fault {
	i.mu.Lock()
	defer i.mu.Unlock()
	now := i.opts.Now()
	for _, a := range i.active {
		if !accept(&a.Fault) || !a.matches(t) {
			continue
		}
		if a.Kind == GatewayVaultBlocked && t.vault == "" {
			continue
		}
		if a.When.For > 0 && now.Sub(a.added) >= time.Duration(a.When.For) {
			continue
		}
		a.seen++
		if a.seen <= a.When.After || (a.When.Count > 0 && a.fired >= a.When.Count) {
			continue
		}
		if a.When.Probability > 0 && i.rng.Float64() >= a.When.Probability {
			continue
		}
		a.fired++
		i.journal = append(i.journal, Injection{Seq: len(i.journal) + 1, Fault: a.Name, Kind: a.Kind,
			Host: t.host, Object: t.object, Identity: t.identity, Time: now})
		f := a.Fault
		return &f
	}
	return nil
}

// jitter returns a random duration in [0, max) from the seeded source.
func (i *Injector) jitter(max time.Duration) time.Duration {
	if max <= 0 {
		return 0
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	return time.Duration(i.rng.Int64N(int64(max)))
}

func (a *activeFault) matches(t target) bool {
	s := a.Scope
	return (s.Vault == "" || strings.EqualFold(s.Vault, t.vault)) &&
		(s.Host == "" || strings.EqualFold(s.Host, t.host)) &&
		(s.Object == "" || strings.EqualFold(s.Object, t.object)) &&
		(s.Identity == "" || strings.EqualFold(s.Identity, t.identity)) &&
		(s.Namespace == "" || s.Namespace == t.namespace) &&
		(s.SPC == "" || s.SPC == t.spc) &&
		(s.Verb == "" || s.Verb == t.verb) &&
		(s.Resource == "" || s.Resource == t.resource)
}

// ParseYAML reads a list of faults, as scenarios write them, and validates
// each.
func ParseYAML(data []byte) ([]Fault, error) {
	var list []Fault
	if err := yaml.UnmarshalStrict(data, &list); err != nil {
		return nil, fmt.Errorf("parsing faults: %w", err)
	}
	names := map[string]bool{}
	for _, f := range list {
		if err := f.Validate(); err != nil {
			return nil, err
		}
		if names[f.Name] {
			return nil, fmt.Errorf("fault name %q is used twice", f.Name)
		}
		names[f.Name] = true
	}
	return list, nil
}
