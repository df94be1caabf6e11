package upstreamprovider

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"

	"golang.org/x/crypto/pkcs12"
)

const pemCertificate = "CERTIFICATE"

// pkcs12ToPEM converts the base64 PKCS#12 value of a certificate's secret
// (no password) to PEM as upstream does, with the PKCS#12 decoder upstream
// uses: every private key first, as a PKCS#8 "PRIVATE KEY" block, then
// every certificate, without PEM headers. With constructChain the certificates
// are put leaf first (see orderChain).
func pkcs12ToPEM(value string, constructChain bool) (string, error) {
	raw, err := base64.StdEncoding.DecodeString(value)
	if err != nil {
		return "", err
	}
	blocks, err := pkcs12.ToPEM(raw, "")
	if err != nil {
		return "", err
	}
	var keys, certs []byte
	for _, b := range blocks {
		if b.Type == pemCertificate {
			certs = append(certs, pem.EncodeToMemory(&pem.Block{Type: b.Type, Bytes: b.Bytes})...)
			continue
		}
		key, err := parsePrivateKey(b.Bytes)
		if err != nil {
			return "", err
		}
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return "", err
		}
		keys = append(keys, pem.EncodeToMemory(&pem.Block{Type: b.Type, Bytes: der})...)
	}
	if constructChain {
		if certs, err = orderChain(certs); err != nil {
			return "", err
		}
	}
	return string(keys) + string(certs), nil
}

// parsePrivateKey reads a DER private key as PKCS#1, PKCS#8 or SEC 1, in
// upstream's order.
func parsePrivateKey(der []byte) (any, error) {
	if k, err := x509.ParsePKCS1PrivateKey(der); err == nil {
		return k, nil
	}
	if k, err := x509.ParsePKCS8PrivateKey(der); err == nil {
		return k, nil
	}
	if k, err := x509.ParseECPrivateKey(der); err == nil {
		return k, nil
	}
	return nil, errors.New("failed to parse key for type pkcs1, pkcs8 or ec")
}

// orderChain reorders PEM certificates leaf first, each followed by its
// issuer, as upstream's construct-pem-chain does. A certificate's issuer
// is the first other certificate whose subject key ID equals its authority
// key ID; the leaf is the first certificate that issues none of the
// others. When the certificates do not form one chain from the leaf, the
// input is returned unchanged; no leaf at all, a cycle or a certificate
// that does not parse is an error.
func orderChain(certPEM []byte) ([]byte, error) {
	var certs []*x509.Certificate
	for rest := certPEM; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, err
		}
		certs = append(certs, c)
	}

	issuer := make([]int, len(certs))
	issuesAnother := make([]bool, len(certs))
	for i, c := range certs {
		issuer[i] = -1
		for j, candidate := range certs {
			if i == j || (c.AuthorityKeyId == nil && candidate.SubjectKeyId == nil) {
				continue
			}
			if bytes.Equal(c.AuthorityKeyId, candidate.SubjectKeyId) {
				issuer[i], issuesAnother[j] = j, true
				break
			}
		}
	}
	leaf := -1
	for i := range certs {
		if !issuesAnother[i] {
			leaf = i
			break
		}
	}
	if leaf < 0 {
		return nil, errors.New("no leaf found")
	}
	var chain []int
	for n := leaf; n >= 0; n = issuer[n] {
		if len(chain) == len(certs) {
			return nil, errors.New("constructing chain resulted in cycle")
		}
		chain = append(chain, n)
	}
	if len(chain) != len(certs) {
		return certPEM, nil
	}
	var out []byte
	for _, n := range chain {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: pemCertificate, Bytes: certs[n].Raw})...)
	}
	return out, nil
}

// splitCertAndKey splits PEM content into its certificate blocks and its
// other (key) blocks, each re-encoded in order. Either may be empty.
func splitCertAndKey(content string) (certs, key string) {
	var c, k []byte
	for rest := []byte(content); ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if b.Type == pemCertificate {
			c = append(c, pem.EncodeToMemory(b)...)
		} else {
			k = append(k, pem.EncodeToMemory(b)...)
		}
	}
	return string(c), string(k)
}
