package upstreamprovider

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"slices"
	"testing"
	"time"

	"software.sslmate.com/src/go-pkcs12"
)

// chain is a root, an intermediate it issued and a leaf the intermediate
// issued, with the leaf's key.
type chain struct {
	root, intermediate, leaf *x509.Certificate
	leafKey                  *ecdsa.PrivateKey
}

func newChain(t *testing.T) chain {
	t.Helper()
	issue := func(cn string, isCA bool, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		must(t, err)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: isCA, BasicConstraintsValid: true,
			KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign}
		if parent == nil {
			parent, parentKey = tmpl, key
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
		must(t, err)
		cert, err := x509.ParseCertificate(der)
		must(t, err)
		return cert, key
	}
	root, rootKey := issue("root", true, nil, nil)
	intermediate, intermediateKey := issue("intermediate", true, root, rootKey)
	leaf, leafKey := issue("leaf", false, intermediate, intermediateKey)
	return chain{root: root, intermediate: intermediate, leaf: leaf, leafKey: leafKey}
}

// blocks returns the types of the PEM blocks and the certificates' common
// names.
func blocks(t *testing.T, data []byte) (types, names []string) {
	t.Helper()
	for rest := data; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			return types, names
		}
		types = append(types, b.Type)
		if b.Type == "CERTIFICATE" {
			c, err := x509.ParseCertificate(b.Bytes)
			must(t, err)
			names = append(names, c.Subject.CommonName)
		}
	}
}

func certsPEM(certs ...*x509.Certificate) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out
}

func TestOrderChainPutsTheLeafFirstThenEachIssuer(t *testing.T) {
	c := newChain(t)
	for _, tc := range []struct {
		name  string
		in    []*x509.Certificate
		want  []string
		isErr string
	}{
		{name: "a shuffled complete chain is ordered from the leaf", in: []*x509.Certificate{c.root, c.leaf, c.intermediate}, want: []string{"leaf", "intermediate", "root"}},
		{name: "an ordered chain stays as it is", in: []*x509.Certificate{c.leaf, c.intermediate, c.root}, want: []string{"leaf", "intermediate", "root"}},
		{name: "an incomplete chain keeps its order", in: []*x509.Certificate{c.root, c.leaf}, want: []string{"root", "leaf"}},
		{name: "a lone certificate is its own chain", in: []*x509.Certificate{c.intermediate}, want: []string{"intermediate"}},
		{name: "no certificate at all has no leaf", in: nil, isErr: "no leaf found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := orderChain(certsPEM(tc.in...))
			if tc.isErr != "" {
				if err == nil || err.Error() != tc.isErr {
					t.Fatalf("err %v, want %q", err, tc.isErr)
				}
				return
			}
			must(t, err)
			if _, names := blocks(t, out); !slices.Equal(names, tc.want) {
				t.Errorf("order %v, want %v", names, tc.want)
			}
		})
	}
}

func TestPKCS12IsRenderedKeyFirstWithTheChainOrderedUnlessDisabled(t *testing.T) {
	c := newChain(t)
	pfx, err := pkcs12.LegacyDES.Encode(c.leafKey, c.leaf, []*x509.Certificate{c.root, c.intermediate}, "")
	must(t, err)
	value := base64.StdEncoding.EncodeToString(pfx)
	for _, tc := range []struct {
		name           string
		constructChain bool
		want           []string
	}{
		{name: "with construct-pem-chain the certificates are ordered from the leaf", constructChain: true, want: []string{"leaf", "intermediate", "root"}},
		{name: "without it they keep the archive's order", constructChain: false, want: []string{"leaf", "root", "intermediate"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := pkcs12ToPEM(value, tc.constructChain)
			must(t, err)
			types, names := blocks(t, []byte(out))
			if !slices.Equal(types, []string{"PRIVATE KEY", "CERTIFICATE", "CERTIFICATE", "CERTIFICATE"}) || !slices.Equal(names, tc.want) {
				t.Errorf("blocks %v, certificates %v; want the key then %v", types, names, tc.want)
			}
			key, _ := pem.Decode([]byte(out))
			if _, err := x509.ParsePKCS8PrivateKey(key.Bytes); err != nil {
				t.Errorf("the key is not PKCS#8: %v", err)
			}
		})
	}
	if _, err := pkcs12ToPEM("not base64!", true); err == nil {
		t.Error("a value that is not base64 was converted")
	}
}
