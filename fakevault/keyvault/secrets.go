package keyvault

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"
)

// maxBodyBytes bounds request bodies. The service's own limit on a secret
// value is 25 KiB; the bound here only keeps the fake's memory in check.
const maxBodyBytes = 1 << 20

// readJSON decodes the request body into dst.
func (c *call) readJSON(dst any) *Error {
	body, err := io.ReadAll(http.MaxBytesReader(c.w, c.r.Body, maxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return errBodyTooLarge(maxBodyBytes)
		}
		return errBodyUnreadable()
	}
	if len(body) == 0 {
		return errBodyEmpty()
	}
	if err := json.Unmarshal(body, dst); err != nil {
		return errBodyNotJSON()
	}
	return nil
}

func (a *attributesInJSON) params(p *secretParams) {
	if a == nil {
		return
	}
	p.enabled = a.Enabled
	if a.NotBefore != nil {
		t := time.Unix(*a.NotBefore, 0).UTC()
		p.notBefore = &t
	}
	if a.Expires != nil {
		t := time.Unix(*a.Expires, 0).UTC()
		p.expires = &t
	}
}

func (v *Vault) secretID(item *secretItem, sv *secretVersion) string {
	return v.baseURL + "/secrets/" + item.name + "/" + sv.id
}

// secretBundleLocked renders a secret version; value is nil for answers
// that carry no value. v.mu must be held.
func (v *Vault) secretBundleLocked(item *secretItem, sv *secretVersion, value *string, contentType string) secretBundleJSON {
	b := secretBundleJSON{Value: value, ContentType: contentType, ID: v.secretID(item, sv),
		Attributes: v.attributesLocked(sv.enabled, sv.notBefore, sv.expires, sv.created, sv.updated), Tags: sv.tags}
	if sv.cert != nil {
		b.Managed = true
		b.KID = v.baseURL + "/keys/" + item.name + "/" + sv.id
	}
	return b
}

func (v *Vault) deletedSecretBundleLocked(item *secretItem) deletedSecretBundleJSON {
	sv := item.latest()
	b := deletedSecretBundleJSON{ContentType: sv.contentType, ID: v.secretID(item, sv),
		Attributes: v.attributesLocked(sv.enabled, sv.notBefore, sv.expires, sv.created, sv.updated), Tags: sv.tags}
	if !item.deleted.IsZero() {
		b.RecoveryID = v.baseURL + "/deletedsecrets/" + item.name
		b.DeletedDate = unixPtr(item.deleted)
		b.ScheduledPurgeDate = unixPtr(item.purgeAt)
	}
	if sv.cert != nil {
		b.Managed = true
		b.KID = v.baseURL + "/keys/" + item.name + "/" + sv.id
	}
	return b
}

// getSecret answers GET /secrets/{name}/{version}: the value of the version,
// or of the latest version when the version is empty. A disabled version
// is refused with SecretDisabled. outContentType (api-version 2026-04-01)
// converts the secret of a certificate between PEM and PKCS#12.
func getSecret(c *call) {
	v := c.vault
	out := c.r.URL.Query().Get("outContentType")
	if out != "" && out != ContentTypePEM && out != ContentTypePKCS12 {
		c.fail(errOutContentType(out))
		return
	}
	c.answer(v.withRead(func() (any, *Error) {
		item, sv, e := v.findSecretLocked(c.route.name, c.route.version)
		if e != nil {
			return nil, e
		}
		if !sv.enabled {
			return nil, errSecretDisabled("get")
		}
		value, ct := sv.value, sv.contentType
		if out != "" && sv.cert != nil && out != sv.contentType {
			converted, err := renderCertificateSecret(sv.cert, out)
			if err != nil {
				return nil, errInternal()
			}
			value, ct = converted, out
		}
		return v.secretBundleLocked(item, sv, &value, ct), nil
	}))
}

// setSecret answers PUT /secrets/{name}: a new version with the body's
// value, contentType, attributes and tags.
func setSecret(c *call) {
	var in setSecretInJSON
	if e := c.readJSON(&in); e != nil {
		c.fail(e)
		return
	}
	p := secretParams{value: in.Value, contentType: in.ContentType, tags: in.Tags, tagsSet: in.Tags != nil}
	in.Attributes.params(&p)
	v := c.vault
	c.answer(v.withWrite(func() (any, *Error) {
		item, sv, e := v.setSecretLocked(c.route.name, p)
		if e != nil {
			return nil, e
		}
		c.entry.Object = item.name + "/" + sv.id
		value := sv.value
		return v.secretBundleLocked(item, sv, &value, sv.contentType), nil
	}))
}

// updateSecret answers PATCH /secrets/{name}/{version}: changes the
// version's contentType, attributes and tags, never its value.
func updateSecret(c *call) {
	var in updateSecretInJSON
	if e := c.readJSON(&in); e != nil {
		c.fail(e)
		return
	}
	p := secretParams{contentType: in.ContentType, tags: in.Tags, tagsSet: in.Tags != nil}
	in.Attributes.params(&p)
	v := c.vault
	c.answer(v.withWrite(func() (any, *Error) {
		item, sv, e := v.findSecretLocked(c.route.name, c.route.version)
		if e != nil {
			return nil, e
		}
		applySecretParams(sv, p)
		sv.updated = v.now()
		return v.secretBundleLocked(item, sv, nil, sv.contentType), nil
	}))
}

// deleteSecret answers DELETE /secrets/{name} with the deleted secret.
func deleteSecret(c *call) {
	v := c.vault
	c.answer(v.withWrite(func() (any, *Error) {
		item, e := v.deleteSecretLocked(c.route.name)
		if e != nil {
			return nil, e
		}
		return v.deletedSecretBundleLocked(item), nil
	}))
}

// listSecrets answers GET /secrets: each secret's base ID and the
// attributes of its latest version, never values.
func listSecrets(c *call) {
	pr, e := c.pageRequest()
	if e != nil {
		c.fail(e)
		return
	}
	v := c.vault
	v.mu.RLock()
	keys := settledKeys(v.secrets, v.now())
	start, end, next := c.paginate(keys, pr, vaultWide)
	items := make([]secretItemJSON, 0, end-start)
	for _, k := range keys[start:end] {
		item := v.secrets[k]
		sv := item.latest()
		items = append(items, secretItemJSON{ID: v.baseURL + "/secrets/" + item.name, ContentType: sv.contentType,
			Managed: sv.cert != nil, Attributes: v.attributesLocked(sv.enabled, sv.notBefore, sv.expires, sv.created, sv.updated),
			Tags: sv.tags})
	}
	v.mu.RUnlock()
	c.ok(http.StatusOK, listJSON[secretItemJSON]{Value: items, NextLink: c.nextLink(next, pr)})
}

// settledKeys are the sorted keys of the items whose last delete or
// recover has taken effect: those the lists show.
func settledKeys(items map[string]*secretItem, now time.Time) []string {
	keys := make([]string, 0, len(items))
	for k, item := range items {
		if !item.settling(now) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

// byVersionID orders versions as the service lists them: by version ID,
// not by creation (recorded: azure-sdk-for-python
// sdk/keyvault/azure-keyvault-secrets/tests/recordings/
// test_secrets_client.test_list_versions_7_3.yaml created b2d352f6...,
// d52f482c..., 3b601d75..., 1ce1b1fe..., 9b3c62a0..., 823d1dc4...,
// 998a6649... and listed them 1ce1..., 3b60..., 823d..., 998a..., 9b3c...,
// b2d3..., d52f...; the .NET SDK's GetPropertiesOfSecretVersions session
// lists 50 versions in ascending ID order). It returns the sorted versions
// and their sort keys (the IDs, lower case).
func byVersionID[T any](versions []*T, id func(*T) string) ([]*T, []string) {
	sorted := slices.Clone(versions)
	slices.SortFunc(sorted, func(a, b *T) int { return strings.Compare(strings.ToLower(id(a)), strings.ToLower(id(b))) })
	keys := make([]string, len(sorted))
	for i, v := range sorted {
		keys[i] = strings.ToLower(id(v))
	}
	return sorted, keys
}

// listSecretVersions answers GET /secrets/{name}/versions.
func listSecretVersions(c *call) {
	pr, e := c.pageRequest()
	if e != nil {
		c.fail(e)
		return
	}
	v := c.vault
	c.answer(v.withRead(func() (any, *Error) {
		item, _, e := v.findSecretLocked(c.route.name, "")
		if e != nil {
			return nil, e
		}
		sorted, keys := byVersionID(item.versions, func(sv *secretVersion) string { return sv.id })
		start, end, next := c.paginate(keys, pr, versions)
		items := make([]secretItemJSON, 0, end-start)
		for _, sv := range sorted[start:end] {
			items = append(items, secretItemJSON{ID: v.secretID(item, sv), ContentType: sv.contentType, Managed: sv.cert != nil,
				Attributes: v.attributesLocked(sv.enabled, sv.notBefore, sv.expires, sv.created, sv.updated), Tags: sv.tags})
		}
		return listJSON[secretItemJSON]{Value: items, NextLink: c.nextLink(next, pr)}, nil
	}))
}

// listDeletedSecrets answers GET /deletedsecrets.
func listDeletedSecrets(c *call) {
	pr, e := c.pageRequest()
	if e != nil {
		c.fail(e)
		return
	}
	v := c.vault
	v.mu.Lock()
	now := v.now()
	v.expireLocked(now)
	keys := settledKeys(v.deletedSecrets, now)
	start, end, next := c.paginate(keys, pr, vaultWide)
	items := make([]deletedSecretItemJSON, 0, end-start)
	for _, k := range keys[start:end] {
		item := v.deletedSecrets[k]
		sv := item.latest()
		items = append(items, deletedSecretItemJSON{RecoveryID: v.baseURL + "/deletedsecrets/" + item.name,
			DeletedDate: item.deleted.Unix(), ScheduledPurgeDate: item.purgeAt.Unix(),
			ID: v.baseURL + "/secrets/" + item.name, ContentType: sv.contentType, Managed: sv.cert != nil,
			Attributes: v.attributesLocked(sv.enabled, sv.notBefore, sv.expires, sv.created, sv.updated), Tags: sv.tags})
	}
	v.mu.Unlock()
	c.ok(http.StatusOK, listJSON[deletedSecretItemJSON]{Value: items, NextLink: c.nextLink(next, pr)})
}

// getDeletedSecret answers GET /deletedsecrets/{name}: 404 until the
// delete has taken effect (Fidelity.DeleteDelay). A deleted secret whose
// latest version is disabled is refused with SecretDisabled, as recorded
// (azure-sdk-for-js sdk/keyvault/keyvault-secrets/recordings/node/
// secrets_client__create_read_update_and_delete_operations/
// recording_can_update_a_disabled_secret.js, 2021: once the delete took
// effect, 403 {"code":"Forbidden","message":"Operation get is not allowed
// on a disabled secret.","innererror":{"code":"SecretDisabled"}}, which
// the SDK's delete poller takes for "deleted").
func getDeletedSecret(c *call) {
	v := c.vault
	c.answer(v.withWrite(func() (any, *Error) {
		item, e := v.deletedSecretLocked(c.route.name)
		if e != nil {
			return nil, e
		}
		if !item.latest().enabled {
			return nil, errSecretDisabled("get")
		}
		return v.deletedSecretBundleLocked(item), nil
	}))
}

// recoverDeletedSecret answers POST /deletedsecrets/{name}/recover with the
// recovered secret's latest version (without its value).
func recoverDeletedSecret(c *call) {
	v := c.vault
	c.answer(v.withWrite(func() (any, *Error) {
		item, e := v.recoverSecretLocked(c.route.name)
		if e != nil {
			return nil, e
		}
		sv := item.latest()
		return v.secretBundleLocked(item, sv, nil, sv.contentType), nil
	}))
}

// purgeDeletedSecret answers DELETE /deletedsecrets/{name}: 204, no body.
func purgeDeletedSecret(c *call) {
	v := c.vault
	v.mu.Lock()
	e := v.purgeSecretLocked(c.route.name)
	v.mu.Unlock()
	if e != nil {
		c.fail(e)
		return
	}
	c.w.WriteHeader(http.StatusNoContent)
}
