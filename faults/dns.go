package faults

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"

	"github.com/miekg/dns"
)

// DNSServerOptions configure a DNSServer.
type DNSServerOptions struct {
	// Addr is the UDP and TCP listen address; 127.0.0.1:0 when empty.
	Addr string
	// Resolve returns the address of a name (without the trailing dot), or
	// false when the name does not exist.
	Resolve func(name string) (net.IP, bool)
	// Injector, when set, applies its dns.* faults to the answers.
	Injector *Injector
}

// DNSServer is a DNS server for the fake's names: point a resolver (or a
// cluster's CoreDNS, with a forward for vault.azure.net and
// login.microsoftonline.com) at it and the names resolve to the fake, with
// the injector's DNS faults applied to the answers: NXDOMAIN, SERVFAIL, no
// answer (timeout) and a misrouted private address.
type DNSServer struct {
	addr    string
	servers []*dns.Server
	wg      sync.WaitGroup
}

// NewDNSServer starts a DNSServer on UDP and TCP.
func NewDNSServer(opts DNSServerOptions) (*DNSServer, error) {
	if opts.Resolve == nil {
		return nil, errors.New("a DNS server needs a Resolve function")
	}
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	pc, lis, err := listenUDPAndTCP(opts.Addr)
	if err != nil {
		return nil, err
	}
	h := dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) { answer(w, req, opts) })
	s := &DNSServer{addr: pc.LocalAddr().String()}
	started := make(chan struct{}, 2)
	for _, srv := range []*dns.Server{
		{PacketConn: pc, Handler: h, NotifyStartedFunc: func() { started <- struct{}{} }},
		{Listener: lis, Handler: h, NotifyStartedFunc: func() { started <- struct{}{} }},
	} {
		s.servers = append(s.servers, srv)
		s.wg.Go(func() { _ = srv.ActivateAndServe() })
	}
	<-started
	<-started
	return s, nil
}

// listenUDPAndTCP listens on one port for UDP and TCP. With port 0 the UDP
// port is chosen first; when its TCP twin is taken, another is tried.
func listenUDPAndTCP(addr string) (net.PacketConn, net.Listener, error) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, fmt.Errorf("DNS address %q: %w", addr, err)
	}
	for attempt := 0; ; attempt++ {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return nil, nil, fmt.Errorf("listening on udp %s: %w", addr, err)
		}
		lis, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, lis, nil
		}
		pc.Close()
		if port != "0" || attempt == 9 {
			return nil, nil, fmt.Errorf("listening on tcp %s: %w", pc.LocalAddr(), err)
		}
	}
}

// Addr returns the host:port the server answers on (UDP and TCP).
func (s *DNSServer) Addr() string { return s.addr }

// Close stops the server.
func (s *DNSServer) Close() error {
	var errs []error
	for _, srv := range s.servers {
		errs = append(errs, srv.Shutdown())
	}
	s.wg.Wait()
	return errors.Join(errs...)
}

// answer answers one query.
func answer(w dns.ResponseWriter, req *dns.Msg, opts DNSServerOptions) {
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	if len(req.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		_ = w.WriteMsg(m)
		return
	}
	q := req.Question[0]
	name := strings.ToLower(strings.TrimSuffix(q.Name, "."))
	if inj := opts.Injector; inj != nil {
		if f := inj.decide(target{host: name, vault: inj.vaultOf(name)}, resolvable); f != nil {
			switch f.Kind {
			case DNSNXDomain:
				m.Rcode = dns.RcodeNameError
			case DNSServFail:
				m.Rcode = dns.RcodeServerFailure
			case DNSTimeout:
				return // no answer: the resolver times out
			case DNSMisroute:
				if q.Qtype == dns.TypeA {
					m.Answer = append(m.Answer, aRecord(q.Name, net.ParseIP(misrouteAddr)))
				}
			case TransportBlackhole, GatewayVaultBlocked:
				if q.Qtype == dns.TypeA {
					m.Answer = append(m.Answer, aRecord(q.Name, net.ParseIP(blockedAddr)))
				}
			}
			_ = w.WriteMsg(m)
			return
		}
	}
	ip, ok := opts.Resolve(name)
	switch {
	case !ok:
		m.Rcode = dns.RcodeNameError
	case q.Qtype == dns.TypeA && ip.To4() != nil:
		m.Answer = append(m.Answer, aRecord(q.Name, ip))
	}
	_ = w.WriteMsg(m)
}

// resolvable takes the faults a DNS answer can carry: the dns layer's, and
// the faults whose connection never completes (transport.blackhole,
// gateway.vault-blocked), which send the name to a public-looking address
// the network drops (blockedAddr), where dns.misroute sends it to a
// private one. Where the fake's DNS server is
// the clients' only way to the fake (a cluster whose DNS forwards Azure's
// names to it), that is how those faults reach them; clients that dial
// through the injector's Dialer meet them there instead.
func resolvable(f *Fault) bool {
	return inLayers("dns")(f) || f.Kind == TransportBlackhole || f.Kind == GatewayVaultBlocked
}

func aRecord(name string, ip net.IP) dns.RR {
	return &dns.A{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 5}, A: ip.To4()}
}
