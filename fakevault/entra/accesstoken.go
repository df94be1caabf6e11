package entra

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// AccessToken is what an access token the authority issued says.
type AccessToken struct {
	// TenantID is the tid claim.
	TenantID string
	// ObjectID is the oid claim: the service principal's object ID.
	ObjectID string
	// AppID is the appid claim: the client ID.
	AppID string
	// Audience is the aud claim, e.g. https://vault.azure.net.
	Audience string
	// Issuer is the iss claim, https://sts.windows.net/<tenant>/.
	Issuer string
	// IssuedAt, NotBefore and ExpiresAt are the iat, nbf and exp claims.
	IssuedAt, NotBefore, ExpiresAt time.Time
}

// backdate is how far before issuance iat and nbf are set, as Entra does
// to absorb clock skew.
const backdate = 5 * time.Minute

// accessTokenClaims are the claims of a v1.0 app-only access token, named
// and shaped as in tokens Entra issues for Key Vault.
type accessTokenClaims struct {
	Aud      string   `json:"aud"`
	Iss      string   `json:"iss"`
	Iat      int64    `json:"iat"`
	Nbf      int64    `json:"nbf"`
	Exp      int64    `json:"exp"`
	AppID    string   `json:"appid"`
	AppIDAcr string   `json:"appidacr"`
	IDP      string   `json:"idp"`
	IDTyp    string   `json:"idtyp"`
	OID      string   `json:"oid"`
	Sub      string   `json:"sub"`
	TID      string   `json:"tid"`
	UTI      string   `json:"uti"`
	Ver      string   `json:"ver"`
	XmsCC    []string `json:"xms_cc,omitempty"`
}

// The jwt.Claims methods let the jwt parser check lifetime.
func (c *accessTokenClaims) GetExpirationTime() (*jwt.NumericDate, error) {
	return numericDate(c.Exp), nil
}
func (c *accessTokenClaims) GetNotBefore() (*jwt.NumericDate, error) { return numericDate(c.Nbf), nil }
func (c *accessTokenClaims) GetIssuedAt() (*jwt.NumericDate, error)  { return numericDate(c.Iat), nil }
func (c *accessTokenClaims) GetIssuer() (string, error)              { return c.Iss, nil }
func (c *accessTokenClaims) GetSubject() (string, error)             { return c.Sub, nil }
func (c *accessTokenClaims) GetAudience() (jwt.ClaimStrings, error) {
	return jwt.ClaimStrings{c.Aud}, nil
}

// numericDate returns nil for an absent (zero) time claim.
func numericDate(sec int64) *jwt.NumericDate {
	if sec == 0 {
		return nil
	}
	return jwt.NewNumericDate(time.Unix(sec, 0))
}

// stsIssuer returns the v1.0 issuer of tenantID.
func stsIssuer(tenantID string) string { return "https://sts.windows.net/" + tenantID + "/" }

// grant describes one token to mint.
type grant struct {
	tenantID string
	app      *Application
	resource string // the aud claim
	appIDAcr string // "1" secret, "2" assertion
	caps     []string
}

// minted is an issued token with its lifetime.
type minted struct {
	raw       string
	issuedAt  time.Time // actual issuance (iat is backdated)
	notBefore time.Time
	expiresAt time.Time
}

// mint signs an access token for g.
func (a *Authority) mint(g grant) (minted, error) {
	now := a.now().UTC().Truncate(time.Second)
	exp := now.Add(a.lifetime)
	nbf := now.Add(-backdate)
	uti := make([]byte, 16)
	if _, err := rand.Read(uti); err != nil {
		return minted{}, fmt.Errorf("generating token ID: %w", err)
	}
	iss := stsIssuer(g.tenantID)
	claims := &accessTokenClaims{
		Aud:      g.resource,
		Iss:      iss,
		Iat:      nbf.Unix(),
		Nbf:      nbf.Unix(),
		Exp:      exp.Unix(),
		AppID:    g.app.ClientID,
		AppIDAcr: g.appIDAcr,
		IDP:      iss,
		IDTyp:    "app",
		OID:      g.app.ObjectID,
		Sub:      g.app.ObjectID,
		TID:      g.tenantID,
		UTI:      base64.RawURLEncoding.EncodeToString(uti),
		Ver:      "1.0",
		XmsCC:    g.caps,
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	tok.Header["kid"] = a.keyID
	tok.Header["x5t"] = a.keyID
	raw, err := tok.SignedString(a.key)
	if err != nil {
		return minted{}, fmt.Errorf("signing access token: %w", err)
	}
	return minted{raw: raw, issuedAt: now, notBefore: nbf, expiresAt: exp}, nil
}

// IssueAccessToken mints a token as the token endpoint would for the
// application clientID of tenantID, for resource (an application ID URI
// such as https://vault.azure.net; a trailing "/.default" is removed). The
// tenant and application must exist; the resource need not be known.
// Nothing is journaled.
func (a *Authority) IssueAccessToken(tenantID, clientID, resource string) (string, error) {
	t, app := a.lookup(tenantID, clientID)
	if t == nil {
		return "", fmt.Errorf("tenant %q does not exist", tenantID)
	}
	if app == nil {
		return "", fmt.Errorf("application %q does not exist in tenant %s", clientID, t.id)
	}
	resource = strings.TrimSuffix(resource, "/.default")
	if resource == "" {
		return "", errors.New("resource is empty")
	}
	m, err := a.mint(grant{tenantID: t.id, app: app, resource: resource, appIDAcr: "1"})
	if err != nil {
		return "", err
	}
	return m.raw, nil
}

// VerifyAccessToken checks that raw is an RS256 JWT signed with the
// authority's key (matched by kid), that it is within its lifetime at
// Options.Now (no leeway: iat and nbf are already backdated at issuance),
// and that it has the claims of an app-only token this authority issues
// (tid, oid, appid, aud, and iss https://sts.windows.net/<tid>/). It does
// not check the audience or tenant against anything: callers do. Errors
// wrap ErrTokenExpired, ErrTokenNotYetValid or ErrTokenInvalid. The token
// text never appears in errors.
func (a *Authority) VerifyAccessToken(raw string) (*AccessToken, error) {
	var claims accessTokenClaims
	parser := jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodRS256.Alg()}),
		jwt.WithTimeFunc(a.now),
		jwt.WithExpirationRequired(),
	)
	_, err := parser.ParseWithClaims(raw, &claims, func(t *jwt.Token) (any, error) {
		if kid, _ := t.Header["kid"].(string); kid != a.keyID {
			return nil, errors.New("the token's kid is not the authority's signing key")
		}
		return &a.key.PublicKey, nil
	})
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return nil, fmt.Errorf("entra: %w (expired at %s)", ErrTokenExpired, time.Unix(claims.Exp, 0).UTC().Format(time.RFC3339))
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return nil, fmt.Errorf("entra: %w (valid from %s)", ErrTokenNotYetValid, time.Unix(claims.Nbf, 0).UTC().Format(time.RFC3339))
	case err != nil:
		return nil, fmt.Errorf("entra: %w: %w", ErrTokenInvalid, err)
	}
	if claims.TID == "" || claims.OID == "" || claims.AppID == "" || claims.Aud == "" || claims.Iss != stsIssuer(claims.TID) {
		return nil, fmt.Errorf("entra: %w: missing or inconsistent tid, oid, appid, aud or iss claims", ErrTokenInvalid)
	}
	return &AccessToken{
		TenantID:  claims.TID,
		ObjectID:  claims.OID,
		AppID:     claims.AppID,
		Audience:  claims.Aud,
		Issuer:    claims.Iss,
		IssuedAt:  time.Unix(claims.Iat, 0).UTC(),
		NotBefore: time.Unix(claims.Nbf, 0).UTC(),
		ExpiresAt: time.Unix(claims.Exp, 0).UTC(),
	}, nil
}
