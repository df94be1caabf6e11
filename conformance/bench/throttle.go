package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/kvsync/kvsync/conformance"
	"github.com/kvsync/kvsync/faults"
)

// rateWindow is the window over which the vault's request rate is sampled.
const rateWindow = 10 * time.Second

// rateWatch samples the vaults' request rate every rateWindow.
type rateWatch struct {
	cancel context.CancelFunc
	done   chan struct{}

	mu         sync.Mutex
	first      sample
	last       sample
	started    time.Time
	lastAt     time.Time
	peak       float64
	sampleErrs int
}

// watchRate starts sampling; stop ends it.
func watchRate(ctx context.Context, env *conformance.Environment) *rateWatch {
	ctx, cancel := context.WithCancel(ctx)
	r := &rateWatch{cancel: cancel, done: make(chan struct{}), started: time.Now()}
	r.first, _ = read(ctx, env)
	r.last, r.lastAt = r.first, r.started
	go func() {
		defer close(r.done)
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(rateWindow):
			}
			s, err := read(ctx, env)
			now := time.Now()
			r.mu.Lock()
			if err != nil {
				r.sampleErrs++
			} else {
				r.peak = max(r.peak, (s.vault-r.last.vault)/now.Sub(r.lastAt).Seconds())
				r.last, r.lastAt = s, now
			}
			r.mu.Unlock()
		}
	}()
	return r
}

// stop ends the sampling and returns the peak and mean requests per second.
func (r *rateWatch) stop() (peak, mean float64) {
	r.cancel()
	<-r.done
	r.mu.Lock()
	defer r.mu.Unlock()
	if d := r.lastAt.Sub(r.started).Seconds(); d > 0 {
		mean = (r.last.vault - r.first.vault) / d
	}
	return r.peak, mean
}

// forcedRetryAfter is the Retry-After of the forced throttling.
const forcedRetryAfter = 10 * time.Second

// forceThrottle makes the shared vault answer every request 429 with
// Retry-After for d, counting what it receives, then waits for every
// SecretSync to be synced again.
func (w *world) forceThrottle(ctx context.Context, d time.Duration) (*Forced, error) {
	before, err := read(ctx, w.env)
	if err != nil {
		return nil, err
	}
	fault := faults.Fault{Name: "bench-throttle", Kind: faults.VaultThrottle, RetryAfter: faults.Duration(forcedRetryAfter),
		Scope: faults.Scope{Vault: w.vaults[0]}}
	if err := w.env.World.AddFault(fault); err != nil {
		return nil, err
	}
	start := time.Now()
	sleep(ctx, d)
	after, err := read(ctx, w.env)
	w.env.World.ClearFault(fault.Name)
	if err != nil {
		return nil, err
	}
	f := &Forced{Seconds: time.Since(start).Seconds(), RetryAfterSeconds: forcedRetryAfter.Seconds()}
	c := diff(before, after, f.Seconds)
	f.VaultRequests, f.SecretWrites, f.StatusWrites = c.VaultRequests, c.SecretWrites, c.StatusWrites
	f.PerRetryAfter = f.VaultRequests / (f.Seconds / forcedRetryAfter.Seconds())
	f.Deferred = after.deferred - before.deferred
	back := time.Now()
	if err := w.waitSynced(ctx, 15*time.Minute); err != nil {
		return nil, fmt.Errorf("after the forced throttling: %w", err)
	}
	f.RecoverySeconds = time.Since(back).Seconds()
	return f, nil
}
