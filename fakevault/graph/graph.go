// Package graph is a fake of the Microsoft Graph endpoints that the Azure
// CLI reads to resolve an application's client ID to its service
// principal's object ID (`az role assignment create --assignee <client
// ID>`, `az keyvault set-policy --spn <client ID>`): service principals of
// the caller's tenant, by servicePrincipalNames or appId, and by object ID.
// Nothing else of Graph is emulated.
package graph

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"

	"github.com/kvsync/kvsync/fakevault/entra"
	"github.com/kvsync/kvsync/fakevault/keyvault"
)

// Host is Microsoft Graph's host name.
const Host = "graph.microsoft.com"

// audiences are the token audiences Graph accepts.
var audiences = []string{"https://graph.microsoft.com", "https://graph.microsoft.com/", "00000003-0000-0000-c000-000000000000"}

// Directory finds applications, as Entra ID registers them.
type Directory interface {
	Application(tenantID, clientID string) (entra.Application, bool)
}

// Options configure a Service.
type Options struct {
	// Verifier checks bearer tokens. Required.
	Verifier keyvault.TokenVerifier
	// Directory is the fake Entra ID. Required.
	Directory Directory
}

// Service is the fake Graph.
type Service struct{ opts Options }

// New returns a Service; it fails when an option is missing.
func New(opts Options) (*Service, error) {
	if opts.Verifier == nil || opts.Directory == nil {
		return nil, fmt.Errorf("graph: Options.Verifier and Options.Directory are required")
	}
	return &Service{opts: opts}, nil
}

// Handler serves Graph's REST API.
func (s *Service) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

// servicePrincipalJSON is a service principal as Graph returns it.
type servicePrincipalJSON struct {
	ID                    string   `json:"id"`
	AppID                 string   `json:"appId"`
	DisplayName           string   `json:"displayName"`
	ServicePrincipalType  string   `json:"servicePrincipalType"`
	ServicePrincipalNames []string `json:"servicePrincipalNames"`
}

// filters are the $filter forms the Azure CLI sends for a client ID.
var filters = []*regexp.Regexp{
	regexp.MustCompile(`^servicePrincipalNames/any\(c:c eq '([^']+)'\)$`),
	regexp.MustCompile(`^appId eq '([^']+)'$`),
}

func (s *Service) serveHTTP(w http.ResponseWriter, r *http.Request) {
	raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		writeError(w, http.StatusUnauthorized, "InvalidAuthenticationToken", "Access token is empty.")
		return
	}
	p, err := s.opts.Verifier.VerifyAccessToken(raw)
	if err != nil || !slices.Contains(audiences, p.Audience) {
		writeError(w, http.StatusUnauthorized, "InvalidAuthenticationToken", "Access token validation failure. Invalid audience.")
		return
	}
	path := strings.TrimSuffix(r.URL.Path, "/")
	switch {
	case r.Method == http.MethodGet && strings.EqualFold(path, "/v1.0/servicePrincipals"):
		filter := r.URL.Query().Get("$filter")
		var out []servicePrincipalJSON
		for _, re := range filters {
			if m := re.FindStringSubmatch(filter); m != nil {
				id := strings.TrimPrefix(m[1], "api://")
				if app, ok := s.opts.Directory.Application(p.TenantID, id); ok {
					out = append(out, servicePrincipal(app))
				}
				writeJSON(w, http.StatusOK, map[string]any{"value": nonNil(out)})
				return
			}
		}
		writeError(w, http.StatusBadRequest, "Request_UnsupportedQuery", "Unsupported query: $filter=%s (the fake answers servicePrincipalNames/any(c:c eq '<id>') and appId eq '<id>').", filter)
	default:
		writeError(w, http.StatusNotImplemented, "NotImplemented", "%s %s is not emulated by the fake Graph.", r.Method, r.URL.Path)
	}
}

func servicePrincipal(app entra.Application) servicePrincipalJSON {
	return servicePrincipalJSON{ID: app.ObjectID, AppID: app.ClientID, DisplayName: app.DisplayName, ServicePrincipalType: "Application",
		ServicePrincipalNames: []string{app.ClientID, "api://" + app.ClientID}}
}

func nonNil[T any](v []T) []T {
	if v == nil {
		return []T{}
	}
	return v
}

func writeError(w http.ResponseWriter, status int, code, format string, args ...any) {
	writeJSON(w, status, map[string]any{"error": map[string]string{"code": code, "message": fmt.Sprintf(format, args...)}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
