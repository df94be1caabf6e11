package entra

import (
	"bytes"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const (
	grantClientCredentials = "client_credentials"
	assertionTypeJWTBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

	// maxFormBytes bounds a token request body.
	maxFormBytes = 1 << 20

	// assertionSkew is the clock skew allowed on a client assertion's exp
	// and nbf (the usual five minutes of Microsoft's token validation).
	assertionSkew = 5 * time.Minute
)

// oidcScopes are the scopes MSAL always appends; Entra ignores them in the
// client credentials grant.
var oidcScopes = map[string]bool{"openid": true, "offline_access": true, "profile": true, "email": true}

// tokenResponseV2 is the v2.0 token endpoint answer for an app token.
type tokenResponseV2 struct {
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	ExtExpiresIn int64  `json:"ext_expires_in"`
	AccessToken  string `json:"access_token"`
}

// tokenResponseV1 is the v1.0 token endpoint answer: numbers are strings.
type tokenResponseV1 struct {
	TokenType    string `json:"token_type"`
	ExpiresIn    string `json:"expires_in"`
	ExtExpiresIn string `json:"ext_expires_in"`
	ExpiresOn    string `json:"expires_on"`
	NotBefore    string `json:"not_before"`
	Resource     string `json:"resource"`
	AccessToken  string `json:"access_token"`
}

// token answers POST /<tenant>/oauth2/v2.0/token (v2) or
// /<tenant>/oauth2/token (v1) for the client credentials grant, with a
// client secret (in the body, or as client_secret_basic in an
// Authorization: Basic header) or a federated client assertion.
//
// Checks run in this order, each answering its own AADSTS error: method,
// tenant identifier and existence, grant_type, client_id, scope or
// resource presence, application, credential, scope or resource validity.
func (a *Authority) token(c *call, seg string, v2 bool) {
	if !c.allowPOST() {
		return
	}
	c.entry.Tenant = seg
	t, ok := a.tokenTenant(c, seg)
	if !ok {
		return
	}
	req, f := readTokenRequest(c, v2)
	if f != nil {
		c.fail(f)
		return
	}
	_, app := a.lookup(t.id, req.clientID)
	if app == nil {
		c.fail(errApplicationNotFound.with(req.clientID, t.id))
		return
	}
	acr, f := a.authenticateClient(req.secret, req.form.Get("client_assertion_type"), req.form.Get("client_assertion"), app)
	if f != nil {
		c.fail(f)
		return
	}
	resource, f := a.tokenResource(t, req.form, v2)
	if f != nil {
		c.fail(f)
		return
	}
	m, err := a.mint(grant{
		tenantID: t.id,
		app:      app,
		resource: resource,
		appIDAcr: acr,
		caps:     clientCapabilities(req.form.Get("claims")),
	})
	if err != nil {
		c.status(http.StatusInternalServerError)
		return
	}
	a.answerToken(c, m, resource, v2)
}

// allowPOST reports whether the method is POST. Otherwise it answers:
// OPTIONS with the methods allowed, any other method with AADSTS900561.
func (c *call) allowPOST() bool {
	switch c.r.Method {
	case http.MethodPost:
		return true
	case http.MethodOptions:
		c.w.Header().Set("Allow", "POST, OPTIONS")
		c.status(http.StatusOK)
	default:
		c.fail(errPostOnly.with(c.r.Method))
	}
	return false
}

// tokenRequest is a token request's form and client credentials.
type tokenRequest struct {
	// form is the request body's form; the real service ignores query
	// parameters here.
	form     url.Values
	clientID string
	secret   string
}

// readTokenRequest reads the form of a token request (an unreadable form
// is a missing grant_type) and its client credentials, records the client
// ID in the journal entry, and checks, in order, that grant_type is the
// client credentials grant and that client_id and the scope (v2) or
// resource (v1) parameter are present.
func readTokenRequest(c *call, v2 bool) (tokenRequest, *failure) {
	c.r.Body = http.MaxBytesReader(c.w, c.r.Body, maxFormBytes)
	if err := c.r.ParseForm(); err != nil {
		return tokenRequest{}, errMissingParameter.with("grant_type")
	}
	req := tokenRequest{form: c.r.PostForm}
	req.clientID, req.secret = clientCredentials(c.r)
	c.entry.Identity = req.clientID

	grantType := req.form.Get("grant_type")
	if grantType == "" {
		return req, errMissingParameter.with("grant_type")
	}
	if grantType != grantClientCredentials {
		return req, errUnsupportedGrantType.with(grantType)
	}
	if req.clientID == "" {
		return req, errMissingParameter.with("client_id")
	}
	param := "resource"
	if v2 {
		param = "scope"
	}
	if strings.TrimSpace(req.form.Get(param)) == "" {
		return req, errMissingParameter.with(param)
	}
	return req, nil
}

// clientCredentials returns the client ID and secret of a parsed token
// request: those of the form, else those of an Authorization: Basic header
// (client_secret_basic, RFC 6749 §2.3.1), URL-decoded.
func clientCredentials(r *http.Request) (clientID, secret string) {
	clientID, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	if user, pass, ok := r.BasicAuth(); ok {
		if u, err := url.QueryUnescape(user); err == nil && clientID == "" {
			clientID = u
		}
		if p, err := url.QueryUnescape(pass); err == nil && secret == "" {
			secret = p
		}
	}
	return clientID, secret
}

// tokenResource returns the resource a token request asks for: the one of
// its scope (v2) or its resource parameter (v1). Tenant t must know it.
func (a *Authority) tokenResource(t *tenant, form url.Values, v2 bool) (string, *failure) {
	resource := strings.TrimSpace(form.Get("resource"))
	if v2 {
		var f *failure
		if resource, f = resourceFromScope(form.Get("scope")); f != nil {
			return "", f
		}
	}
	if !a.knownResource(t, resource) {
		return "", errResourceNotFound.with(resource, t.id)
	}
	return resource, nil
}

// answerToken answers the minted token for resource as the v2.0 (v2) or
// v1.0 token endpoint does.
func (a *Authority) answerToken(c *call, m minted, resource string, v2 bool) {
	expiresIn := int64(m.expiresAt.Sub(a.now()) / time.Second)
	if v2 {
		c.json(http.StatusOK, tokenResponseV2{
			TokenType:    "Bearer",
			ExpiresIn:    expiresIn,
			ExtExpiresIn: expiresIn,
			AccessToken:  m.raw,
		})
		return
	}
	c.json(http.StatusOK, tokenResponseV1{
		TokenType:    "Bearer",
		ExpiresIn:    strconv.FormatInt(expiresIn, 10),
		ExtExpiresIn: strconv.FormatInt(expiresIn, 10),
		ExpiresOn:    strconv.FormatInt(m.expiresAt.Unix(), 10),
		NotBefore:    strconv.FormatInt(m.notBefore.Unix(), 10),
		Resource:     resource,
		AccessToken:  m.raw,
	})
}

// tokenTenant resolves the tenant of a token request. Unlike the discovery
// endpoints, the token endpoint rejects any identifier that is neither a
// GUID nor a domain name with AADSTS900023. common, organizations and
// consumers are answered as unknown tenants (the real service answers a
// different, unverified, error for them in the client credentials grant).
func (a *Authority) tokenTenant(c *call, seg string) (*tenant, bool) {
	switch classifyTenant(seg) {
	case tenantMalformedGUID:
		c.fail(errInvalidTenantIdentifier.with(seg))
		return nil, false
	case tenantOther:
		if seg != "common" && seg != "organizations" && seg != "consumers" {
			c.fail(errInvalidTenantIdentifier.with(seg))
			return nil, false
		}
	}
	t, _ := a.lookup(seg, "")
	if t == nil {
		c.fail(errTenantNotFound.with(seg))
		return nil, false
	}
	return t, true
}

// resourceFromScope returns the resource of a client credentials scope
// list: the one scope that is not an OpenID scope, which must end in
// "/.default".
func resourceFromScope(scope string) (string, *failure) {
	var resources []string
	for _, s := range strings.Fields(scope) {
		if oidcScopes[strings.ToLower(s)] {
			continue
		}
		if !strings.HasSuffix(s, "/.default") {
			return "", errScopeNotDefault.with(s)
		}
		r := strings.TrimSuffix(s, "/.default")
		dup := false
		for _, seen := range resources {
			if normalizeResource(seen) == normalizeResource(r) {
				dup = true
			}
		}
		if !dup {
			resources = append(resources, r)
		}
	}
	switch len(resources) {
	case 0:
		return "", errScopeNotDefault.with(scope)
	case 1:
		return resources[0], nil
	}
	return "", errMultipleResources.with(scope)
}

// clientCapabilities returns the xms_cc values of a claims request
// parameter such as {"access_token":{"xms_cc":{"values":["CP1"]}}}, which
// MSAL sends for clients that handle CAE challenges. Unreadable claims are
// ignored.
func clientCapabilities(claims string) []string {
	if claims == "" {
		return nil
	}
	var req struct {
		AccessToken struct {
			XmsCC struct {
				Values []string `json:"values"`
			} `json:"xms_cc"`
		} `json:"access_token"`
	}
	if err := json.Unmarshal([]byte(claims), &req); err != nil {
		return nil
	}
	return req.AccessToken.XmsCC.Values
}

// authenticateClient checks the client's credential and returns the
// appidacr of the token to issue: "1" for a secret, "2" for an assertion.
// An assertion, if present, is used even when a secret is also sent.
func (a *Authority) authenticateClient(secret, assertionType, assertion string, app *Application) (string, *failure) {
	switch {
	case assertion != "":
		if assertionType != assertionTypeJWTBearer {
			return "", errMissingParameter.with("client_assertion_type")
		}
		if f := a.checkFederatedAssertion(assertion, app); f != nil {
			return "", f
		}
		return "2", nil
	case secret != "":
		for _, s := range app.ClientSecrets {
			if subtle.ConstantTimeCompare([]byte(s), []byte(secret)) == 1 {
				return "1", nil
			}
		}
		return "", errInvalidClientSecret.with(app.ClientID)
	}
	return "", errMissingClientCredential.with()
}

// assertionHeader and assertionClaims are what the fake reads of a client
// assertion.
type assertionHeader struct {
	Alg string `json:"alg"`
	Kid string `json:"kid"`
}

type assertionClaims struct {
	Iss string       `json:"iss"`
	Sub string       `json:"sub"`
	Aud claimStrings `json:"aud"`
	Exp *json.Number `json:"exp"`
	Nbf *json.Number `json:"nbf"`
}

// claimStrings is a JWT aud claim: a string or an array of strings.
type claimStrings []string

func (s *claimStrings) UnmarshalJSON(b []byte) error {
	if bytes.HasPrefix(bytes.TrimSpace(b), []byte("[")) {
		var many []string
		if err := json.Unmarshal(b, &many); err != nil {
			return err
		}
		*s = many
		return nil
	}
	var one string
	if err := json.Unmarshal(b, &one); err != nil {
		return err
	}
	*s = claimStrings{one}
	return nil
}

// checkFederatedAssertion validates a federated client assertion for app:
// format, algorithm, required claims, a matching federated credential, the
// trusted issuer's key and signature, and lifetime, in that order.
func (a *Authority) checkFederatedAssertion(raw string, app *Application) *failure {
	as, f := parseAssertion(raw)
	if f != nil {
		return f
	}
	if !matchesFederatedCredential(app, as.claims) {
		return errNoMatchingFederatedIdentity.with(as.claims.Iss, as.claims.Sub, strings.Join(as.claims.Aud, ","))
	}
	if f := a.verifyAssertionSignature(as); f != nil {
		return f
	}
	return a.checkAssertionLifetime(as)
}

// assertion is a client assertion whose format, algorithm and required
// claims are valid.
type assertion struct {
	header assertionHeader
	claims assertionClaims
	// signed is the signing input, header.payload; signature signs it.
	signed    string
	signature []byte
	// exp and nbf are the claims' times; nbf is the epoch when absent, as
	// the real service's message shows it.
	exp, nbf time.Time
}

// parseAssertion parses a client assertion: a JWT of three base64url
// segments whose header and claims are JSON, signed with RS256, RS384 or
// RS512, with iss, sub, aud and exp claims and numeric exp and nbf. The
// failure names the first of these that does not hold.
func parseAssertion(raw string) (assertion, *failure) {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return assertion{}, errMalformedJWT.with()
	}
	as := assertion{signed: parts[0] + "." + parts[1]}
	if err := decodeSegment(parts[0], &as.header); err != nil {
		return assertion{}, errMalformedJWT.with()
	}
	if err := decodeSegment(parts[1], &as.claims); err != nil {
		return assertion{}, errMalformedJWT.with()
	}
	var err error
	if as.signature, err = base64.RawURLEncoding.DecodeString(parts[2]); err != nil {
		return assertion{}, errMalformedJWT.with()
	}
	switch as.header.Alg {
	case "RS256", "RS384", "RS512":
	default:
		return assertion{}, errUnsupportedAlgorithm.with(as.header.Alg)
	}
	claims := as.claims
	for _, req := range []struct {
		name    string
		present bool
	}{
		{"iss", claims.Iss != ""},
		{"sub", claims.Sub != ""},
		{"aud", len(claims.Aud) > 0},
		{"exp", claims.Exp != nil},
	} {
		if !req.present {
			return assertion{}, errMissingAssertionClaim.with(req.name)
		}
	}
	exp, err1 := claims.Exp.Float64()
	var nbf float64
	var err2 error
	if claims.Nbf != nil {
		nbf, err2 = claims.Nbf.Float64()
	}
	if err1 != nil || err2 != nil {
		return assertion{}, errMalformedJWT.with()
	}
	as.exp, as.nbf = time.Unix(int64(exp), 0), time.Unix(int64(nbf), 0)
	return as, nil
}

// verifyAssertionSignature checks that the assertion's issuer is trusted
// and that one of its keys with the assertion's kid (any key when the kid
// is empty) verifies the signature.
func (a *Authority) verifyAssertionSignature(as assertion) *failure {
	keys, ok := a.issuerKeys(as.claims.Iss)
	if !ok {
		return errExternalOIDCFailed.with()
	}
	var candidates []issuerKey
	for _, k := range keys {
		if as.header.Kid == "" || k.kid == as.header.Kid {
			candidates = append(candidates, k)
		}
	}
	if len(candidates) == 0 {
		return errSigningKeyNotFound.with(as.header.Kid, as.claims.Iss)
	}
	method := jwt.GetSigningMethod(as.header.Alg)
	for _, k := range candidates {
		if method.Verify(as.signed, as.signature, k.key) == nil {
			return nil
		}
	}
	return errInvalidAssertionSignature.with(as.header.Kid)
}

// checkAssertionLifetime checks that now is within the assertion's nbf and
// exp, give or take assertionSkew.
func (a *Authority) checkAssertionLifetime(as assertion) *failure {
	now := a.now()
	if now.After(as.exp.Add(assertionSkew)) || as.nbf.After(now.Add(assertionSkew)) {
		const layout = "2006-01-02T15:04:05.0000000Z"
		return errAssertionTimeRange.with(now.UTC().Format(layout), as.nbf.UTC().Format(layout), as.exp.UTC().Format(layout))
	}
	return nil
}

// matchesFederatedCredential reports whether a federated credential of app
// has the assertion's issuer and subject and one of its audiences.
func matchesFederatedCredential(app *Application, claims assertionClaims) bool {
	for _, f := range app.FederatedCredentials {
		if f.Issuer != claims.Iss || f.Subject != claims.Sub {
			continue
		}
		for _, want := range f.Audiences {
			for _, got := range claims.Aud {
				if want == got {
					return true
				}
			}
		}
	}
	return false
}

// decodeSegment decodes one base64url JSON segment of a JWT into v.
func decodeSegment(seg string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	return dec.Decode(v)
}
