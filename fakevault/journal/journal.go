// Package journal records the requests the fake Azure services answered, so
// tests can assert who called what, as whom, and with which outcome.
//
// Entries never hold secret values, tokens or client secrets: only names,
// identities, status codes and error codes.
package journal

import (
	"slices"
	"sync"
	"time"
)

// Entry is one answered request.
type Entry struct {
	// Time is when the answer was sent.
	Time time.Time `json:"time"`
	// Service is "keyvault" or "entra".
	Service string `json:"service"`
	// Host is the request's host, e.g. contoso.vault.azure.net.
	Host string `json:"host"`
	// Method and Path are the request's method and URL path.
	Method string `json:"method"`
	Path   string `json:"path"`
	// APIVersion is the api-version query parameter, if any.
	APIVersion string `json:"apiVersion,omitempty"`
	// Operation names what was asked, e.g. GetSecret, ListSecretVersions,
	// Token, OpenIDConfiguration.
	Operation string `json:"operation"`
	// Tenant is the tenant the request addressed or the token named.
	Tenant string `json:"tenant,omitempty"`
	// Identity is the caller: the client ID (appid) and object ID of the
	// token, or the client ID presented to the token endpoint.
	Identity string `json:"identity,omitempty"`
	// Object is the name (and version) of the vault object, if any.
	Object string `json:"object,omitempty"`
	// Status is the HTTP status answered.
	Status int `json:"status"`
	// ErrorCode is the service error code answered (e.g. SecretNotFound,
	// ForbiddenByRbac, AADSTS70021), empty on success.
	ErrorCode string `json:"errorCode,omitempty"`
	// RequestID is the x-ms-request-id (or trace ID) answered.
	RequestID string `json:"requestId,omitempty"`
	// Fault names the injected fault that produced the answer, if any.
	Fault string `json:"fault,omitempty"`
}

// Journal is a bounded, concurrency-safe list of entries. The zero value is
// ready to use and keeps DefaultLimit entries.
type Journal struct {
	// Limit is the number of entries kept; older ones are dropped. Zero
	// means DefaultLimit.
	Limit int

	mu      sync.Mutex
	entries []Entry
	dropped int
}

// DefaultLimit is the number of entries a Journal keeps by default.
const DefaultLimit = 10000

// Record appends e. A nil Journal records nothing.
func (j *Journal) Record(e Entry) {
	if j == nil {
		return
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	limit := j.Limit
	if limit <= 0 {
		limit = DefaultLimit
	}
	if len(j.entries) >= limit {
		n := len(j.entries) - limit + 1
		j.entries = slices.Delete(j.entries, 0, n)
		j.dropped += n
	}
	j.entries = append(j.entries, e)
}

// Entries returns a copy of the kept entries, oldest first.
func (j *Journal) Entries() []Entry {
	if j == nil {
		return nil
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Clone(j.entries)
}

// Filter returns the kept entries for which keep returns true, oldest first.
func (j *Journal) Filter(keep func(Entry) bool) []Entry {
	var out []Entry
	for _, e := range j.Entries() {
		if keep(e) {
			out = append(out, e)
		}
	}
	return out
}

// Dropped returns how many entries were dropped to respect Limit.
func (j *Journal) Dropped() int {
	if j == nil {
		return 0
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.dropped
}

// Reset drops every entry.
func (j *Journal) Reset() {
	if j == nil {
		return
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	j.entries = nil
	j.dropped = 0
}
