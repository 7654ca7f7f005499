package dataplane

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

var fastH2 = H2Timeouts{Write: 300 * time.Millisecond, KeepAliveInterval: 100 * time.Millisecond, KeepAliveTimeout: 100 * time.Millisecond}

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
	pool := &h2Pool{timeouts: fastH2, dial: func(ctx context.Context) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "tcp", l.Addr().String())
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://silent.test/", nil)
	_, err = pool.RoundTrip(req)
	if !errors.Is(err, errH2PeerGone) {
		t.Fatalf("round trip to a silent peer: %v, want %v", err, errH2PeerGone)
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
	addr := h2App(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }))
	pool := &h2Pool{timeouts: fastH2, dial: func(ctx context.Context) (net.Conn, error) {
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

// A client that stops reading while the proxy sends it a response is cut off
// after the write timeout: the proxy's write does not wait forever, the upstream
// stream is cancelled, and the connection ends.
func TestH2ServerWriteTimeoutClosesStuckPeer(t *testing.T) {
	t.Parallel()
	appDone := make(chan struct{})
	appAddr := h2App(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		defer close(appDone)
		chunk := make([]byte, 64<<10)
		for range 4096 { // 256 MiB, far more than the socket buffers hold
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}))
	tp := runProxy(t, Options{InboundOrigDst: appAddr, HTTP2: fastH2}, time.Second)

	c := dialH2Raw(t, tp.in.Addr().String(), http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1<<31 - 1})
	c.write(func() error { return c.fr.WriteWindowUpdate(0, 1<<31-1-65535) })
	c.request(1, "GET", "/big", true)
	select { // not reading: the proxy's writes block, then time out
	case <-appDone:
	case <-time.After(10 * time.Second):
		t.Fatal("the upstream stream was never cancelled: the proxy still waits on its write")
	}
	n, err := io.Copy(io.Discard, c.nc)
	if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection still open after the write timeout (read %d bytes)", n)
	}
	if n >= 256<<20 {
		t.Errorf("read the whole response (%d bytes): the connection was never cut", n)
	}
}
