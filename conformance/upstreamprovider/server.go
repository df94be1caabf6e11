package upstreamprovider

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"sigs.k8s.io/secrets-store-csi-driver/provider/v1alpha1"
)

// UpstreamVersion is the release of the upstream Azure provider whose wire
// behaviour the double follows.
const UpstreamVersion = "v1.8.2"

// What Version answers.
const (
	// APIVersion is the provider API version upstream reports.
	APIVersion = "v1alpha1"
	// RuntimeName is upstream's runtime name.
	RuntimeName = "secrets-store-csi-driver-provider-azure"
	// RuntimeVersion is upstream's version, marked as the double's.
	RuntimeVersion = UpstreamVersion + "-double"
)

// Options configure a Server. The zero value behaves as upstream does with
// its default flags.
type Options struct {
	// Transport sends the HTTP requests to Key Vault and Entra ID (a
	// policy.Transporter such as an *http.Client); nil means the Azure
	// SDK's default. It is the only client option the double sets besides
	// the Entra ID authority host: retries, timeouts and telemetry are the
	// SDK's defaults, as upstream's are.
	Transport policy.Transporter
	// WriteCertAndKeyInSeparateFiles mirrors upstream's flag of that name
	// (default false): a certificate-backed secret also yields the files
	// <file>.crt (its certificates) and <file>.key (its private key),
	// listed before <file> itself.
	WriteCertAndKeyInSeparateFiles bool
	// DisablePEMChainConstruction mirrors upstream's construct-pem-chain
	// flag set to false. Upstream's default (true), the zero value here,
	// orders the certificates of a PKCS#12 secret leaf first, each followed
	// by its issuer, when they form one complete chain.
	DisablePEMChainConstruction bool
}

// Server answers Version and Mount as the upstream Azure provider does. It
// keeps no state between Mounts and is safe for concurrent use.
type Server struct {
	v1alpha1.UnimplementedCSIDriverProviderServer

	opts Options
}

// New returns a Server. Register it on a grpc.Server to serve it.
func New(opts Options) *Server {
	return &Server{opts: opts}
}

// Version reports upstream's API version and runtime name, with
// RuntimeVersion.
func (s *Server) Version(context.Context, *v1alpha1.VersionRequest) (*v1alpha1.VersionResponse, error) {
	return &v1alpha1.VersionResponse{Version: APIVersion, RuntimeName: RuntimeName, RuntimeVersion: RuntimeVersion}, nil
}

// Mount reads the objects the request's attributes name and returns one
// file and one object version per file, as upstream does. Every failure is
// a plain error (gRPC code Unknown), returned with an empty response as
// upstream returns it: "failed to unmarshal attributes|secrets|file
// permission, error: ..." for a request whose fields are not JSON, and
// "failed to mount objects, error: <cause>" for everything else. A Mount
// of no objects succeeds with no files. The caller's context is the only
// deadline.
func (s *Server) Mount(ctx context.Context, req *v1alpha1.MountRequest) (*v1alpha1.MountResponse, error) {
	var attrs, secrets map[string]string
	var perm os.FileMode
	if err := json.Unmarshal([]byte(req.GetAttributes()), &attrs); err != nil {
		return &v1alpha1.MountResponse{}, fmt.Errorf("failed to unmarshal attributes, error: %w", err)
	}
	if err := json.Unmarshal([]byte(req.GetSecrets()), &secrets); err != nil {
		return &v1alpha1.MountResponse{}, fmt.Errorf("failed to unmarshal secrets, error: %w", err)
	}
	if err := json.Unmarshal([]byte(req.GetPermission()), &perm); err != nil {
		return &v1alpha1.MountResponse{}, fmt.Errorf("failed to unmarshal file permission, error: %w", err)
	}
	files, err := s.mount(ctx, attrs, secrets, perm)
	if err != nil {
		return &v1alpha1.MountResponse{}, fmt.Errorf("failed to mount objects, error: %w", err)
	}
	resp := &v1alpha1.MountResponse{ObjectVersion: []*v1alpha1.ObjectVersion{}, Files: []*v1alpha1.File{}}
	for _, f := range files {
		resp.Files = append(resp.Files, &v1alpha1.File{Path: f.path, Contents: f.contents, Mode: f.mode})
		resp.ObjectVersion = append(resp.ObjectVersion, &v1alpha1.ObjectVersion{Id: f.id, Version: f.version})
	}
	return resp, nil
}

// file is one file of a Mount and the object version it reports.
type file struct {
	path     string
	contents []byte
	mode     int32
	// id is the object's ID in the response: <type>/<name>, or
	// <type>/<name>/<index> in a version history.
	id      string
	version string
}

// mount checks the attributes, then reads the objects one at a time and
// stops at the first failure.
func (s *Server) mount(ctx context.Context, attrs, secrets map[string]string, perm os.FileMode) ([]file, error) {
	p, err := parseMount(attrs, secrets)
	if err != nil {
		return nil, err
	}
	if len(p.objects) == 0 {
		return nil, nil
	}
	vaultURL, err := p.vaultURL()
	if err != nil {
		return nil, fmt.Errorf("failed to get vault: %w", err)
	}
	c, err := s.newVaultClients(p, vaultURL)
	if err != nil {
		return nil, fmt.Errorf("failed to get keyvault client: %w", err)
	}
	var files []file
	for _, o := range p.objects {
		versions, err := c.resolveVersions(ctx, o)
		if err != nil {
			return nil, err
		}
		for _, v := range versions {
			contents, err := c.read(ctx, v, s.opts)
			if err != nil {
				return nil, err
			}
			for _, content := range contents {
				data, err := decodeContent(content.value, v.Type, v.Encoding)
				if err != nil {
					return nil, err
				}
				files = append(files, file{
					path:     v.fileName() + content.suffix,
					contents: data,
					mode:     v.fileMode(perm),
					id:       v.uid(),
					version:  content.version,
				})
			}
		}
	}
	return files, nil
}
