package controller

import (
	"context"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/status"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	ssv1alpha1 "github.com/kvsync/kvsync/api/secretsync/v1alpha1"
)

// Metrics on the controller-runtime registry. Labels never carry values.
var (
	syncsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kvsync_sync_total",
		Help: "Checks of SecretSyncs, by the reason they ended with.",
	}, []string{"reason"})
	syncDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "kvsync_sync_duration_seconds",
		Help:    "Duration of one check of a SecretSync, provider calls included.",
		Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
	})
	mountDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "kvsync_provider_mount_duration_seconds",
		Help:    "Duration of Mount calls to providers, by provider and gRPC result code.",
		Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
	}, []string{"provider", "code"})

	deferralsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "kvsync_sync_deferred_total",
		Help: "Checks of SecretSyncs put off because their vault asked the provider to retry later (Retry-After), by provider.",
	}, []string{"provider"})

	lastCheck = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "kvsync_secretsync_last_check_timestamp_seconds",
		Help: "Unix time of the latest check of each SecretSync by this replica, whatever its outcome (kept in memory: a check that finds nothing new writes nothing).",
	}, []string{"namespace", "name"})

	lastSuccess = &lastSuccessCollector{desc: prometheus.NewDesc(
		"kvsync_secretsync_last_success_timestamp_seconds",
		"Unix time of the last successful sync of each SecretSync (status.lastSuccessfulSyncTime).",
		[]string{"namespace", "name"}, nil)}

	registerOnce sync.Once
)

func registerMetrics() {
	registerOnce.Do(func() {
		metrics.Registry.MustRegister(syncsTotal, syncDuration, mountDuration, deferralsTotal, lastCheck, lastSuccess)
	})
}

// observeMount records one Mount call.
func observeMount(provider string, err error, d time.Duration) {
	mountDuration.WithLabelValues(provider, status.Code(err).String()).Observe(d.Seconds())
}

// observeDeferral records a check put off by a vault's retry delay.
func observeDeferral(provider string) {
	deferralsTotal.WithLabelValues(provider).Inc()
}

// observeSync records one check and the reason it ended with.
func observeSync(reason string, d time.Duration) {
	syncsTotal.WithLabelValues(reason).Inc()
	syncDuration.Observe(d.Seconds())
}

// observeCheck records that the SecretSync key was checked at t.
func observeCheck(key types.NamespacedName, t time.Time) {
	lastCheck.WithLabelValues(key.Namespace, key.Name).Set(float64(t.UnixMilli()) / 1000)
}

// forgetCheck drops the latest check of a SecretSync that is gone.
func forgetCheck(key types.NamespacedName) {
	lastCheck.DeleteLabelValues(key.Namespace, key.Name)
}

// lastSuccessCollector reports status.lastSuccessfulSyncTime of every
// SecretSync in the caches of the process's running controllers when
// scraped.
type lastSuccessCollector struct {
	desc *prometheus.Desc

	mu      sync.Mutex
	readers map[*client.Reader]client.Reader
}

// reader returns a manager Runnable that adds r to the readers while it
// runs: from the start of the manager to its stop, leader or not, so that
// managers started and stopped in one process do not pile up.
func (c *lastSuccessCollector) reader(r client.Reader) manager.Runnable {
	return everyReplica(func(ctx context.Context) error {
		key := &r
		c.mu.Lock()
		if c.readers == nil {
			c.readers = map[*client.Reader]client.Reader{}
		}
		c.readers[key] = r
		c.mu.Unlock()
		<-ctx.Done()
		c.mu.Lock()
		delete(c.readers, key)
		c.mu.Unlock()
		return nil
	})
}

// everyReplica is a Runnable that runs whether or not its manager leads.
type everyReplica manager.RunnableFunc

func (f everyReplica) Start(ctx context.Context) error { return f(ctx) }
func (everyReplica) NeedLeaderElection() bool          { return false }

// readerCount returns the number of readers the collector reads.
func (c *lastSuccessCollector) readerCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.readers)
}

func (c *lastSuccessCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *lastSuccessCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	readers := slices.Collect(maps.Values(c.readers))
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	seen := map[types.NamespacedName]bool{}
	for _, r := range readers {
		list := &ssv1alpha1.SecretSyncList{}
		// Read only: the cache's objects need no copy (a copy of every
		// SecretSync per scrape was a tenth of the controller's CPU at
		// 5,000).
		if err := r.List(ctx, list, client.UnsafeDisableDeepCopy); err != nil {
			continue
		}
		for _, ss := range list.Items {
			key := types.NamespacedName{Namespace: ss.Namespace, Name: ss.Name}
			if t := ss.Status.LastSuccessfulSyncTime; t != nil && !seen[key] {
				seen[key] = true
				ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(t.Unix()), ss.Namespace, ss.Name)
			}
		}
	}
}
