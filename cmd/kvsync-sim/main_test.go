package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests when they leave goroutines running,
// the sim's processes' supervisors included.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// sim runs kvsync-sim's commands against the sim in dir.
type sim struct {
	t   *testing.T
	dir string
	// env is what `source _sim/env` exports, once the walkthrough ran it.
	env []string
}

// run runs one command line and returns its output; it fails the test on
// an error.
func (s sim) run(args ...string) string {
	s.t.Helper()
	var out bytes.Buffer
	root := newRoot(&out)
	root.SetArgs(append(args, "--dir", s.dir))
	if err := root.ExecuteContext(context.Background()); err != nil {
		s.t.Fatalf("kvsync-sim %s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
	s.t.Logf("$ kvsync-sim %s\n%s", strings.Join(args, " "), out.String())
	return out.String()
}

// hinted is one SecretSync's outcome a change predicted.
type hinted struct{ namespace, name, reason string }

// hintLine is a prediction line: "  NAMESPACE/NAME: REASON  (detail)".
var hintLine = regexp.MustCompile(`(?m)^  ([a-z0-9-]+)/([a-z0-9.-]+): (\S+)  \(`)

// readHints reads the predictions a change printed, leaving out the
// SecretSyncs it does not touch.
func readHints(out string) []hinted {
	var hs []hinted
	for _, m := range hintLine.FindAllStringSubmatch(out, -1) {
		if m[3] != "unaffected" {
			hs = append(hs, hinted{m[1], m[2], m[3]})
		}
	}
	return hs
}

// hasRow reports whether one line of out holds every fragment of row; a
// fragment "a|b" is held when either is.
func hasRow(out string, row []string) bool {
	for _, line := range strings.Split(out, "\n") {
		all := true
		for _, frag := range row {
			if frag == "" {
				continue
			}
			any := false
			for _, alt := range strings.Split(frag, "|") {
				any = any || strings.Contains(line, alt)
			}
			all = all && any
		}
		if all {
			return true
		}
	}
	return false
}

// exec runs a binary of the walkthrough with the sim's kubeconfig, from
// the module root; an exit code above okExit fails the test.
func (s sim) exec(step step, dir, path string, args []string, kubeconfig string, okExit int) string {
	s.t.Helper()
	cmd := exec.Command(path, args...)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), s.env...), "KUBECONFIG="+kubeconfig, "NO_COLOR=1")
	out, err := cmd.CombinedOutput()
	s.t.Logf("$ %s\n%s", strings.Join(step.args, " "), out)
	var exit *exec.ExitError
	if err != nil && !(errors.As(err, &exit) && exit.ExitCode() <= okExit) {
		s.t.Fatalf("docs/sim.md:%d: %s: %v\n%s", step.line, strings.Join(step.args, " "), err, out)
	}
	return string(out)
}

func TestTheWalkthroughOfTheSimRunsAsDocumentedAndTheSimStopsWithNoProcessLeft(t *testing.T) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		t.Skip("starts envtest: KUBEBUILDER_ASSETS is not set (make test sets it)")
	}
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	var upOut bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- up(ctx, upOptions{dir: dir, moduleRoot: filepath.Join("..", ".."), poll: time.Hour}, &upOut)
	}()
	// stop is Ctrl-C: it returns up's error.
	var once sync.Once
	var upErr error
	stop := func() error {
		once.Do(func() { cancel(); upErr = <-done })
		return upErr
	}
	defer func() {
		if err := stop(); err != nil {
			t.Errorf("up: %v\n%s", err, upOut.String())
		}
	}()
	deadline := time.Now().Add(4 * time.Minute)
	for {
		if _, err := os.Stat(filepath.Join(dir, "env")); err == nil {
			break
		}
		select {
		case err := <-done:
			once.Do(func() { upErr = err })
			t.Fatalf("up ended: %v\n%s", err, upOut.String())
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("the sim is not up after 4 minutes:\n%s", upOut.String())
		}
	}
	st, err := readState(dir)
	if err != nil {
		t.Fatal(err)
	}
	s := sim{t: t, dir: dir}

	// docs/sim.md's walkthrough, as written.
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	kubectl := filepath.Join(os.Getenv("KUBEBUILDER_ASSETS"), "kubectl")
	if _, err := os.Stat(kubectl); err != nil {
		t.Fatalf("kubectl is not built beside the API server (hack/envtest.sh builds it): %v", err)
	}
	doctor := filepath.Join(t.TempDir(), "kubectl-kvsync")
	build := exec.Command("go", "build", "-o", doctor, "./cmd/kubectl-kvsync")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building kubectl-kvsync: %v\n%s", err, out)
	}
	steps, err := readWalkthrough(filepath.Join(root, "docs", "sim.md"))
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) < 40 {
		t.Fatalf("the walkthrough has %d commands: was it found?", len(steps))
	}
	// hints are the outcomes the last change predicted, checked at the
	// next poll against what the controller reported.
	var hints []hinted
	for _, step := range steps {
		var out string
		switch a := step.args; {
		case a[0] == "source":
			s.env = sourceEnv(t, filepath.Join(dir, "env"))
			continue
		case a[0] == "sleep":
			d, err := time.ParseDuration(a[1] + "s")
			if err != nil {
				t.Fatalf("docs/sim.md:%d: %v", step.line, err)
			}
			time.Sleep(d)
			continue
		case a[0] == "kubectl":
			out = s.exec(step, root, kubectl, a[1:], st.Kubeconfig, 0)
		case len(a) > 2 && a[0] == "go" && a[1] == "run" && a[2] == "./cmd/kvsync-sim":
			out = s.run(a[3:]...)
		case len(a) > 2 && a[0] == "go" && a[1] == "run" && a[2] == "./cmd/kubectl-kvsync":
			// The doctor exits 1 when it finds a SecretSync unhealthy.
			out = s.exec(step, root, doctor, a[3:], st.Kubeconfig, 1)
			if strings.Contains(out, "last checks unknown") {
				t.Errorf("docs/sim.md:%d: kubectl-kvsync could not read the controller's metrics from _sim/env's KVSYNC_METRICS_URL:\n%s", step.line, out)
			}
		default:
			t.Fatalf("docs/sim.md:%d: the walkthrough runs kubectl, kvsync-sim and kubectl-kvsync only, not %q", step.line, a[0])
		}
		for _, row := range step.want {
			if !hasRow(out, row) {
				t.Errorf("docs/sim.md:%d: %s printed no line with %q:\n%s", step.line, strings.Join(step.args, " "), row, out)
			}
		}
		if a := step.args; len(a) > 3 && a[2] == "./cmd/kvsync-sim" && a[3] == "poll" {
			for _, h := range hints {
				if only := a[len(a)-1]; strings.Contains(only, "/") && only != h.namespace+"/"+h.name {
					continue
				}
				if !hasRow(out, []string{h.namespace, h.name, h.reason}) {
					t.Errorf("docs/sim.md:%d: the change before predicted %s/%s: %s; the poll printed:\n%s", step.line, h.namespace, h.name, h.reason, out)
				}
			}
			hints = nil
		}
		if found := readHints(out); len(found) > 0 {
			hints = found
		}
		if t.Failed() {
			t.FailNow()
		}
	}

	// Ctrl-C stops every process and removes the state.
	pids := childPIDs(t)
	if err := stop(); err != nil {
		t.Fatalf("up: %v", err)
	}
	for _, pid := range pids {
		if syscall.Kill(pid, 0) == nil {
			t.Errorf("process %d still runs after the sim stopped", pid)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, stateFile)); !os.IsNotExist(err) {
		t.Errorf("%s is left behind: %v", stateFile, err)
	}
	if !strings.Contains(upOut.String(), "stopped") {
		t.Errorf("up did not say it stopped:\n%s", upOut.String())
	}
}

// sourceEnv reads the variables a shell's `source` of the sim's env file
// exports, except PATH (the test runs kubectl by its path).
func sourceEnv(t *testing.T, path string) []string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var env []string
	for _, line := range strings.Split(string(raw), "\n") {
		kv, ok := strings.CutPrefix(line, "export ")
		if ok && !strings.HasPrefix(kv, "PATH=") {
			env = append(env, kv)
		}
	}
	return env
}

// childPIDs lists the processes the test process started.
func childPIDs(t *testing.T) []int {
	t.Helper()
	procs, err := children(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, p := range procs {
		pids = append(pids, p.pid)
	}
	if len(pids) < 5 {
		t.Fatalf("the sim runs %d processes, want 5 (kube-apiserver, etcd, fakevault, kvsync-provider, kvsync-controller)", len(pids))
	}
	return pids
}
