package conformance

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
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
	e := &Environment{PollInterval: opts.PollInterval, Mode: "docker", ProviderProxy: true}
	d := &Docker{Environment: e}
	defer func() {
		if err != nil {
			err = errors.Join(err, e.Stop())
		}
	}()
	if out, err := exec.CommandContext(ctx, "docker", "version", "--format", "{{.Server.Version}}").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("no Docker daemon answers (start dockerd): %w: %s", err, strings.TrimSpace(string(out)))
	}
	for _, img := range []string{"fakevault", "kvsync-provider", "kvsync-controller"} {
		if out, err := exec.CommandContext(ctx, "docker", "image", "inspect", "--format", "{{.Id}}", img+":"+opts.ImageTag).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("image %s:%s is missing (make docker-build IMG_TAG=%s): %s", img, opts.ImageTag, opts.ImageTag, strings.TrimSpace(string(out)))
		}
	}
	dir, cfg, _, err := e.startControlPlane("kvsync-docker-", opts.CRDDir)
	if err != nil {
		return nil, err
	}
	// Directories the containers' user (65532) writes to, as an emptyDir.
	shared := func(name string) (string, error) {
		p := filepath.Join(dir, name)
		if err := os.Mkdir(p, 0o777); err != nil {
			return "", err
		}
		return p, os.Chmod(p, 0o777)
	}
	caDir, err := shared("ca")
	if err != nil {
		return nil, err
	}
	sockets, err := shared("provider")
	if err != nil {
		return nil, err
	}
	suffix := fmt.Sprintf("%d", time.Now().UnixNano()%1e9)
	run := func(name, image string, mounts, env []string, args ...string) error {
		name = "kvsync-e2e-" + name + "-" + suffix
		d.Containers = append(d.Containers, name)
		dockerArgs := []string{"run", "--rm", "--name", name, "--network", "host",
			"--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges"}
		for _, m := range mounts {
			dockerArgs = append(dockerArgs, "-v", m)
		}
		for _, v := range env {
			dockerArgs = append(dockerArgs, "-e", v)
		}
		dockerArgs = append(dockerArgs, image+":"+opts.ImageTag)
		if _, err := e.process(opts.Log, "docker", "", nil, append(dockerArgs, args...)...); err != nil {
			return err
		}
		// The docker client stops the container on SIGTERM; make sure.
		e.stops = append(e.stops, func() error {
			_ = exec.Command("docker", "rm", "-f", name).Run()
			return nil
		})
		return nil
	}

	adminAddr, proxyAddr, providerHTTP, controllerHealth, controllerMetrics := freeAddr(), freeAddr(), freeAddr(), freeAddr(), freeAddr()
	if err := run("fakevault", "fakevault", []string{caDir + ":/ca"}, nil,
		"--listen", "127.0.0.1:0", "--admin-listen", adminAddr, "--proxy-listen", proxyAddr, "--ca-out", "/ca/ca.pem"); err != nil {
		return nil, err
	}
	if err := waitHealthy(ctx, "http://"+adminAddr+"/healthz"); err != nil {
		return nil, fmt.Errorf("fakevault container: %w", err)
	}
	d.FakevaultAdmin = "http://" + adminAddr
	w := newAdmin(d.FakevaultAdmin)
	e.World = w
	if e.Issuer, err = w.trustCluster(ctx, cfg); err != nil {
		return nil, err
	}

	if err := run("provider-azure", "kvsync-provider", []string{sockets + ":/provider", caDir + ":/etc/kvsync-ca:ro"},
		[]string{"HTTPS_PROXY=http://" + proxyAddr, "SSL_CERT_FILE=/etc/kvsync-ca/ca.pem"},
		"--socket-dir=/provider", "--http-addr="+providerHTTP, "--mount-timeout=3s"); err != nil {
		return nil, err
	}
	if err := waitHealthy(ctx, "http://"+providerHTTP+"/healthz"); err != nil {
		return nil, fmt.Errorf("provider-azure container: %w", err)
	}

	kubeconfigFile, err := e.installController(ctx, dir)
	if err != nil {
		return nil, err
	}
	// The image's user reads the kubeconfig (a test API server's).
	if err := os.Chmod(kubeconfigFile, 0o644); err != nil {
		return nil, err
	}
	if err := run("manager", "kvsync-controller", []string{sockets + ":/provider", kubeconfigFile + ":/etc/kvsync/kubeconfig:ro"},
		[]string{"KUBECONFIG=/etc/kvsync/kubeconfig", "POD_NAMESPACE=" + controllerRelease.Namespace},
		"--leader-elect", "--hash-key-secret=kvsync-sync-hash-key", "--leader-election-id=kvsync-controller.secret-sync.x-k8s.io",
		"--provider-socket-dir=/provider", fmt.Sprintf("--rotation-poll-interval-in-seconds=%d", int(opts.PollInterval.Seconds())),
		"--max-vault-reads-per-second=1000", "--health-probe-bind-address="+controllerHealth,
		"--metrics-bind-address="+controllerMetrics); err != nil {
		return nil, err
	}
	if err := waitHealthy(ctx, "http://"+controllerHealth+"/healthz"); err != nil {
		return nil, fmt.Errorf("manager container: %w", err)
	}
	d.MetricsURL = "http://" + controllerMetrics + "/metrics"
	e.Metrics = func() (string, error) { return httpGet(d.MetricsURL) }

	d.Kubeconfig = filepath.Join(dir, "admin.kubeconfig")
	if err := WriteAdminKubeconfig(e.envtest, "kvsync-e2e", d.Kubeconfig); err != nil {
		return nil, err
	}
	return d, nil
}
