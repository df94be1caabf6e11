package keyvault

import (
	"crypto"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/kvsync/kvsync/fakevault/pki"
)

// Vault is one fake vault: its configuration and its secrets, keys and
// certificates. Its methods are safe for concurrent use. The seeding
// methods (SetSecret, CreateCertificate, CreateKey, ...) act as the vault
// owner: they bypass authentication, network rules and the access model,
// but keep every other rule of the service (names, soft delete, managed
// objects).
type Vault struct {
	svc     *Service
	baseURL string // https://<name>.<suffix>, no trailing slash

	mu             sync.RWMutex
	cfg            VaultConfig
	secrets        map[string]*secretItem // by lower-case name
	deletedSecrets map[string]*secretItem
	// purgedSecrets are names purged within Fidelity.PurgeDelay: when
	// each may be set again.
	purgedSecrets map[string]time.Time
	keys          map[string]*keyItem
	certs         map[string]*certItem

	// arrivals are the times of the authenticated requests of the last
	// RateLimit.Window, oldest first.
	arrivals []time.Time
}

type secretVersion struct {
	id          string
	value       string
	contentType string
	tags        map[string]string
	enabled     bool
	notBefore   time.Time
	expires     time.Time
	created     time.Time
	updated     time.Time
	// cert is the certificate version the secret backs; nil for plain
	// secrets.
	cert *certVersion
}

type secretItem struct {
	name     string           // as first created
	versions []*secretVersion // oldest first
	deleted  time.Time        // set while soft-deleted
	purgeAt  time.Time
	// settled is when the last delete or recover took effect
	// (Fidelity.DeleteDelay, RecoverDelay): until then a deleted secret
	// is not yet at /deletedsecrets, a recovered one not yet readable.
	settled time.Time
}

// settling reports whether the item's last delete or recover has not yet
// taken effect at now.
func (s *secretItem) settling(now time.Time) bool { return now.Before(s.settled) }

type keyVersion struct {
	id        string
	public    crypto.PublicKey
	kty       string
	ops       []string
	tags      map[string]string
	enabled   bool
	notBefore time.Time
	expires   time.Time
	created   time.Time
	updated   time.Time
	managed   bool
}

type keyItem struct {
	name     string
	versions []*keyVersion
}

type certVersion struct {
	id          string
	leaf        *pki.Leaf
	keyType     pki.KeyType
	contentType string
	dnsNames    []string
	tags        map[string]string
	enabled     bool
	created     time.Time
	updated     time.Time
}

type certItem struct {
	name     string
	versions []*certVersion
}

func latestOf[T any](versions []*T) *T {
	if len(versions) == 0 {
		return nil
	}
	return versions[len(versions)-1]
}

func (s *secretItem) latest() *secretVersion { return latestOf(s.versions) }
func (k *keyItem) latest() *keyVersion       { return latestOf(k.versions) }
func (c *certItem) latest() *certVersion     { return latestOf(c.versions) }

func (s *secretItem) version(id string) *secretVersion {
	for _, v := range s.versions {
		if strings.EqualFold(v.id, id) {
			return v
		}
	}
	return nil
}

func (k *keyItem) version(id string) *keyVersion {
	for _, v := range k.versions {
		if strings.EqualFold(v.id, id) {
			return v
		}
	}
	return nil
}

func (c *certItem) version(id string) *certVersion {
	for _, v := range c.versions {
		if strings.EqualFold(v.id, id) {
			return v
		}
	}
	return nil
}

func (s *secretItem) managed() bool {
	l := s.latest()
	return l != nil && l.cert != nil
}

// Name returns the vault's name.
func (v *Vault) Name() string { return v.cfg.Name }

// URL returns the vault URI, e.g. https://contoso.vault.azure.net/, the
// value clients are configured with.
func (v *Vault) URL() string { return v.baseURL + "/" }

// Config returns a copy of the vault's current configuration.
func (v *Vault) Config() VaultConfig {
	v.mu.RLock()
	defer v.mu.RUnlock()
	c := v.cfg
	c.RoleAssignments = slices.Clone(c.RoleAssignments)
	c.AccessPolicies = slices.Clone(c.AccessPolicies)
	c.Network = c.Network.clone()
	return c
}

// AssignRole adds a role assignment; it takes effect on the next request.
func (v *Vault) AssignRole(ra RoleAssignment) error {
	if err := validateRoleAssignment(ra); err != nil {
		return fmt.Errorf("vault %q: %w", v.cfg.Name, err)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.cfg.RoleAssignments = append(v.cfg.RoleAssignments, ra)
	return nil
}

// RoleAssignments returns the vault's role assignments.
func (v *Vault) RoleAssignments() []RoleAssignment {
	v.mu.Lock()
	defer v.mu.Unlock()
	return slices.Clone(v.cfg.RoleAssignments)
}

// RemoveRoleAssignments removes every role assignment of principalID.
func (v *Vault) RemoveRoleAssignments(principalID string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.cfg.RoleAssignments = slices.DeleteFunc(v.cfg.RoleAssignments, func(ra RoleAssignment) bool {
		return strings.EqualFold(ra.PrincipalID, principalID)
	})
}

// SetAccessPolicy adds ap, replacing the policy of the same object ID.
func (v *Vault) SetAccessPolicy(ap AccessPolicy) error {
	if err := validateAccessPolicy(ap); err != nil {
		return fmt.Errorf("vault %q: %w", v.cfg.Name, err)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.cfg.AccessPolicies = slices.DeleteFunc(v.cfg.AccessPolicies, func(p AccessPolicy) bool {
		return strings.EqualFold(p.ObjectID, ap.ObjectID)
	})
	v.cfg.AccessPolicies = append(v.cfg.AccessPolicies, ap)
	return nil
}

// SetAccessPolicies replaces the vault's access policies.
func (v *Vault) SetAccessPolicies(aps []AccessPolicy) error {
	for _, ap := range aps {
		if err := validateAccessPolicy(ap); err != nil {
			return fmt.Errorf("vault %q: %w", v.cfg.Name, err)
		}
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.cfg.AccessPolicies = slices.Clone(aps)
	return nil
}

// SetNetworkRules replaces the vault's network rules.
func (v *Vault) SetNetworkRules(n NetworkRules) error {
	for _, p := range append(slices.Clone(n.AllowedNetworks), n.PrivateEndpointNetworks...) {
		if !p.IsValid() {
			return fmt.Errorf("%w: vault %q: invalid network prefix", ErrInvalidConfig, v.cfg.Name)
		}
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.cfg.Network = n.clone()
	return nil
}

// SetRateLimit sets or (with nil) clears the vault's rate limit.
func (v *Vault) SetRateLimit(rl *RateLimit) error {
	if rl != nil && (rl.Requests < 1 || rl.Window <= 0) {
		return fmt.Errorf("%w: vault %q: rate limit needs positive Requests and Window", ErrInvalidConfig, v.cfg.Name)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if rl != nil {
		c := *rl
		rl = &c
	}
	v.cfg.RateLimit = rl
	v.arrivals = nil
	return nil
}

// admit counts a request against the rate limit and reports whether it may
// proceed, or how long until it may be retried. The window slides: a
// request is refused when RateLimit.Requests others arrived within the
// Window before it, and every request counts, refused ones too, as the
// service counts every authenticated request (a client that keeps retrying
// keeps the vault throttled).
func (v *Vault) admit(now time.Time) (bool, time.Duration) {
	v.mu.Lock()
	defer v.mu.Unlock()
	rl := v.cfg.RateLimit
	if rl == nil {
		return true, 0
	}
	cut := 0
	for cut < len(v.arrivals) && !now.Before(v.arrivals[cut].Add(rl.Window)) {
		cut++
	}
	v.arrivals = append(v.arrivals[cut:], now)
	if n := len(v.arrivals) - 1; n >= rl.Requests {
		// A retry is admitted once fewer than Requests of the window's
		// requests (this one included) remain: when the (n-Requests+1)-th
		// has left it.
		return false, v.arrivals[n-rl.Requests+1].Add(rl.Window).Sub(now)
	}
	return true, 0
}

// newVersionID returns a random version ID: 32 lower-case hex digits.
func newVersionID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (v *Vault) now() time.Time { return v.svc.now() }

// withRead returns what fn returns, run under the vault's read lock.
func (v *Vault) withRead(fn func() (any, *Error)) (any, *Error) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return fn()
}

// withWrite returns what fn returns, run under the vault's write lock.
func (v *Vault) withWrite(fn func() (any, *Error)) (any, *Error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return fn()
}

// expireLocked purges soft-deleted objects whose retention has ended, as
// the service does on its own. v.mu must be held for writing.
func (v *Vault) expireLocked(now time.Time) {
	for k, s := range v.deletedSecrets {
		if !now.Before(s.purgeAt) {
			delete(v.deletedSecrets, k)
		}
	}
	for k, at := range v.purgedSecrets {
		if !now.Before(at) {
			delete(v.purgedSecrets, k)
		}
	}
}

// secretParams are the settable properties of a secret version; nil
// members leave a property unchanged (on update) or at its default.
type secretParams struct {
	value       *string
	contentType *string
	tags        map[string]string
	tagsSet     bool
	enabled     *bool
	notBefore   *time.Time
	expires     *time.Time
}

// setSecretLocked adds a version to the named secret. v.mu must be held
// for writing.
func (v *Vault) setSecretLocked(name string, p secretParams) (*secretItem, *secretVersion, *Error) {
	if !ValidObjectName(name) {
		return nil, nil, errInvalidName(name)
	}
	now := v.now()
	v.expireLocked(now)
	key := strings.ToLower(name)
	if d, ok := v.deletedSecrets[key]; ok {
		if d.settling(now) {
			return nil, nil, errBeingDeletedRecreate(kindSecret, d.name)
		}
		return nil, nil, errDeletedButRecoverable(kindSecret, d.name)
	}
	if _, ok := v.purgedSecrets[key]; ok {
		return nil, nil, errBeingDeletedRecreate(kindSecret, name)
	}
	item := v.secrets[key]
	if item != nil && item.managed() {
		return nil, nil, errManagedObject("set", kindSecret)
	}
	if p.value == nil {
		return nil, nil, errMissingValue()
	}
	sv := &secretVersion{id: newVersionID(), value: *p.value, enabled: true, created: now, updated: now}
	applySecretParams(sv, p)
	if item == nil {
		item = &secretItem{name: name}
		v.secrets[key] = item
	}
	item.versions = append(item.versions, sv)
	return item, sv, nil
}

func applySecretParams(sv *secretVersion, p secretParams) {
	if p.contentType != nil {
		sv.contentType = *p.contentType
	}
	if p.tagsSet {
		sv.tags = maps.Clone(p.tags)
		if sv.tags == nil {
			sv.tags = map[string]string{}
		}
	}
	if p.enabled != nil {
		sv.enabled = *p.enabled
	}
	if p.notBefore != nil {
		sv.notBefore = *p.notBefore
	}
	if p.expires != nil {
		sv.expires = *p.expires
	}
}

// findSecretLocked returns the named secret and the version (latest when
// version is empty). v.mu must be held.
func (v *Vault) findSecretLocked(name, version string) (*secretItem, *secretVersion, *Error) {
	item := v.secrets[strings.ToLower(name)]
	if item == nil || item.settling(v.now()) {
		return nil, nil, errObjectNotFound(kindSecret, name)
	}
	if version == "" {
		return item, item.latest(), nil
	}
	sv := item.version(version)
	if sv == nil {
		return nil, nil, errObjectNotFound(kindSecret, name+"/"+version)
	}
	return item, sv, nil
}

// deleteSecretLocked soft-deletes (or, without soft delete, purges) the
// named secret and returns it. v.mu must be held for writing.
func (v *Vault) deleteSecretLocked(name string) (*secretItem, *Error) {
	now := v.now()
	v.expireLocked(now)
	key := strings.ToLower(name)
	item := v.secrets[key]
	if item == nil {
		return nil, errObjectNotFound(kindSecret, name)
	}
	if item.managed() {
		return nil, errManagedObject("delete", kindSecret)
	}
	delete(v.secrets, key)
	if v.cfg.SoftDeleteDisabled {
		v.purgedLocked(key, now)
		return item, nil
	}
	item.deleted = now
	item.purgeAt = now.Add(time.Duration(v.cfg.SoftDeleteRetentionDays) * 24 * time.Hour)
	item.settled = now.Add(v.svc.opts.Fidelity.DeleteDelay)
	v.deletedSecrets[key] = item
	return item, nil
}

// purgedLocked remembers a purged name for Fidelity.PurgeDelay.
func (v *Vault) purgedLocked(key string, now time.Time) {
	if d := v.svc.opts.Fidelity.PurgeDelay; d > 0 {
		v.purgedSecrets[key] = now.Add(d)
	}
}

// deletedSecretLocked returns the named deleted secret once its delete
// has taken effect. v.mu must be held for writing.
func (v *Vault) deletedSecretLocked(name string) (*secretItem, *Error) {
	now := v.now()
	v.expireLocked(now)
	item := v.deletedSecrets[strings.ToLower(name)]
	if item == nil || item.settling(now) {
		return nil, errDeletedNotFound(kindSecret, name)
	}
	return item, nil
}

// settledDeletedSecretLocked returns the named deleted secret for a
// recover or purge, which the service refuses while the delete is still
// taking effect (409 ObjectIsBeingDeleted). v.mu must be held for writing.
func (v *Vault) settledDeletedSecretLocked(name string) (*secretItem, *Error) {
	now := v.now()
	v.expireLocked(now)
	item := v.deletedSecrets[strings.ToLower(name)]
	switch {
	case item == nil:
		return nil, errDeletedNotFound(kindSecret, name)
	case item.settling(now):
		return nil, errBeingDeleted(kindSecret)
	}
	return item, nil
}

func (v *Vault) recoverSecretLocked(name string) (*secretItem, *Error) {
	item, e := v.settledDeletedSecretLocked(name)
	if e != nil {
		return nil, e
	}
	now := v.now()
	key := strings.ToLower(name)
	delete(v.deletedSecrets, key)
	item.deleted, item.purgeAt = time.Time{}, time.Time{}
	item.settled = now.Add(v.svc.opts.Fidelity.RecoverDelay)
	v.secrets[key] = item
	return item, nil
}

func (v *Vault) purgeSecretLocked(name string) *Error {
	if _, e := v.settledDeletedSecretLocked(name); e != nil {
		return e
	}
	if v.cfg.PurgeProtection {
		return errPurgeProtected(v.cfg.vaultRef())
	}
	key := strings.ToLower(name)
	delete(v.deletedSecrets, key)
	v.purgedLocked(key, v.now())
	return nil
}

// SecretOptions are the optional properties of a secret version.
type SecretOptions struct {
	// ContentType is the content type, e.g. text/plain.
	ContentType string
	// Tags are the version's tags.
	Tags map[string]string
	// Disabled creates the version disabled.
	Disabled bool
	// NotBefore and Expires, when non-zero, bound the version's validity.
	NotBefore, Expires time.Time
}

// SetSecret adds a version to the named secret, creating it if needed, and
// returns the new version ID. It fails as the service would: with a
// BadParameter *Error for an invalid name, a Conflict
// (ObjectIsDeletedButRecoverable) for a soft-deleted name, and a Forbidden
// one for a secret that backs a certificate.
func (v *Vault) SetSecret(name, value string, opts *SecretOptions) (string, error) {
	if opts == nil {
		opts = &SecretOptions{}
	}
	p := secretParams{value: &value}
	if opts.ContentType != "" {
		p.contentType = &opts.ContentType
	}
	if opts.Tags != nil {
		p.tags, p.tagsSet = opts.Tags, true
	}
	if opts.Disabled {
		f := false
		p.enabled = &f
	}
	if !opts.NotBefore.IsZero() {
		p.notBefore = &opts.NotBefore
	}
	if !opts.Expires.IsZero() {
		p.expires = &opts.Expires
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	_, sv, e := v.setSecretLocked(name, p)
	if e != nil {
		return "", fmt.Errorf("setting secret %q in vault %q: %w", name, v.cfg.Name, e)
	}
	return sv.id, nil
}

// SetSecretEnabled enables or disables one version of a secret (the latest
// when version is empty).
func (v *Vault) SetSecretEnabled(name, version string, enabled bool) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	_, sv, e := v.findSecretLocked(name, version)
	if e != nil {
		return fmt.Errorf("vault %q: %w", v.cfg.Name, e)
	}
	sv.enabled = enabled
	sv.updated = v.now()
	return nil
}

// DeleteSecret deletes the named secret as DELETE /secrets/{name} does:
// soft delete when the vault has it, purge otherwise.
func (v *Vault) DeleteSecret(name string) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if _, e := v.deleteSecretLocked(name); e != nil {
		return fmt.Errorf("deleting secret %q in vault %q: %w", name, v.cfg.Name, e)
	}
	return nil
}

// RecoverDeletedSecret restores a soft-deleted secret with its versions, as
// POST /deletedsecrets/{name}/recover does.
func (v *Vault) RecoverDeletedSecret(name string) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if _, e := v.recoverSecretLocked(name); e != nil {
		return fmt.Errorf("recovering secret %q in vault %q: %w", name, v.cfg.Name, e)
	}
	return nil
}

// PurgeDeletedSecret permanently removes a soft-deleted secret. Purge
// protection refuses it, as it refuses the REST call.
func (v *Vault) PurgeDeletedSecret(name string) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if e := v.purgeSecretLocked(name); e != nil {
		return fmt.Errorf("purging secret %q in vault %q: %w", name, v.cfg.Name, e)
	}
	return nil
}

// VersionInfo describes one version of a secret, key or certificate. It
// never holds the secret value.
type VersionInfo struct {
	// Version is the 32-hex-digit version ID.
	Version string
	// Enabled reports the enabled attribute.
	Enabled bool
	// Created and Updated are the version's timestamps.
	Created, Updated time.Time
	// ContentType is the content type (secrets and certificates).
	ContentType string
	// Managed reports whether the version backs a certificate.
	Managed bool
}

// SecretVersions lists the versions of a secret, oldest first.
func (v *Vault) SecretVersions(name string) ([]VersionInfo, error) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	item := v.secrets[strings.ToLower(name)]
	if item == nil {
		return nil, fmt.Errorf("vault %q: %w", v.cfg.Name, errObjectNotFound(kindSecret, name))
	}
	out := make([]VersionInfo, 0, len(item.versions))
	for _, sv := range item.versions {
		out = append(out, VersionInfo{Version: sv.id, Enabled: sv.enabled, Created: sv.created,
			Updated: sv.updated, ContentType: sv.contentType, Managed: sv.cert != nil})
	}
	return out, nil
}

// KeyOptions describe a standalone key to create.
type KeyOptions struct {
	// Type is the key type; RSA-2048 when empty.
	Type pki.KeyType
	// Operations are the permitted key operations (key_ops); when empty,
	// every operation the key type supports.
	Operations []string
	// Tags are the version's tags.
	Tags map[string]string
	// Disabled creates the version disabled.
	Disabled bool
	// NotBefore and Expires, when non-zero, bound the version's validity.
	NotBefore, Expires time.Time
}

// CreateKey adds a version to the named standalone key, creating it if
// needed, and returns the new version ID. The private key never leaves the
// fake; GET /keys answers the public JWK.
func (v *Vault) CreateKey(name string, opts KeyOptions) (string, error) {
	if !ValidObjectName(name) {
		return "", fmt.Errorf("creating key in vault %q: %w", v.cfg.Name, errInvalidName(name))
	}
	if opts.Type == "" {
		opts.Type = pki.RSA2048
	}
	signer, err := pki.NewKey(opts.Type)
	if err != nil {
		return "", fmt.Errorf("creating key %q in vault %q: %w", name, v.cfg.Name, err)
	}
	kty, ops := keyTypeOf(signer.Public())
	if len(opts.Operations) > 0 {
		ops = slices.Clone(opts.Operations)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	now := v.now()
	key := strings.ToLower(name)
	item := v.keys[key]
	if item != nil && item.latest().managed {
		return "", fmt.Errorf("creating key %q in vault %q: %w", name, v.cfg.Name, errManagedObject("create", kindKey))
	}
	kv := &keyVersion{id: newVersionID(), public: signer.Public(), kty: kty, ops: ops, tags: maps.Clone(opts.Tags),
		enabled: !opts.Disabled, notBefore: opts.NotBefore, expires: opts.Expires, created: now, updated: now}
	if item == nil {
		item = &keyItem{name: name}
		v.keys[key] = item
	}
	item.versions = append(item.versions, kv)
	return kv.id, nil
}

// SetKeyEnabled enables or disables one version of a key (the latest when
// version is empty).
func (v *Vault) SetKeyEnabled(name, version string, enabled bool) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	kv, e := v.findKeyLocked(name, version)
	if e != nil {
		return fmt.Errorf("vault %q: %w", v.cfg.Name, e)
	}
	kv.enabled = enabled
	kv.updated = v.now()
	return nil
}

// KeyVersions lists the versions of a key, oldest first.
func (v *Vault) KeyVersions(name string) ([]VersionInfo, error) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	item := v.keys[strings.ToLower(name)]
	if item == nil {
		return nil, fmt.Errorf("vault %q: %w", v.cfg.Name, errObjectNotFound(kindKey, name))
	}
	out := make([]VersionInfo, 0, len(item.versions))
	for _, kv := range item.versions {
		out = append(out, VersionInfo{Version: kv.id, Enabled: kv.enabled, Created: kv.created, Updated: kv.updated, Managed: kv.managed})
	}
	return out, nil
}

func (v *Vault) findKeyLocked(name, version string) (*keyVersion, *Error) {
	item := v.keys[strings.ToLower(name)]
	if item == nil {
		return nil, errObjectNotFound(kindKey, name)
	}
	if version == "" {
		return item.latest(), nil
	}
	kv := item.version(version)
	if kv == nil {
		return nil, errObjectNotFound(kindKey, name+"/"+version)
	}
	return kv, nil
}

func (v *Vault) findCertLocked(name, version string) (*certItem, *certVersion, *Error) {
	item := v.certs[strings.ToLower(name)]
	if item == nil {
		return nil, nil, errObjectNotFound(kindCertificate, name)
	}
	if version == "" {
		return item, item.latest(), nil
	}
	cv := item.version(version)
	if cv == nil {
		return nil, nil, errObjectNotFound(kindCertificate, name+"/"+version)
	}
	return item, cv, nil
}

// snapshot helpers for lists: items sorted by lower-case name.

func sortedKeys[T any](m map[string]T) []string {
	keys := slices.Collect(maps.Keys(m))
	slices.Sort(keys)
	return keys
}
