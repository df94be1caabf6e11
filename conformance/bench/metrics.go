package main

import (
	"context"
	"fmt"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/kvsync/kvsync/conformance"
)

// sample is the counters read at one moment.
type sample struct {
	// writes are the API server's write requests by resource[/subresource]
	// and verb, e.g. "secrets APPLY".
	writes map[string]float64
	// vault are the provider's Key Vault requests; token its Entra ID
	// token requests; mounts its Mount calls.
	vault, token, mounts float64
	// throttled are the vault's 429 answers; deferred the checks the
	// controller put off for a vault's retry delay.
	throttled, deferred float64
	// cpu is the controller's CPU seconds; rss and heap its memory.
	cpu, rss, heap float64
	// procs are the CPU seconds of every component (processCPU).
	procs map[string]float64
}

var writeVerbs = map[string]bool{"POST": true, "PUT": true, "PATCH": true, "APPLY": true, "DELETE": true, "DELETECOLLECTION": true}

// read samples every counter.
func read(ctx context.Context, env *conformance.Environment) (sample, error) {
	s := sample{writes: map[string]float64{}, procs: processCPU()}
	api, err := apiserverMetrics(ctx, env.Config)
	if err != nil {
		return s, err
	}
	for _, m := range families(api)["apiserver_request_total"].GetMetric() {
		l := labels(m)
		if !writeVerbs[l["verb"]] {
			continue
		}
		res := l["resource"]
		if l["subresource"] != "" {
			res += "/" + l["subresource"]
		}
		s.writes[res+" "+l["verb"]] += m.GetCounter().GetValue()
	}
	prov, err := env.ProviderMetrics()
	if err != nil {
		return s, fmt.Errorf("reading the provider's metrics: %w", err)
	}
	pf := families(prov)
	for _, m := range pf["kvsync_provider_requests_total"].GetMetric() {
		switch labels(m)["operation"] {
		case "Token":
			s.token += m.GetCounter().GetValue()
		case "Discovery":
		default:
			s.vault += m.GetCounter().GetValue()
			if labels(m)["code"] == "429" {
				s.throttled += m.GetCounter().GetValue()
			}
		}
	}
	for _, m := range pf["kvsync_provider_mounts_total"].GetMetric() {
		s.mounts += m.GetCounter().GetValue()
	}
	ctl, err := env.Metrics()
	if err != nil {
		return s, fmt.Errorf("reading the controller's metrics: %w", err)
	}
	cf := families(ctl)
	s.cpu = value(cf["process_cpu_seconds_total"])
	s.rss = value(cf["process_resident_memory_bytes"])
	s.heap = value(cf["go_memstats_heap_inuse_bytes"])
	for _, m := range cf["kvsync_sync_deferred_total"].GetMetric() {
		s.deferred += m.GetCounter().GetValue()
	}
	return s, nil
}

// apiserverMetrics reads the API server's /metrics.
func apiserverMetrics(ctx context.Context, cfg *rest.Config) (string, error) {
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return "", err
	}
	raw, err := kube.RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return "", fmt.Errorf("reading the API server's metrics: %w", err)
	}
	return string(raw), nil
}

func families(text string) map[string]*dto.MetricFamily {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil && fams == nil {
		return map[string]*dto.MetricFamily{}
	}
	return fams
}

func labels(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

// value is the first sample of a gauge or counter family.
func value(f *dto.MetricFamily) float64 {
	for _, m := range f.GetMetric() {
		if m.Gauge != nil {
			return m.GetGauge().GetValue()
		}
		return m.GetCounter().GetValue()
	}
	return 0
}

// Counts are what happened between two samples.
type Counts struct {
	Seconds float64 `json:"seconds"`
	// SecretWrites and StatusWrites are writes of Secrets and of
	// SecretSync status; TokenRequests of serviceaccounts/token.
	SecretWrites  float64 `json:"secretWrites"`
	StatusWrites  float64 `json:"statusWrites"`
	TokenRequests float64 `json:"tokenRequests"`
	// OtherWrites are the remaining writes (Leases, Events, ...).
	OtherWrites float64            `json:"otherWrites"`
	Writes      map[string]float64 `json:"writes"`
	Mounts      float64            `json:"mounts"`
	// VaultRequests are the provider's Key Vault requests (401 challenges
	// included); EntraTokens its token requests.
	VaultRequests float64 `json:"vaultRequests"`
	EntraTokens   float64 `json:"entraTokens"`
	// CPUCores is the controller's mean CPU use.
	CPUCores float64 `json:"cpuCores"`
	// ComponentCores is the mean CPU use of every component.
	ComponentCores map[string]float64 `json:"componentCores,omitempty"`
}

// diff counts what happened from a to b, over seconds.
func diff(a, b sample, seconds float64) Counts {
	c := Counts{Seconds: seconds, Writes: map[string]float64{}, Mounts: b.mounts - a.mounts,
		VaultRequests: b.vault - a.vault, EntraTokens: b.token - a.token}
	if seconds > 0 {
		c.CPUCores = (b.cpu - a.cpu) / seconds
		c.ComponentCores = map[string]float64{}
		for k, v := range b.procs {
			c.ComponentCores[k] = (v - a.procs[k]) / seconds
		}
	}
	for k, v := range b.writes {
		d := v - a.writes[k]
		if d == 0 {
			continue
		}
		c.Writes[k] = d
		res, _, _ := strings.Cut(k, " ")
		switch {
		case res == "secrets":
			c.SecretWrites += d
		case res == "secretsyncs/status":
			c.StatusWrites += d
		case res == "serviceaccounts/token":
			c.TokenRequests += d
		default:
			c.OtherWrites += d
		}
	}
	return c
}

// per divides every count by n (per poll, per SecretSync).
func (c Counts) per(n float64) Counts {
	out := c
	out.Writes = map[string]float64{}
	for k, v := range c.Writes {
		out.Writes[k] = v / n
	}
	out.SecretWrites, out.StatusWrites, out.TokenRequests, out.OtherWrites = c.SecretWrites/n, c.StatusWrites/n, c.TokenRequests/n, c.OtherWrites/n
	out.Mounts, out.VaultRequests, out.EntraTokens = c.Mounts/n, c.VaultRequests/n, c.EntraTokens/n
	return out
}
