package faults

import (
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"

	"k8s.io/client-go/rest"
)

// KubeProxy returns a reverse proxy to the API server of upstream that
// applies the cluster faults: point an out-of-process controller's
// kubeconfig at it (plain HTTP on loopback) to inject API server errors and
// latency. The proxy authenticates to the API server with upstream's
// credentials, so the controller acts with those.
func (i *Injector) KubeProxy(upstream *rest.Config) (http.Handler, error) {
	target, err := url.Parse(upstream.Host)
	if err != nil {
		return nil, fmt.Errorf("API server address %q: %w", upstream.Host, err)
	}
	if target.Scheme == "" {
		target.Scheme = "https"
	}
	transport, err := rest.TransportFor(upstream)
	if err != nil {
		return nil, fmt.Errorf("API server transport: %w", err)
	}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Header.Del("Authorization")
		},
		Transport:     i.KubeTransport(transport),
		FlushInterval: -1, // stream watches
	}
	return proxy, nil
}
