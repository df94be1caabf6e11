package keyvault

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"math/big"
	"slices"
	"strings"
	"time"

	pkcs12 "software.sslmate.com/src/go-pkcs12"

	"github.com/kvsync/kvsync/fakevault/pki"
)

// Content types of the secret that backs a certificate.
const (
	// ContentTypePEM: private key (PKCS#8) then the certificate chain, leaf
	// first, in PEM.
	ContentTypePEM = "application/x-pem-file"
	// ContentTypePKCS12: a password-less PKCS#12 (PFX) file, base64.
	ContentTypePKCS12 = "application/x-pkcs12"
)

// CertificateOptions describe a certificate to create in a vault.
type CertificateOptions struct {
	// CA issues the certificate. Required.
	CA *pki.CA
	// CommonName is the subject common name; the certificate name when
	// empty.
	CommonName string
	// DNSNames are the subject alternative names.
	DNSNames []string
	// KeyType is the key type; RSA-2048 (the Key Vault default) when empty.
	KeyType pki.KeyType
	// ContentType is ContentTypePKCS12 (the default) or ContentTypePEM: the
	// format of the backing secret's value.
	ContentType string
	// NotBefore and NotAfter bound validity; see pki.LeafOptions.
	NotBefore, NotAfter time.Time
	// Tags are the certificate version's tags (copied to its secret and key).
	Tags map[string]string
	// Disabled creates the version disabled, with its secret and key.
	Disabled bool
}

// Certificate is a certificate version created in a vault.
type Certificate struct {
	// Name and Version identify the certificate, its backing secret and its
	// backing key: all three share them.
	Name, Version string
	// Leaf is the issued certificate, its private key and chain.
	Leaf *pki.Leaf
}

// ErrNameInUse is wrapped when a certificate would take the name of a
// standalone secret or key.
var ErrNameInUse = errors.New("name is used by another object")

// CreateCertificate issues a certificate from opts.CA and stores it as the
// service stores certificates: a certificate version, a managed secret
// version holding the private key and chain (PEM or PKCS#12, per
// opts.ContentType) whose kid names the key, and a managed key version
// holding the public key, all three with the same name and version ID.
func (v *Vault) CreateCertificate(name string, opts CertificateOptions) (*Certificate, error) {
	if !ValidObjectName(name) {
		return nil, fmt.Errorf("creating certificate in vault %q: %w", v.cfg.Name, errInvalidName(name))
	}
	if opts.CA == nil {
		return nil, fmt.Errorf("creating certificate %q in vault %q: %w: a CA is required", name, v.cfg.Name, ErrInvalidConfig)
	}
	if opts.ContentType == "" {
		opts.ContentType = ContentTypePKCS12
	}
	if opts.ContentType != ContentTypePEM && opts.ContentType != ContentTypePKCS12 {
		return nil, fmt.Errorf("creating certificate %q in vault %q: %w: content type %q is neither %s nor %s",
			name, v.cfg.Name, ErrInvalidConfig, opts.ContentType, ContentTypePEM, ContentTypePKCS12)
	}
	if opts.KeyType == "" {
		opts.KeyType = pki.RSA2048
	}
	cn := opts.CommonName
	if cn == "" {
		cn = name
	}
	leaf, err := opts.CA.Issue(pki.LeafOptions{CommonName: cn, DNSNames: opts.DNSNames, KeyType: opts.KeyType,
		NotBefore: opts.NotBefore, NotAfter: opts.NotAfter, Client: true})
	if err != nil {
		return nil, fmt.Errorf("creating certificate %q in vault %q: %w", name, v.cfg.Name, err)
	}
	cv := &certVersion{id: newVersionID(), leaf: leaf, keyType: opts.KeyType, contentType: opts.ContentType,
		dnsNames: slices.Clone(opts.DNSNames), tags: maps.Clone(opts.Tags), enabled: !opts.Disabled}
	value, err := renderCertificateSecret(cv, opts.ContentType)
	if err != nil {
		return nil, fmt.Errorf("creating certificate %q in vault %q: %w", name, v.cfg.Name, err)
	}
	kty, ops := keyTypeOf(leaf.Key.Public())

	v.mu.Lock()
	defer v.mu.Unlock()
	now := v.now()
	v.expireLocked(now)
	key := strings.ToLower(name)
	if s := v.secrets[key]; s != nil && !s.managed() {
		return nil, fmt.Errorf("creating certificate %q in vault %q: %w: a secret has that name", name, v.cfg.Name, ErrNameInUse)
	}
	if k := v.keys[key]; k != nil && !k.latest().managed {
		return nil, fmt.Errorf("creating certificate %q in vault %q: %w: a key has that name", name, v.cfg.Name, ErrNameInUse)
	}
	if d := v.deletedSecrets[key]; d != nil {
		return nil, fmt.Errorf("creating certificate %q in vault %q: %w", name, v.cfg.Name, errDeletedButRecoverable(kindSecret, d.name))
	}
	cv.created, cv.updated = now, now
	notBefore, expires := leaf.Certificate.NotBefore, leaf.Certificate.NotAfter

	ci := v.certs[key]
	if ci == nil {
		ci = &certItem{name: name}
		v.certs[key] = ci
	}
	ci.versions = append(ci.versions, cv)

	si := v.secrets[key]
	if si == nil {
		si = &secretItem{name: ci.name}
		v.secrets[key] = si
	}
	si.versions = append(si.versions, &secretVersion{id: cv.id, value: value, contentType: opts.ContentType,
		tags: maps.Clone(opts.Tags), enabled: cv.enabled, notBefore: notBefore, expires: expires,
		created: now, updated: now, cert: cv})

	ki := v.keys[key]
	if ki == nil {
		ki = &keyItem{name: ci.name}
		v.keys[key] = ki
	}
	ki.versions = append(ki.versions, &keyVersion{id: cv.id, public: leaf.Key.Public(), kty: kty, ops: ops,
		tags: maps.Clone(opts.Tags), enabled: cv.enabled, notBefore: notBefore, expires: expires,
		created: now, updated: now, managed: true})

	return &Certificate{Name: ci.name, Version: cv.id, Leaf: leaf}, nil
}

// SetCertificateEnabled enables or disables one version of a certificate
// (the latest when version is empty) together with its secret and key
// versions, as the service does.
func (v *Vault) SetCertificateEnabled(name, version string, enabled bool) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	_, cv, e := v.findCertLocked(name, version)
	if e != nil {
		return fmt.Errorf("vault %q: %w", v.cfg.Name, e)
	}
	now := v.now()
	cv.enabled, cv.updated = enabled, now
	if _, sv, e := v.findSecretLocked(name, cv.id); e == nil {
		sv.enabled, sv.updated = enabled, now
	}
	if kv, e := v.findKeyLocked(name, cv.id); e == nil {
		kv.enabled, kv.updated = enabled, now
	}
	return nil
}

// CertificateVersions lists the versions of a certificate, oldest first.
func (v *Vault) CertificateVersions(name string) ([]VersionInfo, error) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	item := v.certs[strings.ToLower(name)]
	if item == nil {
		return nil, fmt.Errorf("vault %q: %w", v.cfg.Name, errObjectNotFound(kindCertificate, name))
	}
	out := make([]VersionInfo, 0, len(item.versions))
	for _, cv := range item.versions {
		out = append(out, VersionInfo{Version: cv.id, Enabled: cv.enabled, Created: cv.created, Updated: cv.updated, ContentType: cv.contentType})
	}
	return out, nil
}

// renderCertificateSecret renders the value of the secret that backs cv in
// the given content type.
func renderCertificateSecret(cv *certVersion, contentType string) (string, error) {
	leaf := cv.leaf
	switch contentType {
	case ContentTypePEM:
		keyPEM, err := leaf.KeyPEM()
		if err != nil {
			return "", err
		}
		return string(keyPEM) + string(leaf.CertPEM()), nil
	case ContentTypePKCS12:
		var chain []*x509.Certificate
		for _, der := range leaf.Chain[1:] {
			c, err := x509.ParseCertificate(der)
			if err != nil {
				return "", fmt.Errorf("parsing chain certificate: %w", err)
			}
			chain = append(chain, c)
		}
		pfx, err := pkcs12.LegacyDES.Encode(leaf.Key, leaf.Certificate, chain, "")
		if err != nil {
			return "", fmt.Errorf("encoding PKCS#12: %w", err)
		}
		return base64.StdEncoding.EncodeToString(pfx), nil
	}
	return "", fmt.Errorf("unknown certificate content type %q", contentType)
}

// keyTypeOf returns the JWK key type and the operations Key Vault permits
// for a key of that type.
func keyTypeOf(pub crypto.PublicKey) (string, []string) {
	if _, ok := pub.(*ecdsa.PublicKey); ok {
		return "EC", []string{"sign", "verify"}
	}
	return "RSA", []string{"sign", "verify", "wrapKey", "unwrapKey", "encrypt", "decrypt"}
}

// jwk is the public JSON Web Key as the service answers it.
type jwk struct {
	KID    string   `json:"kid"`
	KTY    string   `json:"kty"`
	KeyOps []string `json:"key_ops"`
	N      string   `json:"n,omitempty"`
	E      string   `json:"e,omitempty"`
	CRV    string   `json:"crv,omitempty"`
	X      string   `json:"x,omitempty"`
	Y      string   `json:"y,omitempty"`
}

func publicJWK(kid, kty string, ops []string, pub crypto.PublicKey) jwk {
	k := jwk{KID: kid, KTY: kty, KeyOps: ops}
	b64 := base64.RawURLEncoding.EncodeToString
	switch p := pub.(type) {
	case *rsa.PublicKey:
		k.N = b64(p.N.Bytes())
		k.E = b64(big.NewInt(int64(p.E)).Bytes())
	case *ecdsa.PublicKey:
		raw, err := p.Bytes()
		if err == nil && len(raw) > 1 {
			coord := raw[1:]
			k.X = b64(coord[:len(coord)/2])
			k.Y = b64(coord[len(coord)/2:])
		}
		switch p.Curve {
		case elliptic.P256():
			k.CRV = "P-256"
		case elliptic.P384():
			k.CRV = "P-384"
		case elliptic.P521():
			k.CRV = "P-521"
		}
	}
	return k
}

// x5t is the base64url SHA-1 thumbprint of a DER certificate.
func x5t(der []byte) string {
	sum := sha1.Sum(der)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
