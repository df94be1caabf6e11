package faults

import (
	"context"
	"encoding/json"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"sigs.k8s.io/secrets-store-csi-driver/provider/v1alpha1"
)

// defaultOversize is the response size of provider.oversized: over the
// controller's 4 MiB limit.
const defaultOversize = 5 << 20

// Provider wraps a CSI provider server with the provider faults. Version is
// passed through; Mount is failed as the fault says, or passed through.
func (i *Injector) Provider(next v1alpha1.CSIDriverProviderServer) v1alpha1.CSIDriverProviderServer {
	return &faultyProvider{inj: i, next: next}
}

type faultyProvider struct {
	v1alpha1.UnimplementedCSIDriverProviderServer
	inj  *Injector
	next v1alpha1.CSIDriverProviderServer
}

func (p *faultyProvider) Version(ctx context.Context, req *v1alpha1.VersionRequest) (*v1alpha1.VersionResponse, error) {
	return p.next.Version(ctx, req)
}

func (p *faultyProvider) Mount(ctx context.Context, req *v1alpha1.MountRequest) (*v1alpha1.MountResponse, error) {
	var attrs map[string]string
	_ = json.Unmarshal([]byte(req.GetAttributes()), &attrs)
	f := p.inj.decide(target{namespace: attrs["csi.storage.k8s.io/pod.namespace"], spc: attrs["secretProviderClass"], vault: attrs["keyvaultName"]}, inLayers("provider"))
	if f == nil {
		return p.next.Mount(ctx, req)
	}
	switch f.Kind {
	case ProviderSlow:
		if !wait(ctx, time.Duration(f.Latency)+p.inj.jitter(time.Duration(f.Jitter))) {
			return nil, status.Error(codes.DeadlineExceeded, "the provider did not answer before the deadline")
		}
		return p.next.Mount(ctx, req)
	case ProviderCrash:
		// The injector answers in the provider's place; the provider itself
		// keeps running (the soak kills the real process, see
		// docs/reliability.md).
		return nil, status.Error(codes.Unavailable, "injected fault provider.crash: the Mount ended as a provider process dying mid-call ends it (the provider process was not killed)")
	case ProviderOversized:
		size := f.Size
		if size <= 0 {
			size = defaultOversize
		}
		return &v1alpha1.MountResponse{Files: []*v1alpha1.File{{Path: "oversized", Mode: 0o644, Contents: make([]byte, size)}}}, nil
	case ProviderMalformed:
		return &v1alpha1.MountResponse{Files: []*v1alpha1.File{{Path: "dup", Contents: []byte("1")}, {Path: "dup", Contents: []byte("2")}}}, nil
	}
	return p.next.Mount(ctx, req)
}
