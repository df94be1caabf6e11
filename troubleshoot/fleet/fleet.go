// Package fleet plans jitterSeconds for a fleet of clusters that read the
// same vaults: the chance that a vault is throttled when the fleet's checks
// arrive together, and the smallest jitter that keeps that chance under a
// target.
//
// The model (docs/fleet.md states it with its assumptions):
//
//   - A vault throttles when more than Limit.Requests authenticated
//     requests arrive in any Limit.Window (Key Vault: 4,000 per 10 s for
//     secrets, keys and vault operations; every authenticated request
//     counts, failed ones too).
//   - Each cluster reads SecretsPerCluster objects per check of all its
//     SecretSyncs, RequestsPerSecret requests each, spread evenly over
//     Vaults vaults: n = Clusters × SecretsPerCluster × RequestsPerSecret /
//     Vaults requests per vault per round.
//   - In a refresh wave every check of the fleet falls due at once and the
//     jitter alone spreads them: each request arrives at an independent,
//     uniformly random time in [0, Jitter). In steady polling each
//     cluster's checks keep their own phase of the poll interval: the
//     requests of one interval arrive at independent uniform times over
//     the interval.
//   - Requests uniformly spread over T are approximated by a Poisson
//     process of rate n/T, and the chance that some window of length w
//     holds more than L of them by Alm's approximation for the scan
//     statistic of a Poisson process (S. E. Alm, "On the distribution of
//     the scan statistic of a Poisson process", 1983):
//     P(S_w ≥ k) ≈ 1 − F(k−1; ψ) · exp(−((k−ψ)/k) · λ(T−w) · p(k−1; ψ)),
//     with k = L+1, λ = n/T, ψ = λw, p and F the Poisson probability and
//     distribution functions. When T ≤ w every request shares one window.
//
// Simulate checks the approximation against the arrivals themselves.
package fleet

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"time"
)

// Limit is a vault's service limit: at most Requests authenticated requests
// in any Window.
type Limit struct {
	Requests int
	Window   time.Duration
}

// KeyVault is Key Vault's limit per vault for secrets, keys and vault
// operations: 4,000 requests per 10 seconds.
var KeyVault = Limit{Requests: 4000, Window: 10 * time.Second}

// Fleet is N identical clusters reading the same vaults.
type Fleet struct {
	// Clusters is the number of clusters.
	Clusters int
	// SecretsPerCluster is the number of vault objects one cluster reads in
	// a check of all its SecretSyncs (objects shared by SecretSyncs of one
	// SecretProviderClass count once).
	SecretsPerCluster float64
	// Vaults is the number of vaults the objects spread over evenly.
	Vaults int
	// RequestsPerSecret is the number of vault requests one object's read
	// costs; 1 for a plain read, more with objectVersionHistory.
	RequestsPerSecret float64
	// Poll is the rotation poll interval; Jitter the largest random delay
	// added to each poll-triggered check (jitterSeconds).
	Poll   time.Duration
	Jitter time.Duration
}

// Validate reports a fleet the model cannot plan for.
func (f Fleet) Validate() error {
	var errs []error
	if f.Clusters < 1 {
		errs = append(errs, fmt.Errorf("clusters must be at least 1, got %d", f.Clusters))
	}
	if f.SecretsPerCluster <= 0 {
		errs = append(errs, fmt.Errorf("secrets per cluster must be more than 0, got %g", f.SecretsPerCluster))
	}
	if f.Vaults < 1 {
		errs = append(errs, fmt.Errorf("vaults must be at least 1, got %d", f.Vaults))
	}
	if f.RequestsPerSecret <= 0 {
		errs = append(errs, fmt.Errorf("requests per secret must be more than 0, got %g", f.RequestsPerSecret))
	}
	if f.Poll <= 0 {
		errs = append(errs, fmt.Errorf("the poll interval must be more than 0, got %s", f.Poll))
	}
	if f.Jitter < 0 {
		errs = append(errs, fmt.Errorf("the jitter must not be negative, got %s", f.Jitter))
	}
	return errors.Join(errs...)
}

// RequestsPerVault is the number of requests one vault receives in one
// round of the fleet's checks.
func (f Fleet) RequestsPerVault() float64 {
	return float64(f.Clusters) * f.SecretsPerCluster * f.RequestsPerSecret / float64(f.Vaults)
}

// WaveChance is the chance that a vault is throttled when n requests
// arrive at independent uniform times over spread.
func WaveChance(n float64, spread time.Duration, l Limit) float64 {
	if n <= float64(l.Requests) {
		return 0
	}
	if spread <= l.Window {
		return 1
	}
	return scanChance(n/spread.Seconds(), spread.Seconds(), l.Window.Seconds(), l.Requests+1)
}

// SteadyChance is the chance that a vault is throttled within one poll
// interval of steady polling, n requests arriving at independent uniform
// times over the interval.
func SteadyChance(n float64, poll time.Duration, l Limit) float64 { return WaveChance(n, poll, l) }

// scanChance is Alm's approximation of the chance that a Poisson process of
// rate lambda on [0, t] has k or more points in some window of length w.
func scanChance(lambda, t, w float64, k int) float64 {
	psi := lambda * w
	if psi >= float64(k) {
		return 1
	}
	tail := poissonTail(k, psi) // P(X ≥ k)
	x := (float64(k) - psi) / float64(k) * lambda * (t - w) * math.Exp(poissonLogPMF(k-1, psi))
	p := tail + (1-tail)*-math.Expm1(-x)
	return min(max(p, 0), 1)
}

// poissonLogPMF is log P(X = i) for X ~ Poisson(psi).
func poissonLogPMF(i int, psi float64) float64 {
	if psi == 0 {
		if i == 0 {
			return 0
		}
		return math.Inf(-1)
	}
	lg, _ := math.Lgamma(float64(i) + 1)
	return -psi + float64(i)*math.Log(psi) - lg
}

// poissonTail is P(X ≥ k) for X ~ Poisson(psi) with psi < k: the terms
// decrease from the first, so the sum stops once they no longer count.
func poissonTail(k int, psi float64) float64 {
	logFirst := poissonLogPMF(k, psi)
	sum, term := 0.0, 1.0
	for i := k; term > 1e-17*sum || sum == 0; i++ {
		term = math.Exp(poissonLogPMF(i, psi) - logFirst)
		sum += term
		if i > k+1_000_000 {
			break
		}
	}
	return sum * math.Exp(logFirst)
}

// SmallestJitter is the smallest jitter, to the second, whose wave chance
// for n requests is at most target; ok is false when no jitter up to max
// achieves it.
func SmallestJitter(n float64, l Limit, target float64, max time.Duration) (jitter time.Duration, ok bool) {
	if WaveChance(n, 0, l) <= target {
		return 0, true
	}
	lo, hi := int64(0), int64(max/time.Second)
	if WaveChance(n, time.Duration(hi)*time.Second, l) > target {
		return 0, false
	}
	for lo+1 < hi { // WaveChance(lo) > target, WaveChance(hi) ≤ target
		mid := lo + (hi-lo)/2
		if WaveChance(n, time.Duration(mid)*time.Second, l) <= target {
			hi = mid
		} else {
			lo = mid
		}
	}
	return time.Duration(hi) * time.Second, true
}

// Simulate estimates WaveChance by drawing the arrivals: in each of trials
// rounds, n requests (n rounded) at independent uniform times over spread,
// and whether some window of l.Window held more than l.Requests of them.
func Simulate(n float64, spread time.Duration, l Limit, trials int, rng *rand.Rand) float64 {
	count := int(math.Round(n))
	times := make([]float64, count)
	w, s := l.Window.Seconds(), spread.Seconds()
	throttled := 0
	for range trials {
		for i := range times {
			times[i] = rng.Float64() * s
		}
		if MaxInWindow(times, w) > l.Requests {
			throttled++
		}
	}
	return float64(throttled) / float64(trials)
}

// MaxInWindow is the largest number of arrival times (seconds, in any
// order; sorted in place) that some window of length w holds, the window
// closed at its start and open at its end.
func MaxInWindow(times []float64, w float64) int {
	sort.Float64s(times)
	best, start := 0, 0
	for end := range times {
		for times[end]-times[start] >= w {
			start++
		}
		best = max(best, end-start+1)
	}
	return best
}
