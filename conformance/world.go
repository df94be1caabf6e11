package conformance

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/google/uuid"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kvsync/kvsync/fakevault"
	"github.com/kvsync/kvsync/fakevault/entra"
	"github.com/kvsync/kvsync/fakevault/journal"
	"github.com/kvsync/kvsync/fakevault/keyvault"
	"github.com/kvsync/kvsync/fakevault/pki"
	"github.com/kvsync/kvsync/faults"
)

// World knows how to change the fake Azure services a scenario runs
// against and read their journals: in process through fakevault's Go API,
// or out of process through its admin API.
type World interface {
	AddApplication(app entra.Application) error
	CreateVault(cfg keyvault.VaultConfig) error
	// SetSecret adds a version; disabled creates it disabled.
	SetSecret(vault, name, value, contentType string, disabled bool) error
	// DisableLatest disables a secret's newest version.
	DisableLatest(vault, name string) error
	// SetNetworkRules sets a vault's firewall and private-link rules.
	SetNetworkRules(vault string, rules keyvault.NetworkRules) error
	// SetRateLimit throttles a vault (nil lifts the limit).
	SetRateLimit(vault string, limit *keyvault.RateLimit) error
	CreateCertificate(vault, name, keyType, contentType string, dnsNames []string) error
	CreateKey(vault, name, keyType string) error
	AddFault(f faults.Fault) error
	ClearFault(name string)
	Journal() ([]journal.Entry, error)
	Injections() ([]faults.Injection, error)
	// ProviderFaults reports whether provider.* faults reach the provider.
	ProviderFaults() bool
	// CloseConnections closes every client connection to the fake, so
	// that clients dial again through the faults in place.
	CloseConnections() error
}

// inProcess is the World of an in-process fakevault and injector.
type inProcess struct {
	fake *fakevault.Server
	inj  *faults.Injector
}

func (w inProcess) AddApplication(app entra.Application) error {
	return w.fake.Entra().AddApplication(Tenant, app)
}

func (w inProcess) CreateVault(cfg keyvault.VaultConfig) error {
	_, err := w.fake.CreateVault(cfg)
	return err
}

func (w inProcess) vault(name string) (*keyvault.Vault, error) {
	v, ok := w.fake.Vaults().Vault(name)
	if !ok {
		return nil, fmt.Errorf("vault %q does not exist", name)
	}
	return v, nil
}

func (w inProcess) SetSecret(vault, name, value, contentType string, disabled bool) error {
	v, err := w.vault(vault)
	if err != nil {
		return err
	}
	_, err = v.SetSecret(name, value, &keyvault.SecretOptions{ContentType: contentType, Disabled: disabled})
	return err
}

func (w inProcess) DisableLatest(vault, name string) error {
	v, err := w.vault(vault)
	if err != nil {
		return err
	}
	return v.SetSecretEnabled(name, "", false)
}

func (w inProcess) SetRateLimit(vault string, limit *keyvault.RateLimit) error {
	v, err := w.vault(vault)
	if err != nil {
		return err
	}
	return v.SetRateLimit(limit)
}

func (w inProcess) SetNetworkRules(vault string, rules keyvault.NetworkRules) error {
	v, err := w.vault(vault)
	if err != nil {
		return err
	}
	return v.SetNetworkRules(rules)
}

func (w inProcess) CreateCertificate(vault, name, keyType, contentType string, dnsNames []string) error {
	v, err := w.vault(vault)
	if err != nil {
		return err
	}
	_, err = v.CreateCertificate(name, keyvault.CertificateOptions{CA: w.fake.CA(), KeyType: pki.KeyType(keyType), ContentType: contentType, DNSNames: dnsNames})
	return err
}

func (w inProcess) CreateKey(vault, name, keyType string) error {
	v, err := w.vault(vault)
	if err != nil {
		return err
	}
	_, err = v.CreateKey(name, keyvault.KeyOptions{Type: pki.KeyType(keyType)})
	return err
}

func (w inProcess) AddFault(f faults.Fault) error           { return w.inj.Add(f) }
func (w inProcess) ClearFault(name string)                  { w.inj.Clear(name) }
func (w inProcess) Journal() ([]journal.Entry, error)       { return w.fake.Journal().Entries(), nil }
func (w inProcess) Injections() ([]faults.Injection, error) { return w.inj.Journal(), nil }
func (w inProcess) ProviderFaults() bool                    { return true }
func (w inProcess) CloseConnections() error {
	w.fake.CloseClientConnections()
	return nil
}

// admin is the World of a fakevault binary, reached through its admin API.
type admin struct {
	*fakevault.AdminClient
}

func (w admin) AddApplication(app entra.Application) error {
	return w.Do(http.MethodPost, "/tenants/"+Tenant+"/applications", app, nil)
}

func (w admin) CreateVault(cfg keyvault.VaultConfig) error {
	return w.Do(http.MethodPost, "/vaults", cfg, nil)
}

func (w admin) SetRateLimit(vault string, limit *keyvault.RateLimit) error {
	return w.Do(http.MethodPut, "/vaults/"+vault+"/ratelimit", limit, nil)
}

func (w admin) SetSecret(vault, name, value, contentType string, disabled bool) error {
	return w.Do(http.MethodPut, "/vaults/"+vault+"/secrets/"+url.PathEscape(name),
		map[string]any{"value": value, "contentType": contentType, "disabled": disabled}, nil)
}

func (w admin) DisableLatest(vault, name string) error {
	var versions []struct {
		Version string `json:"version"`
	}
	if err := w.Do(http.MethodGet, "/vaults/"+vault+"/secrets/"+url.PathEscape(name)+"/versions", nil, &versions); err != nil {
		return err
	}
	if len(versions) == 0 {
		return fmt.Errorf("secret %s has no version", name)
	}
	latest := versions[len(versions)-1].Version
	return w.Do(http.MethodPatch, "/vaults/"+vault+"/secrets/"+url.PathEscape(name)+"/"+latest, map[string]any{"enabled": false}, nil)
}

func (w admin) SetNetworkRules(vault string, rules keyvault.NetworkRules) error {
	return w.Do(http.MethodPut, "/vaults/"+vault+"/network", rules, nil)
}

func (w admin) CreateCertificate(vault, name, keyType, contentType string, dnsNames []string) error {
	return w.Do(http.MethodPost, "/vaults/"+vault+"/certificates/"+url.PathEscape(name),
		map[string]any{"keyType": keyType, "contentType": contentType, "dnsNames": dnsNames}, nil)
}

func (w admin) CreateKey(vault, name, keyType string) error {
	return w.Do(http.MethodPost, "/vaults/"+vault+"/keys/"+url.PathEscape(name), map[string]any{"keyType": keyType}, nil)
}

func (w admin) AddFault(f faults.Fault) error { return w.Do(http.MethodPost, "/faults", f, nil) }
func (w admin) CloseConnections() error       { return w.Do(http.MethodPost, "/connections/close", nil, nil) }

func (w admin) ClearFault(name string) {
	_ = w.Do(http.MethodDelete, "/faults/"+url.PathEscape(name), nil, nil)
}

func (w admin) Journal() ([]journal.Entry, error) {
	var out []journal.Entry
	return out, w.Do(http.MethodGet, "/journal", nil, &out)
}

func (w admin) Injections() ([]faults.Injection, error) {
	var out []faults.Injection
	return out, w.Do(http.MethodGet, "/faults/journal", nil, &out)
}

func (w admin) ProviderFaults() bool { return false }

// AddWorkloadIdentity creates namespace ns with ServiceAccount sa, and a
// workload identity federated with that ServiceAccount, and returns the
// identity's client ID.
func (e *Environment) AddWorkloadIdentity(ctx context.Context, c client.Client, ns, sa string) (string, error) {
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		return "", err
	}
	if err := c.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: sa}}); err != nil {
		return "", err
	}
	id := uuid.NewString()
	err := e.World.AddApplication(entra.Application{ClientID: id, ObjectID: id, FederatedCredentials: []entra.FederatedCredential{
		{Issuer: e.Issuer, Subject: "system:serviceaccount:" + ns + ":" + sa}}})
	return id, err
}
