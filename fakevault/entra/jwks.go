package entra

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
)

// issuerKey is one signing key of a trusted external issuer.
type issuerKey struct {
	kid string
	key crypto.PublicKey
}

// kubernetesKeyID returns the kid the Kubernetes API server gives a
// service-account signing key: unpadded base64url of SHA-256 of the PKIX
// DER of the public key.
func kubernetesKeyID(key crypto.PublicKey) (string, error) {
	switch key.(type) {
	case *rsa.PublicKey, *ecdsa.PublicKey:
	default:
		return "", fmt.Errorf("unsupported key type %T (want *rsa.PublicKey or *ecdsa.PublicKey)", key)
	}
	der, err := x509.MarshalPKIXPublicKey(key)
	if err != nil {
		return "", fmt.Errorf("encoding public key: %w", err)
	}
	sum := sha256.Sum256(der)
	return base64.RawURLEncoding.EncodeToString(sum[:]), nil
}

// jwk is the subset of RFC 7517 members the fake reads and writes.
type jwk struct {
	Kty    string   `json:"kty"`
	Use    string   `json:"use,omitempty"`
	Kid    string   `json:"kid,omitempty"`
	X5t    string   `json:"x5t,omitempty"`
	Alg    string   `json:"alg,omitempty"`
	N      string   `json:"n,omitempty"`
	E      string   `json:"e,omitempty"`
	Crv    string   `json:"crv,omitempty"`
	X      string   `json:"x,omitempty"`
	Y      string   `json:"y,omitempty"`
	X5c    []string `json:"x5c,omitempty"`
	Issuer string   `json:"issuer,omitempty"`
}

type jwkSet struct {
	Keys []jwk `json:"keys"`
}

// parseJWKS reads the signing keys of a JWKS document.
func parseJWKS(doc []byte) ([]issuerKey, error) {
	var set jwkSet
	if err := json.Unmarshal(doc, &set); err != nil {
		return nil, fmt.Errorf("parsing JWKS: %w", err)
	}
	var out []issuerKey
	for i, k := range set.Keys {
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		key, err := k.publicKey()
		if err != nil {
			return nil, fmt.Errorf("JWKS key %d (kid %q): %w", i, k.Kid, err)
		}
		kid := k.Kid
		if kid == "" {
			if kid, err = kubernetesKeyID(key); err != nil {
				return nil, err
			}
		}
		out = append(out, issuerKey{kid: kid, key: key})
	}
	if len(out) == 0 {
		return nil, errors.New("JWKS has no signing keys")
	}
	return out, nil
}

func (k jwk) publicKey() (crypto.PublicKey, error) {
	switch k.Kty {
	case "RSA":
		n, err := decodeBigInt(k.N)
		if err != nil {
			return nil, fmt.Errorf("modulus: %w", err)
		}
		e, err := decodeBigInt(k.E)
		if err != nil {
			return nil, fmt.Errorf("exponent: %w", err)
		}
		if n.Sign() <= 0 || !e.IsInt64() || e.Int64() < 3 || e.Int64() > 1<<31-1 {
			return nil, errors.New("invalid RSA key")
		}
		return &rsa.PublicKey{N: n, E: int(e.Int64())}, nil
	case "EC":
		var curve elliptic.Curve
		switch k.Crv {
		case "P-256":
			curve = elliptic.P256()
		case "P-384":
			curve = elliptic.P384()
		case "P-521":
			curve = elliptic.P521()
		default:
			return nil, fmt.Errorf("unsupported curve %q", k.Crv)
		}
		x, err := decodeBigInt(k.X)
		if err != nil {
			return nil, fmt.Errorf("x: %w", err)
		}
		y, err := decodeBigInt(k.Y)
		if err != nil {
			return nil, fmt.Errorf("y: %w", err)
		}
		// Validate the point by round-tripping it through the
		// uncompressed encoding, which crypto/ecdh-backed parsing checks.
		size := (curve.Params().BitSize + 7) / 8
		if len(x.Bytes()) > size || len(y.Bytes()) > size {
			return nil, errors.New("EC coordinates too large for the curve")
		}
		raw := make([]byte, 1+2*size)
		raw[0] = 4
		x.FillBytes(raw[1 : 1+size])
		y.FillBytes(raw[1+size:])
		pub, err := ecdsa.ParseUncompressedPublicKey(curve, raw)
		if err != nil {
			return nil, fmt.Errorf("invalid EC point: %w", err)
		}
		return pub, nil
	}
	return nil, fmt.Errorf("unsupported key type %q", k.Kty)
}

func decodeBigInt(s string) (*big.Int, error) {
	if s == "" {
		return nil, errors.New("missing")
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, err
	}
	return new(big.Int).SetBytes(b), nil
}

// rsaJWK returns the JWK of an RSA public key.
func rsaJWK(pub *rsa.PublicKey, kid string) jwk {
	return jwk{
		Kty: "RSA",
		Use: "sig",
		Kid: kid,
		N:   base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
		E:   base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
	}
}

// jwks returns the authority's key set as Entra publishes it; issuer is the
// value of each key's issuer member.
func (a *Authority) jwks(issuer string) jwkSet {
	k := rsaJWK(&a.key.PublicKey, a.keyID)
	k.X5t = a.keyID
	k.X5c = []string{base64.StdEncoding.EncodeToString(a.certDER)}
	k.Issuer = issuer
	return jwkSet{Keys: []jwk{k}}
}
