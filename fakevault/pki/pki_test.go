package pki

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestIssuedCertificatesVerifyAgainstTheCA(t *testing.T) {
	ca, err := NewCA("kvsync fake CA")
	if err != nil {
		t.Fatal(err)
	}
	for _, kt := range []KeyType{RSA2048, ECP256, ECP384} {
		leaf, err := ca.Issue(LeafOptions{DNSNames: []string{"*.vault.azure.net"}, KeyType: kt})
		if err != nil {
			t.Fatalf("%s: %v", kt, err)
		}
		_, err = leaf.Certificate.Verify(x509.VerifyOptions{DNSName: "contoso.vault.azure.net", Roots: ca.Pool()})
		if err != nil {
			t.Errorf("%s: verify: %v", kt, err)
		}
		switch kt {
		case RSA2048:
			if _, ok := leaf.Key.(*rsa.PrivateKey); !ok {
				t.Errorf("%s: key is %T", kt, leaf.Key)
			}
		default:
			if _, ok := leaf.Key.(*ecdsa.PrivateKey); !ok {
				t.Errorf("%s: key is %T", kt, leaf.Key)
			}
		}
		keyPEM, err := leaf.KeyPEM()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tls.X509KeyPair(leaf.CertPEM(), keyPEM); err != nil {
			t.Errorf("%s: PEM pair does not load: %v", kt, err)
		}
	}
}

func TestCAPEMIsABundleClientsCanTrust(t *testing.T) {
	ca, err := NewCA("kvsync fake CA")
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(ca.CertPEM())
	if block == nil || block.Type != "CERTIFICATE" {
		t.Fatalf("CertPEM is not a PEM certificate")
	}
	leaf, err := ca.Issue(LeafOptions{DNSNames: []string{"login.microsoftonline.com"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(204) }))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{leaf.TLSCertificate()}}
	srv.StartTLS()
	defer srv.Close()

	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.CertPEM())
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := client.Get(srv.URL)
	if err != nil {
		t.Fatalf("GET over TLS with the CA bundle: %v", err)
	}
	resp.Body.Close()
}

func TestIssueNeedsAName(t *testing.T) {
	ca, err := NewCA("ca")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ca.Issue(LeafOptions{}); err == nil {
		t.Error("Issue without a name succeeded")
	}
	if _, err := NewKey("DSA-1024"); err == nil {
		t.Error("NewKey accepted an unknown key type")
	}
}

// newCAWithKey returns a new CA named name and its key in PEM form.
func newCAWithKey(t *testing.T, name string) (*CA, []byte) {
	t.Helper()
	ca, err := NewCA(name)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := ca.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	return ca, keyPEM
}

func TestLoadCAReadsBackWhatCertPEMAndKeyPEMWrote(t *testing.T) {
	ca, keyPEM := newCAWithKey(t, "kvsync fake CA")
	loaded, err := LoadCA(ca.CertPEM(), keyPEM)
	if err != nil {
		t.Fatalf("LoadCA: %v", err)
	}
	if !loaded.Certificate().Equal(ca.Certificate()) {
		t.Fatal("the loaded CA has another certificate")
	}
	leaf, err := loaded.Issue(LeafOptions{DNSNames: []string{"contoso.vault.azure.net"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := leaf.Certificate.Verify(x509.VerifyOptions{DNSName: "contoso.vault.azure.net", Roots: ca.Pool()}); err != nil {
		t.Errorf("a certificate the loaded CA issued does not verify against the original's bundle: %v", err)
	}
}

func TestLoadCARefusesWhatIsNotTheCAsOwnPair(t *testing.T) {
	ca, _ := newCAWithKey(t, "ca")
	_, otherKey := newCAWithKey(t, "other")
	leaf, err := ca.Issue(LeafOptions{DNSNames: []string{"leaf.example"}})
	if err != nil {
		t.Fatal(err)
	}
	leafKey, err := leaf.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	leafCert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Chain[0]})
	for _, tc := range []struct {
		name      string
		cert, key []byte
	}{
		{"a key of another CA", ca.CertPEM(), otherKey},
		{"a leaf certificate, not a CA", leafCert, leafKey},
		{"no certificate", nil, otherKey},
		{"a key where the certificate goes", otherKey, otherKey},
		{"no key", ca.CertPEM(), nil},
		{"a certificate where the key goes", ca.CertPEM(), ca.CertPEM()},
	} {
		if _, err := LoadCA(tc.cert, tc.key); err == nil {
			t.Errorf("LoadCA accepted %s", tc.name)
		}
	}
}
