// Command fakevault runs the fake Azure Key Vault and Entra ID out of
// process: the HTTPS endpoint for <vault>.vault.azure.net and
// login.microsoftonline.com, an admin API to seed it, inject faults and read
// its journals, and an HTTP CONNECT proxy that reaches it for clients
// configured only with HTTPS_PROXY and SSL_CERT_FILE.
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

	"github.com/kvsync/kvsync/fakevault"
	"github.com/kvsync/kvsync/fakevault/keyvault"
	"github.com/kvsync/kvsync/fakevault/pki"
	"github.com/kvsync/kvsync/faults"
)

// options are the command's flags.
type options struct {
	listen        string
	adminListen   string
	proxyListen   string
	caOut         string
	caCert, caKey string
	region        string
	tokenLifetime time.Duration
	faultSeed     uint64
	dnsListen     string
	dnsAnswer     string
	fidelity      keyvault.Fidelity
	pageSize      int
}

func main() {
	o, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "fakevault: %v\n", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(ctx, o, logger, nil); err != nil {
		logger.Error("fakevault stopped", "error", err)
		os.Exit(1)
	}
}

func parseFlags(args []string, out io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("fakevault", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&o.listen, "listen", "127.0.0.1:8443", "HTTPS address of the vaults and login.microsoftonline.com; point DNS (or the proxy) here.")
	fs.StringVar(&o.adminListen, "admin-listen", "127.0.0.1:8080", "HTTP address of the admin API; empty disables it. It has no authentication.")
	fs.StringVar(&o.proxyListen, "proxy-listen", "127.0.0.1:3128", "HTTP CONNECT proxy address for HTTPS_PROXY; empty disables it.")
	fs.StringVar(&o.caOut, "ca-out", "", "Write the CA bundle (PEM) clients must trust to this file.")
	fs.StringVar(&o.caCert, "ca-cert", "", "Load the CA that signs the fake's certificates from this PEM file (with --ca-key), so that clients' trust survives a restart; empty makes a new CA.")
	fs.StringVar(&o.caKey, "ca-key", "", "PKCS#8 PEM private key of --ca-cert.")
	fs.StringVar(&o.region, "region", "eastus", "Azure region the vaults report.")
	fs.DurationVar(&o.tokenLifetime, "token-lifetime", time.Hour, "Lifetime of issued access tokens.")
	fs.StringVar(&o.dnsListen, "dns-listen", "", "UDP and TCP address of a DNS server for login.microsoftonline.com and the vaults' names (with DNS faults); empty disables it.")
	fs.StringVar(&o.dnsAnswer, "dns-answer", "127.0.0.1", "Address the DNS server answers for the fake's names: where clients reach --listen on port 443.")
	fs.Uint64Var(&o.faultSeed, "fault-seed", 1, "Seed of the fault injector's decisions (faults API on the admin address).")
	fidelity := fs.String("fidelity", "service", "service: deletes, purges and recovers take effect after seconds, as Key Vault's do, and vault-wide lists may end with an empty page; instant: at once, lists end on their last item (for suites that do not test those).")
	fs.DurationVar(&o.fidelity.DeleteDelay, "delete-delay", -1, "How long a deleted secret takes to appear at /deletedsecrets (default: --fidelity's).")
	fs.DurationVar(&o.fidelity.PurgeDelay, "purge-delay", -1, "How long a purged name cannot be set again (default: --fidelity's).")
	fs.DurationVar(&o.fidelity.RecoverDelay, "recover-delay", -1, "How long a recovered secret stays unreadable (default: --fidelity's).")
	fs.IntVar(&o.pageSize, "page-size", 25, "Items per list page when a request sets no maxresults, 1-25.")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	var preset keyvault.Fidelity
	switch *fidelity {
	case "service":
		preset = keyvault.ServiceFidelity
	case "instant":
	default:
		return o, fmt.Errorf("--fidelity %q is not service or instant", *fidelity)
	}
	for _, d := range []struct {
		flag *time.Duration
		def  time.Duration
	}{{&o.fidelity.DeleteDelay, preset.DeleteDelay}, {&o.fidelity.PurgeDelay, preset.PurgeDelay}, {&o.fidelity.RecoverDelay, preset.RecoverDelay}} {
		if *d.flag < 0 {
			*d.flag = d.def
		}
	}
	o.fidelity.TrailingEmptyPage = preset.TrailingEmptyPage
	if o.pageSize < 1 || o.pageSize > 25 {
		return o, fmt.Errorf("--page-size must be 1-25, got %d", o.pageSize)
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if o.listen == "" {
		return o, errors.New("--listen must not be empty")
	}
	if (o.caCert == "") != (o.caKey == "") {
		return o, errors.New("--ca-cert and --ca-key go together: give both or neither")
	}
	if net.ParseIP(o.dnsAnswer) == nil || net.ParseIP(o.dnsAnswer).To4() == nil {
		return o, fmt.Errorf("--dns-answer %q is not an IPv4 address", o.dnsAnswer)
	}
	if o.tokenLifetime < time.Minute {
		return o, fmt.Errorf("--token-lifetime must be at least 1m, got %s", o.tokenLifetime)
	}
	return o, nil
}

// loadCA reads the CA of --ca-cert and --ca-key; with neither it returns nil
// and the server makes a new one.
func loadCA(certFile, keyFile string) (*pki.CA, error) {
	if certFile == "" {
		return nil, nil
	}
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("reading --ca-cert: %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("reading --ca-key: %w", err)
	}
	ca, err := pki.LoadCA(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("--ca-cert %s and --ca-key %s: %w", certFile, keyFile, err)
	}
	return ca, nil
}

// addrs are the addresses run listens on, once it is ready.
type addrs struct{ https, admin, proxy, dns string }

// run serves until ctx ends. ready, when not nil, receives the listening
// addresses.
func run(ctx context.Context, o options, logger *slog.Logger, ready func(addrs)) error {
	ca, err := loadCA(o.caCert, o.caKey)
	if err != nil {
		return err
	}
	srv, err := fakevault.NewServer(fakevault.Options{Addr: o.listen, Region: o.region, TokenLifetime: o.tokenLifetime, CA: ca,
		Fidelity: o.fidelity, PageSize: o.pageSize})
	if err != nil {
		return err
	}
	defer srv.Close()
	if o.caOut != "" {
		if err := os.WriteFile(o.caOut, srv.CAPEM(), 0o644); err != nil {
			return fmt.Errorf("writing CA bundle: %w", err)
		}
	}
	inj, err := faults.New(faults.Options{Seed: o.faultSeed, CA: srv.CA()})
	if err != nil {
		return err
	}
	srv.Use(inj.Handler)
	admin := http.NewServeMux()
	admin.Handle("/faults", inj.AdminHandler())
	admin.Handle("/faults/", inj.AdminHandler())
	admin.Handle("/", srv.AdminHandler())

	a := addrs{https: srv.Addr()}
	var servers []*http.Server
	errs := make(chan error, 2)
	serve := func(addr string, h http.Handler) (string, error) {
		lis, err := net.Listen("tcp", addr)
		if err != nil {
			return "", fmt.Errorf("listening on %s: %w", addr, err)
		}
		hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
		servers = append(servers, hs)
		go func() {
			if err := hs.Serve(lis); !errors.Is(err, http.ErrServerClosed) {
				errs <- err
			}
		}()
		return lis.Addr().String(), nil
	}
	if o.adminListen != "" {
		if a.admin, err = serve(o.adminListen, admin); err != nil {
			return err
		}
	}
	if o.proxyListen != "" {
		if a.proxy, err = serve(o.proxyListen, srv.ProxyHandlerVia(inj.Dialer(srv.DialContext))); err != nil {
			return err
		}
	}
	if o.dnsListen != "" {
		answerIP := net.ParseIP(o.dnsAnswer)
		dnsSrv, err := faults.NewDNSServer(faults.DNSServerOptions{Addr: o.dnsListen, Injector: inj,
			Resolve: func(name string) (net.IP, bool) { return answerIP, srv.Serves(name) }})
		if err != nil {
			return err
		}
		defer dnsSrv.Close()
		a.dns = dnsSrv.Addr()
	}
	logger.Info("fakevault serving", "https", a.https, "admin", a.admin, "proxy", a.proxy, "dns", a.dns,
		"tenant", fakevault.DefaultTenantID, "clientID", fakevault.DefaultClientID, "caBundle", o.caOut)
	if ready != nil {
		ready(a)
	}
	select {
	case <-ctx.Done():
	case err = <-errs:
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, hs := range servers {
		_ = hs.Shutdown(shutdown)
	}
	return err
}
