package provider

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"
	"software.sslmate.com/src/go-pkcs12"
)

// Content types of certificate-backed secrets.
const (
	contentTypePEM    = "application/x-pem-file"
	contentTypePKCS12 = "application/x-pkcs12"
)

// file is one file of a Mount response.
type file struct {
	path     string
	mode     int32
	contents []byte
}

// objectVersion is the version of one object read, by id.
type objectVersion struct {
	id, version string
}

// fetched is the raw material of one object version.
type fetched struct {
	version     string
	value       []byte // secret value, DER certificate or PEM public key
	contentType string
	certBacked  bool
}

// versionInfo is one version of an object in a versions list.
type versionInfo struct {
	id      string
	created time.Time
	enabled bool
}

// errObjectData marks an object whose vault content cannot be rendered as
// asked (e.g. objectFormat pfx on a plain secret). It is not a parameter
// error: the class is valid, the vault content does not fit it.
var errObjectData = errors.New("object content does not fit its parameters")

// readObject reads one object (or its version history) and renders its
// files.
func readObject(ctx context.Context, c *vaultClients, o object) ([]file, []objectVersion, error) {
	if o.VersionHistory > 1 {
		versions, err := listVersions(ctx, c, o)
		if err != nil {
			return nil, nil, err
		}
		var files []file
		var ovs []objectVersion
		for i, v := range versions {
			f, err := get(ctx, c, o, v.id)
			if err != nil {
				return nil, nil, err
			}
			content, err := render(o, f)
			if err != nil {
				return nil, nil, err
			}
			path := o.path() + "/" + strconv.Itoa(i)
			files = append(files, file{path: path, mode: o.mode, contents: content.main})
			ovs = append(ovs, objectVersion{id: o.Type + "/" + path, version: f.version})
		}
		if len(files) == 0 {
			return nil, nil, fmt.Errorf("%s in key vault has no enabled version: %w", o.describe(), errNoEnabledVersion)
		}
		return files, ovs, nil
	}

	f, err := get(ctx, c, o, o.Version)
	if err != nil {
		return nil, nil, err
	}
	content, err := render(o, f)
	if err != nil {
		return nil, nil, err
	}
	files := []file{{path: o.path(), mode: o.mode, contents: content.main}}
	if content.tlsCrt != nil {
		files = append(files,
			file{path: o.path() + "/tls.crt", mode: o.mode, contents: content.tlsCrt},
			file{path: o.path() + "/tls.key", mode: o.mode, contents: content.tlsKey})
	}
	return files, []objectVersion{{id: o.Type + "/" + o.path(), version: f.version}}, nil
}

// errNoEnabledVersion: a version history found no enabled version.
var errNoEnabledVersion = errors.New("no enabled version")

// get reads one version of an object ("" is the newest).
func get(ctx context.Context, c *vaultClients, o object, version string) (fetched, error) {
	switch o.Type {
	case typeKey:
		resp, err := c.keys.GetKey(ctx, o.Name, version, nil)
		if err != nil {
			return fetched{}, err
		}
		pemBytes, err := publicKeyPEM(resp.Key)
		if err != nil {
			return fetched{}, fmt.Errorf("%s: %w: %w", o.describe(), errObjectData, err)
		}
		return fetched{version: keyVersion(resp.Key), value: pemBytes}, nil
	case typeCert:
		resp, err := c.certs.GetCertificate(ctx, o.Name, version, nil)
		if err != nil {
			return fetched{}, err
		}
		if len(resp.CER) == 0 {
			return fetched{}, fmt.Errorf("%s: %w: the vault returned no certificate", o.describe(), errObjectData)
		}
		v := ""
		if resp.ID != nil {
			v = resp.ID.Version()
		}
		return fetched{version: v, value: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: resp.CER})}, nil
	}
	resp, err := c.secrets.GetSecret(ctx, o.Name, version, nil)
	if err != nil {
		return fetched{}, err
	}
	f := fetched{}
	if resp.ID != nil {
		f.version = resp.ID.Version()
	}
	if resp.Value != nil {
		f.value = []byte(*resp.Value)
	}
	if resp.ContentType != nil {
		f.contentType = *resp.ContentType
	}
	managed := resp.Managed != nil && *resp.Managed
	f.certBacked = (managed || resp.KID != nil) && (f.contentType == contentTypePEM || f.contentType == contentTypePKCS12)
	return f, nil
}

func keyVersion(k *azkeys.JSONWebKey) string {
	if k == nil || k.KID == nil {
		return ""
	}
	return k.KID.Version()
}

// listVersions returns the newest o.VersionHistory enabled versions of an
// object, newest first.
func listVersions(ctx context.Context, c *vaultClients, o object) ([]versionInfo, error) {
	var all []versionInfo
	add := func(id string, created *time.Time, enabled *bool) {
		v := versionInfo{id: id, enabled: enabled == nil || *enabled}
		if created != nil {
			v.created = *created
		}
		all = append(all, v)
	}
	switch o.Type {
	case typeKey:
		pager := c.keys.NewListKeyPropertiesVersionsPager(o.Name, nil)
		for pager.More() {
			page, err := pager.NextPage(ctx)
			if err != nil {
				return nil, err
			}
			for _, k := range page.Value {
				if k.KID != nil && k.Attributes != nil {
					add(k.KID.Version(), k.Attributes.Created, k.Attributes.Enabled)
				}
			}
		}
	case typeCert:
		pager := c.certs.NewListCertificatePropertiesVersionsPager(o.Name, nil)
		for pager.More() {
			page, err := pager.NextPage(ctx)
			if err != nil {
				return nil, err
			}
			for _, cp := range page.Value {
				if cp.ID != nil && cp.Attributes != nil {
					add(cp.ID.Version(), cp.Attributes.Created, cp.Attributes.Enabled)
				}
			}
		}
	default:
		pager := c.secrets.NewListSecretPropertiesVersionsPager(o.Name, nil)
		for pager.More() {
			page, err := pager.NextPage(ctx)
			if err != nil {
				return nil, err
			}
			for _, sp := range page.Value {
				if sp.ID != nil && sp.Attributes != nil {
					add(sp.ID.Version(), sp.Attributes.Created, sp.Attributes.Enabled)
				}
			}
		}
	}
	all = slices.DeleteFunc(all, func(v versionInfo) bool { return !v.enabled })
	slices.SortStableFunc(all, func(a, b versionInfo) int { return b.created.Compare(a.created) })
	// Creation times have one-second resolution, and the service lists
	// versions by version ID, not by creation: the list cannot order
	// versions created within one second. When the newest are such, the
	// object's current version (a read without a version) is the newest;
	// the order of older versions within one second stays the listed one.
	if len(all) > 1 && all[0].created.Equal(all[1].created) {
		current, err := get(ctx, c, o, "")
		if err == nil {
			if i := slices.IndexFunc(all, func(v versionInfo) bool { return strings.EqualFold(v.id, current.version) }); i > 0 {
				newest := all[i]
				all = slices.Insert(slices.Delete(all, i, i+1), 0, newest)
			}
		}
	}
	if len(all) > int(o.VersionHistory) {
		all = all[:o.VersionHistory]
	}
	return all, nil
}

// rendered is the file content of one object version: main, and for a
// certificate-backed secret in PEM format also the certificate chain and the
// private key on their own.
type rendered struct {
	main, tlsCrt, tlsKey []byte
}

// render turns fetched material into file content as the object asks.
func render(o object, f fetched) (rendered, error) {
	if o.Type != typeSecret {
		return rendered{main: f.value}, nil
	}
	if f.certBacked {
		return renderCertificateSecret(o, f)
	}
	if o.Format == formatPFX {
		return rendered{}, fmt.Errorf("%s: %w: objectFormat pfx needs a certificate's PKCS#12 secret (content type %s), but the secret's content type is %q",
			o.describe(), errObjectData, contentTypePKCS12, f.contentType)
	}
	decoded, err := decode(o.Encoding, f.value)
	if err != nil {
		return rendered{}, fmt.Errorf("%s: %w: the value is not %s encoded as objectEncoding says: %w", o.describe(), errObjectData, o.Encoding, err)
	}
	return rendered{main: decoded}, nil
}

// renderCertificateSecret renders the secret of a certificate: PKCS#12 as it
// is (objectFormat pfx), or PEM with the private key first, then the chain.
func renderCertificateSecret(o object, f fetched) (rendered, error) {
	if o.Format == formatPFX {
		if f.contentType != contentTypePKCS12 {
			return rendered{}, fmt.Errorf("%s: %w: objectFormat pfx needs content type %s, but the certificate's secret is %s; create the certificate with content type %s",
				o.describe(), errObjectData, contentTypePKCS12, f.contentType, contentTypePKCS12)
		}
		decoded, err := decode(o.Encoding, f.value)
		if err != nil {
			return rendered{}, fmt.Errorf("%s: %w: the PKCS#12 value is not %s encoded: %w", o.describe(), errObjectData, o.Encoding, err)
		}
		return rendered{main: decoded}, nil
	}
	key, chain, err := parseCertificateSecret(f.contentType, f.value)
	if err != nil {
		return rendered{}, fmt.Errorf("%s: %w: %w", o.describe(), errObjectData, err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return rendered{}, fmt.Errorf("%s: %w: encoding the private key: %w", o.describe(), errObjectData, err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	var chainPEM []byte
	for _, c := range chain {
		chainPEM = append(chainPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return rendered{main: append(slices.Clone(keyPEM), chainPEM...), tlsCrt: chainPEM, tlsKey: keyPEM}, nil
}

// parseCertificateSecret returns the private key and the certificate chain
// (leaf first) of a certificate's secret.
func parseCertificateSecret(contentType string, value []byte) (any, []*x509.Certificate, error) {
	if contentType == contentTypePKCS12 {
		der, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(value)))
		if err != nil {
			return nil, nil, fmt.Errorf("the PKCS#12 secret is not base64: %w", err)
		}
		key, leaf, cas, err := pkcs12.DecodeChain(der, "")
		if err != nil {
			return nil, nil, fmt.Errorf("decoding the PKCS#12 secret: %w", err)
		}
		return key, append([]*x509.Certificate{leaf}, cas...), nil
	}
	var key any
	var chain []*x509.Certificate
	rest := value
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		switch {
		case block.Type == "CERTIFICATE":
			c, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				return nil, nil, fmt.Errorf("parsing a certificate of the PEM secret: %w", err)
			}
			chain = append(chain, c)
		case strings.HasSuffix(block.Type, "PRIVATE KEY") && key == nil:
			k, err := parsePrivateKey(block)
			if err != nil {
				return nil, nil, err
			}
			key = k
		}
	}
	if key == nil || len(chain) == 0 {
		return nil, nil, errors.New("the PEM secret does not hold both a private key and a certificate")
	}
	return key, chain, nil
}

func parsePrivateKey(block *pem.Block) (any, error) {
	if k, err := x509.ParsePKCS8PrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	if k, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	if k, err := x509.ParseECPrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	return nil, fmt.Errorf("the PEM secret's %s block is not a PKCS#8, PKCS#1 or EC private key", block.Type)
}

// decode decodes a secret value by objectEncoding.
func decode(encoding string, value []byte) ([]byte, error) {
	switch encoding {
	case encodingBase64:
		return base64.StdEncoding.DecodeString(strings.TrimSpace(string(value)))
	case encodingHex:
		return hex.DecodeString(strings.TrimSpace(string(value)))
	}
	return value, nil
}

// publicKeyPEM encodes the public part of a JSON web key as a PKIX PEM
// "PUBLIC KEY".
func publicKeyPEM(k *azkeys.JSONWebKey) ([]byte, error) {
	if k == nil || k.Kty == nil {
		return nil, errors.New("the vault returned no key")
	}
	var pub any
	switch *k.Kty {
	case azkeys.KeyTypeRSA, azkeys.KeyTypeRSAHSM:
		if len(k.N) == 0 || len(k.E) == 0 {
			return nil, errors.New("the RSA key has no modulus or exponent")
		}
		pub = &rsa.PublicKey{N: new(big.Int).SetBytes(k.N), E: int(new(big.Int).SetBytes(k.E).Int64())}
	case azkeys.KeyTypeEC, azkeys.KeyTypeECHSM:
		if k.Crv == nil {
			return nil, errors.New("the EC key has no curve")
		}
		var curve elliptic.Curve
		switch *k.Crv {
		case azkeys.CurveNameP256:
			curve = elliptic.P256()
		case azkeys.CurveNameP384:
			curve = elliptic.P384()
		case azkeys.CurveNameP521:
			curve = elliptic.P521()
		default:
			return nil, fmt.Errorf("the EC curve %s is not supported", *k.Crv)
		}
		pub = &ecdsa.PublicKey{Curve: curve, X: new(big.Int).SetBytes(k.X), Y: new(big.Int).SetBytes(k.Y)}
	default:
		return nil, fmt.Errorf("key type %s has no public key to write", *k.Kty)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("encoding the public key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}
