package fakevault

import (
	"context"
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
// SSL_CERT_FILE naming the CA bundle (CAPEM). A tunnel that cannot be
// opened (a name the fake does not serve, or a DNS or transport fault on
// the dial) is refused with 502 whose status text is the dial's error, as
// the client's own dial would have reported it ("dial tcp: lookup
// contoso-kv.vault.azure.net: no such host"): Go's client reports a refused
// CONNECT by its status text, so the name resolution the proxy does for the
// client fails in the words a client resolving it would see.
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
		hj, ok := w.(http.Hijacker)
		if !ok {
			http.Error(w, "connection cannot be hijacked", http.StatusInternalServerError)
			return
		}
		upstream, err := dial(r.Context(), "tcp", r.Host)
		if err != nil {
			refuse(hj, err)
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

// refuse answers a CONNECT whose tunnel could not be opened: 502 with the
// dial's error as status text and body. http.ResponseWriter cannot set a
// status text, so the answer is written on the hijacked connection.
func refuse(hj http.Hijacker, dialErr error) {
	conn, _, err := hj.Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	text := statusText(dialErr.Error())
	_ = conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, _ = fmt.Fprintf(conn, "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s\n",
		http.StatusBadGateway, text, len(text)+1, text)
}

// statusText makes s a valid HTTP status text: printable ASCII on one line,
// at most 512 bytes.
func statusText(s string) string {
	b := make([]byte, 0, min(len(s), 512))
	for i := 0; i < len(s) && len(b) < 512; i++ {
		c := s[i]
		if c < ' ' || c > '~' {
			c = ' '
		}
		b = append(b, c)
	}
	return string(b)
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
