package fleet

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// small is a vault limit scaled down so that arrivals can be drawn often.
var small = Limit{Requests: 40, Window: time.Second}

func TestTheScanApproximationAgreesWithDrawnArrivals(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tt := range []struct {
		n      float64
		spread time.Duration
		limit  Limit
	}{
		{200, 8 * time.Second, small},
		{200, 10 * time.Second, small},
		{200, 14 * time.Second, small},
		{300, 12 * time.Second, small},
		{300, 20 * time.Second, small},
		{1000, 60 * time.Second, small},
		// The fleet simulation's shape: 100 requests, 40 per 2 s.
		{100, 6 * time.Second, Limit{Requests: 40, Window: 2 * time.Second}},
		{100, 7 * time.Second, Limit{Requests: 40, Window: 2 * time.Second}},
		{100, 8 * time.Second, Limit{Requests: 40, Window: 2 * time.Second}},
	} {
		model := WaveChance(tt.n, tt.spread, tt.limit)
		drawn := Simulate(tt.n, tt.spread, tt.limit, 4000, rng)
		// A fixed number of uniform arrivals varies a little less than a
		// Poisson process: the model may be above the draw in the tail,
		// and a little below it near the middle.
		if diff := model - drawn; diff < -0.06 || diff > 0.12 {
			t.Errorf("%g requests over %s: model %.3f, drawn %.3f", tt.n, tt.spread, model, drawn)
		}
	}
}

func TestAWaveWithinOneWindowIsThrottledExactlyWhenItExceedsTheLimit(t *testing.T) {
	if got := WaveChance(40, 0, small); got != 0 {
		t.Errorf("40 requests at once against 40 per second: %g, want 0", got)
	}
	if got := WaveChance(41, 0, small); got != 1 {
		t.Errorf("41 requests at once: %g, want 1", got)
	}
	if got := WaveChance(41, small.Window, small); got != 1 {
		t.Errorf("41 requests within one window: %g, want 1", got)
	}
	if got := WaveChance(4_000_000, time.Hour, KeyVault); got != 1 {
		t.Errorf("a mean above the limit in every window: %g, want 1", got)
	}
}

func TestTheWaveChanceFallsAsTheJitterGrows(t *testing.T) {
	prev := 1.0
	for s := 11; s <= 600; s += 7 {
		got := WaveChance(40_000, time.Duration(s)*time.Second, KeyVault)
		if got > prev+1e-12 || math.IsNaN(got) {
			t.Fatalf("chance at %ds = %g, above %g at a shorter jitter", s, got, prev)
		}
		prev = got
	}
	if prev > 1e-6 {
		t.Errorf("40,000 requests over 10 minutes: %g, want nearly 0", prev)
	}
}

func TestTheSmallestJitterIsTheFirstSecondUnderTheTarget(t *testing.T) {
	for _, n := range []float64{4_001, 40_000, 200_000} {
		j, ok := SmallestJitter(n, KeyVault, 1e-4, 24*time.Hour)
		if !ok {
			t.Fatalf("%g requests: no jitter within a day", n)
		}
		if got := WaveChance(n, j, KeyVault); got > 1e-4 {
			t.Errorf("%g requests: chance %g at the planned %s", n, got, j)
		}
		if got := WaveChance(n, j-time.Second, KeyVault); got <= 1e-4 {
			t.Errorf("%g requests: chance %g one second earlier than the planned %s", n, got, j)
		}
	}
	if j, ok := SmallestJitter(4000, KeyVault, 1e-4, time.Hour); !ok || j != 0 {
		t.Errorf("a wave at the limit needs no jitter: %s, %v", j, ok)
	}
	if _, ok := SmallestJitter(5_000_000, KeyVault, 1e-4, time.Hour); ok {
		t.Error("5,000,000 requests within an hour cannot stay under 4,000 per 10 s")
	}
}

func TestTheBusiestWindowIsCounted(t *testing.T) {
	// Sorted: 0, 0.5, 0.99, 1.0, 1.2, 5. The window [0.5, 1.5) holds four;
	// [0, 1) only three, its end being open.
	if got := maxInWindow([]float64{5, 1.2, 0, 0.5, 0.99, 1.0}, 1); got != 4 {
		t.Errorf("maxInWindow = %d, want 4", got)
	}
	if got := maxInWindow([]float64{0, 1, 2, 3}, 1); got != 1 {
		t.Errorf("arrivals one window apart: maxInWindow = %d, want 1", got)
	}
}

func TestAFleetTheModelCannotPlanForIsRefusedWithEveryReason(t *testing.T) {
	err := Fleet{Clusters: 0, SecretsPerCluster: 0, Vaults: 0, RequestsPerSecret: 1, Poll: time.Minute, Jitter: -time.Second}.Validate()
	for _, want := range []string{"clusters", "secrets per cluster", "vaults", "jitter"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate: %v, want it to name %s", err, want)
		}
	}
	f := Fleet{Clusters: 1000, SecretsPerCluster: 20, Vaults: 4, RequestsPerSecret: 1, Poll: time.Hour}
	if err := f.Validate(); err != nil || f.RequestsPerVault() != 5000 {
		t.Errorf("1,000 clusters × 20 secrets over 4 vaults: %v, %g requests per vault", err, f.RequestsPerVault())
	}
}
