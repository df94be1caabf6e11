// Package pki mints the certificates of the fake Azure services: a CA, the
// TLS certificates of *.vault.azure.net and login.microsoftonline.com that
// the CA signs, and the certificates stored in fake vaults.
//
// Everything is generated in memory, except a CA a caller keeps across
// restarts: LoadCA reads one back from the PEM its CertPEM and KeyPEM wrote.
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"time"
)

// KeyType is the kind of private key of a certificate.
type KeyType string

// Key types a certificate can have, named as Key Vault names them.
const (
	RSA2048 KeyType = "RSA-2048"
	RSA3072 KeyType = "RSA-3072"
	RSA4096 KeyType = "RSA-4096"
	ECP256  KeyType = "EC-P256"
	ECP384  KeyType = "EC-P384"
	ECP521  KeyType = "EC-P521"
)

// NewKey generates a private key of type t.
func NewKey(t KeyType) (crypto.Signer, error) {
	switch t {
	case RSA2048:
		return rsa.GenerateKey(rand.Reader, 2048)
	case RSA3072:
		return rsa.GenerateKey(rand.Reader, 3072)
	case RSA4096:
		return rsa.GenerateKey(rand.Reader, 4096)
	case ECP256, "":
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case ECP384:
		return ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case ECP521:
		return ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	}
	return nil, fmt.Errorf("unknown key type %q", t)
}

// CA is a certificate authority that signs leaf certificates.
type CA struct {
	cert *x509.Certificate
	key  crypto.Signer
	der  []byte
}

// NewCA returns a new self-signed CA with an EC P-256 key, valid for ten
// years from an hour ago.
func NewCA(commonName string) (*CA, error) {
	key, err := NewKey(ECP256)
	if err != nil {
		return nil, fmt.Errorf("generating CA key: %w", err)
	}
	serial, err := serialNumber()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName, Organization: []string{"kvsync fake"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("self-signing CA: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parsing CA certificate: %w", err)
	}
	return &CA{cert: cert, key: key, der: der}, nil
}

// LoadCA returns the CA whose certificate and PKCS#8 private key are in
// certPEM and keyPEM (as CertPEM and KeyPEM write them). It refuses a
// certificate that is not a CA, is not valid now, or does not match the key.
func LoadCA(certPEM, keyPEM []byte) (*CA, error) {
	certDER, err := decodeBlock(certPEM, "CERTIFICATE", "the certificate")
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(certDER)
	if err != nil {
		return nil, fmt.Errorf("loading CA: parsing certificate: %w", err)
	}
	if !cert.IsCA || cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, fmt.Errorf("loading CA: certificate %q is not a CA that may sign certificates", cert.Subject.CommonName)
	}
	if now := time.Now(); now.Before(cert.NotBefore) || now.After(cert.NotAfter) {
		return nil, fmt.Errorf("loading CA: certificate %q is valid from %s to %s, not now",
			cert.Subject.CommonName, cert.NotBefore.Format(time.RFC3339), cert.NotAfter.Format(time.RFC3339))
	}
	keyDER, err := decodeBlock(keyPEM, "PRIVATE KEY", "the key (PKCS#8)")
	if err != nil {
		return nil, err
	}
	parsed, err := x509.ParsePKCS8PrivateKey(keyDER)
	if err != nil {
		return nil, fmt.Errorf("loading CA: parsing private key: %w", err)
	}
	key, ok := parsed.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("loading CA: a %T cannot sign", parsed)
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("loading CA: the private key is not the key of certificate %q", cert.Subject.CommonName)
	}
	return &CA{cert: cert, key: key, der: certDER}, nil
}

// KeyPEM returns the CA's private key in PKCS#8 PEM form, for LoadCA. It is
// the key every certificate of the fake is signed with: keep it where only
// the fake reads it.
func (ca *CA) KeyPEM() ([]byte, error) { return keyPEM(ca.key) }

// Certificate returns the CA's certificate.
func (ca *CA) Certificate() *x509.Certificate { return ca.cert }

// CertPEM returns the CA's certificate in PEM form: the bundle clients trust.
func (ca *CA) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.der})
}

// Pool returns a certificate pool holding only the CA.
func (ca *CA) Pool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	return pool
}

// LeafOptions describe a certificate to issue.
type LeafOptions struct {
	// CommonName is the subject's common name; defaults to the first DNS name.
	CommonName string
	// DNSNames and IPs are the subject alternative names.
	DNSNames []string
	IPs      []net.IP
	// KeyType is the key to generate; defaults to EC-P256.
	KeyType KeyType
	// NotBefore and NotAfter bound validity; they default to an hour ago and
	// a year after NotBefore.
	NotBefore, NotAfter time.Time
	// Client marks the certificate for client authentication as well.
	Client bool
}

// Leaf is an issued certificate with its private key and chain.
type Leaf struct {
	// Certificate is the parsed leaf.
	Certificate *x509.Certificate
	// Key is the leaf's private key.
	Key crypto.Signer
	// Chain is the DER of the leaf followed by the issuing CA.
	Chain [][]byte
}

// Issue signs a new leaf certificate.
func (ca *CA) Issue(opts LeafOptions) (*Leaf, error) {
	if opts.CommonName == "" && len(opts.DNSNames) == 0 {
		return nil, errors.New("a leaf certificate needs a common name or a DNS name")
	}
	key, err := NewKey(opts.KeyType)
	if err != nil {
		return nil, err
	}
	serial, err := serialNumber()
	if err != nil {
		return nil, err
	}
	cn := opts.CommonName
	if cn == "" {
		cn = opts.DNSNames[0]
	}
	notBefore := opts.NotBefore
	if notBefore.IsZero() {
		notBefore = time.Now().Add(-time.Hour)
	}
	notAfter := opts.NotAfter
	if notAfter.IsZero() {
		notAfter = notBefore.Add(365 * 24 * time.Hour)
	}
	usage := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	if opts.Client {
		usage = append(usage, x509.ExtKeyUsageClientAuth)
	}
	keyUsage := x509.KeyUsageDigitalSignature
	if _, ok := key.(*rsa.PrivateKey); ok {
		keyUsage |= x509.KeyUsageKeyEncipherment
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn},
		DNSNames:     opts.DNSNames,
		IPAddresses:  opts.IPs,
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     keyUsage,
		ExtKeyUsage:  usage,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		return nil, fmt.Errorf("signing certificate for %q: %w", cn, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parsing certificate for %q: %w", cn, err)
	}
	return &Leaf{Certificate: cert, Key: key, Chain: [][]byte{der, ca.der}}, nil
}

// TLSCertificate returns the leaf for a tls.Config.
func (l *Leaf) TLSCertificate() tls.Certificate {
	return tls.Certificate{Certificate: l.Chain, PrivateKey: l.Key, Leaf: l.Certificate}
}

// CertPEM returns the leaf followed by its CA, in PEM form.
func (l *Leaf) CertPEM() []byte {
	var out []byte
	for _, der := range l.Chain {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	return out
}

// KeyPEM returns the private key in PKCS#8 PEM form.
func (l *Leaf) KeyPEM() ([]byte, error) { return keyPEM(l.Key) }

// keyPEM encodes key in PKCS#8 PEM form.
func keyPEM(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encoding private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// decodeBlock returns the bytes of the first PEM block of data, which must be
// of blockType; what names data in the error.
func decodeBlock(data []byte, blockType, what string) ([]byte, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != blockType {
		return nil, fmt.Errorf("loading CA: no PEM %s block in %s", blockType, what)
	}
	return block.Bytes, nil
}

func serialNumber() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("generating serial number: %w", err)
	}
	return n, nil
}
