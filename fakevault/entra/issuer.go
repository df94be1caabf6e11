package entra

import (
	"crypto"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/kvsync/kvsync/fakevault/pki"
)

// Issuer is an external OIDC issuer that signs client assertions the way a
// Kubernetes API server signs service-account tokens: RS256 with a kid
// header, and iss, sub, aud (an array), iat, nbf, exp and jti claims, plus
// the kubernetes.io claim for system:serviceaccount subjects. Trust it
// with Authority.TrustIssuer(i.URL(), i.PublicKey()) or
// Authority.TrustIssuerJWKS(i.URL(), i.JWKS()). It is meant for tests and
// the in-process harness, where no API server runs. It is safe for
// concurrent use once Now is set.
type Issuer struct {
	// Now returns the time assertions are issued at. Defaults to time.Now.
	// Set it before use, e.g. to the authority's clock.
	Now func() time.Time

	url string
	key *rsa.PrivateKey
	kid string
}

// NewIssuer returns an issuer with the https issuer URL url and a fresh
// RSA-2048 key.
func NewIssuer(url string) (*Issuer, error) {
	if err := checkIssuerURL(url); err != nil {
		return nil, err
	}
	signer, err := pki.NewKey(pki.RSA2048)
	if err != nil {
		return nil, fmt.Errorf("generating issuer key: %w", err)
	}
	key, ok := signer.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("issuer key is %T, not RSA", signer)
	}
	kid, err := kubernetesKeyID(&key.PublicKey)
	if err != nil {
		return nil, err
	}
	return &Issuer{url: url, key: key, kid: kid}, nil
}

// URL returns the issuer URL, the iss claim of its assertions.
func (i *Issuer) URL() string { return i.url }

// PublicKey returns the public half of the issuer's signing key.
func (i *Issuer) PublicKey() crypto.PublicKey { return &i.key.PublicKey }

// KeyID returns the kid of the issuer's key, computed as the Kubernetes API
// server computes it (and as TrustIssuer does).
func (i *Issuer) KeyID() string { return i.kid }

// JWKS returns the issuer's key set document, as an API server serves it
// at /openid/v1/jwks.
func (i *Issuer) JWKS() []byte {
	k := rsaJWK(&i.key.PublicKey, i.kid)
	k.Alg = "RS256"
	b, err := json.Marshal(jwkSet{Keys: []jwk{k}})
	if err != nil {
		panic(fmt.Sprintf("entra: marshalling a JWKS: %v", err)) // cannot happen
	}
	return b
}

// Assertion returns a signed assertion about subject for audience (e.g.
// TokenExchangeAudience), valid for lifetime from Now. It is the token a
// projected service-account token volume would hold.
func (i *Issuer) Assertion(subject, audience string, lifetime time.Duration) (string, error) {
	if subject == "" || audience == "" {
		return "", errors.New("an assertion needs a subject and an audience")
	}
	if lifetime <= 0 {
		return "", fmt.Errorf("assertion lifetime %v is not positive", lifetime)
	}
	now := time.Now
	if i.Now != nil {
		now = i.Now
	}
	t := now().UTC().Truncate(time.Second)
	claims := jwt.MapClaims{
		"iss": i.url,
		"sub": subject,
		"aud": []string{audience},
		"iat": t.Unix(),
		"nbf": t.Unix(),
		"exp": t.Add(lifetime).Unix(),
		"jti": uuid.NewString(),
	}
	if ns, name, ok := serviceAccount(subject); ok {
		claims["kubernetes.io"] = map[string]any{
			"namespace":      ns,
			"serviceaccount": map[string]any{"name": name, "uid": uuid.NewString()},
		}
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	delete(tok.Header, "typ") // API servers send only alg and kid
	tok.Header["kid"] = i.kid
	raw, err := tok.SignedString(i.key)
	if err != nil {
		return "", fmt.Errorf("signing assertion: %w", err)
	}
	return raw, nil
}

// serviceAccount splits system:serviceaccount:<namespace>:<name>.
func serviceAccount(subject string) (namespace, name string, ok bool) {
	rest, found := strings.CutPrefix(subject, "system:serviceaccount:")
	if !found {
		return "", "", false
	}
	namespace, name, ok = strings.Cut(rest, ":")
	return namespace, name, ok && namespace != "" && name != ""
}
