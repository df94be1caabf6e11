package conformance

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/common/expfmt"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/secrets-store-csi-driver/provider/v1alpha1"

	"github.com/kvsync/kvsync/controller/csiprovider"
	"github.com/kvsync/kvsync/deploy"
	"github.com/kvsync/kvsync/fakevault"
	"github.com/kvsync/kvsync/faults"
	"github.com/kvsync/kvsync/provider"
)

// ExternalOptions configure StartExternal.
type ExternalOptions struct {
	Options
	// ModuleRoot is the directory of the kvsync module, to build the
	// binaries from.
	ModuleRoot string
	// ControllerArgs and ProviderArgs are added to the binaries' flags; a
	// flag given here overrides the suite's value.
	ControllerArgs []string
	ProviderArgs   []string
	// ControllerEnv is added to the controller's environment (NAME=value),
	// e.g. GOGC or GOMEMLIMIT.
	ControllerEnv []string
	// ProviderFaults interposes a fault injector between the controller and
	// the provider process, on the provider's socket, so that provider.*
	// faults reach it (see Environment.ProviderFaultsURL).
	ProviderFaults bool
	// ProviderCommand, when set, is another Azure provider to run in
	// kvsync-provider's place: its path and arguments, in which every
	// {socket} is replaced by the unix socket it must serve and every
	// {port} by a free TCP port of its own. It gets the same environment
	// (HTTPS_PROXY and SSL_CERT_FILE to reach the fake) and is supervised
	// the same way; the suite reads no metrics from it.
	ProviderCommand []string
}

// StartExternal starts the world as separate processes, as on a cluster:
// envtest's kube-apiserver and etcd, and the fakevault, kvsync-provider and
// kvsync-controller binaries. The controller is installed from the Helm
// chart (ServiceAccount, RBAC, admission policies) and acts as the chart's
// ServiceAccount, with leader election on; the provider reaches fakevault
// with nothing but HTTPS_PROXY and SSL_CERT_FILE; scenarios change the fake
// through its admin API. Provider faults reach the provider process only
// with ExternalOptions.ProviderFaults.
func StartExternal(ctx context.Context, opts ExternalOptions) (_ *Environment, err error) {
	ctrl.SetLogger(zap.New(zap.WriteTo(opts.Log)))
	e := &Environment{PollInterval: opts.PollInterval, Mode: "external", MountDeadline: csiprovider.DefaultTimeout}
	defer func() {
		if err != nil {
			err = errors.Join(err, e.Stop())
		}
	}()
	dir, cfg, _, err := e.startControlPlane("kvsync-ext-", opts.CRDDir)
	if err != nil {
		return nil, err
	}
	if err := e.startGarbageCollector(opts.Log, dir); err != nil {
		return nil, err
	}
	bin := filepath.Join(dir, "bin")
	if err := buildBinaries(opts.ModuleRoot, bin); err != nil {
		return nil, err
	}
	fake, err := e.startFakevaultBinary(ctx, opts.Log, bin, dir, cfg)
	if err != nil {
		return nil, err
	}
	if err := e.setAzureCLI(dir, func() (string, string, error) { return fake.proxy, fake.caFile, nil }); err != nil {
		return nil, err
	}
	sockets := filepath.Join(dir, "sockets")
	if err := e.startProviderBinary(ctx, opts, bin, dir, sockets, fake); err != nil {
		return nil, err
	}
	if e.Provider.MetricsURL() != "" {
		e.ProviderMetrics = e.Provider.Metrics
	}
	kubeconfig, err := e.installController(ctx, dir)
	if err != nil {
		return nil, err
	}
	e.startControllerProcess = func(ctx context.Context) error {
		return e.startControllerBinary(ctx, opts, bin, dir, sockets, kubeconfig)
	}
	if opts.WithoutController {
		return e, nil
	}
	if err := e.StartControllerProcess(ctx); err != nil {
		return nil, err
	}
	return e, nil
}

// StartControllerProcess starts the kvsync-controller process that
// StartExternal held back (Options.WithoutController), and waits until it
// is healthy.
func (e *Environment) StartControllerProcess(ctx context.Context) error {
	if e.startControllerProcess == nil {
		return errors.New("no controller process is held back: StartControllerProcess needs the external mode with Options.WithoutController, once")
	}
	if err := e.startControllerProcess(ctx); err != nil {
		return err
	}
	e.startControllerProcess = nil
	e.Metrics = e.Controller.Metrics
	return nil
}

// startGarbageCollector runs kube-controller-manager with its garbage
// collector alone, as a cluster's does: a Secret whose SecretSync is
// deleted goes with it, through its ownerReference. The binary is
// envtest's (hack/envtest.sh builds it next to kube-apiserver).
func (e *Environment) startGarbageCollector(log io.Writer, dir string) error {
	kcm, err := assetBinary("kube-controller-manager")
	if err != nil {
		return err
	}
	_, err = e.process(log, kcm, "", nil, "--kubeconfig="+filepath.Join(dir, operatorKubeconfig),
		"--controllers=garbage-collector-controller", "--leader-elect=false", "--secure-port=0")
	if err != nil {
		return fmt.Errorf("starting kube-controller-manager's garbage collector: %w", err)
	}
	return nil
}

// buildBinaries builds the fakevault, kvsync-provider and kvsync-controller
// binaries of the module at moduleRoot into directory bin.
func buildBinaries(moduleRoot, bin string) error {
	build := exec.Command("go", "build", "-o", bin+"/", "./cmd/fakevault", "./cmd/kvsync-provider", "./cmd/kvsync-controller")
	build.Dir = moduleRoot
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("building the binaries: %w\n%s", err, out)
	}
	return nil
}

// fakevaultBinary is how the other processes reach the fakevault process.
type fakevaultBinary struct {
	// admin is its admin API.
	admin admin
	// proxy is the address of its CONNECT proxy.
	proxy string
	// caFile holds its CA certificate in PEM.
	caFile string
}

// startFakevaultBinary starts fakevault from bin with its admin API and
// CONNECT proxy, its CA written in dir, and waits until the admin API
// answers. The fake then is the Environment's World (and Fakevault, at
// AdminURL), and trusts the ServiceAccount issuer of the API server at
// cfg.
func (e *Environment) startFakevaultBinary(ctx context.Context, log io.Writer, bin, dir string, cfg *rest.Config) (fakevaultBinary, error) {
	adminAddr, proxyAddr := freeAddr(), freeAddr()
	caFile := filepath.Join(dir, "ca.pem")
	var err error
	if e.Fakevault, err = e.process(log, filepath.Join(bin, "fakevault"), "", nil,
		"--listen", "127.0.0.1:0", "--admin-listen", adminAddr, "--proxy-listen", proxyAddr, "--ca-out", caFile,
		"--fidelity=instant"); err != nil {
		return fakevaultBinary{}, err
	}
	if err := waitHealthy(ctx, "http://"+adminAddr+"/healthz"); err != nil {
		return fakevaultBinary{}, fmt.Errorf("fakevault: %w", err)
	}
	e.AdminURL = "http://" + adminAddr
	w := newAdmin(e.AdminURL)
	e.World = w
	if e.Issuer, err = w.trustCluster(ctx, cfg); err != nil {
		return fakevaultBinary{}, err
	}
	return fakevaultBinary{admin: w, proxy: proxyAddr, caFile: caFile}, nil
}

// startProviderBinary starts kvsync-provider from bin, configured as in
// production: the fake's proxy and CA bundle are its only path to the
// fake. Its socket is in sockets, where the controller looks, unless
// opts.ProviderFaults puts it elsewhere and interposes a fault injector on
// sockets; the World then also takes the provider.* faults. It waits until
// the provider is healthy.
func (e *Environment) startProviderBinary(ctx context.Context, opts ExternalOptions, bin, dir, sockets string, fake fakevaultBinary) error {
	providerSockets := sockets
	if opts.ProviderFaults {
		providerSockets = filepath.Join(dir, "provider-sockets")
		inj, err := faults.New(faults.Options{Seed: 1})
		if err != nil {
			return err
		}
		if e.ProviderFaultsURL, err = e.interposeProvider(inj, sockets, providerSockets, provider.Name); err != nil {
			return err
		}
		e.World = withProviderFaults{admin: fake.admin, inj: inj}
	}
	env := []string{"HTTPS_PROXY=http://" + fake.proxy, "SSL_CERT_FILE=" + fake.caFile, "HOME=" + dir}
	if len(opts.ProviderCommand) > 0 {
		return e.startProviderCommand(ctx, opts, env, providerSockets)
	}
	providerHTTP := freeAddr()
	var err error
	if e.Provider, err = e.process(opts.Log, filepath.Join(bin, "kvsync-provider"), providerHTTP, env,
		append([]string{"--socket-dir", providerSockets, "--http-addr", providerHTTP, "--mount-timeout", "3s"}, opts.ProviderArgs...)...); err != nil {
		return err
	}
	if err := waitHealthy(ctx, "http://"+providerHTTP+"/healthz"); err != nil {
		return fmt.Errorf("kvsync-provider: %w", err)
	}
	return nil
}

// startProviderCommand starts opts.ProviderCommand as the Azure provider,
// serving azure.sock in sockets, and waits until it answers Version there.
func (e *Environment) startProviderCommand(ctx context.Context, opts ExternalOptions, env []string, sockets string) error {
	socket := filepath.Join(sockets, provider.Name+".sock")
	args := providerCommandArgs(opts.ProviderCommand[1:], socket, func() string {
		_, port, _ := net.SplitHostPort(freeAddr())
		return port
	})
	if err := os.MkdirAll(sockets, 0o755); err != nil {
		return err
	}
	var err error
	if e.Provider, err = e.process(opts.Log, opts.ProviderCommand[0], "", env, args...); err != nil {
		return err
	}
	if err := waitProviderVersion(ctx, socket); err != nil {
		return fmt.Errorf("%s: %w", e.Provider.Name, err)
	}
	e.AzureProvider = ProviderCommand
	return nil
}

// providerCommandArgs replaces {socket} with socket and each {port} with a
// port of its own from port.
func providerCommandArgs(args []string, socket string, port func() string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		a = strings.ReplaceAll(a, "{socket}", socket)
		for strings.Contains(a, "{port}") {
			a = strings.Replace(a, "{port}", port(), 1)
		}
		out[i] = a
	}
	return out
}

// waitProviderVersion waits up to 30 s until a provider answers Version on
// the unix socket at path.
func waitProviderVersion(ctx context.Context, path string) error {
	conn, err := grpc.NewClient("unix://"+path, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("dialling %s: %w", path, err)
	}
	defer conn.Close()
	client := v1alpha1.NewCSIDriverProviderClient(conn)
	err = retry(ctx, func() error {
		callCtx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		_, err := client.Version(callCtx, &v1alpha1.VersionRequest{Version: "v1alpha1"})
		return err
	})
	if err != nil {
		return fmt.Errorf("no answer to Version at %s: %w", path, err)
	}
	return nil
}

// startControllerBinary installs the controller as the chart installs it
// (its ServiceAccount, RBAC and admission policies applied) and starts
// kvsync-controller from bin with leader election, the provider's socket
// in sockets and opts' flags and environment after the suite's. Its
// requests are made as the chart's ServiceAccount (impersonated: envtest
// runs no kubelet to mount a token), so every scenario also proves the
// Role is enough. It waits until the controller is healthy.
func (e *Environment) startControllerBinary(ctx context.Context, opts ExternalOptions, bin, dir, sockets, kubeconfigFile string) error {
	controllerHealth, controllerMetrics := freeAddr(), freeAddr()
	var err error
	if e.Controller, err = e.process(opts.Log, filepath.Join(bin, "kvsync-controller"), controllerMetrics, append([]string{"KUBECONFIG=" + kubeconfigFile, "HOME=" + dir}, opts.ControllerEnv...),
		append([]string{"--namespace", controllerRelease.Namespace, "--provider-socket-dir", sockets, "--leader-elect",
			"--hash-key-secret", "kvsync-sync-hash-key", "--leader-election-id", "kvsync-controller.secret-sync.x-k8s.io",
			"--rotation-poll-interval-in-seconds", fmt.Sprint(int(opts.PollInterval.Seconds())),
			"--max-vault-reads-per-second", "1000", "--health-probe-bind-address", controllerHealth,
			"--metrics-bind-address", controllerMetrics}, opts.ControllerArgs...)...); err != nil {
		return err
	}
	if err := waitHealthy(ctx, "http://"+controllerHealth+"/healthz"); err != nil {
		return fmt.Errorf("kvsync-controller: %w", err)
	}
	return nil
}

// StartControllerReplica starts another kvsync-controller process with the
// first one's flags, but its own health and metrics addresses: with leader
// election, one of them syncs and the other waits for the Lease. It is
// stopped with the Environment.
func (e *Environment) StartControllerReplica(ctx context.Context) (*Process, error) {
	if e.Controller == nil {
		return nil, fmt.Errorf("controller replicas need the external mode, not %s", e.Mode)
	}
	health, metrics := freeAddr(), freeAddr()
	args := append(append([]string{}, e.Controller.args...), "--health-probe-bind-address", health, "--metrics-bind-address", metrics)
	p, err := e.process(e.Controller.log, e.Controller.path, metrics, e.Controller.env, args...)
	if err != nil {
		return nil, err
	}
	if err := waitHealthy(ctx, "http://"+health+"/healthz"); err != nil {
		return nil, fmt.Errorf("kvsync-controller replica: %w", err)
	}
	return p, nil
}

// controllerRelease is the chart release the external mode installs.
var controllerRelease = deploy.Release{Name: "kvsync", Namespace: "kvsync-system", CreateNamespace: true}

// installController applies the chart's objects for controllerRelease and
// writes a kubeconfig that acts as the chart's ServiceAccount. It waits
// until the admission policies are enforced.
func (e *Environment) installController(ctx context.Context, dir string) (string, error) {
	objs, err := deploy.RenderChart(controllerRelease, nil)
	if err != nil {
		return "", err
	}
	if err := deploy.Apply(ctx, e.Client, deploy.Without(objs, "CustomResourceDefinition")); err != nil {
		return "", fmt.Errorf("installing the chart: %w", err)
	}
	sa := deploy.Select(objs, "ServiceAccount")[0]
	username := "system:serviceaccount:" + sa.GetNamespace() + ":" + sa.GetName()

	admin, err := e.envtest.AddUser(envtest.User{Name: "kvsync-installer", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return "", err
	}
	raw, err := admin.KubeConfig()
	if err != nil {
		return "", err
	}
	kubeconfig, err := clientcmd.Load(raw)
	if err != nil {
		return "", err
	}
	for _, auth := range kubeconfig.AuthInfos {
		auth.Impersonate = username
	}
	file := filepath.Join(dir, "kubeconfig")
	if err := clientcmd.WriteToFile(*kubeconfig, file); err != nil {
		return "", err
	}
	if e.ControllerConfig, err = clientcmdConfig(file); err != nil {
		return "", err
	}
	return file, e.waitForPolicies(ctx, username)
}

// waitForPolicies waits until the API server enforces the controller's
// admission policies, which it loads asynchronously: a dry-run create of an
// unowned Secret as the controller must be denied.
func (e *Environment) waitForPolicies(ctx context.Context, username string) error {
	cfg := rest.CopyConfig(e.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: username}
	c, _, err := newClient(cfg)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		probe := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: controllerRelease.Namespace, Name: "policy-probe"}}
		err := c.Create(ctx, probe, client.DryRunAll)
		if err != nil && strings.Contains(err.Error(), "ValidatingAdmissionPolicy") {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the chart's admission policies are not enforced after 30s: %v", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// newAdmin returns the World of the fakevault whose admin API is at base.
func newAdmin(base string) admin {
	return admin{fakevault.NewAdminClient(base)}
}

// trustCluster makes the fake's tenant trust the ServiceAccount issuer of
// the API server at cfg, as Entra ID trusts a cluster's OIDC issuer, and
// returns the issuer. The tenant may exist already.
func (w admin) trustCluster(ctx context.Context, cfg *rest.Config) (string, error) {
	iss, jwks, err := issuer(ctx, cfg)
	if err != nil {
		return "", err
	}
	if err := w.Do(http.MethodPost, "/tenants", map[string]string{"tenantId": Tenant}, nil); err != nil && !strings.Contains(err.Error(), "already") {
		return "", err
	}
	if err := w.Do(http.MethodPost, "/issuers", map[string]any{"issuer": iss, "jwks": rawJSON(jwks)}, nil); err != nil {
		return "", err
	}
	return iss, nil
}

// rawJSON marks raw JSON for re-encoding as is.
type rawJSON []byte

func (j rawJSON) MarshalJSON() ([]byte, error) { return j, nil }

// process starts a supervised binary whose output goes to log, serving
// metrics at the metrics address if not empty, and stops it on Stop.
func (e *Environment) process(log io.Writer, path, metrics string, env []string, args ...string) (*Process, error) {
	p, err := startProcess(log, path, metrics, env, args...)
	if err != nil {
		return nil, err
	}
	e.stops = append(e.stops, p.Stop)
	return p, nil
}

func waitHealthy(ctx context.Context, url string) error {
	if err := retry(ctx, func() error { _, err := httpGet(url); return err }); err != nil {
		return fmt.Errorf("not healthy at %s: %w", url, err)
	}
	return nil
}

// retry calls try every 100 ms until it succeeds, for at most 30 s, and
// returns its last error or ctx's.
func retry(ctx context.Context, try func() error) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := try()
		if err == nil || !time.Now().Before(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func httpGet(url string) (string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: %d %s", url, resp.StatusCode, strings.TrimSpace(string(body)))
	}
	return string(body), nil
}

// freeAddr returns a loopback address with a free port.
func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "127.0.0.1:0"
	}
	defer l.Close()
	return l.Addr().String()
}

// gatherMetrics renders the in-process controller-runtime registry.
func gatherMetrics() (string, error) {
	families, err := metrics.Registry.Gather()
	if err != nil {
		return "", err
	}
	var b bytes.Buffer
	for _, f := range families {
		if _, err := expfmt.MetricFamilyToText(&b, f); err != nil {
			return "", err
		}
	}
	return b.String(), nil
}

func clientcmdConfig(path string) (*rest.Config, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		return nil, fmt.Errorf("loading kubeconfig %s: %w", path, err)
	}
	return cfg, nil
}
