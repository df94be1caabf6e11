package conformance

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/client-go/rest"
)

// DockerOptions configure StartDocker.
type DockerOptions struct {
	Options
	// ImageTag is the tag of the kvsync-controller, kvsync-provider and
	// fakevault images (`make docker-build IMG_TAG=…`).
	ImageTag string
}

// Docker is the deployed topology of StartDocker, for a suite run in
// existing-cluster mode (StartCluster) against it.
type Docker struct {
	*Environment
	// Kubeconfig is the path of an administrator's kubeconfig of the API
	// server.
	Kubeconfig string
	// FakevaultAdmin is the URL of fakevault's admin API.
	FakevaultAdmin string
	// MetricsURL is the manager container's metrics endpoint.
	MetricsURL string
	// Containers names the containers started.
	Containers []string
}

// StartDocker starts the deployed topology with kvsync's images: envtest's
// API server on loopback with the chart installed, and three containers on
// the host network: fakevault, and the pod's two containers, manager and
// provider-azure, sharing the provider socket on a host directory as on an
// emptyDir. The containers run as the image's non-root user with a
// read-only root filesystem and no capabilities, as the chart runs them; the
// manager acts as the chart's ServiceAccount; the provider reaches fakevault
// with nothing but HTTPS_PROXY and SSL_CERT_FILE. Container logs go to
// opts.Log. It needs a running Docker daemon and the images built.
func StartDocker(ctx context.Context, opts DockerOptions) (_ *Docker, err error) {
	e := &Environment{PollInterval: opts.PollInterval, Mode: "docker"}
	d := &Docker{Environment: e}
	defer func() {
		if err != nil {
			err = errors.Join(err, e.Stop())
		}
	}()
	if err := checkDocker(ctx, opts.ImageTag); err != nil {
		return nil, err
	}
	dir, cfg, _, err := e.startControlPlane("kvsync-docker-", opts.CRDDir)
	if err != nil {
		return nil, err
	}
	caDir, err := sharedDir(dir, "ca")
	if err != nil {
		return nil, err
	}
	sockets, err := sharedDir(dir, "provider")
	if err != nil {
		return nil, err
	}
	c := &containers{d: d, tag: opts.ImageTag, suffix: fmt.Sprintf("%d", time.Now().UnixNano()%1e9), log: opts.Log}
	proxyAddr, err := c.startFakevault(ctx, caDir, cfg)
	if err != nil {
		return nil, err
	}
	if err := c.startProvider(ctx, sockets, caDir, proxyAddr); err != nil {
		return nil, err
	}
	if err := c.startManager(ctx, dir, sockets, opts.PollInterval); err != nil {
		return nil, err
	}
	d.Kubeconfig = filepath.Join(dir, "admin.kubeconfig")
	if err := WriteAdminKubeconfig(e.envtest, "kvsync-e2e", d.Kubeconfig); err != nil {
		return nil, err
	}
	return d, nil
}

// checkDocker returns an error saying what to do unless a Docker daemon
// answers and it has kvsync's three images with tag.
func checkDocker(ctx context.Context, tag string) error {
	if out, err := exec.CommandContext(ctx, "docker", "version", "--format", "{{.Server.Version}}").CombinedOutput(); err != nil {
		return fmt.Errorf("no Docker daemon answers (start dockerd): %w: %s", err, strings.TrimSpace(string(out)))
	}
	for _, img := range []string{"fakevault", "kvsync-provider", "kvsync-controller"} {
		if out, err := exec.CommandContext(ctx, "docker", "image", "inspect", "--format", "{{.Id}}", img+":"+tag).CombinedOutput(); err != nil {
			return fmt.Errorf("image %s:%s is missing (make docker-build IMG_TAG=%s): %s", img, tag, tag, strings.TrimSpace(string(out)))
		}
	}
	return nil
}

// sharedDir creates directory name in dir, writable by the containers'
// user (65532) as an emptyDir is, and returns its path.
func sharedDir(dir, name string) (string, error) {
	p := filepath.Join(dir, name)
	if err := os.Mkdir(p, 0o777); err != nil {
		return "", err
	}
	return p, os.Chmod(p, 0o777)
}

// containers runs kvsync's images with tag as the chart runs its
// containers, each named kvsync-e2e-<name>-<suffix> and listed in
// d.Containers, its output going to log; they are removed when the
// Environment stops.
type containers struct {
	d      *Docker
	tag    string
	suffix string
	log    io.Writer
}

// run starts container name of image on the host network, as the image's
// user with a read-only root filesystem, no capabilities and no privilege
// escalation, with the host paths mounts ("host:container[:ro]"), the
// environment env (NAME=value) and the image's arguments args.
func (c *containers) run(name, image string, mounts, env []string, args ...string) error {
	name = "kvsync-e2e-" + name + "-" + c.suffix
	c.d.Containers = append(c.d.Containers, name)
	dockerArgs := []string{"run", "--rm", "--name", name, "--network", "host",
		"--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges"}
	for _, m := range mounts {
		dockerArgs = append(dockerArgs, "-v", m)
	}
	for _, v := range env {
		dockerArgs = append(dockerArgs, "-e", v)
	}
	dockerArgs = append(dockerArgs, image+":"+c.tag)
	if _, err := c.d.process(c.log, "docker", "", nil, append(dockerArgs, args...)...); err != nil {
		return err
	}
	// The docker client stops the container on SIGTERM; make sure.
	c.d.stops = append(c.d.stops, func() error {
		_ = exec.Command("docker", "rm", "-f", name).Run()
		return nil
	})
	return nil
}

// startFakevault starts the fakevault container, writing its CA to
// caDir/ca.pem, and waits until its admin API answers. The fake then is
// the Environment's World, and trusts the ServiceAccount issuer of the API
// server at cfg. It returns the address of the fake's CONNECT proxy.
func (c *containers) startFakevault(ctx context.Context, caDir string, cfg *rest.Config) (string, error) {
	adminAddr, proxyAddr := freeAddr(), freeAddr()
	if err := c.run("fakevault", "fakevault", []string{caDir + ":/ca"}, nil,
		"--listen", "127.0.0.1:0", "--admin-listen", adminAddr, "--proxy-listen", proxyAddr, "--ca-out", "/ca/ca.pem"); err != nil {
		return "", err
	}
	if err := waitHealthy(ctx, "http://"+adminAddr+"/healthz"); err != nil {
		return "", fmt.Errorf("fakevault container: %w", err)
	}
	c.d.FakevaultAdmin = "http://" + adminAddr
	w := newAdmin(c.d.FakevaultAdmin)
	c.d.World = w
	var err error
	if c.d.Issuer, err = w.trustCluster(ctx, cfg); err != nil {
		return "", err
	}
	return proxyAddr, nil
}

// startProvider starts the provider-azure container with its socket in
// sockets, reaching the fake with nothing but HTTPS_PROXY (proxyAddr) and
// SSL_CERT_FILE (caDir's ca.pem), and waits until it is healthy.
func (c *containers) startProvider(ctx context.Context, sockets, caDir, proxyAddr string) error {
	providerHTTP := freeAddr()
	if err := c.run("provider-azure", "kvsync-provider", []string{sockets + ":/provider", caDir + ":/etc/kvsync-ca:ro"},
		[]string{"HTTPS_PROXY=http://" + proxyAddr, "SSL_CERT_FILE=/etc/kvsync-ca/ca.pem"},
		"--socket-dir=/provider", "--http-addr="+providerHTTP, "--mount-timeout=3s"); err != nil {
		return err
	}
	if err := waitHealthy(ctx, "http://"+providerHTTP+"/healthz"); err != nil {
		return fmt.Errorf("provider-azure container: %w", err)
	}
	return nil
}

// startManager installs the chart's objects, starts the manager container
// acting as the chart's ServiceAccount with the provider's socket in
// sockets and the poll interval poll, waits until it is healthy and points
// the Environment's Metrics at it.
func (c *containers) startManager(ctx context.Context, dir, sockets string, poll time.Duration) error {
	kubeconfigFile, err := c.d.installController(ctx, dir)
	if err != nil {
		return err
	}
	// The image's user reads the kubeconfig (a test API server's).
	if err := os.Chmod(kubeconfigFile, 0o644); err != nil {
		return err
	}
	controllerHealth, controllerMetrics := freeAddr(), freeAddr()
	if err := c.run("manager", "kvsync-controller", []string{sockets + ":/provider", kubeconfigFile + ":/etc/kvsync/kubeconfig:ro"},
		[]string{"KUBECONFIG=/etc/kvsync/kubeconfig", "POD_NAMESPACE=" + controllerRelease.Namespace},
		"--leader-elect", "--hash-key-secret=kvsync-sync-hash-key", "--leader-election-id=kvsync-controller.secret-sync.x-k8s.io",
		"--provider-socket-dir=/provider", fmt.Sprintf("--rotation-poll-interval-in-seconds=%d", int(poll.Seconds())),
		"--max-vault-reads-per-second=1000", "--health-probe-bind-address="+controllerHealth,
		"--metrics-bind-address="+controllerMetrics); err != nil {
		return err
	}
	if err := waitHealthy(ctx, "http://"+controllerHealth+"/healthz"); err != nil {
		return fmt.Errorf("manager container: %w", err)
	}
	d := c.d
	d.MetricsURL = "http://" + controllerMetrics + "/metrics"
	d.Metrics = func() (string, error) { return httpGet(d.MetricsURL) }
	return nil
}
