package keyvault

import (
	"crypto/rsa"
	"encoding/base64"
	"net/http"
	"strings"

	"github.com/kvsync/kvsync/fakevault/pki"
)

func lower(s string) string { return strings.ToLower(s) }

func (v *Vault) keyBundleLocked(item *keyItem, kv *keyVersion) keyBundleJSON {
	kid := v.baseURL + "/keys/" + item.name + "/" + kv.id
	return keyBundleJSON{Key: publicJWK(kid, kv.kty, kv.ops, kv.public),
		Attributes: v.attributesLocked(kv.enabled, kv.notBefore, kv.expires, kv.created, kv.updated),
		Tags:       kv.tags, Managed: kv.managed}
}

// getKey answers GET /keys/{name}/{version} with the public JWK (the latest
// version when the version is empty).
func getKey(c *call) {
	v := c.vault
	c.answer(v.withRead(func() (any, *Error) {
		kv, e := v.findKeyLocked(c.route.name, c.route.version)
		if e != nil {
			return nil, e
		}
		return v.keyBundleLocked(v.keys[lower(c.route.name)], kv), nil
	}))
}

// listKeys answers GET /keys.
func listKeys(c *call) {
	pr, e := c.pageRequest()
	if e != nil {
		c.fail(e)
		return
	}
	v := c.vault
	v.mu.RLock()
	keys := sortedKeys(v.keys)
	start, end, next := c.paginate(keys, pr, vaultWide)
	items := make([]keyItemJSON, 0, end-start)
	for _, k := range keys[start:end] {
		item := v.keys[k]
		kv := item.latest()
		items = append(items, keyItemJSON{KID: v.baseURL + "/keys/" + item.name,
			Attributes: v.attributesLocked(kv.enabled, kv.notBefore, kv.expires, kv.created, kv.updated),
			Tags:       kv.tags, Managed: kv.managed})
	}
	v.mu.RUnlock()
	c.ok(http.StatusOK, listJSON[keyItemJSON]{Value: items, NextLink: c.nextLink(next, pr)})
}

// listKeyVersions answers GET /keys/{name}/versions.
func listKeyVersions(c *call) {
	pr, e := c.pageRequest()
	if e != nil {
		c.fail(e)
		return
	}
	v := c.vault
	c.answer(v.withRead(func() (any, *Error) {
		item := v.keys[lower(c.route.name)]
		if item == nil {
			return nil, errObjectNotFound(kindKey, c.route.name)
		}
		sorted, keys := byVersionID(item.versions, func(kv *keyVersion) string { return kv.id })
		start, end, next := c.paginate(keys, pr, versions)
		items := make([]keyItemJSON, 0, end-start)
		for _, kv := range sorted[start:end] {
			items = append(items, keyItemJSON{KID: v.baseURL + "/keys/" + item.name + "/" + kv.id,
				Attributes: v.attributesLocked(kv.enabled, kv.notBefore, kv.expires, kv.created, kv.updated),
				Tags:       kv.tags, Managed: kv.managed})
		}
		return listJSON[keyItemJSON]{Value: items, NextLink: c.nextLink(next, pr)}, nil
	}))
}

func (v *Vault) certAttributesLocked(cv *certVersion) attributesJSON {
	cert := cv.leaf.Certificate
	return v.attributesLocked(cv.enabled, cert.NotBefore, cert.NotAfter, cv.created, cv.updated)
}

// certPolicyLocked renders the policy of a certificate from its latest
// version. Certificates in the fake are issued by an outside CA, so the
// issuer is "Unknown", as for imported certificates.
func (v *Vault) certPolicyLocked(item *certItem) *certPolicyJSON {
	cv := item.latest()
	first := item.versions[0]
	cert := cv.leaf.Certificate
	p := &certPolicyJSON{ID: v.baseURL + "/certificates/" + item.name + "/policy"}
	p.KeyProps = certKeyPropsJSON{Exportable: true, ReuseKey: false}
	switch cv.keyType {
	case pki.ECP256, pki.ECP384, pki.ECP521:
		p.KeyProps.KTY = "EC"
		p.KeyProps.CRV = "P-" + strings.TrimPrefix(string(cv.keyType), "EC-P")
		p.X509Props.KeyUsage = []string{"digitalSignature"}
	default:
		p.KeyProps.KTY = "RSA"
		if rp, ok := cert.PublicKey.(*rsa.PublicKey); ok {
			p.KeyProps.KeySize = rp.Size() * 8
		}
		p.X509Props.KeyUsage = []string{"digitalSignature", "keyEncipherment"}
	}
	p.SecretProps.ContentType = cv.contentType
	p.X509Props.Subject = "CN=" + cert.Subject.CommonName
	if len(cv.dnsNames) > 0 {
		p.X509Props.SANs = &sansJSON{DNSNames: cv.dnsNames}
	}
	p.X509Props.EKUs = []string{"1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"}
	months := int(cert.NotAfter.Sub(cert.NotBefore).Hours() / 24 / 30)
	p.X509Props.ValidityMonths = max(months, 1)
	var la lifetimeActionJSON
	la.Trigger.LifetimePercentage = 80
	la.Action.ActionType = "EmailContacts"
	p.LifetimeActions = []lifetimeActionJSON{la}
	p.Issuer.Name = "Unknown"
	p.Attributes = policyAttrsJSON{Enabled: true, Created: first.created.Unix(), Updated: cv.updated.Unix()}
	return p
}

func (v *Vault) certBundleLocked(item *certItem, cv *certVersion) certBundleJSON {
	raw := cv.leaf.Certificate.Raw
	return certBundleJSON{
		ID:         v.baseURL + "/certificates/" + item.name + "/" + cv.id,
		KID:        v.baseURL + "/keys/" + item.name + "/" + cv.id,
		SID:        v.baseURL + "/secrets/" + item.name + "/" + cv.id,
		X5T:        x5t(raw),
		CER:        base64.StdEncoding.EncodeToString(raw),
		Attributes: v.certAttributesLocked(cv),
		Policy:     v.certPolicyLocked(item),
		Tags:       cv.tags,
	}
}

// getCertificate answers GET /certificates/{name}/{version}: the DER
// certificate (cer), its thumbprint and the IDs of its key and secret.
func getCertificate(c *call) {
	v := c.vault
	c.answer(v.withRead(func() (any, *Error) {
		item, cv, e := v.findCertLocked(c.route.name, c.route.version)
		if e != nil {
			return nil, e
		}
		return v.certBundleLocked(item, cv), nil
	}))
}

// getCertificatePolicy answers GET /certificates/{name}/policy.
func getCertificatePolicy(c *call) {
	v := c.vault
	c.answer(v.withRead(func() (any, *Error) {
		item, _, e := v.findCertLocked(c.route.name, "")
		if e != nil {
			return nil, e
		}
		return v.certPolicyLocked(item), nil
	}))
}

// listCertificates answers GET /certificates.
func listCertificates(c *call) {
	pr, e := c.pageRequest()
	if e != nil {
		c.fail(e)
		return
	}
	v := c.vault
	v.mu.RLock()
	keys := sortedKeys(v.certs)
	start, end, next := c.paginate(keys, pr, vaultWide)
	items := make([]certItemJSON, 0, end-start)
	for _, k := range keys[start:end] {
		item := v.certs[k]
		cv := item.latest()
		items = append(items, certItemJSON{ID: v.baseURL + "/certificates/" + item.name, X5T: x5t(cv.leaf.Certificate.Raw),
			Attributes: v.certAttributesLocked(cv), Tags: cv.tags})
	}
	v.mu.RUnlock()
	c.ok(http.StatusOK, listJSON[certItemJSON]{Value: items, NextLink: c.nextLink(next, pr)})
}

// listCertificateVersions answers GET /certificates/{name}/versions.
func listCertificateVersions(c *call) {
	pr, e := c.pageRequest()
	if e != nil {
		c.fail(e)
		return
	}
	v := c.vault
	c.answer(v.withRead(func() (any, *Error) {
		item, _, e := v.findCertLocked(c.route.name, "")
		if e != nil {
			return nil, e
		}
		sorted, keys := byVersionID(item.versions, func(cv *certVersion) string { return cv.id })
		start, end, next := c.paginate(keys, pr, versions)
		items := make([]certItemJSON, 0, end-start)
		for _, cv := range sorted[start:end] {
			items = append(items, certItemJSON{ID: v.baseURL + "/certificates/" + item.name + "/" + cv.id,
				X5T: x5t(cv.leaf.Certificate.Raw), Attributes: v.certAttributesLocked(cv), Tags: cv.tags})
		}
		return listJSON[certItemJSON]{Value: items, NextLink: c.nextLink(next, pr)}, nil
	}))
}
