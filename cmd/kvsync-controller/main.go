// Command kvsync-controller runs the SecretSync controller: it keeps
// Kubernetes Secrets in sync with secrets read by providers over the CSI
// provider gRPC API.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime/debug"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	spcv1 "github.com/kvsync/kvsync/api/secretsstore/v1"
	ssv1alpha1 "github.com/kvsync/kvsync/api/secretsync/v1alpha1"
	"github.com/kvsync/kvsync/controller"
	"github.com/kvsync/kvsync/controller/csiprovider"
)

// options are the command's flags.
type options struct {
	metricsAddr         string
	probeAddr           string
	leaderElect         bool
	leaderElectionID    string
	namespace           string
	hashKeySecret       string
	rotationPollSeconds int
	providerSocketDir   string
	providerTimeout     time.Duration
	tokenAudience       string
	maxConcurrentSyncs  int
	jitterSeconds       int
	partialSync         bool
	allowedSecretTypes  string
	vaultReads          float64
	pprofAddr           string
	zap                 zap.Options
}

// defaultGCPercent is the controller's GOGC unless the environment sets
// one: most of its heap is the informers' caches, which live for the whole
// run, so collecting at half the live heap instead of all of it keeps the
// resident set about 10% smaller for CPU it has to spare (make bench, see
// docs/performance.md).
const defaultGCPercent = 50

func main() {
	var o options
	fs := flag.NewFlagSet(os.Args[0], flag.ContinueOnError)
	fs.StringVar(&o.metricsAddr, "metrics-bind-address", ":8080", "Address the metrics endpoint binds to; 0 disables it.")
	fs.StringVar(&o.probeAddr, "health-probe-bind-address", ":8081", "Address the health and readiness probes bind to.")
	fs.BoolVar(&o.leaderElect, "leader-elect", false, "Elect a leader, so that only one replica syncs at a time.")
	fs.StringVar(&o.leaderElectionID, "leader-election-id", "kvsync-controller.secret-sync.x-k8s.io", "Name of the leader election Lease.")
	fs.StringVar(&o.namespace, "namespace", os.Getenv("POD_NAMESPACE"), "Namespace of the controller: holds the leader election Lease and the hash key Secret. Defaults to $POD_NAMESPACE.")
	fs.StringVar(&o.hashKeySecret, "hash-key-secret", "kvsync-sync-hash-key", "Name of the Secret, in --namespace, that holds the syncHash key; created when missing.")
	fs.IntVar(&o.rotationPollSeconds, "rotation-poll-interval-in-seconds", 3600, "Seconds between two checks of a SecretSync against the secret store (rotationPollIntervalInSeconds).")
	fs.StringVar(&o.providerSocketDir, "provider-socket-dir", "/provider", "Directory holding the providers' sockets, <provider>.sock.")
	fs.DurationVar(&o.providerTimeout, "provider-timeout", csiprovider.DefaultTimeout, "Deadline of every call to a provider.")
	fs.StringVar(&o.tokenAudience, "token-audience", controller.DefaultTokenAudience, "Audience of the ServiceAccount tokens passed to providers.")
	fs.IntVar(&o.maxConcurrentSyncs, "max-concurrent-syncs", 4, "SecretSyncs checked in parallel.")
	fs.IntVar(&o.jitterSeconds, "jitter-seconds", 0, "Largest random delay, in seconds, added to each poll, and to the first check after a start of a SecretSync in sync (jitterSeconds).")
	fs.BoolVar(&o.partialSync, "enable-partial-secret-sync", true, "Write the items that succeeded when others failed, reporting PartialSync (enablePartialSecretSync).")
	fs.StringVar(&o.allowedSecretTypes, "allowed-secret-types", joinTypes(controller.DefaultAllowedSecretTypes), "Comma-separated Secret types a SecretSync may write (kubernetes.io/service-account-token is never allowed).")
	fs.Float64Var(&o.vaultReads, "max-vault-reads-per-second", controller.DefaultVaultReadsPerSecond, "Objects read per second from one key vault, at most (Key Vault allows 400 secret reads per second per vault).")
	fs.StringVar(&o.pprofAddr, "pprof-bind-address", "", "Address Go's /debug/pprof endpoints bind to; empty or 0 disables them. Bind it to loopback: the endpoints have no authentication, and a profile costs CPU.")
	o.zap.BindFlags(fs)
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		os.Exit(2)
	}
	if err := o.validate(); err != nil {
		fmt.Fprintf(os.Stderr, "kvsync-controller: %v\n", err)
		os.Exit(2)
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&o.zap)))
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
	if err := run(ctrl.SetupSignalHandler(), o); err != nil {
		ctrl.Log.Error(err, "Controller stopped")
		os.Exit(1)
	}
}

func (o options) validate() error {
	switch {
	case o.namespace == "":
		return errors.New("--namespace (or $POD_NAMESPACE) is required: it holds the hash key Secret")
	case o.rotationPollSeconds < 1:
		return fmt.Errorf("--rotation-poll-interval-in-seconds must be at least 1, got %d", o.rotationPollSeconds)
	case o.providerTimeout <= 0:
		return fmt.Errorf("--provider-timeout must be positive, got %s", o.providerTimeout)
	case o.maxConcurrentSyncs < 1:
		return fmt.Errorf("--max-concurrent-syncs must be at least 1, got %d", o.maxConcurrentSyncs)
	case o.jitterSeconds < 0:
		return fmt.Errorf("--jitter-seconds must not be negative, got %d", o.jitterSeconds)
	case o.vaultReads <= 0:
		return fmt.Errorf("--max-vault-reads-per-second must be positive, got %v", o.vaultReads)
	case o.providerSocketDir == "":
		return errors.New("--provider-socket-dir must not be empty: it holds the providers' sockets, <provider>.sock")
	}
	if _, err := parseTypes(o.allowedSecretTypes); err != nil {
		return err
	}
	return nil
}

func joinTypes(types []corev1.SecretType) string {
	names := make([]string, len(types))
	for i, t := range types {
		names[i] = string(t)
	}
	return strings.Join(names, ",")
}

// parseTypes parses --allowed-secret-types.
func parseTypes(list string) ([]corev1.SecretType, error) {
	var out []corev1.SecretType
	for _, t := range strings.Split(list, ",") {
		t = strings.TrimSpace(t)
		if t == "" {
			continue
		}
		if strings.ContainsAny(t, " \t") {
			return nil, fmt.Errorf("--allowed-secret-types: %q is not a Secret type", t)
		}
		out = append(out, corev1.SecretType(t))
	}
	if len(out) == 0 {
		return nil, errors.New("--allowed-secret-types must name at least one Secret type")
	}
	return out, nil
}

func run(ctx context.Context, o options) error {
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, ssv1alpha1.AddToScheme, spcv1.AddToScheme} {
		if err := add(scheme); err != nil {
			return fmt.Errorf("building scheme: %w", err)
		}
	}
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("loading kubeconfig: %w", err)
	}
	direct, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return fmt.Errorf("creating API client: %w", err)
	}
	key, err := controller.LoadHashKey(ctx, direct, types.NamespacedName{Namespace: o.namespace, Name: o.hashKeySecret})
	if err != nil {
		return err
	}

	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                  scheme,
		Cache:                   controller.CacheOptions(),
		Metrics:                 metricsserver.Options{BindAddress: o.metricsAddr},
		HealthProbeBindAddress:  o.probeAddr,
		PprofBindAddress:        o.pprofAddr,
		LeaderElection:          o.leaderElect,
		LeaderElectionID:        o.leaderElectionID,
		LeaderElectionNamespace: o.namespace,
		// The process exits when the manager stops, so a replica shutting
		// down (a rolling update) hands the Lease over at once rather than
		// after it expires.
		LeaderElectionReleaseOnCancel: true,
	})
	if err != nil {
		return fmt.Errorf("creating manager: %w", err)
	}
	allowed, err := parseTypes(o.allowedSecretTypes)
	if err != nil {
		return err
	}
	providers := csiprovider.New(csiprovider.Options{SocketDir: o.providerSocketDir, Timeout: o.providerTimeout})
	defer providers.Close()

	r := &controller.SecretSyncReconciler{
		Client:               mgr.GetClient(),
		APIReader:            mgr.GetAPIReader(),
		Providers:            providers,
		HashKey:              key,
		TokenAudience:        o.tokenAudience,
		RotationPollInterval: time.Duration(o.rotationPollSeconds) * time.Second,
		Jitter:               time.Duration(o.jitterSeconds) * time.Second,
		PartialSync:          o.partialSync,
		AllowedSecretTypes:   allowed,
		VaultReadsPerSecond:  o.vaultReads,
		MaxConcurrentSyncs:   o.maxConcurrentSyncs,
		Recorder:             mgr.GetEventRecorder("kvsync-controller"),
	}
	if err := r.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("setting up controller: %w", err)
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return fmt.Errorf("adding health check: %w", err)
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return fmt.Errorf("adding readiness check: %w", err)
	}
	ctrl.Log.Info("Starting controller", "providerSocketDir", providers.SocketDir(), "rotationPollInterval", r.RotationPollInterval)
	return mgr.Start(ctx)
}
