package dataplane

import (
	"context"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/meshplane/mesh/proxy/h2"
	"github.com/meshplane/mesh/proxy/sockio"
)

// appH2 sends HTTP/2 with prior knowledge (h2c) to the application, with the
// proxy's own HTTP/2 client (proxy/h2): one pool per target address (the pod's
// ports: few). The own client writes a request whose body is already here with its
// HEADERS in one write, and its response bodies tell the copy whether more is
// already here (Ready), so a gRPC call costs the inbound hop two writes, not five
// as with net/http's transport.
type appH2 struct {
	connect  time.Duration
	timeouts h2.Timeouts

	mu    sync.Mutex
	pools map[string]*h2.Pool
}

func newAppH2(connect time.Duration, t h2.Timeouts) *appH2 {
	if connect == 0 {
		connect = time.Second
	}
	return &appH2{connect: connect, timeouts: t, pools: map[string]*h2.Pool{}}
}

// RoundTrip sends req to req.URL.Host.
func (a *appH2) RoundTrip(req *http.Request) (*http.Response, error) {
	return a.pool(req.URL.Host).RoundTrip(req)
}

func (a *appH2) pool(addr string) *h2.Pool {
	a.mu.Lock()
	defer a.mu.Unlock()
	p := a.pools[addr]
	if p == nil {
		d := &net.Dialer{Timeout: a.connect, KeepAlive: 10 * time.Second}
		p = &h2.Pool{Timeouts: a.timeouts, Dial: func(ctx context.Context) (net.Conn, error) {
			return sockio.Dial(ctx, d, addr)
		}}
		a.pools[addr] = p
	}
	return p
}

// CloseIdleConnections closes every pool's idle connections.
func (a *appH2) CloseIdleConnections() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, p := range a.pools {
		p.CloseIdleConnections()
	}
}
