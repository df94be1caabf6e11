// Command kvsync-provider runs kvsync's Azure Key Vault provider: a gRPC
// server of the Secrets Store CSI provider API on <socket-dir>/azure.sock,
// with health and metrics over HTTP.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/kvsync/kvsync/provider"
)

// version is set at build time.
var version = "dev"

type options struct {
	socketDir    string
	httpAddr     string
	mountTimeout time.Duration
	logLevel     slog.Level
}

func main() {
	o, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "kvsync-provider: %v\n", err)
		os.Exit(2)
	}
	logger := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: o.logLevel}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, logger, nil); err != nil {
		logger.Error("Provider stopped", "error", err)
		os.Exit(1)
	}
}

func parseFlags(args []string, out io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("kvsync-provider", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&o.socketDir, "socket-dir", "/provider", "Directory of the provider socket azure.sock, shared with the controller.")
	fs.StringVar(&o.httpAddr, "http-addr", ":8989", "Address of /healthz and /metrics; empty disables them.")
	fs.DurationVar(&o.mountTimeout, "mount-timeout", provider.DefaultMountTimeout, "Deadline of every Mount, below the controller's provider timeout.")
	fs.TextVar(&o.logLevel, "log-level", slog.LevelInfo, "Log level: debug, info, warn or error.")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	switch {
	case fs.NArg() > 0:
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	case o.socketDir == "":
		return o, errors.New("--socket-dir must not be empty")
	case o.mountTimeout < time.Second:
		return o, fmt.Errorf("--mount-timeout must be at least 1s, got %s", o.mountTimeout)
	}
	return o, nil
}

// run serves until ctx ends; ready, when not nil, is called with the HTTP
// address once both servers listen.
func run(ctx context.Context, o options, logger *slog.Logger, ready func(httpAddr string)) error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	srv, err := provider.New(provider.Options{SocketDir: o.socketDir, MountTimeout: o.mountTimeout, Registerer: reg, Logger: logger, Version: version})
	if err != nil {
		return err
	}
	var httpAddr string
	if o.httpAddr != "" {
		lis, err := net.Listen("tcp", o.httpAddr)
		if err != nil {
			return fmt.Errorf("listening on %s: %w", o.httpAddr, err)
		}
		httpAddr = lis.Addr().String()
		mux := http.NewServeMux()
		mux.Handle("/healthz", provider.HealthHandler(srv.SocketPath()))
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = hs.Serve(lis) }()
		defer hs.Close()
	}
	return srv.Serve(ctx, func() {
		if ready != nil {
			ready(httpAddr)
		}
	})
}
