package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/kvsync/kvsync/faults"
)

// chaos injects random faults of every kind of the catalogue and rotates
// values until its context ends.
type chaos struct {
	w   *world
	rng *rand.Rand
	max int

	// started counts the faults added, by kind.
	started map[faults.Kind]int
	// rotations counts the values rotated.
	rotations int
	active    []activeFault
	seq       int
	// round is the kinds still to inject in this round: every kind comes
	// once per round, in a random order.
	round []faults.Kind
}

type activeFault struct {
	name  string
	until time.Time
}

// kinds is every kind the soak injects: all of the catalogue.
var kinds = []faults.Kind{
	faults.DNSNXDomain, faults.DNSServFail, faults.DNSTimeout, faults.DNSMisroute,
	faults.TransportRefused, faults.TransportReset, faults.TransportBlackhole, faults.TransportLatency,
	faults.TransportTLSUntrusted, faults.TransportTLSWrongName, faults.GatewayVaultBlocked,
	faults.VaultError, faults.VaultThrottle, faults.VaultMalformed, faults.VaultTruncated,
	faults.IdentityError, faults.IdentityUnavailable, faults.IdentityEarlyExpiry,
	faults.ProviderSlow, faults.ProviderCrash, faults.ProviderOversized, faults.ProviderMalformed,
	faults.ClusterError, faults.ClusterLatency,
}

// run injects and rotates until ctx ends, then clears every fault.
func (c *chaos) run(ctx context.Context) error {
	defer c.clearAll()
	nextFault, nextRotation := time.Now(), time.Now()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(200 * time.Millisecond):
		}
		now := time.Now()
		c.expire(now)
		if !now.Before(nextRotation) {
			o := c.w.objects[c.rng.IntN(len(c.w.objects))]
			if err := c.w.rotate(o); err != nil {
				return fmt.Errorf("rotating %s/%s: %w", o.vault, o.name, err)
			}
			c.rotations++
			nextRotation = now.Add(time.Duration(500+c.rng.IntN(1500)) * time.Millisecond)
		}
		if !now.Before(nextFault) && len(c.active) < c.max {
			f := c.fault(c.nextKind())
			if err := c.w.env.World.AddFault(f); err != nil {
				return fmt.Errorf("adding fault %s: %w", f.Name, err)
			}
			if l := f.Kind.Layer(); l == "dns" || l == "transport" || l == "gateway" {
				// A network change breaks the connections open now, so
				// that clients meet the fault when they dial again.
				if err := c.w.env.World.CloseConnections(); err != nil {
					return fmt.Errorf("closing connections for fault %s: %w", f.Name, err)
				}
			}
			c.started[f.Kind]++
			c.active = append(c.active, activeFault{name: f.Name, until: now.Add(time.Duration(f.When.For))})
			nextFault = now.Add(time.Duration(500+c.rng.IntN(2000)) * time.Millisecond)
		}
	}
}

// nextKind returns the next kind of the current round, starting a new
// shuffled round when it is done.
func (c *chaos) nextKind() faults.Kind {
	if len(c.round) == 0 {
		c.round = slices.Clone(kinds)
		c.rng.Shuffle(len(c.round), func(i, j int) { c.round[i], c.round[j] = c.round[j], c.round[i] })
	}
	k := c.round[0]
	c.round = c.round[1:]
	return k
}

// expire forgets faults whose time is over (the injector stops them
// itself, When.For) and clears them.
func (c *chaos) expire(now time.Time) {
	kept := c.active[:0]
	for _, a := range c.active {
		if now.Before(a.until) {
			kept = append(kept, a)
			continue
		}
		c.w.env.World.ClearFault(a.name)
	}
	c.active = kept
}

func (c *chaos) clearAll() {
	for _, a := range c.active {
		c.w.env.World.ClearFault(a.name)
	}
	c.active = nil
}

// fault builds a fault of kind k with a random scope and a life of 5 to
// 15 s.
func (c *chaos) fault(k faults.Kind) faults.Fault {
	c.seq++
	f := faults.Fault{Name: fmt.Sprintf("soak-%d", c.seq), Kind: k, When: faults.When{For: faults.Duration(time.Duration(5+c.rng.IntN(11)) * time.Second)}}
	vault := c.w.vaults[c.rng.IntN(len(c.w.vaults))]
	ns := c.w.namespaces[c.rng.IntN(len(c.w.namespaces))]
	switch k.Layer() {
	case "dns", "transport", "gateway", "vault":
		f.Scope.Vault = vault
	case "identity":
		f.Scope.Identity = c.w.identities[c.rng.IntN(len(c.w.identities))]
	case "provider", "cluster":
		f.Scope.Namespace = ns
	}
	switch k {
	case faults.TransportLatency:
		f.Latency, f.Jitter = faults.Duration(2*time.Second), faults.Duration(time.Second)
	case faults.VaultError:
		switch c.rng.IntN(4) {
		case 0:
			f.Status, f.Code, f.InnerCode = 403, "Forbidden", "ForbiddenByRbac"
		case 1:
			// One secret gone: with partial sync, its items keep their values.
			o := c.w.objects[c.rng.IntN(len(c.w.objects))]
			f.Scope.Vault, f.Scope.Object, f.Status, f.Code = o.vault, o.name, 404, "SecretNotFound"
		case 2:
			f.Status, f.Code = 500, "InternalServerError"
		default:
			f.Status, f.Code = 503, "ServiceUnavailable"
		}
	case faults.VaultThrottle:
		f.RetryAfter = faults.Duration(time.Duration(1+c.rng.IntN(3)) * time.Second)
	case faults.IdentityError:
		f.AADSTS = []int{70021, 700016, 7000215}[c.rng.IntN(3)]
	case faults.IdentityUnavailable:
		f.Status = 503
	case faults.IdentityEarlyExpiry:
		f.Latency = faults.Duration(3 * time.Second)
	case faults.ProviderSlow:
		f.Latency = faults.Duration(2 * time.Second)
	case faults.ClusterError, faults.ClusterLatency:
		targets := [][2]string{{"patch", "secrets"}, {"patch", "secretsyncs/status"}, {"create", "serviceaccounts/token"}, {"create", "events"}}
		t := targets[c.rng.IntN(len(targets))]
		f.Scope.Verb, f.Scope.Resource = t[0], t[1]
		if k == faults.ClusterError {
			f.Status = []int{500, 503, 429, 409}[c.rng.IntN(4)]
		} else {
			f.Latency, f.Jitter = faults.Duration(2*time.Second), faults.Duration(time.Second)
		}
	}
	return f
}
