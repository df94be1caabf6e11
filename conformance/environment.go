// Package conformance runs the scenarios of package scenarios against the
// controller and the Azure provider, on an embedded control plane (envtest)
// with fakevault and the fault injector in process, and reports per scenario
// and per documented reason.
package conformance

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"google.golang.org/grpc"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlconfig "sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/secrets-store-csi-driver/provider/v1alpha1"

	spcv1 "github.com/kvsync/kvsync/api/secretsstore/v1"
	ssv1alpha1 "github.com/kvsync/kvsync/api/secretsync/v1alpha1"
	"github.com/kvsync/kvsync/conformance/upstreamprovider"
	"github.com/kvsync/kvsync/controller"
	"github.com/kvsync/kvsync/controller/csiprovider"
	"github.com/kvsync/kvsync/fakevault"
	"github.com/kvsync/kvsync/faults"
	"github.com/kvsync/kvsync/provider"
	"github.com/kvsync/kvsync/troubleshoot"
)

// Tenant is the tenant of the environment's vaults and identities.
const Tenant = "5f0c1d2e-0000-4000-8000-00000000c0f1"

// Options configure an Environment.
type Options struct {
	// CRDDir holds the CRDs to install.
	CRDDir string
	// PollInterval is the controller's rotation poll interval.
	PollInterval time.Duration
	// Log receives the controller's and the provider's logs.
	Log io.Writer
	// TokenLifetime is the lifetime of the access tokens the fake Entra ID
	// issues (embedded mode); zero means an hour, as Entra ID's.
	TokenLifetime time.Duration
	// Provider is the Azure provider on azure.sock (embedded mode):
	// ProviderKvsync (the default) or ProviderUpstreamShaped.
	Provider string
	// WithoutController starts no controller. In the embedded mode the
	// caller starts its own, one per namespace, with StartController; in
	// the external mode the controller is installed (ServiceAccount, RBAC,
	// admission policies, ControllerConfig) and its process starts with
	// StartControllerProcess.
	WithoutController bool
}

// The Azure providers the suite can run.
const (
	// ProviderKvsync is kvsync's Azure provider (package provider).
	ProviderKvsync = "kvsync"
	// ProviderUpstreamShaped is the double of the upstream Azure provider
	// (package upstreamprovider), which answers as the provider the SSE
	// ships does.
	ProviderUpstreamShaped = "upstream-shaped"
	// ProviderCommand is another Azure provider, run as a process by the
	// external mode (ExternalOptions.ProviderCommand).
	ProviderCommand = "command"
)

// Environment is the world scenarios run in: envtest, fakevault with a
// fault injector on its seams, the Azure provider on a real unix socket and
// the controller, all in process.
type Environment struct {
	Client client.Client
	Config *rest.Config
	// World changes the fake Azure services and reads their journals.
	World World
	// Issuer is the API server's ServiceAccount token issuer.
	Issuer string
	// PollInterval is the controller's poll interval.
	PollInterval time.Duration
	// Mode is embedded or external.
	Mode string
	// MountDeadline is the controller's deadline for one Mount (its
	// --provider-timeout): a check reports within it, whatever the
	// provider does, so it bounds how long a step's expectation may take.
	MountDeadline time.Duration
	// Profiles are the conformance profiles under test (scenarios.Core,
	// scenarios.Extended); scenarios of other profiles are skipped and
	// the checks of kvsync's own wording and the doctor run only with
	// scenarios.Extended.
	Profiles []string
	// AzureProvider names the Azure provider under test where the suite
	// runs it: ProviderKvsync or ProviderUpstreamShaped; empty when the
	// suite does not know it (an existing cluster).
	AzureProvider string
	// Doctor diagnoses a SecretSync as `kubectl kvsync doctor` does, its
	// network checks going through the fault injector as the provider's
	// connections do; nil where the suite cannot see the provider's network
	// (out of process), and the doctor check is skipped.
	Doctor func(ctx context.Context, namespace, name string) (troubleshoot.Diagnosis, error)
	// ProviderMetrics returns the provider's metrics in text form, where
	// the provider is a process of its own.
	ProviderMetrics func() (string, error)
	// Metrics returns the controller's metrics in text form; nil when the
	// controller's metrics are not reachable from the suite.
	Metrics func() (string, error)
	// Shell runs a command line as an operator's shell would, with kubectl
	// on PATH and KUBECONFIG pointing at the environment's cluster, and
	// returns its output; nil where no kubectl is found.
	Shell func(ctx context.Context, command string) (string, error)
	// AzureCLI runs an Azure CLI command line (az ...) against the fake as
	// an operator of the scenarios' tenant, through the fake's proxy, and
	// returns its output; nil where az is not installed or the suite does
	// not reach the fake's proxy (an existing cluster).
	AzureCLI func(ctx context.Context, command string) (string, error)
	// Operator is the object ID of the operator AzureCLI signs in as, whom
	// every scenario vault lets manage its secrets (as the vault's creator
	// would be); empty where AzureCLI is nil.
	Operator string
	// PodLogs returns the logs of the containers in LogNamespaces on a
	// cluster, keyed "namespace/pod/container"; nil where the suite does
	// not read the components' logs from the cluster.
	PodLogs func(ctx context.Context) (map[string]string, error)
	// LogNamespaces are the namespaces PodLogs reads.
	LogNamespaces []string
	// Controller, Provider and Fakevault are the processes of the external
	// mode, which tests may kill; nil in the other modes.
	Controller, Provider, Fakevault *Process
	// ControllerConfig is the API access of the controller process in the
	// external mode (the chart's ServiceAccount); nil in the other modes.
	ControllerConfig *rest.Config
	// RunSuffix ends the names of every scenario's namespace and vault,
	// so that a run on a cluster and a fake that outlive it does not meet
	// an earlier run's; empty where the control plane and the fake are
	// the run's own.
	RunSuffix string
	// AdminURL is fakevault's admin API in the external mode.
	AdminURL string
	// ProviderFaultsURL is the admin API (as fakevault's /faults) of the
	// injector between the controller and the provider process, when the
	// external mode interposes one; empty otherwise.
	ProviderFaultsURL string

	envtest *envtest.Environment
	stops   []func() error
	// scheme and socketDir are what StartController's controllers use.
	scheme    *runtime.Scheme
	socketDir string
	// startControllerProcess starts the external mode's controller process
	// that Options.WithoutController held back; nil once started.
	startControllerProcess func(context.Context) error
}

// Start starts an Environment. Stop it when done.
func Start(ctx context.Context, opts Options) (_ *Environment, err error) {
	e := &Environment{PollInterval: opts.PollInterval, Mode: "embedded", Metrics: gatherMetrics}
	defer func() {
		if err != nil {
			err = errors.Join(err, e.Stop())
		}
	}()
	dir, cfg, scheme, err := e.startControlPlane("kvsync-conf-", opts.CRDDir)
	if err != nil {
		return nil, err
	}

	if err := e.startFake(ctx, cfg, opts.TokenLifetime); err != nil {
		return nil, err
	}
	if err := e.startAzureCLI(dir); err != nil {
		return nil, err
	}
	if err := e.startProvider(dir, opts.Log, opts.Provider, e.World.(inProcess)); err != nil {
		return nil, err
	}
	e.scheme, e.socketDir = scheme, dir
	ctrl.SetLogger(zap.New(zap.WriteTo(opts.Log)))
	// Against kvsync's provider, which ends every Mount after 3 s, the
	// Mount deadline is short to keep the suite fast; against the
	// upstream-shaped double, which retries inside the Mount as upstream
	// does, it is the controller's documented default.
	e.MountDeadline = 5 * time.Second
	if e.AzureProvider == ProviderUpstreamShaped {
		e.MountDeadline = csiprovider.DefaultTimeout
	}
	if !opts.WithoutController {
		stop, err := e.StartController(ctx, ControllerOptions{PollInterval: opts.PollInterval})
		if err != nil {
			return nil, err
		}
		e.stops = append(e.stops, func() error { stop(); return nil })
	}
	return e, nil
}

func (e *Environment) startFake(ctx context.Context, cfg *rest.Config, tokenLifetime time.Duration) error {
	fake, err := fakevault.NewServer(fakevault.Options{TokenLifetime: tokenLifetime})
	if err != nil {
		return err
	}
	e.stops = append(e.stops, fake.Close)
	if err := fake.Entra().AddTenant(Tenant); err != nil {
		return err
	}
	inj, err := faults.New(faults.Options{Seed: 1, CA: fake.CA(), DNSTimeout: time.Second})
	if err != nil {
		return err
	}
	fake.Use(inj.Handler)
	e.World = inProcess{fake: fake, inj: inj}
	if err := e.startDoctor(fake, inj); err != nil {
		return err
	}

	// fakevault trusts the API server's ServiceAccount issuer, as Entra ID
	// trusts a cluster's OIDC issuer.
	iss, jwks, err := issuer(ctx, cfg)
	if err != nil {
		return err
	}
	e.Issuer = iss
	return fake.Entra().TrustIssuerJWKS(iss, jwks)
}

// startAzureCLI sets the Azure CLI up with the in-process fake's CONNECT
// proxy, its tunnels through the fault injector as the provider's
// connections go.
func (e *Environment) startAzureCLI(dir string) error {
	return e.setAzureCLI(dir, func() (string, string, error) {
		w := e.World.(inProcess)
		proxy, err := e.serveProxy(w.fake, w.inj.Dialer(w.fake.DialContext))
		if err != nil {
			return "", "", err
		}
		caFile := filepath.Join(dir, "fakevault-ca.pem")
		return proxy, caFile, os.WriteFile(caFile, w.fake.CAPEM(), 0o644)
	})
}

// startDoctor sets Doctor up with the provider's view of the network: a
// DNS server answering the fake's names with a public address (and the
// injector's DNS faults), the injector's dialer to the fake, and the fake's
// CA.
func (e *Environment) startDoctor(fake *fakevault.Server, inj *faults.Injector) error {
	public := net.ParseIP("203.0.113.10")
	dns, err := faults.NewDNSServer(faults.DNSServerOptions{Injector: inj,
		Resolve: func(name string) (net.IP, bool) { return public, fake.Serves(name) }})
	if err != nil {
		return err
	}
	e.stops = append(e.stops, dns.Close)
	resolver := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, dns.Addr())
	}}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(fake.CAPEM())
	e.Doctor = func(ctx context.Context, namespace, name string) (troubleshoot.Diagnosis, error) {
		f, err := troubleshoot.Gather(ctx, troubleshoot.GatherOptions{Client: e.Client, Network: true,
			From: "the provider's network (fault injector)", Resolver: resolver, Dial: inj.Dialer(fake.DialContext),
			RootCAs: roots, ProbeTimeout: time.Second}, namespace, name)
		if err != nil {
			return troubleshoot.Diagnosis{}, err
		}
		return troubleshoot.Diagnose(f), nil
	}
	return nil
}

// startControlPlane creates the environment's temporary directory, starts
// the API server and builds a client for it.
func (e *Environment) startControlPlane(prefix, crdDir string) (string, *rest.Config, *runtime.Scheme, error) {
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		return "", nil, nil, err
	}
	e.stops = append(e.stops, func() error { return os.RemoveAll(dir) })
	cfg, err := e.startAPIServer(dir, crdDir)
	if err != nil {
		return "", nil, nil, err
	}
	c, scheme, err := newClient(cfg)
	if err != nil {
		return "", nil, nil, err
	}
	e.Client = c
	kubeconfig := filepath.Join(dir, operatorKubeconfig)
	if err := e.WriteKubeconfig("kvsync-operator", kubeconfig); err != nil {
		return "", nil, nil, fmt.Errorf("writing an operator's kubeconfig: %w", err)
	}
	e.setShell(kubeconfig)
	return dir, cfg, scheme, nil
}

// operatorKubeconfig is the file, in an environment's directory, of a
// cluster administrator's kubeconfig: for the operator's shell and
// kube-controller-manager.
const operatorKubeconfig = "operator.kubeconfig"

// newClient returns a client for cfg that knows the kvsync APIs.
func newClient(cfg *rest.Config) (client.Client, *runtime.Scheme, error) {
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, ssv1alpha1.AddToScheme, spcv1.AddToScheme} {
		if err := add(scheme); err != nil {
			return nil, nil, err
		}
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	return c, scheme, err
}

// startAPIServer starts envtest's kube-apiserver and etcd, signing
// ServiceAccount tokens with an RSA key: Entra ID accepts only RSA-signed
// assertions.
func (e *Environment) startAPIServer(dir, crdDir string) (*rest.Config, error) {
	keyFile := filepath.Join(dir, "sa.key")
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return nil, err
	}
	env := &envtest.Environment{CRDDirectoryPaths: []string{crdDir}, ErrorIfCRDPathMissing: true}
	// The API server's certificates live in a directory of ours, so that
	// RestartAPIServer keeps them (envtest makes new ones in a temporary
	// directory of its own).
	api := env.ControlPlane.GetAPIServer()
	api.CertDir = filepath.Join(dir, "apiserver")
	if err := os.MkdirAll(api.CertDir, 0o700); err != nil {
		return nil, err
	}
	args := api.Configure()
	args.Set("service-account-key-file", keyFile)
	args.Set("service-account-signing-key-file", keyFile)
	// Watches end within 2 s of a SIGTERM, as on a cluster's API servers;
	// without it an open watch holds a stopping API server until it is
	// killed.
	args.Set("shutdown-watch-termination-grace-period", "2s")
	cfg, err := env.Start()
	if err != nil {
		return nil, fmt.Errorf("starting envtest (is KUBEBUILDER_ASSETS set? make conformance sets it): %w", err)
	}
	e.stops = append(e.stops, env.Stop)
	e.Config = cfg
	e.envtest = env
	return cfg, nil
}

// RestartAPIServer stops the kube-apiserver, waits for down, and starts it
// again on the same address with the same certificates and keys; etcd, and
// so every object, is kept. Clients see connections refused meanwhile, and
// their watches end.
func (e *Environment) RestartAPIServer(ctx context.Context, down time.Duration) error {
	if e.envtest == nil {
		return fmt.Errorf("the API server of a %s environment is not the suite's to restart", e.Mode)
	}
	api := e.envtest.ControlPlane.GetAPIServer()
	if err := api.Stop(); err != nil {
		return fmt.Errorf("stopping the API server: %w", err)
	}
	select {
	case <-ctx.Done():
	case <-time.After(down):
	}
	if err := api.Start(); err != nil {
		return fmt.Errorf("starting the API server again: %w", err)
	}
	return nil
}

// issuer returns the API server's ServiceAccount issuer and its JWKS.
func issuer(ctx context.Context, cfg *rest.Config) (string, []byte, error) {
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return "", nil, err
	}
	raw, err := kube.RESTClient().Get().AbsPath("/.well-known/openid-configuration").DoRaw(ctx)
	if err != nil {
		return "", nil, fmt.Errorf("reading the ServiceAccount issuer: %w", err)
	}
	var discovery struct {
		Issuer string `json:"issuer"`
	}
	if err := json.Unmarshal(raw, &discovery); err != nil {
		return "", nil, fmt.Errorf("reading the ServiceAccount issuer: %w", err)
	}
	jwks, err := kube.RESTClient().Get().AbsPath("/openid/v1/jwks").DoRaw(ctx)
	if err != nil {
		return "", nil, fmt.Errorf("reading the ServiceAccount keys: %w", err)
	}
	return discovery.Issuer, jwks, nil
}

// startProvider serves the Azure provider named by which (kvsync's by
// default, or the upstream-shaped double), behind the provider faults, on
// <dir>/azure.sock; it reaches fakevault through the injector's dialer.
func (e *Environment) startProvider(dir string, log io.Writer, which string, w inProcess) error {
	transport := w.fake.Transport()
	transport.DialContext = w.inj.Dialer(w.fake.DialContext)
	// Closing the idle connections also ends the dials still held by
	// blackhole faults, as on a real transport.
	e.stops = append(e.stops, func() error { transport.CloseIdleConnections(); return nil })
	if which == "" {
		which = ProviderKvsync
	}
	var srv v1alpha1.CSIDriverProviderServer
	switch which {
	case ProviderKvsync:
		kv, err := provider.New(provider.Options{SocketDir: dir, MountTimeout: 3 * time.Second,
			Transport: &http.Client{Transport: transport}, Logger: slog.New(slog.NewTextHandler(log, nil))})
		if err != nil {
			return err
		}
		srv = kv
	case ProviderUpstreamShaped:
		srv = upstreamprovider.New(upstreamprovider.Options{Transport: &http.Client{Transport: transport}})
	default:
		return fmt.Errorf("unknown provider %q: use %s or %s", which, ProviderKvsync, ProviderUpstreamShaped)
	}
	e.AzureProvider = which
	lis, err := net.Listen("unix", filepath.Join(dir, provider.Name+".sock"))
	if err != nil {
		return err
	}
	gs := grpc.NewServer()
	v1alpha1.RegisterCSIDriverProviderServer(gs, w.inj.Provider(srv))
	go func() { _ = gs.Serve(lis) }()
	e.stops = append(e.stops, func() error { gs.Stop(); return nil })
	return nil
}

// ControllerOptions configure a controller StartController starts.
type ControllerOptions struct {
	// Namespace, when set, is the only namespace the controller watches,
	// as if it were the controller of a cluster of its own.
	Namespace string
	// HashKey is the controller's hash key; the suite's when nil.
	HashKey []byte
	// PollInterval and Jitter are its rotation poll interval and jitter.
	PollInterval, Jitter time.Duration
}

// StartController starts a kvsync controller in process (embedded mode),
// reaching the environment's provider and API server through the fault
// injector, and returns what stops it; Start starts one unless
// Options.WithoutController.
func (e *Environment) StartController(ctx context.Context, o ControllerOptions) (stop func(), err error) {
	if e.Mode != "embedded" {
		return nil, fmt.Errorf("StartController starts a controller in process; the %s mode runs its own", e.Mode)
	}
	// The controller's API requests pass the cluster faults.
	cfg := rest.CopyConfig(e.Config)
	cfg.Wrap(e.World.(inProcess).inj.KubeTransport)
	cacheOpts := controller.CacheOptions()
	if o.Namespace != "" {
		cacheOpts.DefaultNamespaces = map[string]cache.Config{o.Namespace: {}}
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme: e.scheme, Cache: cacheOpts,
		Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0",
		Controller: ctrlconfig.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		return nil, err
	}
	providers := csiprovider.New(csiprovider.Options{SocketDir: e.socketDir, Timeout: e.MountDeadline})
	key := o.HashKey
	if key == nil {
		key = []byte("kvsync conformance hash key 32b!")
	}
	r := &controller.SecretSyncReconciler{
		Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Providers: providers,
		Recorder: mgr.GetEventRecorder("kvsync-controller"),
		HashKey:  key, RotationPollInterval: o.PollInterval, Jitter: o.Jitter,
		PartialSync: true, VaultReadsPerSecond: 1000, MaxConcurrentSyncs: 4,
	}
	if err := r.SetupWithManager(mgr); err != nil {
		return nil, errors.Join(err, providers.Close())
	}
	mctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { _ = mgr.Start(mctx) })
	return func() { cancel(); wg.Wait(); _ = providers.Close() }, nil
}

// Stop stops everything Start started, in reverse order.
func (e *Environment) Stop() error {
	var errs []error
	for i := len(e.stops) - 1; i >= 0; i-- {
		errs = append(errs, e.stops[i]())
	}
	e.stops = nil
	return errors.Join(errs...)
}

// assetBinary returns the path of envtest's binary name in the directory
// KUBEBUILDER_ASSETS names, where hack/envtest.sh builds it.
func assetBinary(name string) (string, error) {
	dir := os.Getenv("KUBEBUILDER_ASSETS")
	path := filepath.Join(dir, name)
	if _, err := os.Stat(path); dir == "" || err != nil {
		return "", fmt.Errorf("%s is not in KUBEBUILDER_ASSETS (%q): build it with hack/envtest.sh", name, dir)
	}
	return path, nil
}
