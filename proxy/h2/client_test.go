package h2

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/meshplane/mesh/proxy/proxytest"
)

var fastH2 = Timeouts{Write: 300 * time.Millisecond, KeepAliveInterval: 100 * time.Millisecond, KeepAliveTimeout: 100 * time.Millisecond}

func h2cApp(t *testing.T, h http.Handler) netip.AddrPort { return proxytest.H2CApp(t, h) }

func waitFor(t *testing.T, f func() bool) { proxytest.WaitFor(t, f) }

// A pooled client connection to a peer that went silent (no FIN, no RST, no
// answers) is found by its keep-alive PING and closed: the request fails instead
// of hanging, and the pool does not reuse the connection.
func TestH2ClientKeepaliveClosesSilentPeer(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { _ = c.Close() }) // accepted and never read or answered
		}
	}()
	pool := &Pool{Timeouts: fastH2, Dial: func(ctx context.Context) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "tcp", l.Addr().String())
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://silent.test/", nil)
	_, err = pool.RoundTrip(req)
	if !errors.Is(err, ErrPeerGone) {
		t.Fatalf("round trip to a silent peer: %v, want %v", err, ErrPeerGone)
	}
	pool.mu.Lock()
	n := len(pool.conns)
	pool.mu.Unlock()
	if n != 0 {
		t.Errorf("the dead connection is still pooled (%d)", n)
	}
}

// A live peer answers the keep-alive PINGs: an idle pooled connection survives
// many intervals and serves the next request.
func TestH2ClientKeepaliveKeepsLivePeer(t *testing.T) {
	t.Parallel()
	addr := h2cApp(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }))
	pool := &Pool{Timeouts: fastH2, Dial: func(ctx context.Context) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "tcp", addr.String())
	}}
	get := func() {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://"+addr.String()+"/", nil)
		resp, err := pool.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
	}
	get()
	pool.mu.Lock()
	cc := pool.conns[0]
	pool.mu.Unlock()
	start := cc.ka.reads.Load()
	waitFor(t, func() bool { return cc.ka.reads.Load() >= start+5 }) // five PING acks
	get()
	pool.mu.Lock()
	same := len(pool.conns) == 1 && pool.conns[0] == cc
	pool.mu.Unlock()
	if !same {
		t.Error("the idle connection was replaced although its peer answered every PING")
	}
}
