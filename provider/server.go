// Package provider is kvsync's Azure Key Vault provider: a gRPC server of
// the Secrets Store CSI provider API (v1alpha1.CSIDriverProvider) on the
// unix socket <dir>/azure.sock.
//
// It accepts the SecretProviderClass parameters of the upstream Azure Key
// Vault provider (keyvaultName, tenantID, clientID, cloudName, objects) and
// authenticates with workload identity: the ServiceAccount token the caller
// passes for audience api://AzureADTokenExchange is the client assertion
// exchanged at Entra ID for a vault token. Parameter errors are answered
// with gRPC InvalidArgument; every other failure keeps its real cause (the
// Key Vault error code, the AADSTS error, the DNS or TLS failure, the
// deadline) in the status message, which never holds a secret value.
package provider

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"sigs.k8s.io/secrets-store-csi-driver/provider/v1alpha1"
)

// Name is the provider's name: the spec.provider of its SecretProviderClasses
// and the base name of its socket.
const Name = "azure"

// DefaultMountTimeout bounds a Mount when Options.MountTimeout is zero. It
// is below the controller's default call deadline, so the provider answers
// with its own cause first.
const DefaultMountTimeout = 25 * time.Second

// Options configure a Server.
type Options struct {
	// SocketDir is the directory of the socket azure.sock.
	SocketDir string
	// MountTimeout bounds every Mount. Zero means DefaultMountTimeout.
	MountTimeout time.Duration
	// Transport sends the HTTP requests to Key Vault and Entra ID. Nil means
	// the Azure SDK's default (the system's DNS and CA roots, and
	// HTTPS_PROXY); tests pass a transport that reaches a fake.
	Transport policy.Transporter
	// Registerer receives the metrics. Nil means a private registry.
	Registerer prometheus.Registerer
	// Logger logs; nil means slog.Default(). Secret values and tokens are
	// never logged.
	Logger *slog.Logger
	// Version is reported by the Version call.
	Version string
}

// Server answers Version and Mount.
type Server struct {
	v1alpha1.UnimplementedCSIDriverProviderServer

	opts    Options
	log     *slog.Logger
	clients *clientCache
	metrics *metrics
}

// New returns a Server. It does not listen; see Serve.
func New(opts Options) (*Server, error) {
	if opts.MountTimeout <= 0 {
		opts.MountTimeout = DefaultMountTimeout
	}
	if opts.Registerer == nil {
		opts.Registerer = prometheus.NewRegistry()
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, fmt.Errorf("registering metrics: %w", err)
	}
	clientOpts := azcore.ClientOptions{
		Retry:            retryOptions(),
		PerRetryPolicies: []policy.Policy{m.policy()},
		Telemetry:        policy.TelemetryOptions{ApplicationID: "kvsync-provider"},
		Transport:        opts.Transport,
	}
	return &Server{opts: opts, log: opts.Logger, clients: newClientCache(clientOpts, maxCachedIdentities), metrics: m}, nil
}

// Version reports the API version the provider speaks.
func (s *Server) Version(context.Context, *v1alpha1.VersionRequest) (*v1alpha1.VersionResponse, error) {
	v := s.opts.Version
	if v == "" {
		v = "dev"
	}
	return &v1alpha1.VersionResponse{Version: "v1alpha1", RuntimeName: "kvsync-provider-azure", RuntimeVersion: v}, nil
}

// Mount reads the objects the request's parameters name and returns them as
// files, with their versions. It returns InvalidArgument when the parameters
// are wrong; otherwise the first object that cannot be read ends the Mount
// with a status naming it and the cause. The call is bounded by the mount
// timeout.
func (s *Server) Mount(ctx context.Context, req *v1alpha1.MountRequest) (*v1alpha1.MountResponse, error) {
	start := time.Now()
	resp, err := s.mount(ctx, req)
	result := status.Code(err).String()
	s.metrics.mounts.WithLabelValues(result).Inc()
	s.metrics.mountDuration.Observe(time.Since(start).Seconds())
	if err != nil {
		s.log.Info("Mount failed", "code", result, "error", status.Convert(err).Message())
	}
	return resp, err
}

func (s *Server) mount(ctx context.Context, req *v1alpha1.MountRequest) (*v1alpha1.MountResponse, error) {
	p, err := parseMountRequest(req.GetAttributes(), req.GetPermission())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	clients, err := s.clients.get(p)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "preparing the key vault clients: %v", err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.MountTimeout)
	defer cancel()

	resp := &v1alpha1.MountResponse{}
	for _, o := range p.objects {
		files, versions, err := readObject(ctx, clients, o)
		if err != nil {
			return nil, mountError(p, o, err)
		}
		for _, f := range files {
			resp.Files = append(resp.Files, &v1alpha1.File{Path: f.path, Mode: f.mode, Contents: f.contents})
		}
		for _, v := range versions {
			resp.ObjectVersion = append(resp.ObjectVersion, &v1alpha1.ObjectVersion{Id: v.id, Version: v.version})
		}
	}
	return resp, nil
}

// SocketPath returns the path of the provider's socket.
func (s *Server) SocketPath() string { return filepath.Join(s.opts.SocketDir, Name+".sock") }

// Serve listens on the socket, owner-only, and serves until ctx ends; then
// it stops gracefully, letting running Mounts finish. A stale socket left by
// a previous run is replaced.
func (s *Server) Serve(ctx context.Context, ready func()) error {
	path := s.SocketPath()
	if err := os.MkdirAll(s.opts.SocketDir, 0o755); err != nil {
		return fmt.Errorf("creating socket directory: %w", err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing stale socket %s: %w", path, err)
	}
	lis, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		lis.Close()
		return fmt.Errorf("making %s owner-only: %w", path, err)
	}
	gs := grpc.NewServer()
	v1alpha1.RegisterCSIDriverProviderServer(gs, s)
	served := make(chan error, 1)
	go func() { served <- gs.Serve(lis) }()
	s.log.Info("Provider serving", "socket", path)
	if ready != nil {
		ready()
	}
	select {
	case <-ctx.Done():
		stopped := make(chan struct{})
		go func() { gs.GracefulStop(); close(stopped) }()
		select {
		case <-stopped:
		case <-time.After(s.opts.MountTimeout + 5*time.Second):
			gs.Stop()
		}
		<-served
		return nil
	case err := <-served:
		return fmt.Errorf("serving gRPC: %w", err)
	}
}
