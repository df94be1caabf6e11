package csiprovider_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"sigs.k8s.io/secrets-store-csi-driver/provider/fake"
	"sigs.k8s.io/secrets-store-csi-driver/provider/v1alpha1"

	"github.com/kvsync/kvsync/controller/csiprovider"
)

// socketDir returns a directory short enough for unix socket paths.
func socketDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "csip-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func startFake(t *testing.T, dir, name string) *fake.MockCSIProviderServer {
	t.Helper()
	srv, err := fake.NewMocKCSIProviderServer(filepath.Join(dir, name+".sock"))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	return srv
}

func newClient(t *testing.T, opts csiprovider.Options) *csiprovider.Client {
	t.Helper()
	c := csiprovider.New(opts)
	t.Cleanup(func() { c.Close() })
	return c
}

func TestMountReturnsTheProvidersFilesAndVersions(t *testing.T) {
	dir := socketDir(t)
	srv := startFake(t, dir, "azure")
	srv.SetFiles([]*v1alpha1.File{{Path: "db", Mode: 0o644, Contents: []byte("kvsync-canary")}, {Path: "db/0", Contents: []byte("v0")}})
	srv.SetObjects(map[string]string{"secret/db": "abc"})

	c := newClient(t, csiprovider.Options{SocketDir: dir})
	resp, err := c.Mount(context.Background(), "azure", csiprovider.MountRequest{Attributes: map[string]string{"keyvaultName": "kv"}, Permission: 0o644})
	if err != nil {
		t.Fatalf("Mount: %v", err)
	}
	if len(resp.Files) != 2 || resp.Files[0].Path != "db" || string(resp.Files[0].Contents) != "kvsync-canary" || resp.Files[0].Mode != 0o644 {
		t.Errorf("files = %+v", resp.Files)
	}
	if resp.ObjectVersions["secret/db"] != "abc" {
		t.Errorf("object versions = %v", resp.ObjectVersions)
	}
}

func TestARelativeSocketDirIsTakenFromTheWorkingDirectory(t *testing.T) {
	dir := socketDir(t)
	srv := startFake(t, dir, "azure")
	srv.SetFiles([]*v1alpha1.File{{Path: "db", Contents: []byte("kvsync-canary")}})
	t.Chdir(filepath.Dir(dir))
	c := newClient(t, csiprovider.Options{SocketDir: filepath.Base(dir)})
	if c.SocketDir() != dir {
		t.Errorf("SocketDir() = %q, want %q", c.SocketDir(), dir)
	}
	if _, err := c.Mount(context.Background(), "azure", csiprovider.MountRequest{Permission: 0o644}); err != nil {
		t.Errorf("Mount through a relative socket directory: %v", err)
	}
}

func TestMountFailures(t *testing.T) {
	dir := socketDir(t)
	denied := startFake(t, dir, "denied")
	denied.SetReturnError(status.Error(codes.InvalidArgument, "keyvaultName is not set"))
	coded := startFake(t, dir, "coded")
	coded.SetProviderErrorCode("GRPCProviderError")
	c := newClient(t, csiprovider.Options{SocketDir: dir})

	tests := []struct {
		name     string
		provider string
		check    func(error) bool
		contains string
	}{
		{"a provider without a socket fails with ErrNoSocket naming the path", "absent",
			func(err error) bool { return errors.Is(err, csiprovider.ErrNoSocket) }, filepath.Join(dir, "absent.sock")},
		{"a provider name that cannot name a socket fails with ErrInvalidProviderName", "../etc/x",
			func(err error) bool { return errors.Is(err, csiprovider.ErrInvalidProviderName) }, "../etc/x"},
		{"a gRPC status from the provider keeps its code", "denied",
			func(err error) bool { return status.Code(err) == codes.InvalidArgument }, "keyvaultName is not set"},
		{"an error code in the response becomes a ProviderError", "coded",
			func(err error) bool {
				var pe *csiprovider.ProviderError
				return errors.As(err, &pe) && pe.Code == "GRPCProviderError"
			}, "GRPCProviderError"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.Mount(context.Background(), tt.provider, csiprovider.MountRequest{})
			if err == nil || !tt.check(err) || !strings.Contains(err.Error(), tt.contains) {
				t.Errorf("Mount error = %v", err)
			}
		})
	}
}

// slowProvider answers Mount only when its context ends.
type slowProvider struct {
	v1alpha1.UnimplementedCSIDriverProviderServer
}

func (slowProvider) Mount(ctx context.Context, _ *v1alpha1.MountRequest) (*v1alpha1.MountResponse, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func TestMountIsBoundedByTheTimeoutAndSaysWhatTheDeadlineMeans(t *testing.T) {
	dir := socketDir(t)
	lis, err := net.Listen("unix", filepath.Join(dir, "slow.sock"))
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	v1alpha1.RegisterCSIDriverProviderServer(srv, slowProvider{})
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)

	c := newClient(t, csiprovider.Options{SocketDir: dir, Timeout: 200 * time.Millisecond})
	_, err = c.Mount(context.Background(), "slow", csiprovider.MountRequest{})
	if status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("Mount error = %v, want DeadlineExceeded", err)
	}
	if msg := status.Convert(err).Message(); !strings.Contains(msg, `provider "slow" did not answer within the Mount deadline of 200ms`) {
		t.Errorf("Mount error message = %q, want one naming the provider and the deadline", msg)
	}
}

func TestMountRejectsResponsesOverTheSizeLimit(t *testing.T) {
	dir := socketDir(t)
	srv := startFake(t, dir, "big")
	srv.SetFiles([]*v1alpha1.File{{Path: "big", Contents: make([]byte, 64<<10)}})
	c := newClient(t, csiprovider.Options{SocketDir: dir, MaxResponseBytes: 32 << 10})
	_, err := c.Mount(context.Background(), "big", csiprovider.MountRequest{})
	if !errors.Is(err, csiprovider.ErrResponseTooLarge) || status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("Mount error = %v, want ErrResponseTooLarge", err)
	}
}
