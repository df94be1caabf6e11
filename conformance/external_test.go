package conformance

import (
	"context"
	"net"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"
	"time"

	"google.golang.org/grpc"
	"sigs.k8s.io/secrets-store-csi-driver/provider/v1alpha1"
)

func TestAProviderCommandGetsItsSocketAndAPortOfItsOwnForEachPortPlaceholder(t *testing.T) {
	next := 40000
	port := func() string { next++; return strconv.Itoa(next) }
	got := providerCommandArgs([]string{"--endpoint=unix://{socket}", "--healthz-port={port}", "--metrics={port}", "-v=2"},
		"/run/sockets/azure.sock", port)
	want := []string{"--endpoint=unix:///run/sockets/azure.sock", "--healthz-port=40001", "--metrics=40002", "-v=2"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("providerCommandArgs = %q, want %q", got, want)
	}
}

type versionOnly struct {
	v1alpha1.UnimplementedCSIDriverProviderServer
}

func (versionOnly) Version(context.Context, *v1alpha1.VersionRequest) (*v1alpha1.VersionResponse, error) {
	return &v1alpha1.VersionResponse{Version: "v1alpha1", RuntimeName: "test", RuntimeVersion: "0"}, nil
}

func TestTheWaitForAProviderCommandEndsWhenItAnswersVersionOnItsSocket(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "azure.sock")
	go func() {
		time.Sleep(300 * time.Millisecond)
		l, err := net.Listen("unix", socket)
		if err != nil {
			t.Error(err)
			return
		}
		gs := grpc.NewServer()
		v1alpha1.RegisterCSIDriverProviderServer(gs, versionOnly{})
		t.Cleanup(gs.Stop)
		_ = gs.Serve(l)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := waitProviderVersion(ctx, socket); err != nil {
		t.Fatalf("waitProviderVersion: %v", err)
	}
}

func TestTheWaitForAProviderCommandThatNeverServesEndsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if err := waitProviderVersion(ctx, filepath.Join(t.TempDir(), "azure.sock")); err == nil {
		t.Fatal("waitProviderVersion of a socket nobody serves: no error")
	}
}
