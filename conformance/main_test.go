package conformance_test

import (
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
