package provider

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the provider's Prometheus metrics.
type metrics struct {
	requests      *prometheus.CounterVec
	requestTime   *prometheus.HistogramVec
	mounts        *prometheus.CounterVec
	mountDuration prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kvsync_provider_requests_total",
			Help: "HTTP requests to Key Vault and Entra ID, by operation and result code (HTTP status, or transport_error).",
		}, []string{"operation", "code"}),
		requestTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kvsync_provider_request_duration_seconds",
			Help:    "Duration of HTTP requests to Key Vault and Entra ID, by operation.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 12),
		}, []string{"operation"}),
		mounts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kvsync_provider_mounts_total",
			Help: "Mount calls, by result (a gRPC code name, OK on success).",
		}, []string{"result"}),
		mountDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "kvsync_provider_mount_duration_seconds",
			Help:    "Duration of Mount calls.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
		}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.requestTime, m.mounts, m.mountDuration} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// policy returns an azcore per-retry policy that records every HTTP try.
func (m *metrics) policy() policy.Policy { return requestMetrics{m} }

type requestMetrics struct{ m *metrics }

func (p requestMetrics) Do(req *policy.Request) (*http.Response, error) {
	op := operation(req.Raw())
	start := time.Now()
	resp, err := req.Next()
	p.m.requestTime.WithLabelValues(op).Observe(time.Since(start).Seconds())
	code := "transport_error"
	if err == nil && resp != nil {
		code = strconv.Itoa(resp.StatusCode)
	}
	p.m.requests.WithLabelValues(op, code).Inc()
	return resp, err
}

// operation names the Key Vault or Entra ID operation of a request, from a
// fixed set, so labels stay bounded.
func operation(r *http.Request) string {
	segs := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if strings.Contains(r.URL.Path, "/oauth2/") {
		return "Token"
	}
	if strings.Contains(r.URL.Path, "/discovery/") || strings.Contains(r.URL.Path, "openid-configuration") {
		return "Discovery"
	}
	kinds := map[string]string{"secrets": "Secret", "keys": "Key", "certificates": "Certificate"}
	kind, ok := kinds[segs[0]]
	if !ok || r.Method != http.MethodGet {
		return "Other"
	}
	if len(segs) == 3 && segs[2] == "versions" {
		return "List" + kind + "Versions"
	}
	return "Get" + kind
}
