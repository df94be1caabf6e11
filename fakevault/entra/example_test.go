package entra_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/kvsync/kvsync/fakevault/entra"
	"github.com/kvsync/kvsync/fakevault/pki"
)

// Example serves a fake Entra ID over TLS as login.microsoftonline.com and
// lets an unmodified WorkloadIdentityCredential-style client assertion
// credential get a Key Vault token for a Kubernetes service account.
func Example() {
	const (
		tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47"
		client = "9e3a1d5c-0b7e-4d61-a0c8-5f3e2b1c4d77"
		issuer = "https://oidc.fake.test/cluster-1/"
		sa     = "system:serviceaccount:kvsync-system:kvsync-controller"
	)

	// The authority, its tenant and an application trusting the
	// cluster's service-account issuer.
	authority, err := entra.New(entra.Options{})
	if err != nil {
		panic(err)
	}
	if err := authority.AddTenant(tenant); err != nil {
		panic(err)
	}
	if err := authority.AddApplication(tenant, entra.Application{
		ClientID:             client,
		FederatedCredentials: []entra.FederatedCredential{{Name: "kvsync", Issuer: issuer, Subject: sa}},
	}); err != nil {
		panic(err)
	}
	cluster, err := entra.NewIssuer(issuer)
	if err != nil {
		panic(err)
	}
	if err := authority.TrustIssuerJWKS(issuer, cluster.JWKS()); err != nil {
		panic(err)
	}

	// Serve it over TLS with a certificate for login.microsoftonline.com.
	ca, err := pki.NewCA("fake CA")
	if err != nil {
		panic(err)
	}
	leaf, err := ca.Issue(pki.LeafOptions{DNSNames: []string{entra.DefaultHost}})
	if err != nil {
		panic(err)
	}
	srv := httptest.NewUnstartedServer(authority.Handler())
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{leaf.TLSCertificate()}}
	srv.StartTLS()
	defer srv.Close()

	// The only seam: a transport that trusts the CA and dials the server
	// for login.microsoftonline.com:443.
	transport := &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: ca.Pool()},
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if addr == entra.DefaultHost+":443" {
				addr = srv.Listener.Addr().String()
			}
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
	}
	defer transport.CloseIdleConnections()
	cred, err := azidentity.NewClientAssertionCredential(tenant, client,
		func(context.Context) (string, error) {
			return cluster.Assertion(sa, entra.TokenExchangeAudience, time.Hour)
		},
		&azidentity.ClientAssertionCredentialOptions{
			ClientOptions: azcore.ClientOptions{Transport: &http.Client{Transport: transport}},
		})
	if err != nil {
		panic(err)
	}

	tok, err := cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{"https://vault.azure.net/.default"}})
	if err != nil {
		panic(err)
	}
	claims, err := authority.VerifyAccessToken(tok.Token)
	if err != nil {
		panic(err)
	}
	fmt.Println(claims.Audience)
	fmt.Println(claims.Issuer)
	fmt.Println(claims.AppID == client)
	// Output:
	// https://vault.azure.net
	// https://sts.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47/
	// true
}
