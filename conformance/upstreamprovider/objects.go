package upstreamprovider

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
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azcertificates"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
)

// errInvalidType is upstream's error for an objectType other than secret,
// key or cert (compared case-sensitively).
var errInvalidType = errors.New("Invalid vaultObjectTypes. Should be secret, key, or cert")

// vaultClients are the clients of one Mount for its vault.
type vaultClients struct {
	secrets *azsecrets.Client
	keys    *azkeys.Client
	certs   *azcertificates.Client
}

// newVaultClients makes the Mount's credential and clients. The clients
// keep the SDK's default options (retry policy included) but the
// transport.
func (s *Server) newVaultClients(p *mountParams, vaultURL string) (*vaultClients, error) {
	cred, err := p.auth.credential(p.tenantID, p.cloud, s.opts.Transport)
	if err != nil {
		return nil, err
	}
	opts := azcore.ClientOptions{Transport: s.opts.Transport}
	c := &vaultClients{}
	if c.secrets, err = azsecrets.NewClient(vaultURL, cred, &azsecrets.ClientOptions{ClientOptions: opts}); err != nil {
		return nil, err
	}
	if c.keys, err = azkeys.NewClient(vaultURL, cred, &azkeys.ClientOptions{ClientOptions: opts}); err != nil {
		return nil, err
	}
	if c.certs, err = azcertificates.NewClient(vaultURL, cred, &azcertificates.ClientOptions{ClientOptions: opts}); err != nil {
		return nil, err
	}
	return c, nil
}

// listedVersion is one enabled version of an object in a versions list.
type listedVersion struct {
	version string
	created time.Time
}

// newestFirst sorts listed versions by creation time, newest first. It is
// sorted with sort.Sort, as upstream sorts, so that versions with equal
// creation times (the service keeps whole seconds) end up in upstream's
// order too.
type newestFirst []listedVersion

func (l newestFirst) Len() int           { return len(l) }
func (l newestFirst) Less(i, j int) bool { return l[i].created.After(l[j].created) }
func (l newestFirst) Swap(i, j int)      { l[i], l[j] = l[j], l[i] }

// resolveVersions returns the object itself when it syncs one version.
// With objectVersionHistory above 1 it lists the object's enabled
// versions, newest first, starts at objectVersion (the newest when empty
// or "latest"; nothing when that version is not listed) and returns each
// version as an object of its own, named <file>/<index>. As upstream's
// loop does, it stops only after taking more than objectVersionHistory
// versions: N+1 of them when the object has more than N.
func (c *vaultClients) resolveVersions(ctx context.Context, o object) ([]object, error) {
	if !o.syncsHistory() {
		return []object{o}, nil
	}
	listed, err := c.listVersions(ctx, o)
	if err != nil {
		return nil, err
	}
	sort.Sort(newestFirst(listed))
	base := o.fileName()
	started := o.Version == "" || o.Version == "latest"
	var out []object
	for _, v := range listed {
		started = started || v.version == o.Version
		if !started {
			continue
		}
		r := o
		r.Alias = filepath.Join(base, strconv.Itoa(len(out)))
		r.Version = v.version
		out = append(out, r)
		if len(out) > int(o.VersionHistory) {
			break
		}
	}
	return out, nil
}

// listVersions lists the enabled versions of an object. A failed list is
// returned as the SDK reports it, without the object prefix, as upstream
// returns it.
func (c *vaultClients) listVersions(ctx context.Context, o object) ([]listedVersion, error) {
	var out []listedVersion
	// A version without a creation time sorts as created at the Unix
	// epoch. The SDKs' ID.Version is "" for a nil ID.
	add := func(version string, enabled *bool, created *time.Time) {
		if enabled != nil && !*enabled {
			return
		}
		v := listedVersion{version: version, created: time.Unix(0, 0).UTC()}
		if created != nil {
			v.created = *created
		}
		out = append(out, v)
	}
	switch o.Type {
	case typeSecret:
		pager := c.secrets.NewListSecretPropertiesVersionsPager(o.Name, nil)
		for pager.More() {
			page, err := pager.NextPage(ctx)
			if err != nil {
				return nil, err
			}
			for _, s := range page.Value {
				if s != nil && s.Attributes != nil {
					add(s.ID.Version(), s.Attributes.Enabled, s.Attributes.Created)
				}
			}
		}
	case typeKey:
		pager := c.keys.NewListKeyPropertiesVersionsPager(o.Name, nil)
		for pager.More() {
			page, err := pager.NextPage(ctx)
			if err != nil {
				return nil, err
			}
			for _, k := range page.Value {
				if k != nil && k.Attributes != nil {
					add(k.KID.Version(), k.Attributes.Enabled, k.Attributes.Created)
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
				if cp != nil && cp.Attributes != nil {
					add(cp.ID.Version(), cp.Attributes.Enabled, cp.Attributes.Created)
				}
			}
		}
	default:
		return nil, o.wrap(errInvalidType)
	}
	return out, nil
}

// content is one file's worth of an object version before objectEncoding
// is applied: the suffix is added to the object's file name.
type content struct {
	value   string
	suffix  string
	version string
}

// read reads one version of an object and renders it as upstream does.
func (c *vaultClients) read(ctx context.Context, o object, opts Options) ([]content, error) {
	switch o.Type {
	case typeSecret:
		return c.readSecret(ctx, o, opts)
	case typeKey:
		return c.readKey(ctx, o)
	case typeCert:
		return c.readCertificate(ctx, o)
	}
	return nil, o.wrap(errInvalidType)
}

// readSecret reads a secret. The secret of a certificate (one with a kid)
// is PEM: as stored for application/x-pem-file, converted from PKCS#12
// for application/x-pkcs12 unless objectFormat is pfx. With
// WriteCertAndKeyInSeparateFiles it also yields <file>.crt and <file>.key,
// first.
func (c *vaultClients) readSecret(ctx context.Context, o object, opts Options) ([]content, error) {
	resp, err := c.secrets.GetSecret(ctx, o.Name, o.Version, &azsecrets.GetSecretOptions{})
	if err != nil {
		return nil, o.wrap(err)
	}
	if resp.Value == nil {
		return nil, errors.New("secret value is nil")
	}
	if resp.ID == nil {
		return nil, errors.New("secret id is nil")
	}
	value, version := *resp.Value, resp.ID.Version()
	var out []content
	if resp.KID != nil && *resp.KID != "" {
		contentType := ""
		if resp.ContentType != nil {
			contentType = *resp.ContentType
		}
		switch contentType {
		case contentTypePEM:
		case contentTypePKCS12:
			if !strings.EqualFold(o.Format, formatPFX) {
				if value, err = pkcs12ToPEM(value, !opts.DisablePEMChainConstruction); err != nil {
					return nil, o.wrap(err)
				}
			}
		default:
			return nil, o.wrap(fmt.Errorf("failed to get certificate. unknown content type '%s'", contentType))
		}
		if opts.WriteCertAndKeyInSeparateFiles {
			certs, key := splitCertAndKey(value)
			out = append(out, content{value: certs, suffix: ".crt", version: version}, content{value: key, suffix: ".key", version: version})
		}
	}
	return append(out, content{value: value, version: version}), nil
}

// readKey reads a key and renders its public key as a PKIX "PUBLIC KEY"
// PEM block: RSA, or EC on P-256, P-384 or P-521.
func (c *vaultClients) readKey(ctx context.Context, o object) ([]content, error) {
	resp, err := c.keys.GetKey(ctx, o.Name, o.Version, &azkeys.GetKeyOptions{})
	if err != nil {
		return nil, o.wrap(err)
	}
	k := resp.Key
	if k == nil {
		return nil, errors.New("key value is nil")
	}
	if k.KID == nil {
		return nil, errors.New("key id is nil")
	}
	var kty azkeys.KeyType
	if k.Kty != nil {
		kty = *k.Kty
	}
	var pub any
	switch kty {
	case azkeys.KeyTypeRSA, azkeys.KeyTypeRSAHSM:
		pub = &rsa.PublicKey{N: new(big.Int).SetBytes(k.N), E: int(new(big.Int).SetBytes(k.E).Int64())}
	case azkeys.KeyTypeEC, azkeys.KeyTypeECHSM:
		var crv azkeys.CurveName
		if k.Crv != nil {
			crv = *k.Crv
		}
		curve, err := curveOf(crv)
		if err != nil {
			return nil, o.wrap(err)
		}
		pub = &ecdsa.PublicKey{Curve: curve, X: new(big.Int).SetBytes(k.X), Y: new(big.Int).SetBytes(k.Y)}
	default:
		return nil, o.wrap(fmt.Errorf("failed to get key. key type '%s' currently not supported", kty))
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, o.wrap(err)
	}
	return []content{{value: string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), version: k.KID.Version()}}, nil
}

func curveOf(crv azkeys.CurveName) (elliptic.Curve, error) {
	switch crv {
	case azkeys.CurveNameP256:
		return elliptic.P256(), nil
	case azkeys.CurveNameP384:
		return elliptic.P384(), nil
	case azkeys.CurveNameP521:
		return elliptic.P521(), nil
	}
	return nil, fmt.Errorf("curve %s is not supported", crv)
}

// readCertificate reads a certificate and renders its DER as one
// "CERTIFICATE" PEM block.
func (c *vaultClients) readCertificate(ctx context.Context, o object) ([]content, error) {
	resp, err := c.certs.GetCertificate(ctx, o.Name, o.Version, &azcertificates.GetCertificateOptions{})
	if err != nil {
		return nil, o.wrap(err)
	}
	if resp.CER == nil {
		return nil, errors.New("certificate value is nil")
	}
	if resp.ID == nil {
		return nil, errors.New("certificate id is nil")
	}
	return []content{{value: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: resp.CER})), version: resp.ID.Version()}}, nil
}

// decodeContent applies objectEncoding to a secret's content: base64 and
// hex are decoded, utf-8 or none leave it. Other types are left as they
// are. A decoding error is returned bare, without the object prefix, as
// upstream returns it.
func decodeContent(value, objectType, encoding string) ([]byte, error) {
	if !strings.EqualFold(objectType, typeSecret) || encoding == "" || strings.EqualFold(encoding, encodingUTF8) {
		return []byte(value), nil
	}
	if strings.EqualFold(encoding, encodingBase64) {
		return base64.StdEncoding.DecodeString(value)
	}
	if strings.EqualFold(encoding, encodingHex) {
		return hex.DecodeString(value)
	}
	return []byte{}, errors.New("invalid objectEncoding. Should be utf-8, base64, or hex")
}
