package controller

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"testing"
	"time"
)

// certificateBundle is a certificate-backed secret as Key Vault returns it
// in PEM: the private key, then the certificate.
func certificateBundle(t *testing.T) (bundle, certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "web.example"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), DNSNames: []string{"web.example"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	return append(append([]byte{}, keyPEM...), certPEM...), certPEM, keyPEM
}

func TestATLSSecretTakesTheCertificatesAndTheKeyOfAWholeCertificateObject(t *testing.T) {
	bundle, certPEM, keyPEM := certificateBundle(t)
	crt, key := tlsPart("tls.crt", bundle), tlsPart("tls.key", bundle)
	if !bytes.Equal(crt, certPEM) || !bytes.Equal(key, keyPEM) {
		t.Fatalf("tls.crt = %q..., tls.key = %q...: want the certificate and the key alone", crt[:min(40, len(crt))], key[:min(40, len(key))])
	}
	if _, err := tls.X509KeyPair(crt, key); err != nil {
		t.Errorf("the parts do not form a key pair: %v", err)
	}
	for name, content := range map[string][]byte{"a part already": certPEM, "no PEM": []byte("kvsync-canary")} {
		if got := tlsPart("tls.crt", content); !bytes.Equal(got, content) {
			t.Errorf("%s: tls.crt changed to %q", name, got)
		}
	}
}
