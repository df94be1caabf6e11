package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/kvsync/kvsync/troubleshoot"
)

// metricsTimeout bounds the read of the controller's metrics.
const metricsTimeout = 5 * time.Second

// lastChecks reads the times of the controller's latest checks from its
// metrics: from --metrics-url when set, otherwise through the API server's
// proxy to --metrics-service (which needs get on services/proxy there).
func (c *cli) lastChecks(ctx context.Context, kube kubernetes.Interface) (map[types.NamespacedName]time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, metricsTimeout)
	defer cancel()
	var text string
	if c.metricsURL != "" {
		raw, err := httpGet(ctx, c.metricsURL)
		if err != nil {
			return nil, fmt.Errorf("reading the controller's metrics at %s (--metrics-url): %w", c.metricsURL, err)
		}
		text = raw
	} else {
		namespace, name, port, err := splitService(c.metricsService)
		if err != nil {
			return nil, err
		}
		raw, err := kube.CoreV1().Services(namespace).ProxyGet("http", name, port, "metrics", nil).DoRaw(ctx)
		if err != nil {
			return nil, fmt.Errorf("reading the controller's metrics through Service %s (--metrics-service): %w", c.metricsService, err)
		}
		text = string(raw)
	}
	return troubleshoot.LastChecks(text)
}

// splitService parses NAMESPACE/NAME:PORT.
func splitService(s string) (namespace, name, port string, err error) {
	namespace, rest, ok1 := strings.Cut(s, "/")
	name, port, ok2 := strings.Cut(rest, ":")
	if !ok1 || !ok2 || namespace == "" || name == "" || port == "" {
		return "", "", "", fmt.Errorf("--metrics-service %q: want NAMESPACE/NAME:PORT, e.g. kvsync-system/kvsync-metrics:metrics", s)
	}
	return namespace, name, port, nil
}

func httpGet(ctx context.Context, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s", resp.Status)
	}
	return string(body), nil
}

// lastChecksNote says why the LAST CHECK of entries is unknown; "" when it
// is known for each.
func lastChecksNote(checks map[types.NamespacedName]time.Time, err error, source string, names []types.NamespacedName) string {
	if err != nil {
		return fmt.Sprintf("last checks unknown: %v", err)
	}
	for _, n := range names {
		if _, ok := checks[n]; !ok {
			return fmt.Sprintf("some last checks unknown: the metrics of %s name no check of them (not checked since the controller started, or the replica that answered does not lead)", source)
		}
	}
	return ""
}

// metricsSource names where lastChecks reads.
func (c *cli) metricsSource() string {
	if c.metricsURL != "" {
		return c.metricsURL
	}
	return "Service " + c.metricsService
}
