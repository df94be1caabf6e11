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
//     holds more than L of them by Naus's approximation for the scan
//     statistic of a Poisson process (J. I. Naus, "Approximations for
//     distributions of scan statistics", 1982):
//     P(S_w ≥ k) ≈ 1 − Q2 · (Q3/Q2)^(T/w − 2), with k = L+1 and Q2, Q3
//     the exact chances that intervals of 2w and 3w have no window of k
//     points, from the Poisson probability and distribution functions at
//     ψ = nw/T. When T ≤ w every request shares one window.
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

// scanChance is Naus's approximation of the chance that a Poisson process
// of rate lambda on [0, t] has k or more points in some window of length w
// (J. I. Naus, "Approximations for distributions of scan statistics", 1982;
// as in Glaz, Naus and Wallenstein, "Scan Statistics", 2001):
// P ≈ 1 − Q2 · (Q3/Q2)^(t/w − 2), where Q2 and Q3 are the exact chances
// that an interval of 2w, and of 3w, has no such window. It is computed
// from the deficits 1 − Q2 and 1 − Q3, so that tiny chances keep their
// precision.
func scanChance(lambda, t, w float64, k int) float64 {
	psi := lambda * w
	if psi >= float64(k)+6*math.Sqrt(float64(k)) {
		return 1 // the mean of a window is far above the limit
	}
	d2, d3 := nausDeficits(k, psi)
	if !(d2 >= 0 && d2 < 1 && d3 >= d2 && d3 < 1) {
		return 1
	}
	l2, l3 := math.Log1p(-d2), math.Log1p(-d3)
	p := -math.Expm1(l2 + (t/w-2)*(l3-l2))
	return min(max(p, 0), 1)
}

// nausDeficits returns 1 − Q2 and 1 − Q3 for k points and ψ, the mean of
// a window: Naus's exact expressions, with F = 1 − G written out so that
// the ones cancel.
func nausDeficits(k int, psi float64) (d2, d3 float64) {
	// pmf[i] = p(i) and tail[i] = G(i) = P(X > i), summed from the far
	// tail down; p and G are 0 and 1 below 0.
	top := max(2*k, int(psi+40*math.Sqrt(psi)+100))
	pmf := make([]float64, top+2)
	tail := make([]float64, top+2)
	for i := top; i >= 0; i-- {
		pmf[i] = math.Exp(poissonLogPMF(i, psi))
		tail[i] = tail[i+1] + pmf[i+1]
	}
	p := func(i int) float64 {
		if i < 0 {
			return 0
		}
		return pmf[i]
	}
	G := func(i int) float64 {
		if i < 0 {
			return 1
		}
		return tail[i]
	}
	F := func(i int) float64 { return 1 - G(i) }
	kf, g := float64(k), G(k-1)
	// Q2 = F(k−1)² − (k−1)p(k)p(k−2) − (k−1−ψ)p(k)F(k−3)
	d2 = 2*g - g*g + (kf-1)*p(k)*p(k-2) + (kf-1-psi)*p(k)*F(k-3)
	// Q3 = F(k−1)³ − A1 + A2 + A3 − A4
	a1 := 2 * p(k) * F(k-1) * ((kf-1)*F(k-2) - psi*F(k-3))
	a2 := 0.5 * p(k) * p(k) * ((kf-1)*(kf-2)*F(k-3) - 2*(kf-2)*psi*F(k-4) + psi*psi*F(k-5))
	a3, a4 := 0.0, 0.0
	for r := 1; r <= k-1; r++ {
		a3 += p(2*k-r) * F(r-1) * F(r-1)
		if r >= 2 {
			a4 += p(2*k-r) * p(r) * (float64(r-1)*F(r-2) - psi*F(r-3))
		}
	}
	d3 = 3*g - 3*g*g + g*g*g + a1 - a2 - a3 + a4
	return d2, d3
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
		if maxInWindow(times, w) > l.Requests {
			throttled++
		}
	}
	return float64(throttled) / float64(trials)
}

// maxInWindow is the largest number of arrival times (seconds, in any
// order; sorted in place) that some window of length w holds, the window
// closed at its start and open at its end.
func maxInWindow(times []float64, w float64) int {
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
