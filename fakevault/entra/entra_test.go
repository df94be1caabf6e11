package entra_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/golang-jwt/jwt/v5"

	"github.com/kvsync/kvsync/fakevault/entra"
	"github.com/kvsync/kvsync/fakevault/journal"
)

var guidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// credential builds an azidentity credential against a harness.
type credential func(t *testing.T, h *harness) azcore.TokenCredential

func secretCredential(tenant, client, secret string) credential {
	return func(t *testing.T, h *harness) azcore.TokenCredential {
		t.Helper()
		cred, err := azidentity.NewClientSecretCredential(tenant, client, secret,
			&azidentity.ClientSecretCredentialOptions{ClientOptions: h.clientOptions()})
		if err != nil {
			t.Fatal(err)
		}
		return cred
	}
}

func assertionCredential(tenant, client string, assertion func(t *testing.T, h *harness) string) credential {
	return func(t *testing.T, h *harness) azcore.TokenCredential {
		t.Helper()
		raw := assertion(t, h)
		cred, err := azidentity.NewClientAssertionCredential(tenant, client,
			func(context.Context) (string, error) { return raw, nil },
			&azidentity.ClientAssertionCredentialOptions{ClientOptions: h.clientOptions()})
		if err != nil {
			t.Fatal(err)
		}
		return cred
	}
}

func workloadIdentityCredential(t *testing.T, h *harness) azcore.TokenCredential {
	t.Helper()
	file := filepath.Join(t.TempDir(), "azure-identity-token")
	if err := os.WriteFile(file, []byte(h.assertion(saSubject, entra.TokenExchangeAudience)), 0o600); err != nil {
		t.Fatal(err)
	}
	cred, err := azidentity.NewWorkloadIdentityCredential(&azidentity.WorkloadIdentityCredentialOptions{
		ClientOptions: h.clientOptions(),
		TenantID:      tenantID,
		ClientID:      clientID,
		TokenFilePath: file,
	})
	if err != nil {
		t.Fatal(err)
	}
	return cred
}

func serviceAccountAssertion(t *testing.T, h *harness) string {
	return h.assertion(saSubject, entra.TokenExchangeAudience)
}

func getToken(cred azcore.TokenCredential, cae bool, scopes ...string) (azcore.AccessToken, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: scopes, EnableCAE: cae})
}

func TestCredentialsObtainVaultTokensTheAuthorityVerifies(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cred    credential
		cae     bool
		wantAcr string
	}{
		{name: "a client secret credential gets a vault token", cred: secretCredential(tenantID, clientID, secret)},
		{name: "a client secret credential with CAE enabled gets a vault token", cred: secretCredential(tenantID, clientID, secret), cae: true},
		{name: "a client assertion credential gets a vault token for a service account assertion", cred: assertionCredential(tenantID, clientID, serviceAccountAssertion)},
		{name: "a workload identity credential gets a vault token with its token file", cred: workloadIdentityCredential},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			cred := tc.cred(t, h)
			tok, err := getToken(cred, tc.cae, vaultScope)
			if err != nil {
				t.Fatalf("GetToken: %v", err)
			}
			if d := time.Until(tok.ExpiresOn); d < 55*time.Minute || d > time.Hour+time.Minute {
				t.Errorf("ExpiresOn is %v away, want about an hour", d)
			}
			got, err := h.authority.VerifyAccessToken(tok.Token)
			if err != nil {
				t.Fatalf("VerifyAccessToken: %v", err)
			}
			want := entra.AccessToken{TenantID: tenantID, ObjectID: objectID, AppID: clientID, Audience: vaultAud, Issuer: stsIssuerURL}
			if got.TenantID != want.TenantID || got.ObjectID != want.ObjectID || got.AppID != want.AppID ||
				got.Audience != want.Audience || got.Issuer != want.Issuer {
				t.Errorf("claims = %+v, want %+v", *got, want)
			}
			if !got.IssuedAt.Equal(got.NotBefore) || got.ExpiresAt.Sub(got.NotBefore) != time.Hour+5*time.Minute {
				t.Errorf("iat %v nbf %v exp %v: want iat = nbf = exp - 1h05m", got.IssuedAt, got.NotBefore, got.ExpiresAt)
			}

			// A second request is served from MSAL's cache: the token's
			// expires_in was understood.
			before := len(tokenEntries(h.journal))
			if _, err := getToken(cred, tc.cae, vaultScope); err != nil {
				t.Fatalf("second GetToken: %v", err)
			}
			if after := len(tokenEntries(h.journal)); after != before || before != 1 {
				t.Errorf("token requests: %d then %d, want 1 then 1 (cached)", before, after)
			}
		})
	}
}

func tokenEntries(j *journal.Journal) []journal.Entry {
	return j.Filter(func(e journal.Entry) bool { return e.Operation == "Token" })
}

func TestTheClaimsOfAVaultTokenHaveTheShapeOfRealOnes(t *testing.T) {
	h := newHarness(t)
	tok, err := getToken(assertionCredential(tenantID, clientID, serviceAccountAssertion)(t, h), true, vaultScope)
	if err != nil {
		t.Fatal(err)
	}
	header, claims := decodeJWT(t, tok.Token)
	if header["alg"] != "RS256" || header["kid"] != h.authority.KeyID() || header["x5t"] != h.authority.KeyID() {
		t.Errorf("header = %v", header)
	}
	for name, want := range map[string]any{
		"aud": vaultAud, "iss": stsIssuerURL, "idp": stsIssuerURL, "tid": tenantID, "oid": objectID,
		"sub": objectID, "appid": clientID, "appidacr": "2", "idtyp": "app", "ver": "1.0",
	} {
		if claims[name] != want {
			t.Errorf("claim %s = %v, want %v", name, claims[name], want)
		}
	}
	if cc, _ := claims["xms_cc"].([]any); len(cc) != 1 || cc[0] != "CP1" {
		t.Errorf("xms_cc = %v, want [CP1] for a CAE-capable client", claims["xms_cc"])
	}
	for _, name := range []string{"iat", "nbf", "exp", "uti"} {
		if _, ok := claims[name]; !ok {
			t.Errorf("claim %s missing", name)
		}
	}
}

func decodeJWT(t *testing.T, raw string) (header, claims map[string]any) {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %d parts", len(parts))
	}
	for i, v := range []*map[string]any{&header, &claims} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatal(err)
		}
	}
	return header, claims
}

// signedAssertion signs claims with key under alg and kid.
func signedAssertion(t *testing.T, method jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	tok.Header["kid"] = kid
	raw, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func validClaims(now time.Time) jwt.MapClaims {
	return jwt.MapClaims{
		"iss": issuerURL, "sub": saSubject, "aud": []string{entra.TokenExchangeAudience},
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	}
}

func TestAADSTSErrorsSurfaceThroughAzidentityWithTheirRealCauses(t *testing.T) {
	const untrustedIssuer = "https://untrusted.fake.test/"
	const untrustedClient = "0c1d2e3f-4a5b-4c6d-8e7f-901234567890"
	for _, tc := range []struct {
		name   string
		setup  func(t *testing.T, h *harness)
		cred   credential
		scopes []string
		code   int
		status int
	}{
		{
			name: "an assertion for another service account matches no federated credential",
			cred: assertionCredential(tenantID, clientID, func(t *testing.T, h *harness) string {
				return h.assertion("system:serviceaccount:other:sa", entra.TokenExchangeAudience)
			}),
			code:   70021,
			status: http.StatusUnauthorized,
		},
		{
			name:   "an assertion for another audience matches no federated credential",
			cred:   assertionCredential(tenantID, clientID, func(t *testing.T, h *harness) string { return h.assertion(saSubject, "api://other") }),
			code:   70021,
			status: http.StatusUnauthorized,
		},
		{
			name:   "an unknown client ID is not found in the directory",
			cred:   secretCredential(tenantID, "11111111-2222-4333-8444-555555555555", secret),
			code:   700016,
			status: http.StatusBadRequest,
		},
		{
			name: "an expired assertion is not within its valid time range",
			cred: assertionCredential(tenantID, clientID, func(t *testing.T, h *harness) string {
				h.issuer.Now = func() time.Time { return h.clock.Now().Add(-2 * time.Hour) }
				return h.assertion(saSubject, entra.TokenExchangeAudience)
			}),
			code:   700024,
			status: http.StatusUnauthorized,
		},
		{
			name:   "a wrong client secret is invalid",
			cred:   secretCredential(tenantID, clientID, "not-the-secret"),
			code:   7000215,
			status: http.StatusUnauthorized,
		},
		{
			name:   "a malformed tenant GUID is neither a valid DNS name nor an external domain",
			cred:   secretCredential("e63649b2-07c0-49ed-a24b-87381dac292", clientID, secret),
			code:   900023,
			status: http.StatusBadRequest,
		},
		{
			name:   "an unknown tenant is not found",
			cred:   secretCredential("00000000-1111-4222-8333-444444444444", clientID, secret),
			code:   90002,
			status: http.StatusBadRequest,
		},
		{
			name:   "a tenant given by a domain name is not found",
			cred:   secretCredential("contoso.onmicrosoft.com", clientID, secret),
			code:   90002,
			status: http.StatusBadRequest,
		},
		{
			name:   "an assertion that is not a JWT is invalid or malformed",
			cred:   assertionCredential(tenantID, clientID, func(*testing.T, *harness) string { return "not-a-jwt" }),
			code:   50027,
			status: http.StatusBadRequest,
		},
		{
			name: "an assertion signed with ES256 has an unsupported algorithm",
			cred: assertionCredential(tenantID, clientID, func(t *testing.T, h *harness) string {
				key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
				if err != nil {
					t.Fatal(err)
				}
				return signedAssertion(t, jwt.SigningMethodES256, key, "ec", validClaims(h.clock.Now()))
			}),
			code:   5002738,
			status: http.StatusUnauthorized,
		},
		{
			name: "an assertion without a subject lacks a required field",
			cred: assertionCredential(tenantID, clientID, func(t *testing.T, h *harness) string {
				c := validClaims(h.clock.Now())
				delete(c, "sub")
				return signedAssertion(t, jwt.SigningMethodRS256, mustRSAKey(t), h.issuer.KeyID(), c)
			}),
			code:   90014,
			status: http.StatusBadRequest,
		},
		{
			name: "an assertion from an issuer whose keys were never given fails the external OIDC request",
			setup: func(t *testing.T, h *harness) {
				if err := h.authority.AddApplication(tenantID, entra.Application{
					ClientID:             untrustedClient,
					FederatedCredentials: []entra.FederatedCredential{{Issuer: untrustedIssuer, Subject: saSubject}},
				}); err != nil {
					t.Fatal(err)
				}
			},
			cred: assertionCredential(tenantID, untrustedClient, func(t *testing.T, h *harness) string {
				iss, err := entra.NewIssuer(untrustedIssuer)
				if err != nil {
					t.Fatal(err)
				}
				a, err := iss.Assertion(saSubject, entra.TokenExchangeAudience, time.Hour)
				if err != nil {
					t.Fatal(err)
				}
				return a
			}),
			code:   50166,
			status: http.StatusBadRequest,
		},
		{
			name: "an assertion signed with a key the issuer does not publish is not found in its metadata",
			cred: assertionCredential(tenantID, clientID, func(t *testing.T, h *harness) string {
				impostor, err := entra.NewIssuer(issuerURL)
				if err != nil {
					t.Fatal(err)
				}
				a, err := impostor.Assertion(saSubject, entra.TokenExchangeAudience, time.Hour)
				if err != nil {
					t.Fatal(err)
				}
				return a
			}),
			code:   7000272,
			status: http.StatusUnauthorized,
		},
		{
			name: "an assertion naming the issuer's key but signed by another has an invalid signature",
			cred: assertionCredential(tenantID, clientID, func(t *testing.T, h *harness) string {
				return signedAssertion(t, jwt.SigningMethodRS256, mustRSAKey(t), h.issuer.KeyID(), validClaims(h.clock.Now()))
			}),
			code:   700027,
			status: http.StatusUnauthorized,
		},
		{
			name:   "a scope without /.default is not valid for client credentials",
			cred:   secretCredential(tenantID, clientID, secret),
			scopes: []string{"https://vault.azure.net/user_impersonation"},
			code:   1002012,
			status: http.StatusBadRequest,
		},
		{
			name:   "scopes of two resources are not valid in one request",
			cred:   secretCredential(tenantID, clientID, secret),
			scopes: []string{vaultScope, "https://management.azure.com//.default"},
			code:   28000,
			status: http.StatusBadRequest,
		},
		{
			name:   "a scope of an unknown resource principal is not found in the tenant",
			cred:   secretCredential(tenantID, clientID, secret),
			scopes: []string{"https://unknown.fake.test/.default"},
			code:   500011,
			status: http.StatusBadRequest,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			if tc.setup != nil {
				tc.setup(t, h)
			}
			scopes := tc.scopes
			if scopes == nil {
				scopes = []string{vaultScope}
			}
			_, err := getToken(tc.cred(t, h), false, scopes...)
			var afe *azidentity.AuthenticationFailedError
			if !errors.As(err, &afe) {
				t.Fatalf("GetToken error = %v (%T), want *azidentity.AuthenticationFailedError", err, err)
			}
			code := fmt.Sprintf("AADSTS%d", tc.code)
			if !strings.Contains(afe.Error(), code+": ") {
				t.Errorf("error does not name %s:\n%v", code, afe)
			}
			if afe.RawResponse == nil || afe.RawResponse.StatusCode != tc.status {
				t.Errorf("raw response = %+v, want status %d", afe.RawResponse, tc.status)
			}
			entries := h.journal.Entries()
			if len(entries) == 0 {
				t.Fatal("nothing journaled")
			}
			if last := entries[len(entries)-1]; last.ErrorCode != code || last.Status != tc.status {
				t.Errorf("last journal entry = %+v, want error code %s and status %d", last, code, tc.status)
			}
		})
	}
}

func mustRSAKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// do sends a request (with form as its body, if not nil) to path on the
// authority's host and returns the response and its body.
func (h *harness) do(method, path string, form url.Values, mutate func(*http.Request)) (*http.Response, []byte) {
	h.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, "https://"+entra.DefaultHost+path, body)
	if err != nil {
		h.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if mutate != nil {
		mutate(req)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	return resp, b
}

type errorBody struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
	ErrorCodes       []int  `json:"error_codes"`
	Timestamp        string `json:"timestamp"`
	TraceID          string `json:"trace_id"`
	CorrelationID    string `json:"correlation_id"`
	ErrorURI         string `json:"error_uri"`
}

func TestMalformedTokenRequestsAnswerRealAADSTSBodies(t *testing.T) {
	const tokenPath = "/" + tenantID + "/oauth2/v2.0/token"
	full := func() url.Values {
		return url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID}, "scope": {vaultScope}, "client_secret": {secret}}
	}
	without := func(key string) url.Values { v := full(); v.Del(key); return v }
	const correlation = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
	for _, tc := range []struct {
		name     string
		method   string
		path     string
		form     url.Values
		query    string
		code     int
		errValue string
		status   int
		text     string
	}{
		{name: "a request without grant_type must contain it", form: without("grant_type"), code: 900144, errValue: "invalid_request", status: 400, text: "parameter: 'grant_type'."},
		{name: "grant_type in the query string does not count", form: without("grant_type"), query: "grant_type=client_credentials", code: 900144, errValue: "invalid_request", status: 400, text: "'grant_type'"},
		{name: "a request without client_id must contain it", form: without("client_id"), code: 900144, errValue: "invalid_request", status: 400, text: "'client_id'"},
		{name: "a request without scope must contain it", form: without("scope"), code: 900144, errValue: "invalid_request", status: 400, text: "'scope'"},
		{name: "a request without a secret or an assertion is refused", form: without("client_secret"), code: 7000218, errValue: "invalid_client", status: 401, text: "'client_assertion' or 'client_secret'"},
		{name: "an assertion of the wrong type is refused", form: func() url.Values {
			v := without("client_secret")
			v.Set("client_assertion", "x.y.z")
			v.Set("client_assertion_type", "urn:example:other")
			return v
		}(), code: 900144, errValue: "invalid_request", status: 400, text: "'client_assertion_type'"},
		{name: "the password grant is not supported", form: func() url.Values { v := full(); v.Set("grant_type", "password"); return v }(), code: 70003, errValue: "unsupported_grant_type", status: 400, text: "'password'"},
		{name: "a GET of the token endpoint only accepts POST", method: http.MethodGet, code: 900561, errValue: "invalid_request", status: 400, text: "Received a GET request."},
		{name: "a single-label tenant is neither a DNS name nor an external domain", path: "/authorize/oauth2/v2.0/token", form: full(), code: 900023, errValue: "invalid_request", status: 400, text: "'authorize'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			method, path := tc.method, tc.path
			if method == "" {
				method = http.MethodPost
			}
			if path == "" {
				path = tokenPath
			}
			if tc.query != "" {
				path += "?" + tc.query
			}
			resp, raw := h.do(method, path, tc.form, func(r *http.Request) { r.Header.Set("client-request-id", correlation) })
			if resp.StatusCode != tc.status {
				t.Errorf("status = %d, want %d", resp.StatusCode, tc.status)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
				t.Errorf("content type = %q", ct)
			}
			var body errorBody
			if err := json.Unmarshal(raw, &body); err != nil {
				t.Fatalf("body %s: %v", raw, err)
			}
			prefix := fmt.Sprintf("AADSTS%d: ", tc.code)
			if body.Error != tc.errValue || len(body.ErrorCodes) != 1 || body.ErrorCodes[0] != tc.code ||
				!strings.HasPrefix(body.ErrorDescription, prefix) || !strings.Contains(body.ErrorDescription, tc.text) {
				t.Errorf("body = %+v, want error %q, code %d and text %q", body, tc.errValue, tc.code, tc.text)
			}
			if !guidRE.MatchString(body.TraceID) || resp.Header.Get("x-ms-request-id") != body.TraceID {
				t.Errorf("trace ID %q, x-ms-request-id %q", body.TraceID, resp.Header.Get("x-ms-request-id"))
			}
			if body.CorrelationID != correlation {
				t.Errorf("correlation ID = %q, want the client-request-id %q", body.CorrelationID, correlation)
			}
			wantTail := "\r\nTrace ID: " + body.TraceID + "\r\nCorrelation ID: " + correlation + "\r\nTimestamp: " + body.Timestamp
			if !strings.HasSuffix(body.ErrorDescription, wantTail) {
				t.Errorf("description %q does not end with the trace lines", body.ErrorDescription)
			}
			if _, err := time.Parse("2006-01-02 15:04:05Z", body.Timestamp); err != nil {
				t.Errorf("timestamp %q: %v", body.Timestamp, err)
			}
			if body.ErrorURI != fmt.Sprintf("https://login.microsoftonline.com/error?code=%d", tc.code) {
				t.Errorf("error_uri = %q", body.ErrorURI)
			}
		})
	}
}

func TestEndpointsAnswerAsTheRealServiceDoes(t *testing.T) {
	h := newHarness(t)
	getJSON := func(t *testing.T, path string, wantStatus int) map[string]any {
		t.Helper()
		resp, raw := h.do(http.MethodGet, path, nil, nil)
		if resp.StatusCode != wantStatus {
			t.Fatalf("GET %s: status %d, want %d: %s", path, resp.StatusCode, wantStatus, raw)
		}
		var v map[string]any
		if err := json.Unmarshal(raw, &v); err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		return v
	}
	base := "https://login.microsoftonline.com/" + tenantID

	t.Run("instance discovery points at the tenant's configuration and lists the public cloud aliases", func(t *testing.T) {
		v := getJSON(t, "/common/discovery/instance?api-version=1.1&authorization_endpoint="+url.QueryEscape(base+"/oauth2/v2.0/authorize"), 200)
		if v["tenant_discovery_endpoint"] != base+"/v2.0/.well-known/openid-configuration" {
			t.Errorf("tenant_discovery_endpoint = %v", v["tenant_discovery_endpoint"])
		}
		md, _ := v["metadata"].([]any)
		first, _ := md[0].(map[string]any)
		if first["preferred_network"] != "login.microsoftonline.com" || !strings.Contains(fmt.Sprint(first["aliases"]), "sts.windows.net") {
			t.Errorf("metadata = %v", md)
		}
	})
	t.Run("instance discovery refuses an unknown instance", func(t *testing.T) {
		v := getJSON(t, "/common/discovery/instance?api-version=1.1&authorization_endpoint="+url.QueryEscape("https://login.evil.test/x/oauth2/v2.0/authorize"), 400)
		if v["error"] != "invalid_instance" {
			t.Errorf("error = %v", v["error"])
		}
	})
	t.Run("the v2.0 configuration names the tenant's issuer and endpoints", func(t *testing.T) {
		v := getJSON(t, "/"+tenantID+"/v2.0/.well-known/openid-configuration", 200)
		for k, want := range map[string]string{
			"issuer":                 base + "/v2.0",
			"token_endpoint":         base + "/oauth2/v2.0/token",
			"authorization_endpoint": base + "/oauth2/v2.0/authorize",
			"jwks_uri":               base + "/discovery/v2.0/keys",
		} {
			if v[k] != want {
				t.Errorf("%s = %v, want %s", k, v[k], want)
			}
		}
	})
	t.Run("the v1.0 configuration names the sts.windows.net issuer of access tokens", func(t *testing.T) {
		v := getJSON(t, "/"+tenantID+"/.well-known/openid-configuration", 200)
		if v["issuer"] != stsIssuerURL || v["token_endpoint"] != base+"/oauth2/token" {
			t.Errorf("issuer %v, token_endpoint %v", v["issuer"], v["token_endpoint"])
		}
	})
	t.Run("the unknown tenant's configuration is not found", func(t *testing.T) {
		v := getJSON(t, "/secrets/v2.0/.well-known/openid-configuration", 400)
		if v["error"] != "invalid_tenant" || !strings.HasPrefix(fmt.Sprint(v["error_description"]), "AADSTS90002: Tenant 'secrets' not found.") {
			t.Errorf("body = %v", v)
		}
	})
	for _, path := range []string{"/" + tenantID + "/discovery/v2.0/keys", "/" + tenantID + "/discovery/keys", "/common/discovery/v2.0/keys", "/common/discovery/keys"} {
		t.Run("the keys at "+path+" verify issued tokens", func(t *testing.T) {
			v := getJSON(t, path, 200)
			keys, _ := v["keys"].([]any)
			if len(keys) != 1 {
				t.Fatalf("keys = %v", keys)
			}
			k, _ := keys[0].(map[string]any)
			if k["kid"] != h.authority.KeyID() || k["x5t"] != h.authority.KeyID() || k["kty"] != "RSA" || k["use"] != "sig" {
				t.Errorf("key = %v", k)
			}
			raw, err := h.authority.IssueAccessToken(tenantID, clientID, vaultScope)
			if err != nil {
				t.Fatal(err)
			}
			n, _ := base64.RawURLEncoding.DecodeString(fmt.Sprint(k["n"]))
			pub := h.authority.PublicKey().(*rsa.PublicKey)
			if string(n) != string(pub.N.Bytes()) {
				t.Error("published modulus is not the signing key's")
			}
			if _, err := jwt.Parse(raw, func(*jwt.Token) (any, error) { return pub, nil }); err != nil {
				t.Errorf("token does not verify with the published key: %v", err)
			}
		})
	}
	t.Run("the v1.0 token endpoint issues a token for a resource", func(t *testing.T) {
		resp, raw := h.do(http.MethodPost, "/"+tenantID+"/oauth2/token", url.Values{
			"grant_type": {"client_credentials"}, "client_id": {clientID}, "client_secret": {secret}, "resource": {vaultAud},
		}, nil)
		if resp.StatusCode != 200 {
			t.Fatalf("status %d: %s", resp.StatusCode, raw)
		}
		var m map[string]string // v1.0 answers numbers as strings
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("v1 answer is not all strings: %v", err)
		}
		if m["token_type"] != "Bearer" || m["expires_in"] == "" || m["expires_on"] == "" || m["not_before"] == "" || m["resource"] != vaultAud {
			t.Errorf("answer = %v", m)
		}
		if _, err := h.authority.VerifyAccessToken(m["access_token"]); err != nil {
			t.Errorf("v1 token: %v", err)
		}
	})
	t.Run("an unknown path is not found", func(t *testing.T) {
		resp, _ := h.do(http.MethodGet, "/"+tenantID+"/oauth2/v2.0/nope", nil, nil)
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("status = %d", resp.StatusCode)
		}
	})
	t.Run("a request for another host is not found", func(t *testing.T) {
		resp, _ := h.do(http.MethodGet, "/"+tenantID+"/v2.0/.well-known/openid-configuration", nil, func(r *http.Request) { r.Host = "login.example.test" })
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("status = %d", resp.StatusCode)
		}
	})
	t.Run("a POST of the configuration is not allowed", func(t *testing.T) {
		resp, _ := h.do(http.MethodPost, "/"+tenantID+"/v2.0/.well-known/openid-configuration", url.Values{"a": {"b"}}, nil)
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD" {
			t.Errorf("status = %d, Allow = %q", resp.StatusCode, resp.Header.Get("Allow"))
		}
	})
}

func TestVerifyAccessTokenRefusesTokensItShouldNotAccept(t *testing.T) {
	other, err := entra.New(entra.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := other.AddTenant(tenantID); err != nil {
		t.Fatal(err)
	}
	if err := other.AddApplication(tenantID, entra.Application{ClientID: clientID, ObjectID: objectID}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		token func(t *testing.T, h *harness) string
		want  error
	}{
		{name: "an expired token is refused once the clock passes exp", want: entra.ErrTokenExpired, token: func(t *testing.T, h *harness) string {
			raw := issue(t, h.authority)
			h.clock.Advance(time.Hour + time.Minute)
			return raw
		}},
		{name: "a token is refused before its not-before time", want: entra.ErrTokenNotYetValid, token: func(t *testing.T, h *harness) string {
			raw := issue(t, h.authority)
			h.clock.Advance(-10 * time.Minute)
			return raw
		}},
		{name: "a token signed by another authority is invalid", want: entra.ErrTokenInvalid, token: func(t *testing.T, _ *harness) string { return issue(t, other) }},
		{name: "a token whose payload was altered is invalid", want: entra.ErrTokenInvalid, token: func(t *testing.T, h *harness) string {
			parts := strings.Split(issue(t, h.authority), ".")
			payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
			payload = []byte(strings.Replace(string(payload), clientID, "ffffffff-2222-4333-8444-555555555555", 1))
			parts[1] = base64.RawURLEncoding.EncodeToString(payload)
			return strings.Join(parts, ".")
		}},
		{name: "a token signed with none is invalid", want: entra.ErrTokenInvalid, token: func(t *testing.T, h *harness) string {
			tok := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"tid": tenantID, "exp": time.Now().Add(time.Hour).Unix()})
			raw, err := tok.SignedString(jwt.UnsafeAllowNoneSignatureType)
			if err != nil {
				t.Fatal(err)
			}
			return raw
		}},
		{name: "garbage is invalid", want: entra.ErrTokenInvalid, token: func(*testing.T, *harness) string { return "canary-garbage.token" }},
		{name: "an empty string is invalid", want: entra.ErrTokenInvalid, token: func(*testing.T, *harness) string { return "" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			raw := tc.token(t, h)
			got, err := h.authority.VerifyAccessToken(raw)
			if !errors.Is(err, tc.want) {
				t.Fatalf("VerifyAccessToken = %+v, %v; want an error wrapping %v", got, err, tc.want)
			}
			if raw != "" && strings.Contains(err.Error(), raw) {
				t.Errorf("error quotes the token: %v", err)
			}
		})
	}
}

func issue(t *testing.T, a *entra.Authority) string {
	t.Helper()
	raw, err := a.IssueAccessToken(tenantID, clientID, vaultScope)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestTheJournalRecordsEachRequestOnceWithoutSecretsAssertionsOrTokens(t *testing.T) {
	h := newHarness(t)
	const wrongSecret = "canary-wrong-secret-77c2"
	goodAssertion := h.assertion(saSubject, entra.TokenExchangeAudience)
	badAssertion := h.assertion("system:serviceaccount:canary:intruder", entra.TokenExchangeAudience)
	var canaries []string
	addJWT := func(raw string) {
		canaries = append(canaries, raw)
		if parts := strings.Split(raw, "."); len(parts) == 3 {
			canaries = append(canaries, parts[1], parts[2])
		}
	}
	canaries = append(canaries, secret, wrongSecret)
	addJWT(goodAssertion)
	addJWT(badAssertion)

	for _, tc := range []struct {
		cred   azcore.TokenCredential
		wantOK bool
	}{
		{secretCredential(tenantID, clientID, secret)(t, h), true},
		{secretCredential(tenantID, clientID, wrongSecret)(t, h), false},
		{assertionCredential(tenantID, clientID, func(*testing.T, *harness) string { return goodAssertion })(t, h), true},
		{assertionCredential(tenantID, clientID, func(*testing.T, *harness) string { return badAssertion })(t, h), false},
	} {
		tok, err := getToken(tc.cred, false, vaultScope)
		if (err == nil) != tc.wantOK {
			t.Fatalf("GetToken error = %v, want success %v", err, tc.wantOK)
		}
		if err == nil {
			addJWT(tok.Token)
		}
	}

	entries := h.journal.Entries()
	if n := h.requests.Load(); int64(len(entries)) != n {
		t.Errorf("%d journal entries for %d requests", len(entries), n)
	}
	dump, err := json.Marshal(entries)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range canaries {
		if strings.Contains(string(dump), c) {
			t.Errorf("the journal holds a secret, an assertion or a token (%.12s...)", c)
		}
	}
	ops := map[string]int{}
	for _, e := range entries {
		ops[e.Operation]++
		if e.Service != "entra" || !guidRE.MatchString(e.RequestID) || e.Host != entra.DefaultHost || e.Time.IsZero() {
			t.Errorf("entry = %+v", e)
		}
		if e.Operation == "Token" && (e.Identity != clientID || e.Tenant != tenantID || e.Method != http.MethodPost) {
			t.Errorf("token entry = %+v", e)
		}
	}
	if ops["Token"] != 4 || ops["OpenIDConfiguration"] == 0 || ops["InstanceDiscovery"] == 0 {
		t.Errorf("operations = %v, want 4 Token and some discovery", ops)
	}
	codes := map[string]int{}
	for _, e := range tokenEntries(h.journal) {
		codes[e.ErrorCode]++
	}
	if codes[""] != 2 || codes["AADSTS7000215"] != 1 || codes["AADSTS70021"] != 1 {
		t.Errorf("token error codes = %v", codes)
	}
}

func TestRegistrationRefusesWhatEntraWouldNot(t *testing.T) {
	a, err := entra.New(entra.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.AddTenant(tenantID); err != nil {
		t.Fatal(err)
	}
	rsaKey := mustRSAKey(t)
	for _, tc := range []struct {
		name string
		do   func() error
	}{
		{"a tenant ID that is not a GUID", func() error { return a.AddTenant("contoso.onmicrosoft.com") }},
		{"a tenant added twice", func() error { return a.AddTenant(strings.ToUpper(tenantID)) }},
		{"an application in an unknown tenant", func() error {
			return a.AddApplication("00000000-1111-4222-8333-444444444444", entra.Application{ClientID: clientID})
		}},
		{"a client ID that is not a GUID", func() error { return a.AddApplication(tenantID, entra.Application{ClientID: "kvsync"}) }},
		{"an object ID that is not a GUID", func() error {
			return a.AddApplication(tenantID, entra.Application{ClientID: clientID, ObjectID: "sp"})
		}},
		{"a federated credential with an http issuer", func() error {
			return a.AddApplication(tenantID, entra.Application{ClientID: clientID, FederatedCredentials: []entra.FederatedCredential{{Issuer: "http://oidc.fake.test", Subject: "s"}}})
		}},
		{"a federated credential without a subject", func() error {
			return a.AddApplication(tenantID, entra.Application{ClientID: clientID, FederatedCredentials: []entra.FederatedCredential{{Issuer: issuerURL}}})
		}},
		{"an empty client secret", func() error {
			return a.AddApplication(tenantID, entra.Application{ClientID: clientID, ClientSecrets: []string{""}})
		}},
		{"an application registered twice", func() error {
			if err := a.AddApplication(tenantID, entra.Application{ClientID: objectID}); err != nil {
				return fmt.Errorf("first registration: %w (unexpected)", err)
			}
			return a.AddApplication(tenantID, entra.Application{ClientID: strings.ToUpper(objectID)})
		}},
		{"trusting an http issuer", func() error { return a.TrustIssuer("http://oidc.fake.test", &rsaKey.PublicKey) }},
		{"trusting an issuer without keys", func() error { return a.TrustIssuer(issuerURL) }},
		{"trusting a key that is not RSA or EC", func() error { return a.TrustIssuer(issuerURL, []byte("key")) }},
		{"trusting a JWKS that is not JSON", func() error { return a.TrustIssuerJWKS(issuerURL, []byte("{")) }},
		{"trusting a JWKS without signing keys", func() error {
			return a.TrustIssuerJWKS(issuerURL, []byte(`{"keys":[{"kty":"RSA","use":"enc","n":"AQAB","e":"AQAB"}]}`))
		}},
		{"trusting a JWKS with an unknown key type", func() error {
			return a.TrustIssuerJWKS(issuerURL, []byte(`{"keys":[{"kty":"oct","k":"AAAA"}]}`))
		}},
		{"trusting a JWKS with an EC point off its curve", func() error {
			return a.TrustIssuerJWKS(issuerURL, []byte(`{"keys":[{"kty":"EC","crv":"P-256","x":"AQ","y":"AQ"}]}`))
		}},
		{"issuing a token for an unknown application", func() error {
			_, err := a.IssueAccessToken(tenantID, "11111111-2222-4333-8444-555555555555", vaultAud)
			return err
		}},
		{"a negative token lifetime", func() error { _, err := entra.New(entra.Options{TokenLifetime: -time.Second}); return err }},
		{"an issuer with an http URL", func() error { _, err := entra.NewIssuer("http://oidc.fake.test"); return err }},
	} {
		t.Run(tc.name+" is refused", func(t *testing.T) {
			if err := tc.do(); err == nil || strings.Contains(err.Error(), "(unexpected)") {
				t.Errorf("err = %v, want a refusal", err)
			}
		})
	}
}

func TestTrustIssuerJWKSReadsRSAAndECKeysByKid(t *testing.T) {
	h := newHarness(t)
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Keys []map[string]string `json:"keys"`
	}
	if err := json.Unmarshal(h.issuer.JWKS(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Keys[0]["kid"] != h.issuer.KeyID() {
		t.Fatalf("issuer JWKS kid = %q, want %q", doc.Keys[0]["kid"], h.issuer.KeyID())
	}
	ecPub, err := ecKey.PublicKey.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	doc.Keys = append(doc.Keys, map[string]string{
		"kty": "EC", "use": "sig", "kid": "ec-1", "crv": "P-256", "alg": "ES256",
		"x": base64.RawURLEncoding.EncodeToString(ecPub[1:33]),
		"y": base64.RawURLEncoding.EncodeToString(ecPub[33:]),
	})
	jwks, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("an RSA key read from a JWKS verifies the issuer's assertions", func(t *testing.T) {
		if err := h.authority.TrustIssuerJWKS(issuerURL, jwks); err != nil {
			t.Fatal(err)
		}
		if _, err := getToken(assertionCredential(tenantID, clientID, serviceAccountAssertion)(t, h), false, vaultScope); err != nil {
			t.Fatalf("GetToken: %v", err)
		}
	})
	t.Run("an assertion signed with the EC key is refused for its algorithm, as Entra does", func(t *testing.T) {
		raw := signedAssertion(t, jwt.SigningMethodES256, ecKey, "ec-1", validClaims(h.clock.Now()))
		_, err := getToken(assertionCredential(tenantID, clientID, func(*testing.T, *harness) string { return raw })(t, h), false, vaultScope)
		if err == nil || !strings.Contains(err.Error(), "AADSTS5002738") {
			t.Errorf("err = %v, want AADSTS5002738", err)
		}
	})
	t.Run("after a rotation that drops the key its assertions are no longer verified", func(t *testing.T) {
		next, err := entra.NewIssuer(issuerURL)
		if err != nil {
			t.Fatal(err)
		}
		if err := h.authority.TrustIssuerJWKS(issuerURL, next.JWKS()); err != nil {
			t.Fatal(err)
		}
		_, err = getToken(assertionCredential(tenantID, clientID, serviceAccountAssertion)(t, h), false, vaultScope)
		if err == nil || !strings.Contains(err.Error(), "AADSTS7000272") {
			t.Errorf("err = %v, want AADSTS7000272", err)
		}
	})
}

func TestTheTokenEndpointAcceptsAClientSecretInABasicAuthorizationHeader(t *testing.T) {
	h := newHarness(t)
	resp, raw := h.do(http.MethodPost, "/"+tenantID+"/oauth2/v2.0/token",
		url.Values{"grant_type": {"client_credentials"}, "scope": {vaultScope}},
		func(r *http.Request) { r.SetBasicAuth(clientID, url.QueryEscape(secret)) })
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, raw)
	}
	var v struct {
		TokenType    string `json:"token_type"`
		ExpiresIn    int    `json:"expires_in"`
		ExtExpiresIn int    `json:"ext_expires_in"`
		AccessToken  string `json:"access_token"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	if v.TokenType != "Bearer" || v.ExpiresIn < 3590 || v.ExpiresIn > 3600 || v.ExtExpiresIn != v.ExpiresIn {
		t.Errorf("answer = %s", raw)
	}
	if got, err := h.authority.VerifyAccessToken(v.AccessToken); err != nil || got.AppID != clientID {
		t.Errorf("VerifyAccessToken = %+v, %v", got, err)
	}
}
