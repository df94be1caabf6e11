package entra

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/google/uuid"

	"github.com/kvsync/kvsync/fakevault/journal"
)

// Journal operation names.
const (
	opInstanceDiscovery   = "InstanceDiscovery"
	opOpenIDConfiguration = "OpenIDConfiguration"
	opJWKS                = "JWKS"
	opToken               = "Token"
	opUnknown             = "Unknown"
)

// call is one request being answered. Exactly one of its answer methods
// runs, and it records exactly one journal entry.
type call struct {
	a             *Authority
	w             http.ResponseWriter
	r             *http.Request
	traceID       string
	correlationID string
	entry         journal.Entry
}

func (a *Authority) serveHTTP(w http.ResponseWriter, r *http.Request) {
	c := &call{
		a:             a,
		w:             w,
		r:             r,
		traceID:       uuid.NewString(),
		correlationID: r.Header.Get("client-request-id"),
		entry: journal.Entry{
			Service:    "entra",
			Host:       r.Host,
			Method:     r.Method,
			Path:       r.URL.Path,
			APIVersion: r.URL.Query().Get("api-version"),
			Operation:  opUnknown,
		},
	}
	if !isGUID(c.correlationID) {
		c.correlationID = uuid.NewString()
	}
	if !a.servesHost(r.Host) {
		c.notFound()
		return
	}
	a.route(c)
}

// servesHost reports whether host (with or without the default port) is
// the authority's.
func (a *Authority) servesHost(host string) bool {
	host = strings.ToLower(host)
	if host == a.host {
		return true
	}
	if h, port, err := net.SplitHostPort(host); err == nil && port == "443" {
		return h == a.host
	}
	return false
}

// route dispatches on the path; segments compare case-insensitively, as the
// real service's do.
func (a *Authority) route(c *call) {
	segs := strings.Split(strings.Trim(c.r.URL.Path, "/"), "/")
	lower := make([]string, len(segs))
	for i, s := range segs {
		lower[i] = strings.ToLower(s)
	}
	is := func(rest ...string) bool {
		if len(lower) != len(rest)+1 {
			return false
		}
		for i, s := range rest {
			if lower[i+1] != s {
				return false
			}
		}
		return true
	}
	tenantSeg := lower[0]
	switch {
	case tenantSeg == "common" && is("discovery", "instance"):
		c.entry.Operation = opInstanceDiscovery
		if c.allowGET() {
			a.instanceDiscovery(c)
		}
	case is("v2.0", ".well-known", "openid-configuration"):
		c.entry.Operation = opOpenIDConfiguration
		if c.allowGET() {
			a.openIDConfiguration(c, tenantSeg, true)
		}
	case is(".well-known", "openid-configuration"):
		c.entry.Operation = opOpenIDConfiguration
		if c.allowGET() {
			a.openIDConfiguration(c, tenantSeg, false)
		}
	case is("discovery", "v2.0", "keys"), is("discovery", "keys"):
		c.entry.Operation = opJWKS
		if c.allowGET() {
			a.keys(c, tenantSeg, lower[2] == "v2.0")
		}
	case is("oauth2", "v2.0", "token"):
		c.entry.Operation = opToken
		a.token(c, tenantSeg, true)
	case is("oauth2", "token"):
		c.entry.Operation = opToken
		a.token(c, tenantSeg, false)
	default:
		c.notFound()
	}
}

// allowGET answers 405 unless the method is GET or HEAD.
func (c *call) allowGET() bool {
	if c.r.Method == http.MethodGet || c.r.Method == http.MethodHead {
		return true
	}
	c.w.Header().Set("Allow", "GET, HEAD")
	c.status(http.StatusMethodNotAllowed)
	return false
}

// commonHeaders sets the headers every answer of the real service carries.
func (c *call) commonHeaders() {
	h := c.w.Header()
	h.Set("Cache-Control", "no-store, no-cache")
	h.Set("Pragma", "no-cache")
	h.Set("Expires", "-1")
	h.Set("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("x-ms-request-id", c.traceID)
	h.Set("x-ms-ests-server", "2.1.0 - kvsync fake")
	if strings.EqualFold(c.r.Header.Get("return-client-request-id"), "true") {
		h.Set("client-request-id", c.correlationID)
	}
}

func (c *call) record(status int, code string) {
	c.entry.Time = c.a.now().UTC()
	c.entry.Status = status
	c.entry.ErrorCode = code
	c.entry.RequestID = c.traceID
	c.a.journal.Record(c.entry)
}

// json answers status with v as JSON.
func (c *call) json(status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		// Only the fake's own types are marshalled; this is a bug.
		panic(fmt.Sprintf("entra: marshalling %T: %v", v, err))
	}
	c.commonHeaders()
	c.w.Header().Set("Content-Type", "application/json; charset=utf-8")
	c.w.WriteHeader(status)
	_, _ = c.w.Write(body)
	c.record(status, "")
}

// fail answers the AADSTS error f.
func (c *call) fail(f *failure) {
	now := c.a.now().UTC()
	ts := now.Format("2006-01-02 15:04:05Z")
	body := errorBody{
		Error: f.error,
		ErrorDescription: f.message() +
			"\r\nTrace ID: " + c.traceID +
			"\r\nCorrelation ID: " + c.correlationID +
			"\r\nTimestamp: " + ts,
		ErrorCodes:    []int{f.code},
		Timestamp:     ts,
		TraceID:       c.traceID,
		CorrelationID: c.correlationID,
		ErrorURI:      "https://" + c.a.host + "/error?code=" + fmt.Sprint(f.code),
	}
	raw, err := json.Marshal(body)
	if err != nil {
		panic(fmt.Sprintf("entra: marshalling an error body: %v", err))
	}
	c.commonHeaders()
	c.w.Header().Set("Content-Type", "application/json; charset=utf-8")
	c.w.WriteHeader(f.status)
	_, _ = c.w.Write(raw)
	c.record(f.status, f.codeString())
}

// status answers a bodiless status.
func (c *call) status(code int) {
	c.commonHeaders()
	c.w.WriteHeader(code)
	c.record(code, "")
}

// notFound answers 404 with an empty body (a guess: the real service's 404
// page was not checked).
func (c *call) notFound() {
	c.entry.Operation = opUnknown
	c.status(http.StatusNotFound)
}

// tenantKind classifies a tenant path segment.
type tenantKind int

const (
	tenantGUID tenantKind = iota
	tenantDomain
	tenantMalformedGUID // only hex digits and dashes, with a dash, but not a GUID
	tenantOther
)

func classifyTenant(s string) tenantKind {
	if isGUID(s) {
		return tenantGUID
	}
	if s == "" {
		return tenantOther
	}
	hexDash, dash := true, false
	for _, r := range s {
		switch {
		case r == '-':
			dash = true
		case ('0' <= r && r <= '9') || ('a' <= r && r <= 'f') || ('A' <= r && r <= 'F'):
		default:
			hexDash = false
		}
	}
	if hexDash && dash {
		return tenantMalformedGUID
	}
	if isDomainName(s) {
		return tenantDomain
	}
	return tenantOther
}

// isDomainName reports whether s is a dotted DNS name of letters, digits
// and hyphens.
func isDomainName(s string) bool {
	labels := strings.Split(s, ".")
	if len(labels) < 2 || len(s) > 253 {
		return false
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, r := range l {
			if !(r == '-' || ('0' <= r && r <= '9') || ('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z')) {
				return false
			}
		}
	}
	return true
}

// discoveryTenant resolves the tenant of a discovery endpoint (OpenID
// configuration, keys), answering the error itself when there is none.
func (a *Authority) discoveryTenant(c *call, seg string) (*tenant, bool) {
	c.entry.Tenant = seg
	if classifyTenant(seg) == tenantMalformedGUID {
		c.fail(errInvalidTenantIdentifier.with(seg))
		return nil, false
	}
	t, _ := a.lookup(seg, "")
	if t == nil {
		c.fail(errTenantNotFoundDiscovery.with(seg))
		return nil, false
	}
	return t, true
}

// instanceDiscovery answers GET /common/discovery/instance, which MSAL calls
// to learn the aliases of the authority host before reading its cache.
func (a *Authority) instanceDiscovery(c *call) {
	ep, err := url.Parse(c.r.URL.Query().Get("authorization_endpoint"))
	if err != nil || ep.Scheme != "https" || ep.Host == "" {
		c.fail(errInvalidInstance.with())
		return
	}
	metadata := a.instanceMetadata(strings.ToLower(ep.Host))
	if metadata == nil {
		c.fail(errInvalidInstance.with())
		return
	}
	tenantSeg := strings.Split(strings.Trim(ep.Path, "/"), "/")[0]
	c.entry.Tenant = tenantSeg
	c.json(http.StatusOK, struct {
		TenantDiscoveryEndpoint string             `json:"tenant_discovery_endpoint"`
		APIVersion              string             `json:"api-version"`
		Metadata                []instanceMetadata `json:"metadata"`
	}{
		TenantDiscoveryEndpoint: "https://" + a.host + "/" + tenantSeg + "/v2.0/.well-known/openid-configuration",
		APIVersion:              "1.1",
		Metadata:                metadata,
	})
}

type instanceMetadata struct {
	PreferredNetwork string   `json:"preferred_network"`
	PreferredCache   string   `json:"preferred_cache"`
	Aliases          []string `json:"aliases"`
}

// knownClouds is the instance metadata of the public clouds, as the real
// service lists it.
var knownClouds = []instanceMetadata{
	{"login.microsoftonline.com", "login.windows.net", []string{"login.microsoftonline.com", "login.windows.net", "login.microsoft.com", "sts.windows.net"}},
	{"login.partner.microsoftonline.cn", "login.partner.microsoftonline.cn", []string{"login.partner.microsoftonline.cn", "login.chinacloudapi.cn"}},
	{"login.microsoftonline.de", "login.microsoftonline.de", []string{"login.microsoftonline.de"}},
	{"login.microsoftonline.us", "login.microsoftonline.us", []string{"login.microsoftonline.us", "login.usgovcloudapi.net"}},
	{"login-us.microsoftonline.com", "login-us.microsoftonline.com", []string{"login-us.microsoftonline.com"}},
}

// instanceMetadata returns the metadata to answer for an authorization
// endpoint on host, or nil if host is not a known instance.
func (a *Authority) instanceMetadata(host string) []instanceMetadata {
	known := host == a.host
	for _, m := range knownClouds {
		for _, alias := range m.Aliases {
			if alias == host {
				known = true
			}
		}
	}
	if !known {
		return nil
	}
	out := knownClouds
	for _, m := range knownClouds {
		for _, alias := range m.Aliases {
			if alias == a.host {
				return out
			}
		}
	}
	return append([]instanceMetadata{{a.host, a.host, []string{a.host}}}, out...)
}

// openIDConfigV2 is the v2.0 OpenID configuration, fields in the real order.
type openIDConfigV2 struct {
	TokenEndpoint                     string   `json:"token_endpoint"`
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported"`
	JWKSURI                           string   `json:"jwks_uri"`
	ResponseModesSupported            []string `json:"response_modes_supported"`
	SubjectTypesSupported             []string `json:"subject_types_supported"`
	IDTokenSigningAlgValuesSupported  []string `json:"id_token_signing_alg_values_supported"`
	ResponseTypesSupported            []string `json:"response_types_supported"`
	ScopesSupported                   []string `json:"scopes_supported"`
	Issuer                            string   `json:"issuer"`
	RequestURIParameterSupported      bool     `json:"request_uri_parameter_supported"`
	UserinfoEndpoint                  string   `json:"userinfo_endpoint"`
	AuthorizationEndpoint             string   `json:"authorization_endpoint"`
	DeviceAuthorizationEndpoint       string   `json:"device_authorization_endpoint"`
	HTTPLogoutSupported               bool     `json:"http_logout_supported"`
	FrontchannelLogoutSupported       bool     `json:"frontchannel_logout_supported"`
	EndSessionEndpoint                string   `json:"end_session_endpoint"`
	ClaimsSupported                   []string `json:"claims_supported"`
	KerberosEndpoint                  string   `json:"kerberos_endpoint"`
	TenantRegionScope                 string   `json:"tenant_region_scope"`
	CloudInstanceName                 string   `json:"cloud_instance_name"`
	CloudGraphHostName                string   `json:"cloud_graph_host_name"`
	MsgraphHost                       string   `json:"msgraph_host"`
	RbacURL                           string   `json:"rbac_url"`
}

// openIDConfigV1 is the v1.0 OpenID configuration, fields in the real order.
type openIDConfigV1 struct {
	TokenEndpoint                     string   `json:"token_endpoint"`
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported"`
	JWKSURI                           string   `json:"jwks_uri"`
	ResponseModesSupported            []string `json:"response_modes_supported"`
	SubjectTypesSupported             []string `json:"subject_types_supported"`
	IDTokenSigningAlgValuesSupported  []string `json:"id_token_signing_alg_values_supported"`
	ResponseTypesSupported            []string `json:"response_types_supported"`
	ScopesSupported                   []string `json:"scopes_supported"`
	Issuer                            string   `json:"issuer"`
	MicrosoftMultiRefreshToken        bool     `json:"microsoft_multi_refresh_token"`
	AuthorizationEndpoint             string   `json:"authorization_endpoint"`
	DeviceAuthorizationEndpoint       string   `json:"device_authorization_endpoint"`
	HTTPLogoutSupported               bool     `json:"http_logout_supported"`
	FrontchannelLogoutSupported       bool     `json:"frontchannel_logout_supported"`
	EndSessionEndpoint                string   `json:"end_session_endpoint"`
	ClaimsSupported                   []string `json:"claims_supported"`
	CheckSessionIframe                string   `json:"check_session_iframe"`
	UserinfoEndpoint                  string   `json:"userinfo_endpoint"`
	KerberosEndpoint                  string   `json:"kerberos_endpoint"`
	TenantRegionScope                 string   `json:"tenant_region_scope"`
	CloudInstanceName                 string   `json:"cloud_instance_name"`
	CloudGraphHostName                string   `json:"cloud_graph_host_name"`
	MsgraphHost                       string   `json:"msgraph_host"`
	RbacURL                           string   `json:"rbac_url"`
}

var authMethods = []string{"client_secret_post", "private_key_jwt", "client_secret_basic"}

// openIDConfiguration answers the v2.0 or v1.0 OpenID configuration of a
// tenant. The v2.0 issuer is https://<host>/<tenant>/v2.0, which MSAL
// checks against the authority; the v1.0 issuer is the sts.windows.net one
// that access tokens carry.
func (a *Authority) openIDConfiguration(c *call, seg string, v2 bool) {
	t, ok := a.discoveryTenant(c, seg)
	if !ok {
		return
	}
	base := "https://" + a.host + "/" + t.id
	if v2 {
		c.json(http.StatusOK, openIDConfigV2{
			TokenEndpoint:                     base + "/oauth2/v2.0/token",
			TokenEndpointAuthMethodsSupported: authMethods,
			JWKSURI:                           base + "/discovery/v2.0/keys",
			ResponseModesSupported:            []string{"query", "fragment", "form_post"},
			SubjectTypesSupported:             []string{"pairwise"},
			IDTokenSigningAlgValuesSupported:  []string{"RS256"},
			ResponseTypesSupported:            []string{"code", "id_token", "code id_token", "id_token token"},
			ScopesSupported:                   []string{"openid", "profile", "email", "offline_access"},
			Issuer:                            base + "/v2.0",
			UserinfoEndpoint:                  "https://graph.microsoft.com/oidc/userinfo",
			AuthorizationEndpoint:             base + "/oauth2/v2.0/authorize",
			DeviceAuthorizationEndpoint:       base + "/oauth2/v2.0/devicecode",
			HTTPLogoutSupported:               true,
			FrontchannelLogoutSupported:       true,
			EndSessionEndpoint:                base + "/oauth2/v2.0/logout",
			ClaimsSupported:                   []string{"sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name", "msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "nonce", "preferred_username", "name", "tid", "ver", "at_hash", "c_hash", "email"},
			KerberosEndpoint:                  base + "/kerberos",
			TenantRegionScope:                 "NA",
			CloudInstanceName:                 "microsoftonline.com",
			CloudGraphHostName:                "graph.windows.net",
			MsgraphHost:                       "graph.microsoft.com",
			RbacURL:                           "https://pas.windows.net",
		})
		return
	}
	c.json(http.StatusOK, openIDConfigV1{
		TokenEndpoint:                     base + "/oauth2/token",
		TokenEndpointAuthMethodsSupported: authMethods,
		JWKSURI:                           "https://" + a.host + "/common/discovery/keys",
		ResponseModesSupported:            []string{"query", "fragment", "form_post"},
		SubjectTypesSupported:             []string{"pairwise"},
		IDTokenSigningAlgValuesSupported:  []string{"RS256"},
		ResponseTypesSupported:            []string{"code", "id_token", "code id_token", "token id_token", "token"},
		ScopesSupported:                   []string{"openid"},
		Issuer:                            stsIssuer(t.id),
		MicrosoftMultiRefreshToken:        true,
		AuthorizationEndpoint:             base + "/oauth2/authorize",
		DeviceAuthorizationEndpoint:       base + "/oauth2/devicecode",
		HTTPLogoutSupported:               true,
		FrontchannelLogoutSupported:       true,
		EndSessionEndpoint:                base + "/oauth2/logout",
		ClaimsSupported:                   []string{"sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name", "msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "amr", "nonce", "email", "given_name", "family_name", "nickname"},
		CheckSessionIframe:                base + "/oauth2/checksession",
		UserinfoEndpoint:                  base + "/openid/userinfo",
		KerberosEndpoint:                  base + "/kerberos",
		TenantRegionScope:                 "NA",
		CloudInstanceName:                 "microsoftonline.com",
		CloudGraphHostName:                "graph.windows.net",
		MsgraphHost:                       "graph.microsoft.com",
		RbacURL:                           "https://pas.windows.net",
	})
}

// keys answers a JWKS: the authority's one signing key, with the issuer
// member of the tenant (or the {tenantid} template under /common).
func (a *Authority) keys(c *call, seg string, v2 bool) {
	issuerOf := func(tenantID string) string {
		if v2 {
			return "https://" + a.host + "/" + tenantID + "/v2.0"
		}
		return stsIssuer(tenantID)
	}
	if seg == "common" {
		c.entry.Tenant = seg
		c.json(http.StatusOK, a.jwks(issuerOf("{tenantid}")))
		return
	}
	t, ok := a.discoveryTenant(c, seg)
	if !ok {
		return
	}
	c.json(http.StatusOK, a.jwks(issuerOf(t.id)))
}
