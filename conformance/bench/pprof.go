package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// profiler fetches the controller's pprof profiles into dir.
type profiler struct {
	addr string // the controller's --pprof-bind-address
	dir  string
}

// freeAddr returns a loopback address nothing listens on.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// cpu starts a CPU profile of d and returns a function that waits for it
// and writes it to <dir>/<name>.cpu.pb.gz. A nil profiler profiles nothing.
func (p *profiler) cpu(ctx context.Context, name string, d time.Duration) (wait func() error) {
	if p == nil {
		return func() error { return nil }
	}
	done := make(chan error, 1)
	go func() {
		done <- p.fetch(ctx, fmt.Sprintf("/debug/pprof/profile?seconds=%d", max(1, int(d.Seconds()))), name+".cpu.pb.gz")
	}()
	return func() error { return <-done }
}

// heap writes the heap profile, after a GC, to <dir>/<name>.heap.pb.gz.
func (p *profiler) heap(ctx context.Context, name string) error {
	if p == nil {
		return nil
	}
	return p.fetch(ctx, "/debug/pprof/heap?gc=1", name+".heap.pb.gz")
}

func (p *profiler) fetch(ctx context.Context, path, file string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.addr+path, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("profiling the controller: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("profiling the controller: %s answered %s", path, resp.Status)
	}
	if err := os.MkdirAll(p.dir, 0o755); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(p.dir, file))
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
