package conformance

import (
	"io"
	"strings"
	"sync"
)

// LogBuffer collects the components' logs, written concurrently, so that
// the suite can check them for vault values; a non-nil Tee also receives
// every write (e.g. a log file).
type LogBuffer struct {
	Tee io.Writer

	mu  sync.Mutex
	buf strings.Builder
}

func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	if b.Tee != nil {
		return b.Tee.Write(p)
	}
	return len(p), nil
}

// String returns everything written so far.
func (b *LogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
