package entra

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // x5t is defined as a SHA-1 thumbprint.
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/kvsync/kvsync/fakevault/journal"
	"github.com/kvsync/kvsync/fakevault/pki"
)

// DefaultHost is the host of the public-cloud authority.
const DefaultHost = "login.microsoftonline.com"

// DefaultTokenLifetime is the lifetime of issued access tokens when
// Options.TokenLifetime is zero.
const DefaultTokenLifetime = time.Hour

// TokenExchangeAudience is the audience Entra expects in federated
// assertions by default, and the one FederatedCredential.Audiences defaults
// to.
const TokenExchangeAudience = "api://AzureADTokenExchange"

// Options configure an Authority.
type Options struct {
	// Host is the authority's host name, as clients put it in URLs; it may
	// carry a port. Defaults to DefaultHost.
	Host string
	// Now returns the current time. Defaults to time.Now. Every lifetime
	// check and every issued timestamp uses it.
	Now func() time.Time
	// TokenLifetime is the lifetime of issued access tokens. Defaults to
	// DefaultTokenLifetime.
	TokenLifetime time.Duration
	// Journal receives one entry per answered request. May be nil.
	Journal *journal.Journal
}

// Application is an app registration and its service principal in one
// tenant.
type Application struct {
	// ClientID is the application (client) ID, the appid claim. A GUID.
	ClientID string `json:"clientId"`
	// ObjectID is the service principal's object ID, the oid and sub
	// claims. Generated (a GUID) if empty.
	ObjectID string `json:"objectId,omitempty"`
	// DisplayName is the application's name. Informational.
	DisplayName string `json:"displayName,omitempty"`
	// ClientSecrets are the secret values the application may present.
	ClientSecrets []string `json:"clientSecrets,omitempty"`
	// FederatedCredentials are the external identities the application
	// trusts.
	FederatedCredentials []FederatedCredential `json:"federatedCredentials,omitempty"`
}

// FederatedCredential is a federated identity credential of an application:
// an assertion from Issuer about Subject for one of Audiences may be
// exchanged for the application's tokens. Matching is exact and
// case-sensitive, as in Entra since 2025.
type FederatedCredential struct {
	// Name names the credential. Informational.
	Name string `json:"name,omitempty"`
	// Issuer is the assertion issuer, e.g. the Kubernetes API server's
	// service-account issuer URL. An https URL.
	Issuer string `json:"issuer"`
	// Subject is the assertion subject, e.g.
	// system:serviceaccount:<namespace>:<name>.
	Subject string `json:"subject"`
	// Audiences are the accepted assertion audiences. Defaults to
	// [TokenExchangeAudience].
	Audiences []string `json:"audiences,omitempty"`
}

// Authority is a fake Microsoft Entra ID token service. It holds tenants,
// their applications, the external issuers it trusts and one RSA signing
// key. It is safe for concurrent use.
type Authority struct {
	host     string
	now      func() time.Time
	lifetime time.Duration
	journal  *journal.Journal

	key     *rsa.PrivateKey
	keyID   string // also the x5t of certDER
	certDER []byte

	mu        sync.RWMutex
	tenants   map[string]*tenant     // by lower-case tenant ID
	issuers   map[string][]issuerKey // by exact issuer URL
	resources map[string]bool        // normalized resource identifiers
}

type tenant struct {
	id   string
	apps map[string]*Application // by lower-case client ID
}

// defaultResources are the resource identifiers every authority knows.
var defaultResources = []string{
	"https://vault.azure.net",
	"https://management.azure.com",
	"https://management.core.windows.net",
	"https://graph.microsoft.com",
	"https://storage.azure.com",
}

// New returns an Authority with no tenants and a fresh RSA-2048 signing key.
func New(opts Options) (*Authority, error) {
	if opts.Host == "" {
		opts.Host = DefaultHost
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.TokenLifetime == 0 {
		opts.TokenLifetime = DefaultTokenLifetime
	}
	if opts.TokenLifetime < 0 {
		return nil, fmt.Errorf("token lifetime %v is negative", opts.TokenLifetime)
	}
	signer, err := pki.NewKey(pki.RSA2048)
	if err != nil {
		return nil, fmt.Errorf("generating signing key: %w", err)
	}
	key, ok := signer.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("signing key is %T, not RSA", signer)
	}
	certDER, err := selfSignedCertificate(key, opts.Now())
	if err != nil {
		return nil, err
	}
	thumb := sha1.Sum(certDER) //nolint:gosec // x5t is defined as a SHA-1 thumbprint.
	a := &Authority{
		host:      strings.ToLower(opts.Host),
		now:       opts.Now,
		lifetime:  opts.TokenLifetime,
		journal:   opts.Journal,
		key:       key,
		keyID:     base64.RawURLEncoding.EncodeToString(thumb[:]),
		certDER:   certDER,
		tenants:   map[string]*tenant{},
		issuers:   map[string][]issuerKey{},
		resources: map[string]bool{},
	}
	for _, r := range defaultResources {
		a.resources[normalizeResource(r)] = true
	}
	return a, nil
}

// selfSignedCertificate wraps the signing key in a self-signed certificate,
// as Entra publishes its keys (x5c, x5t).
func selfSignedCertificate(key *rsa.PrivateKey, now time.Time) ([]byte, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("generating serial number: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "accounts.accesscontrol.windows.net"},
		NotBefore:    now.Add(-24 * time.Hour),
		NotAfter:     now.Add(5 * 365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("self-signing the signing key's certificate: %w", err)
	}
	return der, nil
}

// Host returns the authority's host, e.g. login.microsoftonline.com.
func (a *Authority) Host() string { return a.host }

// KeyID returns the kid (and x5t) of the authority's signing key, as it
// appears in issued tokens and in JWKS.
func (a *Authority) KeyID() string { return a.keyID }

// PublicKey returns the public half of the authority's signing key.
func (a *Authority) PublicKey() crypto.PublicKey { return &a.key.PublicKey }

var guidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

func isGUID(s string) bool { return guidPattern.MatchString(s) }

// AddTenant adds an empty tenant. tenantID must be a GUID (it is kept in
// lower case) that is not already added.
func (a *Authority) AddTenant(tenantID string) error {
	if !isGUID(tenantID) {
		return fmt.Errorf("tenant ID %q is not a GUID", tenantID)
	}
	id := strings.ToLower(tenantID)
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.tenants[id]; ok {
		return fmt.Errorf("tenant %s already exists", id)
	}
	a.tenants[id] = &tenant{id: id, apps: map[string]*Application{}}
	return nil
}

// AddApplication registers app in the tenant. The tenant must exist,
// app.ClientID must be a GUID not yet registered in the tenant, ObjectID
// (if set) a GUID, and every federated credential needs an https issuer
// URL and a subject. The authority keeps a copy of app; later changes to
// the argument have no effect.
func (a *Authority) AddApplication(tenantID string, app Application) error {
	if !isGUID(app.ClientID) {
		return fmt.Errorf("client ID %q is not a GUID", app.ClientID)
	}
	if app.ObjectID == "" {
		app.ObjectID = uuid.NewString()
	} else if !isGUID(app.ObjectID) {
		return fmt.Errorf("object ID %q is not a GUID", app.ObjectID)
	}
	app.ClientID = strings.ToLower(app.ClientID)
	app.ObjectID = strings.ToLower(app.ObjectID)
	app.ClientSecrets = slices.Clone(app.ClientSecrets)
	for _, s := range app.ClientSecrets {
		if s == "" {
			return errors.New("an application's client secret may not be empty")
		}
	}
	fics := make([]FederatedCredential, 0, len(app.FederatedCredentials))
	for _, f := range app.FederatedCredentials {
		if err := checkIssuerURL(f.Issuer); err != nil {
			return fmt.Errorf("federated credential %q: %w", f.Name, err)
		}
		if f.Subject == "" {
			return fmt.Errorf("federated credential %q has no subject", f.Name)
		}
		f.Audiences = slices.Clone(f.Audiences)
		if len(f.Audiences) == 0 {
			f.Audiences = []string{TokenExchangeAudience}
		}
		fics = append(fics, f)
	}
	app.FederatedCredentials = fics

	a.mu.Lock()
	defer a.mu.Unlock()
	t, ok := a.tenants[strings.ToLower(tenantID)]
	if !ok {
		return fmt.Errorf("tenant %q does not exist", tenantID)
	}
	if _, ok := t.apps[app.ClientID]; ok {
		return fmt.Errorf("application %s already exists in tenant %s", app.ClientID, t.id)
	}
	t.apps[app.ClientID] = &app
	return nil
}

// AddResource makes resource (an application ID URI such as
// https://vault.azure.net, without "/.default") known to every tenant, so
// tokens can be requested for it. Key Vault, Resource Manager, Microsoft
// Graph and Storage are known from the start. Registered applications are
// resources too, by client ID and by api://<client ID>.
func (a *Authority) AddResource(resource string) error {
	u, err := url.Parse(resource)
	if err != nil || u.Scheme == "" {
		return fmt.Errorf("resource %q is not an absolute URI", resource)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.resources[normalizeResource(resource)] = true
	return nil
}

func normalizeResource(r string) string { return strings.TrimRight(strings.ToLower(r), "/") }

func checkIssuerURL(issuer string) error {
	u, err := url.Parse(issuer)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("issuer %q is not an https URL", issuer)
	}
	return nil
}

// TrustIssuer makes keys the signing keys of the external OIDC issuer
// (e.g. a Kubernetes API server's service-account issuer), replacing any
// keys given before: a later call is a key rotation. The real service
// fetches them from the issuer's discovery document; the fake is told them.
//
// Each key gets the kid the Kubernetes API server would give it: the
// unpadded base64url SHA-256 of its PKIX DER. Keys must be RSA or ECDSA
// public keys; note that Entra only accepts RS256, RS384 and RS512
// assertions, so an EC key never verifies one.
func (a *Authority) TrustIssuer(issuer string, keys ...crypto.PublicKey) error {
	if err := checkIssuerURL(issuer); err != nil {
		return err
	}
	if len(keys) == 0 {
		return fmt.Errorf("issuer %s: no keys", issuer)
	}
	var set []issuerKey
	for i, k := range keys {
		kid, err := kubernetesKeyID(k)
		if err != nil {
			return fmt.Errorf("issuer %s key %d: %w", issuer, i, err)
		}
		set = append(set, issuerKey{kid: kid, key: k})
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.issuers[issuer] = set
	return nil
}

// TrustIssuerJWKS is TrustIssuer with the keys of a JWKS document, such as
// a Kubernetes API server's /openid/v1/jwks. RSA and EC keys are read with
// their kid (a key without one gets the Kubernetes kid); keys whose use is
// not "sig" are skipped. It fails if the document has no usable key or a
// key it cannot read.
func (a *Authority) TrustIssuerJWKS(issuer string, jwks []byte) error {
	if err := checkIssuerURL(issuer); err != nil {
		return err
	}
	set, err := parseJWKS(jwks)
	if err != nil {
		return fmt.Errorf("issuer %s: %w", issuer, err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.issuers[issuer] = set
	return nil
}

// Handler returns the handler of the authority's endpoints (see the package
// documentation). The caller routes by host: requests whose Host is not the
// authority's (with or without :443) are answered 404. Every request it
// answers is journaled exactly once.
func (a *Authority) Handler() http.Handler { return http.HandlerFunc(a.serveHTTP) }

// lookup returns the tenant and, if clientID is not empty, the application.
// Application returns the application of clientID in the tenant, without
// its secrets.
func (a *Authority) Application(tenantID, clientID string) (Application, bool) {
	_, app := a.lookup(tenantID, clientID)
	if app == nil {
		return Application{}, false
	}
	app.ClientSecrets = nil
	return *app, true
}

func (a *Authority) lookup(tenantID, clientID string) (*tenant, *Application) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	t := a.tenants[strings.ToLower(tenantID)]
	if t == nil || clientID == "" {
		return t, nil
	}
	app := t.apps[strings.ToLower(clientID)]
	if app == nil {
		return t, nil
	}
	cp := *app // slices are never mutated after AddApplication
	return t, &cp
}

// knownResource reports whether resource (normalized) is known in t.
func (a *Authority) knownResource(t *tenant, resource string) bool {
	n := normalizeResource(resource)
	a.mu.RLock()
	defer a.mu.RUnlock()
	if a.resources[n] {
		return true
	}
	id := strings.TrimPrefix(n, "api://")
	_, ok := t.apps[id]
	return ok
}

func (a *Authority) issuerKeys(issuer string) ([]issuerKey, bool) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	k, ok := a.issuers[issuer]
	return k, ok
}
