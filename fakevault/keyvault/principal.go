package keyvault

import (
	"errors"
	"time"
)

// Principal is what a verified access token says about its bearer.
type Principal struct {
	// TenantID is the tid claim.
	TenantID string
	// ObjectID is the oid claim: the service principal or managed identity.
	ObjectID string
	// AppID is the appid (v1) or azp (v2) claim: the client ID.
	AppID string
	// Audience is the aud claim, e.g. https://vault.azure.net.
	Audience string
	// Issuer is the iss claim, e.g. https://sts.windows.net/<tenant>/.
	Issuer string
	// ExpiresAt is the exp claim.
	ExpiresAt time.Time
}

// TokenVerifier knows how to check a bearer token's signature and lifetime
// and read its claims. The vault itself checks audience and issuer against
// its own tenant.
type TokenVerifier interface {
	// VerifyAccessToken returns the token's principal, or an error wrapping
	// ErrTokenExpired, ErrTokenNotYetValid or ErrTokenInvalid.
	VerifyAccessToken(raw string) (Principal, error)
}

// Errors a TokenVerifier wraps.
var (
	// ErrTokenExpired: the token's exp is in the past.
	ErrTokenExpired = errors.New("token has expired")
	// ErrTokenNotYetValid: the token's nbf is in the future.
	ErrTokenNotYetValid = errors.New("token is not yet valid")
	// ErrTokenInvalid: the token is malformed or its signature does not
	// verify with any key of the authority.
	ErrTokenInvalid = errors.New("token is invalid")
)
