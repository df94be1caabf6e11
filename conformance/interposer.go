package conformance

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"sigs.k8s.io/secrets-store-csi-driver/provider/v1alpha1"

	"github.com/kvsync/kvsync/faults"
)

// forwarder is a CSI provider that passes every call to another one.
type forwarder struct {
	v1alpha1.UnimplementedCSIDriverProviderServer
	next v1alpha1.CSIDriverProviderClient
}

func (f forwarder) Mount(ctx context.Context, req *v1alpha1.MountRequest) (*v1alpha1.MountResponse, error) {
	return f.next.Mount(ctx, req)
}

func (f forwarder) Version(ctx context.Context, req *v1alpha1.VersionRequest) (*v1alpha1.VersionResponse, error) {
	return f.next.Version(ctx, req)
}

// interposeProvider serves <dir>/<name>.sock, where the controller looks
// for the provider, passing every call through the injector's provider
// faults to the provider process serving <providerDir>/<name>.sock: the
// provider.* faults then reach a provider in another process, as a crash
// or a slow answer of the real one would. Its admin API (faults.AdminHandler)
// is served at the returned URL.
func (e *Environment) interposeProvider(inj *faults.Injector, dir, providerDir, name string) (string, error) {
	conn, err := grpc.NewClient("unix://"+filepath.Join(providerDir, name+".sock"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return "", fmt.Errorf("connecting to the provider: %w", err)
	}
	e.stops = append(e.stops, conn.Close)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	lis, err := net.Listen("unix", filepath.Join(dir, name+".sock"))
	if err != nil {
		return "", err
	}
	gs := grpc.NewServer()
	v1alpha1.RegisterCSIDriverProviderServer(gs, inj.Provider(forwarder{next: v1alpha1.NewCSIDriverProviderClient(conn)}))
	go func() { _ = gs.Serve(lis) }()
	e.stops = append(e.stops, func() error { gs.Stop(); return nil })

	admin, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	srv := &http.Server{Handler: inj.AdminHandler()}
	go func() { _ = srv.Serve(admin) }()
	e.stops = append(e.stops, func() error { return srv.Close() })
	return "http://" + admin.Addr().String(), nil
}

// withProviderFaults is the World of the external mode when the provider is
// interposed: provider.* faults go to the interposer's injector, every
// other fault to fakevault's.
type withProviderFaults struct {
	admin
	inj *faults.Injector
}

func (w withProviderFaults) AddFault(f faults.Fault) error {
	if f.Kind.Layer() == "provider" {
		return w.inj.Add(f)
	}
	return w.admin.AddFault(f)
}

func (w withProviderFaults) ClearFault(name string) {
	if !w.inj.Clear(name) {
		w.admin.ClearFault(name)
	}
}

func (w withProviderFaults) Injections() ([]faults.Injection, error) {
	out, err := w.admin.Injections()
	return append(out, w.inj.Journal()...), err
}

func (w withProviderFaults) ProviderFaults() bool { return true }
