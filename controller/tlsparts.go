package controller

import (
	"encoding/pem"

	corev1 "k8s.io/api/core/v1"
)

// tlsPart is what a kubernetes.io/tls Secret's key takes from an object's
// content, as the Secret Store extension's controller does: from a PEM
// bundle of certificates and a private key (a certificate-backed secret
// read whole), tls.crt keeps the certificates and tls.key the private key.
// Content that is no such bundle (a part already, or no PEM) is kept as it
// is, for the key pair check to judge.
func tlsPart(targetKey string, content []byte) []byte {
	var certs, key []byte
	rest := content
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		switch block.Type {
		case "CERTIFICATE":
			certs = append(certs, pem.EncodeToMemory(block)...)
		case "PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY":
			if key == nil {
				key = pem.EncodeToMemory(block)
			}
		}
	}
	if certs == nil || key == nil {
		return content
	}
	switch targetKey {
	case corev1.TLSCertKey:
		return certs
	case corev1.TLSPrivateKeyKey:
		return key
	}
	return content
}
