// Command e2e-docker runs conformance scenarios in existing-cluster mode
// against kvsync's images deployed as containers: envtest's API server on
// loopback with the Helm chart installed, and the fakevault, manager and
// provider-azure containers on the host network (conformance.StartDocker).
// It is what `make e2e-docker` runs, after `make docker-build`; it needs a
// running Docker daemon and KUBEBUILDER_ASSETS.
//
// The suite checks Events, statuses and the manager's metrics for leaks;
// after it, this command checks the containers' logs: no vault value, no
// RBAC denial of the controller, and a leader elected.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/kvsync/kvsync/conformance"
	"github.com/kvsync/kvsync/scenarios"
)

// defaultFocus runs every scenario through the containers.
const defaultFocus = `Scenario`

func main() {
	tag := flag.String("image-tag", "dev", "tag of the kvsync-controller, kvsync-provider and fakevault images")
	artifacts := flag.String("artifacts", "_artifacts/e2e-docker", "directory of the reports and container logs")
	focus := flag.String("focus", defaultFocus, "Ginkgo --focus of the scenarios to run")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *tag, *artifacts, *focus); err != nil {
		fmt.Fprintf(os.Stderr, "e2e-docker: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, tag, artifacts, focus string) (err error) {
	artifacts, err = filepath.Abs(artifacts)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		return err
	}
	logFile, err := os.Create(filepath.Join(artifacts, "containers.log"))
	if err != nil {
		return err
	}
	defer logFile.Close()
	log := &conformance.LogBuffer{Tee: logFile}

	start := time.Now()
	d, err := conformance.StartDocker(ctx, conformance.DockerOptions{ImageTag: tag,
		Options: conformance.Options{CRDDir: filepath.Join("deploy", "crds"), PollInterval: 2 * time.Second, Log: log}})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, d.Stop()) }()
	fmt.Printf("topology up in %s: containers %s\n", time.Since(start).Round(time.Millisecond), strings.Join(d.Containers, ", "))

	suite := exec.CommandContext(ctx, "go", "tool", "ginkgo", "--focus="+focus,
		"--junit-report=junit.xml", "--output-dir="+artifacts, "./conformance/")
	suite.Env = append(os.Environ(), "KVSYNC_KUBECONFIG="+d.Kubeconfig, "KVSYNC_FAKEVAULT_ADMIN="+d.FakevaultAdmin,
		"KVSYNC_METRICS_URL="+d.MetricsURL, "KVSYNC_ARTIFACTS="+artifacts,
		"KVSYNC_CONFORMANCE_IMPLEMENTATION=kvsync controller + kvsync provider (images "+tag+", as containers)",
		"KVSYNC_CONFORMANCE_LOGS_CHECK=hack/e2e-docker checks the containers' logs after the suite, in its exit status")
	suite.Stdout, suite.Stderr = os.Stdout, os.Stderr
	suiteErr := suite.Run()
	if suiteErr != nil {
		suiteErr = fmt.Errorf("the conformance suite failed: %w", suiteErr)
	}
	return errors.Join(suiteErr, checkLogs(log.String()))
}

// rbacDenied matches an RBAC denial of the controller's ServiceAccount.
var rbacDenied = regexp.MustCompile(`User \\?"system:serviceaccount:[a-z0-9-]+:[a-z0-9-]+\\?" cannot`)

// checkLogs holds the containers' logs to the project's rules.
func checkLogs(logs string) error {
	var errs []error
	if strings.Contains(logs, scenarios.Canary) {
		errs = append(errs, errors.New("a vault value reached a container's logs"))
	}
	if m := rbacDenied.FindString(logs); m != "" {
		errs = append(errs, fmt.Errorf("the chart's RBAC denied the controller a request: %s", m))
	}
	if !regexp.MustCompile(`(?i)successfully acquired lease`).MatchString(logs) {
		errs = append(errs, errors.New("the manager container did not win leader election"))
	}
	return errors.Join(errs...)
}
