// Package fakevault is an in-process Azure Key Vault and Microsoft Entra ID
// that the unmodified Azure SDK clients cannot tell from the services.
//
// A Server listens on one loopback HTTPS port with certificates from its own
// CA for *.vault.azure.net and login.microsoftonline.com, and routes requests
// by Host to the fake Entra ID (package entra) or to a fake vault (package
// keyvault). Clients reach it without any SDK option change: the only seam is
// the network edge, a dialer (DialContext) that resolves those names to the
// server, plus the CA to trust. HTTPClient returns an *http.Client wired so;
// Client returns a real *azsecrets.Client for a vault.
//
//	srv, err := fakevault.NewServer(fakevault.Options{})
//	defer srv.Close()
//	vault, err := srv.CreateVault(keyvault.VaultConfig{Name: "contoso"})
//	_, err = vault.SetSecret(...)
//	client, err := srv.Client("contoso")
//	resp, err := client.GetSecret(ctx, "db-password", "", nil)
package fakevault

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"github.com/kvsync/kvsync/fakevault/arm"
	"github.com/kvsync/kvsync/fakevault/entra"
	"github.com/kvsync/kvsync/fakevault/graph"
	"github.com/kvsync/kvsync/fakevault/journal"
	"github.com/kvsync/kvsync/fakevault/keyvault"
	"github.com/kvsync/kvsync/fakevault/pki"
)

// Host names the fake serves.
const (
	// LoginHost is the Entra ID authority host.
	LoginHost = "login.microsoftonline.com"
	// VaultDomain is the DNS suffix of vaults: <name>.vault.azure.net.
	VaultDomain = "vault.azure.net"
)

// Defaults of the identity every Server starts with.
const (
	// DefaultTenantID is the tenant of the default identity and of vaults
	// created without one.
	DefaultTenantID = "72f988bf-0000-4000-8000-000000000001"
	// DefaultClientID is the client ID of the default identity, which is
	// Key Vault Administrator on every vault created through the Server.
	DefaultClientID = "00000000-0000-4000-8000-00000000ad01"
	// DefaultClientSecret is the default identity's client secret.
	DefaultClientSecret = "kvsync-fake-admin-secret"
)

// Options configure a Server.
type Options struct {
	// Addr is the listen address; defaults to 127.0.0.1:0.
	Addr string
	// Now returns the current time for tokens and timestamps; defaults to
	// time.Now.
	Now func() time.Time
	// Region is the vaults' Azure region; defaults to eastus.
	Region string
	// TokenLifetime is the lifetime of issued access tokens; defaults to 1h.
	TokenLifetime time.Duration
	// JournalLimit bounds the request journal; defaults to
	// journal.DefaultLimit.
	JournalLimit int
	// ErrorLog receives the HTTP server's connection errors (e.g. TLS
	// handshakes a client aborted); defaults to discarding them.
	ErrorLog *log.Logger
	// CA signs the server's TLS certificate and the certificates stored in
	// vaults; defaults to a new CA. Pass one kept across restarts (LoadCA)
	// when clients out of process trust its bundle.
	CA *pki.CA
	// Fidelity are the vault behaviours that cost clients time (soft
	// delete, purge and recover taking seconds; a trailing empty list
	// page); the zero value leaves them out. keyvault.ServiceFidelity is
	// the service's, the standalone fakevault's default.
	Fidelity keyvault.Fidelity
	// PageSize is the number of items of a list page when a request sets
	// no maxresults; 25, the service's, when zero.
	PageSize int
}

// Server is a running fake Key Vault and Entra ID.
type Server struct {
	ca      *pki.CA
	entra   *entra.Authority
	vaults  *keyvault.Service
	arm     *arm.Service
	graph   *graph.Service
	journal *journal.Journal

	listener net.Listener
	http     *http.Server
	// handler is what the listener serves: Handler, wrapped by Use.
	handler atomic.Pointer[http.Handler]
	served  chan error
	client  *http.Client

	closeOnce sync.Once

	connsMu sync.Mutex
	// conns are the client connections open now.
	conns map[net.Conn]struct{}
}

// NewCA returns a new CA of the kind a Server makes when Options.CA is nil.
func NewCA() (*pki.CA, error) { return pki.NewCA("kvsync fake Azure CA") }

// NewServer starts a Server. Close it when done.
func NewServer(opts Options) (*Server, error) {
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if opts.ErrorLog == nil {
		opts.ErrorLog = log.New(io.Discard, "", 0)
	}
	ca := opts.CA
	if ca == nil {
		var err error
		if ca, err = NewCA(); err != nil {
			return nil, err
		}
	}
	leaf, err := ca.Issue(pki.LeafOptions{
		DNSNames: []string{LoginHost, "*." + VaultDomain, arm.Host, graph.Host, "localhost"},
		IPs:      []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	})
	if err != nil {
		return nil, err
	}
	j := &journal.Journal{Limit: opts.JournalLimit}
	authority, err := entra.New(entra.Options{Host: LoginHost, Now: opts.Now, TokenLifetime: opts.TokenLifetime, Journal: j})
	if err != nil {
		return nil, fmt.Errorf("starting fake Entra ID: %w", err)
	}
	vaults, err := keyvault.New(keyvault.Options{Verifier: tokenVerifier{authority}, Now: opts.Now, Journal: j, DomainSuffix: VaultDomain, Region: opts.Region,
		Fidelity: opts.Fidelity, PageSize: opts.PageSize})
	if err != nil {
		return nil, fmt.Errorf("starting fake Key Vault: %w", err)
	}
	resources, err := arm.New(arm.Options{Verifier: tokenVerifier{authority}, Vaults: vaults})
	if err != nil {
		return nil, err
	}
	directory, err := graph.New(graph.Options{Verifier: tokenVerifier{authority}, Directory: authority})
	if err != nil {
		return nil, err
	}
	if err := authority.AddTenant(DefaultTenantID); err != nil {
		return nil, err
	}
	if err := authority.AddApplication(DefaultTenantID, entra.Application{
		ClientID: DefaultClientID, ObjectID: DefaultClientID, DisplayName: "kvsync-fake-admin", ClientSecrets: []string{DefaultClientSecret},
	}); err != nil {
		return nil, err
	}

	lis, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", opts.Addr, err)
	}
	s := &Server{ca: ca, entra: authority, vaults: vaults, arm: resources, graph: directory, journal: j, listener: lis, served: make(chan error, 1), conns: map[net.Conn]struct{}{}}
	h := s.Handler()
	s.handler.Store(&h)
	s.http = &http.Server{
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { (*s.handler.Load()).ServeHTTP(w, r) }),
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{leaf.TLSCertificate()}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          opts.ErrorLog,
		ConnState:         s.track,
	}
	s.client = &http.Client{Transport: s.Transport()}
	go func() { s.served <- s.http.ServeTLS(lis, "", "") }()
	return s, nil
}

// Handler routes a request by its Host to Entra ID, to a vault or to
// Resource Manager. Any other host gets 421 Misdirected Request.
func (s *Server) Handler() http.Handler {
	login, vault, resources, directory := s.entra.Handler(), s.vaults.Handler(), s.arm.Handler(), s.graph.Handler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := hostOnly(r.Host)
		switch {
		case host == LoginHost:
			login.ServeHTTP(w, r)
		case host == arm.Host:
			resources.ServeHTTP(w, r)
		case host == graph.Host:
			directory.ServeHTTP(w, r)
		case strings.HasSuffix(host, "."+VaultDomain):
			vault.ServeHTTP(w, r)
		default:
			http.Error(w, fmt.Sprintf("host %q is not served here", host), http.StatusMisdirectedRequest)
		}
	})
}

// Use wraps what the listener serves with middleware, such as a fault
// injector: requests reach the middleware first, then the handler it wraps.
// Later calls wrap earlier ones. It is safe to call while serving.
func (s *Server) Use(middleware func(http.Handler) http.Handler) {
	for {
		cur := s.handler.Load()
		next := middleware(*cur)
		if s.handler.CompareAndSwap(cur, &next) {
			return
		}
	}
}

// Addr returns the address the server listens on.
func (s *Server) Addr() string { return s.listener.Addr().String() }

// CAPEM returns the PEM bundle of the CA that signed the server's
// certificates: what a client out of process must trust (SSL_CERT_FILE).
func (s *Server) CAPEM() []byte { return s.ca.CertPEM() }

// CA returns the server's CA; it also mints the certificates stored in vaults.
func (s *Server) CA() *pki.CA { return s.ca }

// Entra returns the fake Entra ID, to add tenants, applications and trusted
// issuers.
func (s *Server) Entra() *entra.Authority { return s.entra }

// Vaults returns the fake Key Vault service.
func (s *Server) Vaults() *keyvault.Service { return s.vaults }

// Journal returns the journal of every request the server answered.
func (s *Server) Journal() *journal.Journal { return s.journal }

// CreateVault creates a vault in the server's Key Vault service. A vault
// without a tenant gets DefaultTenantID and, in every case, the default
// identity is made Key Vault Administrator so Client works on it.
func (s *Server) CreateVault(cfg keyvault.VaultConfig) (*keyvault.Vault, error) {
	if cfg.TenantID == "" {
		cfg.TenantID = DefaultTenantID
	}
	cfg.RoleAssignments = append(cfg.RoleAssignments, keyvault.RoleAssignment{PrincipalID: DefaultClientID, Role: keyvault.RoleAdministrator})
	return s.vaults.CreateVault(cfg)
}

// DialContext connects to the server for the names it serves, on port 443:
// login.microsoftonline.com, management.azure.com, graph.microsoft.com and
// <vault>.vault.azure.net of an existing vault.
// Any other name fails as a DNS lookup of a name that does not exist does;
// another port is refused. It is the seam clients are given in place of the
// network (http.Transport.DialContext).
func (s *Server) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Err: err}
	}
	if !s.Serves(host) {
		return nil, &net.OpError{Op: "dial", Net: network, Err: &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}}
	}
	if port != "443" {
		return nil, &net.OpError{Op: "dial", Net: network, Err: fmt.Errorf("connect %s: connection refused", addr)}
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", s.Addr())
}

// Serves reports whether host resolves to the server: the login host,
// Resource Manager's, Graph's, or the host of an existing vault.
func (s *Server) Serves(host string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if host == LoginHost || host == arm.Host || host == graph.Host {
		return true
	}
	return s.vaults.Resolves(host)
}

// Transport returns an http.Transport that reaches the server through
// DialContext and trusts only its CA: real TLS, real names.
func (s *Server) Transport() *http.Transport {
	return &http.Transport{
		DialContext:         s.DialContext,
		TLSClientConfig:     &tls.Config{RootCAs: s.ca.Pool(), MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2:   true,
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     90 * time.Second,
	}
}

// HTTPClient returns the server's HTTP client (see Transport).
func (s *Server) HTTPClient() *http.Client { return s.client }

// ClientOptions returns azcore client options whose only change from the
// defaults is the transport: the one seam Azure SDK clients get.
func (s *Server) ClientOptions() azcore.ClientOptions {
	return azcore.ClientOptions{Transport: s.client}
}

// Credential returns a client secret credential of the default identity.
func (s *Server) Credential() (azcore.TokenCredential, error) {
	return azidentity.NewClientSecretCredential(DefaultTenantID, DefaultClientID, DefaultClientSecret,
		&azidentity.ClientSecretCredentialOptions{ClientOptions: s.ClientOptions()})
}

// Client returns an azsecrets client for the vault, authenticated as the
// default identity.
func (s *Server) Client(vault string) (*azsecrets.Client, error) {
	cred, err := s.Credential()
	if err != nil {
		return nil, err
	}
	return s.ClientWith(vault, cred)
}

// ClientWith returns an azsecrets client for the vault with cred, which
// should be built with ClientOptions.
func (s *Server) ClientWith(vault string, cred azcore.TokenCredential) (*azsecrets.Client, error) {
	return azsecrets.NewClient(VaultURL(vault), cred, &azsecrets.ClientOptions{ClientOptions: s.ClientOptions()})
}

// VaultURL returns the URL of the named vault: https://<name>.vault.azure.net/.
func VaultURL(name string) string { return "https://" + name + "." + VaultDomain + "/" }

// track records the open client connections.
func (s *Server) track(c net.Conn, state http.ConnState) {
	s.connsMu.Lock()
	defer s.connsMu.Unlock()
	switch state {
	case http.StateNew:
		s.conns[c] = struct{}{}
	case http.StateClosed, http.StateHijacked:
		delete(s.conns, c)
	}
}

// CloseClientConnections closes every client connection open now, as a
// network change or a restarted gateway does: requests in flight fail, and
// clients dial again, through whatever faults are then in place.
func (s *Server) CloseClientConnections() {
	s.connsMu.Lock()
	defer s.connsMu.Unlock()
	for c := range s.conns {
		_ = c.Close()
	}
}

// Close stops the server, waiting for in-flight requests to finish.
func (s *Server) Close() error {
	var err error
	s.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err = s.http.Shutdown(ctx)
		if serr := <-s.served; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
			err = errors.Join(err, serr)
		}
		if t, ok := s.client.Transport.(*http.Transport); ok {
			t.CloseIdleConnections()
		}
	})
	return err
}

// tokenVerifier adapts the fake Entra ID to the vault's TokenVerifier.
type tokenVerifier struct{ authority *entra.Authority }

func (v tokenVerifier) VerifyAccessToken(raw string) (keyvault.Principal, error) {
	t, err := v.authority.VerifyAccessToken(raw)
	switch {
	case errors.Is(err, entra.ErrTokenExpired):
		return keyvault.Principal{}, fmt.Errorf("%w: %w", keyvault.ErrTokenExpired, err)
	case errors.Is(err, entra.ErrTokenNotYetValid):
		return keyvault.Principal{}, fmt.Errorf("%w: %w", keyvault.ErrTokenNotYetValid, err)
	case err != nil:
		return keyvault.Principal{}, fmt.Errorf("%w: %w", keyvault.ErrTokenInvalid, err)
	}
	return keyvault.Principal{
		TenantID: t.TenantID, ObjectID: t.ObjectID, AppID: t.AppID,
		Audience: t.Audience, Issuer: t.Issuer, ExpiresAt: t.ExpiresAt,
	}, nil
}

func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return strings.ToLower(h)
	}
	return strings.ToLower(hostport)
}
