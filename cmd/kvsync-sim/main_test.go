package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
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

// expectRows checks that poll's table has a row holding each fragment set.
func expectRows(t *testing.T, table string, rows ...[]string) {
	t.Helper()
	for _, want := range rows {
		found := false
		for _, line := range strings.Split(table, "\n") {
			ok := true
			for _, w := range want {
				ok = ok && strings.Contains(line, w)
			}
			found = found || ok
		}
		if !found {
			t.Errorf("no row with %q in:\n%s", want, table)
		}
	}
}

func TestTheSimRunsTheExamplesBreaksThemAndStopsWithNoProcessLeft(t *testing.T) {
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

	// The examples apply as they are.
	c, err := kubeClient(st.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	paths, _ := filepath.Glob(filepath.Join("..", "..", "examples", "*.yaml"))
	for _, path := range paths {
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, doc := range strings.Split(string(raw), "\n---\n") {
			obj := &unstructured.Unstructured{}
			if err := yaml.Unmarshal([]byte(doc), &obj.Object); err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			if err := c.Create(context.Background(), obj); err != nil {
				t.Fatalf("%s: creating %s: %v", path, obj.GetName(), err)
			}
		}
	}
	// The first poll may restart the controller before or after it
	// created the Secrets.
	expectRows(t, s.run("poll"), []string{"payments", "db", "True", "Succeeded"}, []string{"payments", "web-tls", "True", "Succeeded"})

	// A rotation is written; a deleted object is a PartialSync; a firewall
	// is a ProviderError naming it; clearing the fault brings it back.
	if out := s.run("secret", "rotate", "db-password"); !strings.Contains(out, "success, UpdateValueChangeOrForceUpdateSucceeded") {
		t.Errorf("rotate does not say what to expect:\n%s", out)
	}
	expectRows(t, s.run("poll", "payments/db"), []string{"db", "Update", "True", "UpdateValueChangeOrForceUpdateSucceeded"})

	if out := s.run("secret", "delete", "api-key"); !strings.Contains(out, "object-not-found") {
		t.Errorf("delete does not name the cause:\n%s", out)
	}
	expectRows(t, s.run("poll", "--wide", "payments/db"), []string{"db", "Update", "False", "PartialSync", "SecretNotFound"})
	s.run("secret", "purge", "api-key")
	s.run("secret", "set", "api-key", "demo-api-key-v2")

	if out := s.run("fault", "add", "vault.error", "--name", "firewall", "--status", "403", "--code", "Forbidden", "--inner-code", "ForbiddenByFirewall"); !strings.Contains(out, "vault-firewall") {
		t.Errorf("fault add does not name the cause:\n%s", out)
	}
	if out := s.run("fault", "list"); !strings.Contains(out, "firewall") {
		t.Errorf("fault list lacks the fault:\n%s", out)
	}
	expectRows(t, s.run("poll", "--wide"), []string{"db", "Update", "False", "ProviderError", "ForbiddenByFirewall"},
		[]string{"web-tls", "Update", "False", "ProviderError"})
	s.run("fault", "clear")
	expectRows(t, s.run("poll"), []string{"db", "Update", "True", "UpdateValueChangeOrForceUpdateSucceeded"},
		[]string{"web-tls", "Update", "True", "UpdateNoValueChangeSucceeded"})

	if out := s.run("identity", "revoke"); !strings.Contains(out, "rbac-role-missing") {
		t.Errorf("identity revoke does not name the cause:\n%s", out)
	}
	expectRows(t, s.run("poll", "--wide", "payments/db"), []string{"db", "Update", "False", "ProviderError", "ForbiddenByRbac"})
	s.run("identity", "grant")
	expectRows(t, s.run("poll", "payments/db"), []string{"db", "Update", "True", "UpdateNoValueChangeSucceeded"})

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

// childPIDs lists the processes the test process started.
func childPIDs(t *testing.T) []int {
	t.Helper()
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, path := range stats {
		raw, err := os.ReadFile(path)
		if err != nil {
			continue // ended meanwhile
		}
		// pid (comm) state ppid ...: comm may hold spaces, so read after
		// its closing parenthesis.
		fields := strings.Fields(string(raw[bytes.LastIndexByte(raw, ')')+1:]))
		if len(fields) > 1 && fields[1] == strconv.Itoa(os.Getpid()) {
			pid, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(path, "/proc/"), "/stat"))
			pids = append(pids, pid)
		}
	}
	if len(pids) < 5 {
		t.Fatalf("the sim runs %d processes, want 5 (kube-apiserver, etcd, fakevault, kvsync-provider, kvsync-controller)", len(pids))
	}
	return pids
}
