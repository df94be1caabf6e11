package faults

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/kvsync/kvsync/fakevault/keyvault"
)

// maxPeekBody bounds the token request body read to find the client_id.
const maxPeekBody = 1 << 20

// Handler wraps next, the fake services' handler, with the vault and
// identity faults. Requests no fault fires for reach next unchanged.
func (i *Injector) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		host = strings.ToLower(host)
		t := target{host: host, vault: i.vaultOf(host)}
		var layer string
		switch {
		case t.vault != "":
			layer = "vault"
			t.object = objectOf(r.URL.Path)
			claims := tokenClaims(r.Header.Get("Authorization"))
			t.identity = claims.appID()
			if claims.IssuedAt > 0 {
				age := i.opts.Now().Sub(time.Unix(claims.IssuedAt, 0))
				if f := i.decide(t, func(f *Fault) bool { return f.Kind == IdentityEarlyExpiry && age >= time.Duration(f.Latency) }); f != nil {
					expired(w, r, claims.TenantID)
					return
				}
			}
		case host == i.opts.LoginHost:
			layer = "identity"
			t.identity = peekClientID(r)
		default:
			next.ServeHTTP(w, r)
			return
		}
		f := i.decide(t, inLayers(layer))
		if f == nil {
			next.ServeHTTP(w, r)
			return
		}
		i.answer(w, r, *f)
	})
}

// answer writes the failure a vault or identity fault stands for.
func (i *Injector) answer(w http.ResponseWriter, r *http.Request, f Fault) {
	switch f.Kind {
	case VaultError:
		msg := f.Message
		if msg == "" {
			msg = defaultVaultMessage(f, r)
		}
		keyvault.WriteError(w, r, &keyvault.Error{Status: f.Status, Code: f.Code, InnerCode: f.InnerCode, Message: msg})
	case VaultThrottle:
		keyvault.WriteError(w, r, &keyvault.Error{Status: http.StatusTooManyRequests, Code: "Throttled", RetryAfter: time.Duration(f.RetryAfter),
			Message: "Request was not allowed because we throttled the request. The current usage exceeds the limit of the vault."})
	case VaultMalformed:
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, "<html><body>502 Bad Gateway</body></html>")
	case VaultTruncated:
		truncate(w)
	case IdentityError:
		writeAADSTS(w, f.AADSTS)
	case IdentityUnavailable:
		status := f.Status
		if status == 0 {
			status = http.StatusServiceUnavailable
		}
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(status)
		_, _ = fmt.Fprintf(w, "<html><body>%d %s</body></html>", status, http.StatusText(status))
	default:
		http.Error(w, fmt.Sprintf("fault %q: kind %q does not apply to HTTP answers", f.Name, f.Kind), http.StatusInternalServerError)
	}
}

// truncate answers 200 with a body cut short: the declared length is never
// reached before the connection closes.
func truncate(w http.ResponseWriter) {
	body := `{"value":"`
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)+64))
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, body)
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			conn.Close()
		}
	}
}

// defaultVaultMessage is the service's wording for common codes, answering
// r.
func defaultVaultMessage(f Fault, r *http.Request) string {
	switch f.InnerCode {
	case "ForbiddenByFirewall":
		msg := "Client address is not authorized and caller is not a trusted service."
		if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
			// The service names the address the request came from.
			msg += "\r\nClient address: " + host
		}
		return msg
	case "ForbiddenByConnection":
		return "Public network access is disabled and request is not from a trusted service nor via an approved private link."
	case "ForbiddenByRbac":
		return "Caller is not authorized to perform action on resource."
	case "AccessDenied":
		return "The user, group or application does not have secrets get permission on key vault."
	case "SecretDisabled":
		return "Operation get is not allowed on a disabled secret."
	}
	switch f.Code {
	case "SecretNotFound":
		return "A secret with (name/id) was not found in this key vault."
	case "InternalServerError":
		return "An unexpected error occurred."
	case "ServiceUnavailable":
		return "The service is unavailable."
	}
	return http.StatusText(f.Status)
}

// aadstsErrors are the texts of common Entra ID errors, with their error
// values and statuses.
var aadstsErrors = map[int]struct {
	status int
	value  string
	text   string
}{
	70021:   {http.StatusUnauthorized, "invalid_client", "No matching federated identity record found for presented assertion."},
	700016:  {http.StatusBadRequest, "unauthorized_client", "Application was not found in the directory."},
	700024:  {http.StatusUnauthorized, "invalid_client", "Client assertion is not within its valid time range."},
	7000215: {http.StatusUnauthorized, "invalid_client", "Invalid client secret provided."},
	90002:   {http.StatusBadRequest, "invalid_request", "Tenant not found."},
	900023:  {http.StatusBadRequest, "invalid_request", "Specified tenant identifier is neither a valid DNS name, nor a valid external domain."},
}

// writeAADSTS answers the token request with an Entra ID error body.
func writeAADSTS(w http.ResponseWriter, code int) {
	e, ok := aadstsErrors[code]
	if !ok {
		e = aadstsErrors[70021]
		e.text = "Injected failure."
		e.status = http.StatusBadRequest
		e.value = "invalid_request"
	}
	now := time.Now().UTC().Format("2006-01-02 15:04:05Z")
	trace := "00000000-0000-4000-8000-00000000f417"
	body, _ := json.Marshal(map[string]any{
		"error":             e.value,
		"error_description": fmt.Sprintf("AADSTS%d: %s\r\nTrace ID: %s\r\nCorrelation ID: %s\r\nTimestamp: %s", code, e.text, trace, trace, now),
		"error_codes":       []int{code},
		"timestamp":         now,
		"trace_id":          trace,
		"correlation_id":    trace,
		"error_uri":         "https://login.microsoftonline.com/error?code=" + strconv.Itoa(code),
	})
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(e.status)
	_, _ = w.Write(body)
}

// objectOf returns the object name of a vault path such as
// /secrets/{name}/{version}.
func objectOf(path string) string {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	if len(segs) >= 2 {
		switch segs[0] {
		case "secrets", "keys", "certificates", "deletedsecrets":
			return segs[1]
		}
	}
	return ""
}

// claims are the token claims scope matching and early expiry read.
type claims struct {
	AppID    string `json:"appid"`
	AZP      string `json:"azp"`
	TenantID string `json:"tid"`
	IssuedAt int64  `json:"iat"`
}

func (c claims) appID() string {
	if c.AppID != "" {
		return c.AppID
	}
	return c.AZP
}

// tokenClaims reads a bearer token's claims without verifying it: the vault
// verifies the token; the injector only matches scopes and ages.
func tokenClaims(authorization string) claims {
	token, ok := strings.CutPrefix(authorization, "Bearer ")
	if !ok {
		return claims{}
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return claims{}
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return claims{}
	}
	var c claims
	if json.Unmarshal(payload, &c) != nil {
		return claims{}
	}
	return c
}

// expired answers as the vault answers an expired token: 401 with the
// challenge, so the client asks for a new token.
func expired(w http.ResponseWriter, r *http.Request, tenant string) {
	w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer authorization="https://%s/%s", resource="https://vault.azure.net"`, DefaultLoginHost, tenant))
	keyvault.WriteError(w, r, &keyvault.Error{Status: http.StatusUnauthorized, Code: "Unauthorized", Message: "[TokenExpired] Error validating token: 'S2S12086'."})
}

// peekClientID returns the client_id of a token request and leaves the body
// readable for the next handler.
func peekClientID(r *http.Request) string {
	if r.Method != http.MethodPost || r.Body == nil {
		return ""
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxPeekBody))
	r.Body.Close()
	r.Body = io.NopCloser(bytes.NewReader(body))
	if err != nil {
		return ""
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return ""
	}
	return form.Get("client_id")
}
