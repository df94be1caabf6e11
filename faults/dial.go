package faults

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/kvsync/kvsync/fakevault/pki"
)

// DialFunc dials a network address, as http.Transport.DialContext does.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// misrouteAddr is the address a dns.misroute name resolves to: a private
// address that never answers.
const misrouteAddr = "10.255.0.4"

// blockedAddr is the address a blocked vault's name resolves to where the
// fake's DNS server is the clients' way to it: a public address (TEST-NET-3)
// the network drops, as a firewall on the path to a vault's public address
// does.
const blockedAddr = "203.0.113.4"

// Dialer wraps next with the DNS, transport and gateway faults: the dial
// function to give clients in place of next.
func (i *Injector) Dialer(next DialFunc) DialFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return next(ctx, network, addr)
		}
		f := i.decide(target{host: host, vault: i.vaultOf(host)}, inLayers("dns", "transport", "gateway"))
		if f == nil {
			return next(ctx, network, addr)
		}
		return i.dialFault(ctx, *f, network, addr, host, next)
	}
}

func (i *Injector) dialFault(ctx context.Context, f Fault, network, addr, host string, next DialFunc) (net.Conn, error) {
	opErr := func(err error) error { return &net.OpError{Op: "dial", Net: network, Err: err} }
	switch f.Kind {
	case DNSNXDomain:
		return nil, opErr(&net.DNSError{Err: "no such host", Name: host, IsNotFound: true})
	case DNSServFail:
		return nil, opErr(&net.DNSError{Err: "server misbehaving", Name: host, IsTemporary: true})
	case DNSTimeout:
		wait(ctx, i.opts.DNSTimeout)
		return nil, opErr(&net.DNSError{Err: "i/o timeout", Name: host, IsTimeout: true, IsTemporary: true})
	case DNSMisroute:
		<-ctx.Done()
		return nil, &net.OpError{Op: "dial", Net: network, Addr: fakeAddr(misrouteAddr + ":443"), Err: timeoutError{ctx.Err()}}
	case TransportRefused:
		return nil, opErr(os.NewSyscallError("connect", syscall.ECONNREFUSED))
	case TransportBlackhole, GatewayVaultBlocked:
		<-ctx.Done()
		return nil, opErr(timeoutError{ctx.Err()})
	case TransportLatency:
		if !wait(ctx, time.Duration(f.Latency)+i.jitter(time.Duration(f.Jitter))) {
			return nil, opErr(timeoutError{ctx.Err()})
		}
		return next(ctx, network, addr)
	case TransportReset:
		conn, err := next(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return resetConn{conn}, nil
	case TransportTLSUntrusted, TransportTLSWrongName:
		return i.impostor(f.Kind, host)
	}
	return nil, fmt.Errorf("fault %q: kind %q does not apply to connections", f.Name, f.Kind)
}

// impostor returns a connection to an in-memory TLS server presenting a
// certificate the client must refuse: one from an untrusted CA for the right
// name, or one from the trusted CA for another name.
func (i *Injector) impostor(kind Kind, host string) (net.Conn, error) {
	ca, names := i.interceptCA, []string{host}
	if kind == TransportTLSWrongName {
		names = []string{"wrong-host.example"}
		if i.opts.CA != nil {
			ca = i.opts.CA
		}
	}
	leaf, err := ca.Issue(pki.LeafOptions{DNSNames: names})
	if err != nil {
		return nil, err
	}
	client, server := net.Pipe()
	go func() {
		defer server.Close()
		srv := tls.Server(server, &tls.Config{Certificates: []tls.Certificate{leaf.TLSCertificate()}})
		_ = srv.SetDeadline(time.Now().Add(10 * time.Second))
		_ = srv.Handshake()
	}()
	return client, nil
}

// resetConn fails every read and write as a connection the peer reset.
type resetConn struct{ net.Conn }

func (c resetConn) Read([]byte) (int, error) {
	c.Conn.Close()
	return 0, &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}
}

func (c resetConn) Write([]byte) (int, error) {
	c.Conn.Close()
	return 0, &net.OpError{Op: "write", Net: "tcp", Err: os.NewSyscallError("write", syscall.ECONNRESET)}
}

// wait sleeps for d or until ctx ends, and reports whether d passed.
func wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// timeoutError is a dial that gave up: a net.Error that times out, wrapping
// the context's error.
type timeoutError struct{ err error }

func (e timeoutError) Error() string   { return "i/o timeout" }
func (e timeoutError) Timeout() bool   { return true }
func (e timeoutError) Temporary() bool { return true }
func (e timeoutError) Unwrap() error   { return e.err }

var _ net.Error = timeoutError{}

type fakeAddr string

func (a fakeAddr) Network() string { return "tcp" }
func (a fakeAddr) String() string  { return string(a) }
