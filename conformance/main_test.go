package conformance_test

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests when they leave goroutines running,
// envtest's control plane and the controllers they start included. Against
// an existing cluster (KVSYNC_KUBECONFIG) the API server outlives the
// suite, and the clients' connections to it with it: there is nothing of
// the suite's own to check.
func TestMain(m *testing.M) {
	if os.Getenv("KVSYNC_KUBECONFIG") != "" {
		os.Exit(m.Run())
	}
	goleak.VerifyTestMain(m,
		// Ginkgo's own signal handler lives as long as the process.
		goleak.IgnoreTopFunction("github.com/onsi/ginkgo/v2/internal/interrupt_handler.(*InterruptHandler).registerForInterrupts.func2"))
}
