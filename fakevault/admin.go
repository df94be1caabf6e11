package fakevault

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/kvsync/kvsync/fakevault/entra"
	"github.com/kvsync/kvsync/fakevault/keyvault"
	"github.com/kvsync/kvsync/fakevault/pki"
)

// maxAdminBody bounds admin request bodies.
const maxAdminBody = 1 << 20

// AdminHandler returns the admin API: plain JSON over HTTP to seed tenants,
// applications, trusted issuers, vaults and their objects, and to read the
// journal. It lets the same fake run out of process (e.g. in a cluster).
// Secret values can be written but are never returned, and the journal holds
// none. The API has no authentication: bind it to loopback or a private
// network only.
//
//	GET    /healthz
//	GET    /ca.pem
//	GET    /journal                                  DELETE /journal
//	POST   /connections/close                        (closes every client connection)
//	POST   /tenants                                  {"tenantId"}
//	POST   /tenants/{tenant}/applications            entra.Application
//	POST   /issuers                                  {"issuer","jwks"}
//	POST   /vaults                                   keyvault.VaultConfig -> {"name","url"}
//	PUT    /vaults/{vault}/network                   keyvault.NetworkRules
//	PUT    /vaults/{vault}/ratelimit                 keyvault.RateLimit (null removes it)
//	POST   /vaults/{vault}/roleassignments           keyvault.RoleAssignment
//	GET    /vaults/{vault}/roleassignments           -> [keyvault.RoleAssignment]
//	DELETE /vaults/{vault}/roleassignments/{principal}
//	POST   /vaults/{vault}/accesspolicies            keyvault.AccessPolicy
//	PUT    /vaults/{vault}/secrets/{name}            {"value","contentType","tags","disabled"} -> {"version"}
//	PATCH  /vaults/{vault}/secrets/{name}/{version}  {"enabled"}
//	DELETE /vaults/{vault}/secrets/{name}
//	POST   /vaults/{vault}/deletedsecrets/{name}/recover
//	DELETE /vaults/{vault}/deletedsecrets/{name}     (purges it)
//	GET    /vaults/{vault}/secrets/{name}/versions   -> [keyvault.VersionInfo]
//	POST   /vaults/{vault}/certificates/{name}       {"keyType","contentType","dnsNames","tags","disabled","validFor"} -> {"version"}
//	POST   /vaults/{vault}/keys/{name}               {"keyType","disabled"} -> {"version"}
func (s *Server) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	s.handleAdminServer(mux)
	s.handleAdminIdentities(mux)
	s.handleAdminVaults(mux)
	s.handleAdminSecrets(mux)
	s.handleAdminCertificatesAndKeys(mux)
	return mux
}

// handleAdminServer adds the routes about the server itself: health, its
// CA, its journal and its client connections.
func (s *Server) handleAdminServer(mux *http.ServeMux) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /ca.pem", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/x-pem-file")
		_, _ = w.Write(s.CAPEM())
	})
	mux.HandleFunc("GET /journal", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, s.journal.Entries()) })
	mux.HandleFunc("DELETE /journal", func(w http.ResponseWriter, _ *http.Request) {
		s.journal.Reset()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /connections/close", func(w http.ResponseWriter, _ *http.Request) {
		s.CloseClientConnections()
		w.WriteHeader(http.StatusNoContent)
	})
}

// handleAdminIdentities adds the routes that seed Entra ID: tenants, their
// applications and the issuers it trusts.
func (s *Server) handleAdminIdentities(mux *http.ServeMux) {
	mux.HandleFunc("POST /tenants", admin(func(r *http.Request, in struct {
		TenantID string `json:"tenantId"`
	}) (any, error) {
		return nil, s.entra.AddTenant(in.TenantID)
	}))
	mux.HandleFunc("POST /tenants/{tenant}/applications", admin(func(r *http.Request, in entra.Application) (any, error) {
		return nil, s.entra.AddApplication(r.PathValue("tenant"), in)
	}))
	mux.HandleFunc("POST /issuers", admin(func(r *http.Request, in struct {
		Issuer string          `json:"issuer"`
		JWKS   json.RawMessage `json:"jwks"`
	}) (any, error) {
		return nil, s.entra.TrustIssuerJWKS(in.Issuer, in.JWKS)
	}))
}

// handleAdminVaults adds the routes that create vaults and set who and
// what may reach them: network rules, rate limit, role assignments and
// access policies.
func (s *Server) handleAdminVaults(mux *http.ServeMux) {
	mux.HandleFunc("POST /vaults", admin(func(r *http.Request, in keyvault.VaultConfig) (any, error) {
		v, err := s.CreateVault(in)
		if err != nil {
			return nil, err
		}
		return map[string]string{"name": v.Name(), "url": v.URL()}, nil
	}))
	mux.HandleFunc("PUT /vaults/{vault}/network", vaultAdmin(s, func(v *keyvault.Vault, r *http.Request, in keyvault.NetworkRules) (any, error) {
		return nil, v.SetNetworkRules(in)
	}))
	mux.HandleFunc("PUT /vaults/{vault}/ratelimit", vaultAdmin(s, func(v *keyvault.Vault, r *http.Request, in *keyvault.RateLimit) (any, error) {
		return nil, v.SetRateLimit(in)
	}))
	mux.HandleFunc("POST /vaults/{vault}/roleassignments", vaultAdmin(s, func(v *keyvault.Vault, r *http.Request, in keyvault.RoleAssignment) (any, error) {
		return nil, v.AssignRole(in)
	}))
	mux.HandleFunc("GET /vaults/{vault}/roleassignments", vaultAdmin(s, func(v *keyvault.Vault, r *http.Request, _ struct{}) (any, error) {
		return v.RoleAssignments(), nil
	}))
	mux.HandleFunc("DELETE /vaults/{vault}/roleassignments/{principal}", vaultAdmin(s, func(v *keyvault.Vault, r *http.Request, _ struct{}) (any, error) {
		v.RemoveRoleAssignments(r.PathValue("principal"))
		return nil, nil
	}))
	mux.HandleFunc("POST /vaults/{vault}/accesspolicies", vaultAdmin(s, func(v *keyvault.Vault, r *http.Request, in keyvault.AccessPolicy) (any, error) {
		return nil, v.SetAccessPolicy(in)
	}))
}

// handleAdminSecrets adds the routes that write a vault's secrets and
// their versions, delete, recover and purge them, and list their versions
// (never their values).
func (s *Server) handleAdminSecrets(mux *http.ServeMux) {
	mux.HandleFunc("PUT /vaults/{vault}/secrets/{name}", vaultAdmin(s, func(v *keyvault.Vault, r *http.Request, in struct {
		Value       *string           `json:"value"`
		ContentType string            `json:"contentType"`
		Tags        map[string]string `json:"tags"`
		Disabled    bool              `json:"disabled"`
	}) (any, error) {
		if in.Value == nil {
			return nil, badRequest("value is required")
		}
		version, err := v.SetSecret(r.PathValue("name"), *in.Value, &keyvault.SecretOptions{ContentType: in.ContentType, Tags: in.Tags, Disabled: in.Disabled})
		return map[string]string{"version": version}, err
	}))
	mux.HandleFunc("PATCH /vaults/{vault}/secrets/{name}/{version}", vaultAdmin(s, func(v *keyvault.Vault, r *http.Request, in struct {
		Enabled *bool `json:"enabled"`
	}) (any, error) {
		if in.Enabled == nil {
			return nil, badRequest("enabled is required")
		}
		return nil, v.SetSecretEnabled(r.PathValue("name"), r.PathValue("version"), *in.Enabled)
	}))
	mux.HandleFunc("DELETE /vaults/{vault}/secrets/{name}", vaultAdmin(s, func(v *keyvault.Vault, r *http.Request, _ struct{}) (any, error) {
		return nil, v.DeleteSecret(r.PathValue("name"))
	}))
	mux.HandleFunc("POST /vaults/{vault}/deletedsecrets/{name}/recover", vaultAdmin(s, func(v *keyvault.Vault, r *http.Request, _ struct{}) (any, error) {
		return nil, v.RecoverDeletedSecret(r.PathValue("name"))
	}))
	mux.HandleFunc("DELETE /vaults/{vault}/deletedsecrets/{name}", vaultAdmin(s, func(v *keyvault.Vault, r *http.Request, _ struct{}) (any, error) {
		return nil, v.PurgeDeletedSecret(r.PathValue("name"))
	}))
	mux.HandleFunc("GET /vaults/{vault}/secrets/{name}/versions", vaultAdmin(s, func(v *keyvault.Vault, r *http.Request, _ struct{}) (any, error) {
		return v.SecretVersions(r.PathValue("name"))
	}))
}

// handleAdminCertificatesAndKeys adds the routes that create a vault's
// certificates, issued by the server's CA, and keys.
func (s *Server) handleAdminCertificatesAndKeys(mux *http.ServeMux) {
	mux.HandleFunc("POST /vaults/{vault}/certificates/{name}", vaultAdmin(s, s.adminCreateCertificate))
	mux.HandleFunc("POST /vaults/{vault}/keys/{name}", vaultAdmin(s, func(v *keyvault.Vault, r *http.Request, in struct {
		KeyType  pki.KeyType `json:"keyType"`
		Disabled bool        `json:"disabled"`
	}) (any, error) {
		version, err := v.CreateKey(r.PathValue("name"), keyvault.KeyOptions{Type: in.KeyType, Disabled: in.Disabled})
		return map[string]string{"version": version}, err
	}))
}

// certificateRequest is the body of POST /vaults/{vault}/certificates/{name}.
// ValidFor, a Go duration, makes the certificate valid from an hour ago for
// that long; empty keeps the default validity (see pki.LeafOptions).
type certificateRequest struct {
	KeyType     pki.KeyType       `json:"keyType"`
	ContentType string            `json:"contentType"`
	DNSNames    []string          `json:"dnsNames"`
	Tags        map[string]string `json:"tags"`
	Disabled    bool              `json:"disabled"`
	ValidFor    string            `json:"validFor"`
}

// adminCreateCertificate creates certificate {name} of v as in asks,
// issued by the server's CA, and answers its version.
func (s *Server) adminCreateCertificate(v *keyvault.Vault, r *http.Request, in certificateRequest) (any, error) {
	opts := keyvault.CertificateOptions{CA: s.ca, KeyType: in.KeyType, ContentType: in.ContentType, DNSNames: in.DNSNames, Tags: in.Tags, Disabled: in.Disabled}
	if in.ValidFor != "" {
		d, err := time.ParseDuration(in.ValidFor)
		if err != nil {
			return nil, badRequest(fmt.Sprintf("validFor: %v", err))
		}
		opts.NotBefore = time.Now().Add(-time.Hour)
		opts.NotAfter = opts.NotBefore.Add(d)
	}
	cert, err := v.CreateCertificate(r.PathValue("name"), opts)
	if err != nil {
		return nil, err
	}
	return map[string]string{"version": cert.Version}, nil
}

// adminError is an admin API failure with its HTTP status.
type adminError struct {
	status int
	msg    string
}

func (e *adminError) Error() string { return e.msg }

func badRequest(msg string) error { return &adminError{status: http.StatusBadRequest, msg: msg} }

// admin decodes the JSON body into In, runs fn and answers its result as
// JSON (204 when it is nil) or its error as {"error": message}.
func admin[In any](fn func(*http.Request, In) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var in In
		if r.Method != http.MethodGet && r.Method != http.MethodDelete {
			dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxAdminBody))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&in); err != nil {
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf("decoding request body: %v", err)})
				return
			}
		}
		out, err := fn(r, in)
		if err != nil {
			writeJSON(w, adminStatus(err), map[string]string{"error": err.Error()})
			return
		}
		if out == nil {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		writeJSON(w, http.StatusOK, out)
	}
}

// vaultAdmin is admin for routes under /vaults/{vault}: an unknown vault is
// answered 404.
func vaultAdmin[In any](s *Server, fn func(*keyvault.Vault, *http.Request, In) (any, error)) http.HandlerFunc {
	return admin(func(r *http.Request, in In) (any, error) {
		v, ok := s.vaults.Vault(r.PathValue("vault"))
		if !ok {
			return nil, &adminError{status: http.StatusNotFound, msg: fmt.Sprintf("vault %q does not exist", r.PathValue("vault"))}
		}
		return fn(v, r, in)
	})
}

// adminStatus maps an error to the admin API's status: the vault's own
// status for vault errors, 400 for invalid input otherwise.
func adminStatus(err error) int {
	var ae *adminError
	var ve *keyvault.Error
	switch {
	case errors.As(err, &ae):
		return ae.status
	case errors.As(err, &ve):
		return ve.Status
	}
	return http.StatusBadRequest
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
