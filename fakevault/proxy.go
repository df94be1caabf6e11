package fakevault

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// ProxyHandler returns an HTTP CONNECT proxy that tunnels to the server the
// names it serves (see DialContext). An unmodified client in another process
// reaches the fake with only HTTPS_PROXY pointing at this handler and
// SSL_CERT_FILE naming the CA bundle (CAPEM). Tunnels to any other name are
// refused with 502 Bad Gateway, as a proxy that cannot resolve them would.
func (s *Server) ProxyHandler() http.Handler { return s.ProxyHandlerVia(s.DialContext) }

// ProxyHandlerVia is ProxyHandler with the tunnels opened by dial, which
// should end in DialContext: a seam for faults on the path.
func (s *Server) ProxyHandlerVia(dial func(ctx context.Context, network, addr string) (net.Conn, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodConnect {
			w.Header().Set("Allow", http.MethodConnect)
			http.Error(w, "this is an HTTPS proxy: only CONNECT is supported", http.StatusMethodNotAllowed)
			return
		}
		upstream, err := dial(r.Context(), "tcp", r.Host)
		if err != nil {
			status := http.StatusBadGateway
			var dnsErr *net.DNSError
			if errors.As(err, &dnsErr) {
				err = fmt.Errorf("cannot resolve %s: %w", dnsErr.Name, err)
			}
			http.Error(w, err.Error(), status)
			return
		}
		hj, ok := w.(http.Hijacker)
		if !ok {
			upstream.Close()
			http.Error(w, "connection cannot be hijacked", http.StatusInternalServerError)
			return
		}
		client, buf, err := hj.Hijack()
		if err != nil {
			upstream.Close()
			return
		}
		if _, err := client.Write([]byte("HTTP/1.1 200 Connection established\r\n\r\n")); err != nil {
			client.Close()
			upstream.Close()
			return
		}
		tunnel(client, buf.Reader, upstream)
	})
}

// tunnel copies bytes both ways until either side closes. Bytes the client
// sent after the CONNECT request and that are already buffered go first.
func tunnel(client net.Conn, buffered io.Reader, upstream net.Conn) {
	var wg sync.WaitGroup
	wg.Go(func() {
		_, _ = io.Copy(upstream, io.MultiReader(buffered, client))
		closeWrite(upstream)
	})
	wg.Go(func() {
		_, _ = io.Copy(client, upstream)
		closeWrite(client)
	})
	wg.Wait()
	client.Close()
	upstream.Close()
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
		return
	}
	_ = c.SetReadDeadline(time.Now())
}
