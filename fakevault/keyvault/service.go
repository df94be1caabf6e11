package keyvault

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/kvsync/kvsync/fakevault/journal"
)

// Options configure a Service.
type Options struct {
	// Verifier checks bearer tokens. Required.
	Verifier TokenVerifier
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Journal, when set, receives one entry per answered request.
	Journal *journal.Journal
	// DomainSuffix is the vault DNS suffix; "vault.azure.net" when empty.
	// Vault hosts are <name>.<DomainSuffix>, and the token audience and
	// challenge resource are https://<DomainSuffix>.
	DomainSuffix string
	// Region is the default vault location; "eastus" when empty.
	Region string
	// PageSize is the number of items a list page holds when the request
	// sets no maxresults; 25 (the service's default) when zero.
	PageSize int
	// AuthorityHost is the Entra authority the 401 challenge names;
	// "https://login.microsoftonline.com" when empty.
	AuthorityHost string
	// Fidelity are the service's behaviours that cost a client time or
	// extra code paths; the zero value turns them off (instant soft
	// delete, purge and recover; lists end on their last item), as suites
	// that do not test them want. ServiceFidelity is the service's.
	Fidelity Fidelity
}

// Fidelity are service behaviours a fake may model or leave out.
type Fidelity struct {
	// DeleteDelay is how long a deleted secret takes to become a deleted
	// secret: GET /deletedsecrets/{name} answers 404 until it has passed,
	// and setting, recovering or purging the name answers 409 Conflict
	// (ObjectIsBeingDeleted). The SDKs' delete pollers wait for it.
	DeleteDelay time.Duration
	// PurgeDelay is how long a purged name cannot be set again (409
	// Conflict, ObjectIsBeingDeleted: "... is currently being deleted and
	// cannot be re-created; retry later.").
	PurgeDelay time.Duration
	// RecoverDelay is how long a recovered secret stays unreadable: GET
	// /secrets/{name} (and its versions) answer 404 until it has passed.
	// The SDKs' recover pollers wait for it.
	RecoverDelay time.Duration
	// TrailingEmptyPage gives the last page of items of a vault-wide list
	// (secrets, deleted secrets, keys, certificates) a nextLink to an
	// empty page whose nextLink is null, so that a client must follow
	// links until one is null rather than stop at a short page.
	TrailingEmptyPage bool
}

// ServiceFidelity is the service's order of magnitude, as the SDKs'
// recordings of it show: deleted secrets appear at /deletedsecrets after 2
// to 10 seconds (azure-sdk-for-js keyvault-secrets recording "can wait
// until a secret is deleted": six 404 polls, then 200, about 10 s;
// azure-sdk-for-go azsecrets TestBackupSecret: about 2 s), a purged name
// is refused for a few seconds (azure-sdk-for-python
// test_backup_restore_7_3: 409 Conflict, then 200 three seconds later), a
// recovered secret reads 404 for about 2 s (azure-sdk-for-net
// StartRecoverDeletedSecret), and vault-wide lists may end with an empty
// page (azure-sdk-for-js "can list deleted secrets by page": empty pages
// with a nextLink, the last {"value":[],"nextLink":null}).
var ServiceFidelity = Fidelity{DeleteDelay: 5 * time.Second, PurgeDelay: 3 * time.Second, RecoverDelay: 2 * time.Second, TrailingEmptyPage: true}

// Service is the fake Key Vault data plane: every vault under
// DomainSuffix, served by one handler. It is safe for concurrent use.
type Service struct {
	opts Options

	// pageKey signs the $skiptoken values the service issues.
	pageKey []byte

	mu     sync.RWMutex
	vaults map[string]*Vault // by lower-case name
}

// New returns a Service with no vaults. It fails when opts.Verifier is nil
// or the options are out of range.
func New(opts Options) (*Service, error) {
	if opts.Verifier == nil {
		return nil, errors.New("keyvault: Options.Verifier is required")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.DomainSuffix == "" {
		opts.DomainSuffix = "vault.azure.net"
	}
	opts.DomainSuffix = strings.ToLower(strings.Trim(opts.DomainSuffix, "."))
	if opts.Region == "" {
		opts.Region = DefaultRegion
	}
	if opts.PageSize == 0 {
		opts.PageSize = 25
	}
	if opts.PageSize < 1 || opts.PageSize > 25 {
		return nil, fmt.Errorf("keyvault: Options.PageSize %d is outside 1-25", opts.PageSize)
	}
	if opts.AuthorityHost == "" {
		opts.AuthorityHost = "https://login.microsoftonline.com"
	}
	opts.AuthorityHost = strings.TrimRight(opts.AuthorityHost, "/")
	if f := opts.Fidelity; f.DeleteDelay < 0 || f.PurgeDelay < 0 || f.RecoverDelay < 0 {
		return nil, fmt.Errorf("keyvault: Options.Fidelity has a negative delay: %+v", f)
	}
	pageKey := make([]byte, 32)
	if _, err := rand.Read(pageKey); err != nil {
		return nil, fmt.Errorf("keyvault: page token key: %w", err)
	}
	return &Service{opts: opts, vaults: map[string]*Vault{}, pageKey: pageKey}, nil
}

func (s *Service) now() time.Time { return s.opts.Now() }

// audience is the token audience (and challenge resource) vaults accept.
func (s *Service) audience() string { return "https://" + s.opts.DomainSuffix }

// keyVaultAppID is the application ID of Azure Key Vault, which the service
// also accepts as token audience.
const keyVaultAppID = "cfa8b339-82a2-471a-a3c9-0fc0be7a4093"

// CreateVault creates a vault. It fails, wrapping ErrInvalidConfig, when
// the configuration is invalid or a vault of that name already exists
// (names are global and case-insensitive).
func (s *Service) CreateVault(cfg VaultConfig) (*Vault, error) {
	if err := cfg.normalize(s.opts.Region); err != nil {
		return nil, fmt.Errorf("keyvault: %w", err)
	}
	key := strings.ToLower(cfg.Name)
	v := &Vault{
		svc:            s,
		baseURL:        "https://" + key + "." + s.opts.DomainSuffix,
		cfg:            cfg,
		secrets:        map[string]*secretItem{},
		deletedSecrets: map[string]*secretItem{},
		purgedSecrets:  map[string]time.Time{},
		keys:           map[string]*keyItem{},
		certs:          map[string]*certItem{},
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.vaults[key]; ok {
		return nil, fmt.Errorf("keyvault: %w: vault %q already exists", ErrInvalidConfig, cfg.Name)
	}
	s.vaults[key] = v
	return v, nil
}

// Vaults returns every vault, by name.
func (s *Service) Vaults() []*Vault {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*Vault, 0, len(s.vaults))
	for _, v := range s.vaults {
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b *Vault) int { return strings.Compare(a.cfg.Name, b.cfg.Name) })
	return out
}

// Vault returns the named vault.
func (s *Service) Vault(name string) (*Vault, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	v, ok := s.vaults[strings.ToLower(name)]
	return v, ok
}

// Resolves reports whether host (with or without a port) names an existing
// vault. A listener or dialer in front of the handler can use it to fail
// unknown names the way DNS fails them for the real service.
func (s *Service) Resolves(host string) bool {
	_, ok := s.vaultForHost(host)
	return ok
}

func (s *Service) vaultForHost(host string) (*Vault, bool) {
	name, ok := s.vaultName(host)
	if !ok {
		return nil, false
	}
	return s.Vault(name)
}

// vaultName extracts the vault name from a host under DomainSuffix.
func (s *Service) vaultName(host string) (string, bool) {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	name, ok := strings.CutSuffix(host, "."+s.opts.DomainSuffix)
	if !ok || name == "" || strings.Contains(name, ".") {
		return "", false
	}
	return name, true
}

// Handler returns the handler of every vault host. Requests are answered
// as the service answers them (see the package documentation). A request
// whose host is under DomainSuffix but names no vault is answered 404
// VaultNotFound: the real service cannot be reached under an unknown name
// at all (DNS does not resolve it), which an HTTP handler cannot show; use
// Resolves to fail such names before the handler is reached.
func (s *Service) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

// WriteError writes e as the vault r addresses would: like the package
// WriteError, plus that vault's region and, for a 401, its
// WWW-Authenticate challenge.
func (s *Service) WriteError(w http.ResponseWriter, r *http.Request, e *Error) {
	region := s.opts.Region
	v, ok := s.vaultForHost(r.Host)
	if ok {
		region = v.cfg.Location
	}
	setCommonHeaders(w.Header(), r, region)
	if e.Status == http.StatusUnauthorized && ok {
		w.Header().Set("WWW-Authenticate", s.challenge(v.cfg.TenantID))
	}
	writeErrorBody(w, e)
}

// challenge is the WWW-Authenticate value of a 401, e.g.
// Bearer authorization="https://login.microsoftonline.com/<tenant>", resource="https://vault.azure.net".
func (s *Service) challenge(tenant string) string {
	return `Bearer authorization="` + s.opts.AuthorityHost + "/" + tenant + `", resource="` + s.audience() + `"`
}

// call is one request being answered.
type call struct {
	svc     *Service
	w       *statusWriter
	r       *http.Request
	vault   *Vault
	cfg     VaultConfig // snapshot of the vault's configuration
	route   route
	version string // api-version
	entry   journal.Entry
}

// statusWriter remembers the status written.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// fail answers e and notes its code for the journal.
func (c *call) fail(e *Error) {
	c.entry.ErrorCode = e.MostSpecificCode()
	writeErrorBody(c.w, e)
}

// ok answers a JSON body.
func (c *call) ok(status int, body any) { writeJSON(c.w, status, body) }

// answer writes body with 200 OK, or the error e.
func (c *call) answer(body any, e *Error) {
	if e != nil {
		c.fail(e)
		return
	}
	c.ok(http.StatusOK, body)
}

// apiVersions are the api-version values the fake accepts: those of the
// service's REST API releases, including the ones azsecrets v1.5.1
// (2026-04-01), azkeys v1.5.0 (2025-07-01) and azcertificates v1.4.0 (7.6)
// send.
var apiVersions = map[string]bool{
	"2015-06-01": true, "2016-10-01": true,
	"7.0": true, "7.1": true, "7.2": true, "7.3": true, "7.4": true, "7.5": true, "7.6": true,
	"2025-07-01": true, "2026-04-01": true,
}

func (s *Service) serveHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	c := &call{svc: s, w: &statusWriter{ResponseWriter: w}, r: r, version: q.Get("api-version")}
	c.entry = journal.Entry{Service: "keyvault", Host: r.Host, Method: r.Method, Path: r.URL.Path, APIVersion: c.version}
	defer func() {
		if p := recover(); p != nil {
			if c.w.status == 0 {
				c.fail(errInternal())
			}
		}
		c.entry.Time = s.now()
		c.entry.Status = c.w.status
		c.entry.RequestID = c.w.Header().Get(headerRequestID)
		s.opts.Journal.Record(c.entry)
	}()
	c.w.Header().Set(headerRequestID, uuid.NewString())

	v, ok := s.vaultForHost(r.Host)
	if !ok {
		setCommonHeaders(c.w.Header(), r, s.opts.Region)
		c.fail(errVaultNotFound(r.Host))
		return
	}
	c.vault = v
	c.cfg = v.Config()
	c.entry.Tenant = c.cfg.TenantID
	setCommonHeaders(c.w.Header(), r, c.cfg.Location)

	rt, routeErr := parseRoute(r.Method, r.URL.EscapedPath())
	c.route = rt
	c.entry.Operation = rt.op.name
	c.entry.Object = rt.object()

	switch {
	case !q.Has("api-version"):
		c.fail(errMissingAPIVersion())
		return
	case !apiVersions[c.version]:
		c.fail(errUnknownAPIVersion(c.version))
		return
	}

	p, authErr := s.authenticate(r, &c.cfg)
	if authErr != nil {
		c.w.Header().Set("WWW-Authenticate", s.challenge(c.cfg.TenantID))
		c.fail(authErr)
		return
	}
	c.entry.Tenant = p.TenantID
	c.entry.Identity = "appid=" + p.AppID + ";oid=" + p.ObjectID

	if allowed, retry := v.admit(s.now()); !allowed {
		c.fail(errThrottled(retry))
		return
	}
	addr, _ := clientAddr(r)
	if e := c.cfg.checkNetwork(addr, p); e != nil {
		c.fail(e)
		return
	}
	if routeErr != nil {
		c.fail(routeErr)
		return
	}
	if e := c.cfg.authorize(p, rt.op, rt.name); e != nil {
		c.fail(e)
		return
	}
	rt.handle(c)
}

// authenticate checks the bearer token of r against the vault: the
// verifier's signature and lifetime checks, then audience and issuer.
func (s *Service) authenticate(r *http.Request, cfg *VaultConfig) (Principal, *Error) {
	scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	token = strings.TrimSpace(token)
	if !strings.EqualFold(scheme, "Bearer") || token == "" {
		return Principal{}, errMissingToken()
	}
	p, err := s.opts.Verifier.VerifyAccessToken(token)
	switch {
	case errors.Is(err, ErrTokenExpired):
		return Principal{}, errTokenExpired()
	case errors.Is(err, ErrTokenNotYetValid):
		return Principal{}, errTokenNotYetValid()
	case err != nil:
		return Principal{}, errTokenInvalid(token)
	}
	aud := strings.TrimSpace(p.Audience)
	if aud != s.audience() && aud != keyVaultAppID {
		return Principal{}, errInvalidAudience(s.audience(), p.Audience)
	}
	v1 := "https://sts.windows.net/" + cfg.TenantID + "/"
	v2 := s.opts.AuthorityHost + "/" + cfg.TenantID + "/v2.0"
	if !strings.EqualFold(p.Issuer, v1) && !strings.EqualFold(p.Issuer, v2) {
		return Principal{}, errInvalidIssuer([]string{v1}, p.Issuer)
	}
	return p, nil
}

// clientAddr is the request's client IP address.
func clientAddr(r *http.Request) (netip.Addr, bool) {
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		return ap.Addr().Unmap(), true
	}
	if a, err := netip.ParseAddr(r.RemoteAddr); err == nil {
		return a.Unmap(), true
	}
	return netip.Addr{}, false
}

// nextLink renders the absolute URL of the next page, as the service does:
// https://<vault host>:443<path>?api-version=<v>&$skiptoken=<t>[&maxresults=<n>].
func (c *call) nextLink(t *pageToken, pr pageRequest) *string {
	if t == nil {
		return nil
	}
	host := strings.TrimPrefix(c.vault.baseURL, "https://")
	link := "https://" + host + ":443" + c.r.URL.EscapedPath() + "?api-version=" + c.version + "&$skiptoken=" + c.svc.encodePageToken(pr.list, *t)
	if pr.maxResults != "" {
		link += "&maxresults=" + pr.maxResults
	}
	return &link
}
