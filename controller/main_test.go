package controller_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests when they leave goroutines running,
// envtest's control plane and the controllers they start included.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// Ginkgo's own signal handler lives as long as the process.
		goleak.IgnoreTopFunction("github.com/onsi/ginkgo/v2/internal/interrupt_handler.(*InterruptHandler).registerForInterrupts.func2"))
}

// TestTheSuiteSaysWhyWhenTheControlPlaneCannotStart runs the suite again, in
// a process of its own, with no control plane binaries: it must fail with
// the reason, not with a panic of its cleanup.
func TestTheSuiteSaysWhyWhenTheControlPlaneCannotStart(t *testing.T) {
	if os.Getenv("KVSYNC_SUITE_WITHOUT_ASSETS") != "" {
		t.Skip("this is the run without a control plane")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestController$", "-test.count=1")
	cmd.Env = append(os.Environ(), "KUBEBUILDER_ASSETS="+t.TempDir(), "KVSYNC_SUITE_WITHOUT_ASSETS=1")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("the suite passed without a control plane:\n%s", out)
	}
	if !strings.Contains(string(out), "starting envtest") {
		t.Errorf("the suite's failure does not say that envtest did not start:\n%s", out)
	}
	if strings.Contains(string(out), "nil pointer dereference") {
		t.Errorf("a cleanup panicked over the real failure:\n%s", out)
	}
}
