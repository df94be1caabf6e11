package controller

import (
	"context"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

func TestTheLastSuccessCollectorReadsOnlyFromRunningManagers(t *testing.T) {
	c := &lastSuccessCollector{}
	for range 50 { // managers started and stopped in one process
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- c.reader(fake.NewClientBuilder().Build()).Start(ctx) }()
		deadline := time.Now().Add(5 * time.Second)
		for c.readerCount() != 1 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		if n := c.readerCount(); n != 1 {
			t.Fatalf("a running manager's reader: %d readers, want 1", n)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if n := c.readerCount(); n != 0 {
		t.Errorf("after 50 managers stopped, the collector reads from %d", n)
	}
}
