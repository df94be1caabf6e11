package faults

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"bytes"
)

// KubeTransport wraps the transport of a Kubernetes client with the cluster
// faults: use it as rest.Config.WrapTransport. Requests no fault fires for
// reach next unchanged.
func (i *Injector) KubeTransport(next http.RoundTripper) http.RoundTripper {
	return roundTripperFunc(func(r *http.Request) (*http.Response, error) {
		ns, resource, verb := apiRequest(r)
		f := i.decide(target{host: r.URL.Hostname(), namespace: ns, resource: resource, verb: verb}, inLayers("cluster"))
		if f == nil {
			return next.RoundTrip(r)
		}
		switch f.Kind {
		case ClusterLatency:
			if !wait(r.Context(), time.Duration(f.Latency)+i.jitter(time.Duration(f.Jitter))) {
				return nil, r.Context().Err()
			}
			return next.RoundTrip(r)
		case ClusterError:
			return apiError(r, f), nil
		}
		return next.RoundTrip(r)
	})
}

// apiError is the API server's Status answer for an injected error.
func apiError(r *http.Request, f *Fault) *http.Response {
	code := f.Status
	if code == 0 {
		code = http.StatusInternalServerError
	}
	msg := f.Message
	if msg == "" {
		msg = fmt.Sprintf("injected failure %q", f.Name)
	}
	reasons := map[int]string{400: "BadRequest", 403: "Forbidden", 404: "NotFound", 409: "Conflict", 422: "Invalid",
		429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable", 504: "Timeout"}
	body, _ := json.Marshal(map[string]any{"kind": "Status", "apiVersion": "v1", "status": "Failure",
		"message": msg, "reason": reasons[code], "code": code})
	return &http.Response{
		StatusCode: code, Status: fmt.Sprintf("%d %s", code, http.StatusText(code)),
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:  http.Header{"Content-Type": {"application/json"}},
		Body:    io.NopCloser(bytes.NewReader(body)),
		Request: r, ContentLength: int64(len(body)),
	}
}

// apiRequest returns the namespace, resource (with subresource) and verb of
// a Kubernetes API request.
func apiRequest(r *http.Request) (namespace, resource, verb string) {
	segs := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	switch {
	case len(segs) >= 2 && segs[0] == "api":
		segs = segs[2:]
	case len(segs) >= 3 && segs[0] == "apis":
		segs = segs[3:]
	default:
		return "", "", strings.ToLower(r.Method)
	}
	if len(segs) >= 2 && segs[0] == "namespaces" {
		namespace = segs[1]
		segs = segs[2:]
		if len(segs) == 0 {
			segs = []string{"namespaces"}
		}
	}
	named := len(segs) >= 2
	if len(segs) > 0 {
		resource = segs[0]
	}
	if len(segs) >= 3 {
		resource += "/" + segs[2]
	}
	switch r.Method {
	case http.MethodGet:
		switch {
		case r.URL.Query().Get("watch") == "true" || r.URL.Query().Get("watch") == "1":
			verb = "watch"
		case named:
			verb = "get"
		default:
			verb = "list"
		}
	case http.MethodPost:
		verb = "create"
	case http.MethodPut:
		verb = "update"
	case http.MethodPatch:
		verb = "patch"
	case http.MethodDelete:
		verb = "delete"
	default:
		verb = strings.ToLower(r.Method)
	}
	return namespace, resource, verb
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
