package controller_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/secrets-store-csi-driver/provider/v1alpha1"

	spcv1 "github.com/kvsync/kvsync/api/secretsstore/v1"
	ssv1alpha1 "github.com/kvsync/kvsync/api/secretsync/v1alpha1"
	"github.com/kvsync/kvsync/controller"
	"github.com/kvsync/kvsync/controller/csiprovider"
)

// Timeouts of the suite, set once.
const (
	// pollInterval is the controller's rotation poll interval in this suite.
	pollInterval = time.Second
	// syncTimeout bounds how long a sync outcome may take to show.
	syncTimeout = 20 * time.Second
	// interval is how often Eventually polls.
	interval = 100 * time.Millisecond
	// providerName is the name of the suite's provider.
	providerName = "static"
)

var (
	// logs holds everything the controller and the provider logged, for the
	// canary checks.
	logs     = &syncBuffer{}
	testEnv  *envtest.Environment
	cfg      *rest.Config
	k8s      client.Client
	watcher  client.WithWatch
	provider *staticProvider
	// panics makes the controller's Mount calls panic, for the specs that
	// show a defect inside a Mount stops nothing else.
	panics = &mountPanics{left: map[string]int{}}
	// upstreamShaped answers failed Mounts as the upstream Azure provider
	// does, for the namespaces of the specs that ask for it.
	upstreamShaped = &upstreamErrors{}
)

func TestController(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Controller Suite")
}

var _ = BeforeSuite(func() {
	logf.SetLogger(zap.New(zap.WriteTo(io.MultiWriter(GinkgoWriter, logs)), zap.UseDevMode(true)))
	SetDefaultEventuallyTimeout(syncTimeout)
	SetDefaultEventuallyPollingInterval(interval)

	testEnv = &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join("..", "deploy", "crds")},
		ErrorIfCRDPathMissing: true,
	}
	// Entra ID accepts only RSA-signed ServiceAccount tokens; envtest signs
	// with ECDSA unless told otherwise. Use an RSA key, as AKS does.
	saKey := filepath.Join(GinkgoT().TempDir(), "sa.key")
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	Expect(err).NotTo(HaveOccurred())
	der, err := x509.MarshalPKCS8PrivateKey(key)
	Expect(err).NotTo(HaveOccurred())
	Expect(os.WriteFile(saKey, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)).To(Succeed())
	apiServer := testEnv.ControlPlane.GetAPIServer().Configure()
	apiServer.Set("service-account-key-file", saKey)
	apiServer.Set("service-account-signing-key-file", saKey)
	cfg, err = testEnv.Start()
	Expect(err).NotTo(HaveOccurred(), "starting envtest: is KUBEBUILDER_ASSETS set? `make test` sets it")
	DeferCleanup(func() { Expect(testEnv.Stop()).To(Succeed()) })

	scheme := runtime.NewScheme()
	Expect(clientgoscheme.AddToScheme(scheme)).To(Succeed())
	Expect(ssv1alpha1.AddToScheme(scheme)).To(Succeed())
	Expect(spcv1.AddToScheme(scheme)).To(Succeed())
	k8s, err = client.New(cfg, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())
	watcher, err = client.NewWithWatch(cfg, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())

	socketDir, err := os.MkdirTemp("", "kvsync-providers-")
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(os.RemoveAll, socketDir)
	provider = startStaticProvider(filepath.Join(socketDir, providerName+".sock"))
	DeferCleanup(provider.stop)
	azure = startAzureWorld(socketDir)

	providers := csiprovider.New(csiprovider.Options{SocketDir: socketDir, Timeout: 5 * time.Second,
		DialOptions: []grpc.DialOption{grpc.WithChainUnaryInterceptor(panics.intercept, upstreamShaped.intercept)}})
	DeferCleanup(providers.Close)

	// The main controller polls every pollInterval and sees every namespace
	// but slowNamespace; a second one polls hourly and sees only
	// slowNamespace, where a check can only come from a trigger.
	fast := controller.CacheOptions()
	fast.DefaultFieldSelector = fields.OneTermNotEqualSelector("metadata.namespace", slowNamespace)
	startController(scheme, fast, providers, pollInterval, false)
	slow := controller.CacheOptions()
	slow.DefaultNamespaces = map[string]cache.Config{slowNamespace: {}}
	startController(scheme, slow, providers, time.Hour, true)
})

// slowNamespace is watched only by the suite's hourly-polling controller.
const slowNamespace = "kvsync-slowpoll"

func startController(scheme *runtime.Scheme, cacheOpts cache.Options, providers *csiprovider.Client, poll time.Duration, second bool) {
	GinkgoHelper()
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 scheme,
		Cache:                  cacheOpts,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Controller:             config.Controller{SkipNameValidation: ptr.To(second)},
	})
	Expect(err).NotTo(HaveOccurred())
	Expect((&controller.SecretSyncReconciler{
		Client:               mgr.GetClient(),
		APIReader:            mgr.GetAPIReader(),
		Providers:            providers,
		HashKey:              []byte("0123456789abcdef0123456789abcdef"),
		RotationPollInterval: poll,
		PartialSync:          true,
		VaultReadsPerSecond:  1000,
		Recorder:             mgr.GetEventRecorder("kvsync-controller"),
		MaxConcurrentSyncs:   2,
	}).SetupWithManager(mgr)).To(Succeed())

	ctx, cancel := context.WithCancel(context.Background())
	var done sync.WaitGroup
	done.Go(func() {
		defer GinkgoRecover()
		Expect(mgr.Start(ctx)).To(Succeed())
	})
	DeferCleanup(func() { cancel(); done.Wait() })
}

// staticProvider is a CSI provider serving, to each namespace, files the
// specs set. It records the attributes of the last Mount per namespace.
type staticProvider struct {
	v1alpha1.UnimplementedCSIDriverProviderServer
	server *grpc.Server

	mu     sync.Mutex
	files  map[string]map[string]string // namespace -> path -> contents
	raw    map[string][]*v1alpha1.File  // namespace -> files as they are, when set
	attrs  map[string]map[string]string // namespace -> last attributes
	mounts map[string]*atomic.Int64     // namespace -> Mount calls
}

func startStaticProvider(socket string) *staticProvider {
	lis, err := net.Listen("unix", socket)
	Expect(err).NotTo(HaveOccurred())
	p := &staticProvider{
		server: grpc.NewServer(),
		files:  map[string]map[string]string{},
		raw:    map[string][]*v1alpha1.File{},
		attrs:  map[string]map[string]string{},
		mounts: map[string]*atomic.Int64{},
	}
	v1alpha1.RegisterCSIDriverProviderServer(p.server, p)
	go func() { _ = p.server.Serve(lis) }()
	return p
}

func (p *staticProvider) stop() { p.server.Stop() }

// setFiles replaces the files served to namespace ns.
func (p *staticProvider) setFiles(ns string, files map[string]string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.files[ns] = files
	if p.mounts[ns] == nil {
		p.mounts[ns] = &atomic.Int64{}
	}
}

// setRawFiles makes the provider answer namespace ns with exactly these
// files, malformed or not.
func (p *staticProvider) setRawFiles(ns string, files []*v1alpha1.File) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.raw[ns] = files
	p.files[ns] = nil
}

// mountCount returns the number of Mount calls for namespace ns.
func (p *staticProvider) mountCount(ns string) int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c := p.mounts[ns]; c != nil {
		return c.Load()
	}
	return 0
}

// lastAttributes returns the attributes of the latest Mount for namespace ns.
func (p *staticProvider) lastAttributes(ns string) map[string]string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.attrs[ns]
}

func (p *staticProvider) Version(context.Context, *v1alpha1.VersionRequest) (*v1alpha1.VersionResponse, error) {
	return &v1alpha1.VersionResponse{Version: "v1alpha1", RuntimeName: "static", RuntimeVersion: "test"}, nil
}

func (p *staticProvider) Mount(_ context.Context, req *v1alpha1.MountRequest) (*v1alpha1.MountResponse, error) {
	attrs := map[string]string{}
	if err := json.Unmarshal([]byte(req.GetAttributes()), &attrs); err != nil {
		return nil, fmt.Errorf("attributes: %w", err)
	}
	ns := attrs["csi.storage.k8s.io/pod.namespace"]
	p.mu.Lock()
	defer p.mu.Unlock()
	p.attrs[ns] = attrs
	if c := p.mounts[ns]; c != nil {
		c.Add(1)
	}
	resp := &v1alpha1.MountResponse{Files: p.raw[ns]}
	for path, contents := range p.files[ns] {
		resp.Files = append(resp.Files, &v1alpha1.File{Path: path, Mode: 0o644, Contents: []byte(contents)})
		resp.ObjectVersion = append(resp.ObjectVersion, &v1alpha1.ObjectVersion{Id: path, Version: "1"})
	}
	return resp, nil
}

// mountPanics panics inside the controller's next Mount calls for a
// namespace, as a defect of the controller between the start and the end of
// a Mount would.
type mountPanics struct {
	mu   sync.Mutex
	left map[string]int // namespace -> Mount calls that panic
}

// arm makes the next n Mount calls for namespace ns panic.
func (p *mountPanics) arm(ns string, n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.left[ns] = n
}

// remaining returns how many Mount calls for ns are still to panic.
func (p *mountPanics) remaining(ns string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.left[ns]
}

func (p *mountPanics) intercept(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	if m, ok := req.(*v1alpha1.MountRequest); ok {
		attrs := map[string]string{}
		_ = json.Unmarshal([]byte(m.GetAttributes()), &attrs)
		ns := attrs["csi.storage.k8s.io/pod.namespace"]
		p.mu.Lock()
		n := p.left[ns]
		if n > 0 {
			p.left[ns] = n - 1
		}
		p.mu.Unlock()
		if n > 0 {
			panic("injected defect inside a Mount call")
		}
	}
	return invoker(ctx, method, req, reply, cc, opts...)
}

// upstreamErrors rewrites, for the namespaces it is armed for, every failed
// Mount as the upstream Azure provider answers one: a single codes.Unknown
// error for the whole Mount, "failed to mount objects, error: " and the
// first failure, whatever failed and however many objects did.
type upstreamErrors struct {
	namespaces sync.Map // namespace -> struct{}
}

// arm rewrites the failed Mounts for namespace ns from now on.
func (u *upstreamErrors) arm(ns string) { u.namespaces.Store(ns, struct{}{}) }

func (u *upstreamErrors) intercept(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	err := invoker(ctx, method, req, reply, cc, opts...)
	m, ok := req.(*v1alpha1.MountRequest)
	if err == nil || !ok {
		return err
	}
	attrs := map[string]string{}
	_ = json.Unmarshal([]byte(m.GetAttributes()), &attrs)
	if _, armed := u.namespaces.Load(attrs["csi.storage.k8s.io/pod.namespace"]); !armed {
		return err
	}
	return status.Error(codes.Unknown, "failed to mount objects, error: "+status.Convert(err).Message())
}

// syncBuffer is a concurrency-safe log sink.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
