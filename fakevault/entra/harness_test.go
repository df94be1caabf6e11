package entra_test

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"github.com/kvsync/kvsync/fakevault/entra"
	"github.com/kvsync/kvsync/fakevault/journal"
	"github.com/kvsync/kvsync/fakevault/pki"
)

const (
	tenantID     = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	clientID     = "9e3a1d5c-0b7e-4d61-a0c8-5f3e2b1c4d77"
	objectID     = "4c2e8d6a-7b9f-4e31-8a5d-1f0c3b2a9e66"
	secret       = "canary-secret-4f1e9b"
	issuerURL    = "https://oidc.fake.test/cluster-1/"
	saSubject    = "system:serviceaccount:kvsync-system:kvsync-controller"
	vaultScope   = "https://vault.azure.net/.default"
	vaultAud     = "https://vault.azure.net"
	stsIssuerURL = "https://sts.windows.net/" + tenantID + "/"
)

// clock is a settable time source shared by the authority and the issuer.
type clock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

// harness serves an Authority over real TLS as login.microsoftonline.com
// and hands out azcore client options whose transport dials it.
type harness struct {
	t         *testing.T
	clock     *clock
	authority *entra.Authority
	journal   *journal.Journal
	issuer    *entra.Issuer
	server    *httptest.Server
	client    *http.Client
	requests  atomic.Int64
}

// newHarness starts an authority with one tenant, one application (a
// secret and a federated credential for issuerURL/saSubject) and a trusted
// issuer.
func newHarness(t *testing.T) *harness {
	t.Helper()
	h := &harness{t: t, clock: &clock{}, journal: &journal.Journal{}}
	a, err := entra.New(entra.Options{Now: h.clock.Now, Journal: h.journal})
	if err != nil {
		t.Fatal(err)
	}
	h.authority = a
	if err := a.AddTenant(tenantID); err != nil {
		t.Fatal(err)
	}
	if err := a.AddApplication(tenantID, entra.Application{
		ClientID:      clientID,
		ObjectID:      objectID,
		DisplayName:   "kvsync-controller",
		ClientSecrets: []string{secret},
		FederatedCredentials: []entra.FederatedCredential{{
			Name:    "kvsync",
			Issuer:  issuerURL,
			Subject: saSubject,
		}},
	}); err != nil {
		t.Fatal(err)
	}
	h.issuer, err = entra.NewIssuer(issuerURL)
	if err != nil {
		t.Fatal(err)
	}
	h.issuer.Now = h.clock.Now
	if err := a.TrustIssuer(issuerURL, h.issuer.PublicKey()); err != nil {
		t.Fatal(err)
	}

	ca, err := pki.NewCA("kvsync fake CA")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue(pki.LeafOptions{DNSNames: []string{entra.DefaultHost}})
	if err != nil {
		t.Fatal(err)
	}
	handler := a.Handler()
	h.server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.requests.Add(1)
		handler.ServeHTTP(w, r)
	}))
	h.server.TLS = &tls.Config{Certificates: []tls.Certificate{leaf.TLSCertificate()}}
	h.server.StartTLS()
	t.Cleanup(h.server.Close)

	addr := h.server.Listener.Addr().String()
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	transport := &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: ca.Pool()},
		DialContext: func(ctx context.Context, network, hostport string) (net.Conn, error) {
			if hostport == entra.DefaultHost+":443" {
				hostport = addr
			}
			return dialer.DialContext(ctx, network, hostport)
		},
	}
	t.Cleanup(transport.CloseIdleConnections)
	h.client = &http.Client{Transport: transport, Timeout: 30 * time.Second}
	return h
}

// clientOptions returns default client options but for the transport.
func (h *harness) clientOptions() azcore.ClientOptions {
	return azcore.ClientOptions{Transport: h.client}
}

// assertion returns an assertion of the harness issuer.
func (h *harness) assertion(subject, audience string) string {
	h.t.Helper()
	a, err := h.issuer.Assertion(subject, audience, time.Hour)
	if err != nil {
		h.t.Fatal(err)
	}
	return a
}
