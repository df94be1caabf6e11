// Package csiprovider is a client for secrets providers that speak the
// Secrets Store CSI provider gRPC API (v1alpha1.CSIDriverProvider) on unix
// sockets named <dir>/<provider>.sock.
//
// The controller reaches every provider, its own Azure provider and any
// third-party one, only through this package.
package csiprovider

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"sigs.k8s.io/secrets-store-csi-driver/provider/v1alpha1"
)

// DefaultTimeout bounds every Mount call when Options.Timeout is zero.
const DefaultTimeout = 30 * time.Second

// DefaultMaxResponseBytes bounds the size of a Mount response when
// Options.MaxResponseBytes is zero: gRPC's default largest message. It is
// four times a Secret's limit (corev1.MaxSecretSize, 1 MiB of values) because
// a response carries more than the Secret will: every file of the objects
// read (all versions of an objectVersionHistory, a certificate's chain, the
// objects of a class whose parameters are not in the "array:" form), in
// protobuf framing. The controller checks the Secret's own limit on what it
// writes.
const DefaultMaxResponseBytes = 4 << 20

// ErrNoSocket is returned by Mount when no socket exists for the provider:
// the provider is not installed, not running yet, or its name is misspelt.
var ErrNoSocket = errors.New("no socket for provider")

// ErrResponseTooLarge is returned by Mount when the provider's response
// exceeds the client's MaxResponseBytes.
var ErrResponseTooLarge = errors.New("provider response over the size limit")

// ErrInvalidProviderName is returned by Mount for a provider name that cannot
// name a socket file.
var ErrInvalidProviderName = errors.New("invalid provider name")

var providerName = regexp.MustCompile(`^[a-zA-Z0-9][-_.a-zA-Z0-9]{0,62}$`)

// Options configure a Client.
type Options struct {
	// SocketDir is the directory holding the providers' sockets. A relative
	// directory is taken from the working directory New runs in.
	SocketDir string
	// Timeout bounds every Mount call. Zero means DefaultTimeout.
	Timeout time.Duration
	// MaxResponseBytes bounds the size of a Mount response. Zero means
	// DefaultMaxResponseBytes.
	MaxResponseBytes int
	// DialOptions are added to the client's gRPC dial options.
	DialOptions []grpc.DialOption
}

// Client calls providers over their unix sockets. Connections are opened on
// first use and reused. A Client is safe for concurrent use.
type Client struct {
	opts Options

	mu    sync.Mutex
	conns map[string]*grpc.ClientConn
}

// New returns a Client for the providers in opts.SocketDir.
func New(opts Options) *Client {
	if abs, err := filepath.Abs(opts.SocketDir); err == nil {
		// A relative path in a unix:// target would be read as its
		// authority ("invalid (non-empty) authority").
		opts.SocketDir = abs
	}
	if opts.Timeout == 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.MaxResponseBytes == 0 {
		opts.MaxResponseBytes = DefaultMaxResponseBytes
	}
	return &Client{opts: opts, conns: map[string]*grpc.ClientConn{}}
}

// SocketDir is the absolute directory of the providers' sockets.
func (c *Client) SocketDir() string { return c.opts.SocketDir }

// MountRequest is what the controller asks of a provider.
type MountRequest struct {
	// Attributes are the SecretProviderClass parameters plus the pod and
	// ServiceAccount attributes providers read.
	Attributes map[string]string
	// Secrets are node-publish secrets; usually empty.
	Secrets map[string]string
	// Permission is the file mode the provider should report for files.
	Permission os.FileMode
	// CurrentVersions are the object versions of the previous mount, by id.
	CurrentVersions map[string]string
}

// File is one file returned by a provider.
type File struct {
	// Path is the file's path relative to the mount, e.g. name or name/0.
	Path string
	// Mode is the file's mode.
	Mode int32
	// Contents are the file's bytes.
	Contents []byte
}

// MountResponse is what a provider returned.
type MountResponse struct {
	// Files are the files, in the provider's order.
	Files []File
	// ObjectVersions are the versions of the objects read, by id.
	ObjectVersions map[string]string
}

// Mount asks the named provider for the files the request describes. The call
// is bounded by the client's timeout. Errors keep the gRPC status of the
// provider's answer, so callers can tell invalid parameters
// (codes.InvalidArgument) from other failures; ErrNoSocket and
// ErrInvalidProviderName are wrapped when the provider cannot be reached at
// all. A response carrying an error code is returned as a *ProviderError.
func (c *Client) Mount(ctx context.Context, provider string, req MountRequest) (*MountResponse, error) {
	conn, err := c.conn(provider)
	if err != nil {
		return nil, err
	}
	attrs, err := json.Marshal(req.Attributes)
	if err != nil {
		return nil, fmt.Errorf("encoding mount attributes: %w", err)
	}
	secrets := req.Secrets
	if secrets == nil {
		secrets = map[string]string{}
	}
	secretsJSON, err := json.Marshal(secrets)
	if err != nil {
		return nil, fmt.Errorf("encoding mount secrets: %w", err)
	}
	perm, err := json.Marshal(req.Permission)
	if err != nil {
		return nil, fmt.Errorf("encoding mount permission: %w", err)
	}
	in := &v1alpha1.MountRequest{
		Attributes: string(attrs),
		Secrets:    string(secretsJSON),
		Permission: string(perm),
	}
	for id, v := range req.CurrentVersions {
		in.CurrentObjectVersion = append(in.CurrentObjectVersion, &v1alpha1.ObjectVersion{Id: id, Version: v})
	}

	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	out, err := v1alpha1.NewCSIDriverProviderClient(conn).Mount(ctx, in)
	if st, ok := status.FromError(err); ok && st.Code() == codes.ResourceExhausted && strings.Contains(st.Message(), "larger than max") {
		return nil, fmt.Errorf("provider %q mount: %w (%d bytes): %w", provider, ErrResponseTooLarge, c.opts.MaxResponseBytes, err)
	}
	if err != nil && deadlinePassed(ctx, err) {
		// The provider's own message, if any, never arrived: say what the
		// deadline means instead of "context deadline exceeded".
		err = status.Errorf(codes.DeadlineExceeded, "provider %q did not answer within the Mount deadline of %s: the vault or the network path to it "+
			"(DNS, firewall, gateway, private endpoint) did not answer in time, or the provider is stuck; a provider that retries inside the Mount may hide the first cause until then",
			provider, c.opts.Timeout)
	}
	if err != nil {
		return nil, fmt.Errorf("provider %q mount: %w", provider, err)
	}
	if code := out.GetError().GetCode(); code != "" {
		return nil, &ProviderError{Provider: provider, Code: code}
	}
	resp := &MountResponse{ObjectVersions: map[string]string{}}
	for _, f := range out.GetFiles() {
		resp.Files = append(resp.Files, File{Path: f.GetPath(), Mode: f.GetMode(), Contents: f.GetContents()})
	}
	for _, v := range out.GetObjectVersion() {
		resp.ObjectVersions[v.GetId()] = v.GetVersion()
	}
	return resp, nil
}

// ProviderError is a failure the provider reported in the response's error
// field rather than as a gRPC status.
type ProviderError struct {
	Provider string
	Code     string
}

func (e *ProviderError) Error() string {
	return fmt.Sprintf("provider %q reported error code %q", e.Provider, e.Code)
}

// Timeout returns the bound of every Mount call.
func (c *Client) Timeout() time.Duration {
	return c.opts.Timeout
}

// SocketPath returns the path of the named provider's socket.
func (c *Client) SocketPath(provider string) string {
	return filepath.Join(c.opts.SocketDir, provider+".sock")
}

func (c *Client) conn(provider string) (*grpc.ClientConn, error) {
	if !providerName.MatchString(provider) {
		return nil, fmt.Errorf("%w %q: it must be 1-63 letters, digits, '-', '_' or '.'", ErrInvalidProviderName, provider)
	}
	path := c.SocketPath(provider)
	if _, err := os.Stat(path); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w %q: %s does not exist", ErrNoSocket, provider, path)
		}
		return nil, fmt.Errorf("%w %q: %w", ErrNoSocket, provider, err)
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	if conn, ok := c.conns[provider]; ok {
		return conn, nil
	}
	opts := append([]grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(c.opts.MaxResponseBytes)),
	}, c.opts.DialOptions...)
	conn, err := grpc.NewClient("unix://"+path, opts...)
	if err != nil {
		return nil, fmt.Errorf("connecting to provider %q at %s: %w", provider, path, err)
	}
	c.conns[provider] = conn
	return conn, nil
}

// Close closes every connection the client opened.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for name, conn := range c.conns {
		errs = append(errs, conn.Close())
		delete(c.conns, name)
	}
	return errors.Join(errs...)
}

// deadlinePassed reports whether a Mount failed because ctx's deadline
// passed. The provider may see its copy of the deadline pass and answer
// DeadlineExceeded before the timer of ctx has fired here, so the clock
// decides too.
func deadlinePassed(ctx context.Context, err error) bool {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return true
	}
	d, ok := ctx.Deadline()
	return ok && status.Code(err) == codes.DeadlineExceeded && !time.Now().Before(d)
}
