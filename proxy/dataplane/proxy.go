// Package dataplane is the proxy's data path: it accepts connections redirected by
// iptables, detects their protocol, and forwards them — inbound to the application on
// localhost after terminating mTLS, outbound to endpoints from discovery, balanced per
// request, over mTLS when the peer is meshed — counting everything in metrics.
package dataplane

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/meshplane/mesh/proxy/discovery"
	"github.com/meshplane/mesh/proxy/h1"
	"github.com/meshplane/mesh/proxy/h2"
	"github.com/meshplane/mesh/proxy/metrics"
	"github.com/meshplane/mesh/proxy/sockio"
	"github.com/meshplane/mesh/proxy/tap"
)

// ALPN protocols between proxies. alpnOpaque carries opaque TCP: after the handshake
// the client sends the target port (2 bytes, big endian).
const (
	alpnOpaque = "mesh.opaque/1"
	alpnH2     = "h2"
	alpnHTTP1  = "http/1.1"
)

// Identity is the proxy's certificate holder (controlplane/api/identityclient).
type Identity interface {
	LocalName() string
	Ready() bool
	ServerConfig(alpn []string) *tls.Config
	ClientConfig(serverName string, alpn []string) *tls.Config
}

// Discovery resolves authorities (proxy/discovery).
type Discovery interface {
	Resolve(authority string) (*discovery.Set, func())
	Profile(authority string) *discovery.Profile
}

// Options configure a Proxy.
type Options struct {
	Identity  Identity
	Discovery Discovery
	Metrics   *metrics.Registry
	// Tap receives the requests while someone taps the proxy; nil: never.
	Tap *tap.Hub
	// OrigDst recovers a redirected connection's original destination (SO_ORIGINAL_DST).
	OrigDst func(*net.TCPConn) (netip.AddrPort, error)
	// InboundOrigDst and OutboundOrigDst stand in when a connection was not redirected.
	InboundOrigDst, OutboundOrigDst netip.AddrPort
	OpaquePorts                     map[uint16]bool
	// HTTP2Ports carry HTTP/2 with prior knowledge: a connection to one that is not
	// TLS is served as HTTP/2 whatever its first bytes (RFC 9113 §3.3), so a wrong
	// preface is a connection error (§3.4) instead of opaque TCP.
	HTTP2Ports map[uint16]bool
	// ProfileNetworks: where a request whose Host is not a service name gets the
	// ServiceProfile of its original destination (cluster IPs); none if empty.
	ProfileNetworks        []netip.Prefix
	DetectTimeout          time.Duration
	InboundConnectTimeout  time.Duration
	OutboundConnectTimeout time.Duration
	// DiscoveryTimeout bounds the wait for a first discovery answer before the proxy
	// falls back to the original destination.
	DiscoveryTimeout time.Duration
	// HeaderTimeout bounds the wait for a request's headers (slowloris); 10 s if zero.
	HeaderTimeout time.Duration
	// HTTP2 are the HTTP/2 connections' write deadline and keep-alive; the
	// defaults (h2.Timeouts.WithDefaults) where zero.
	HTTP2 h2.Timeouts
	Log   *slog.Logger
	Now   func() time.Time

	// trustPlaintextPeers (tests only) trusts inbound HTTP/2 clients without mTLS
	// with the proxies' internal headers, as if they were authenticated peers.
	trustPlaintextPeers bool
}

// Proxy serves the inbound and outbound listeners.
type Proxy struct {
	o Options

	inPort uint16

	appH1   *http.Transport // inbound: to the application on localhost
	appH2   *appH2          // inbound: HTTP/2 (h2c) to the application
	appFast *h1.Client      // inbound: bodiless HTTP/1 requests to the application
	plainH1 *http.Transport // outbound: to endpoints outside the mesh
	plainH2 *http.Transport

	h1In, h1Out h1.Server // the HTTP/1 servers, with serveInbound and serveOutbound
	h2In, h2Out h2.Server // the HTTP/2 servers, with serveInboundH2 and serveOutbound

	services *serviceCache

	// drainCtx is cancelled when Serve starts draining.
	drainCtx   context.Context
	startDrain context.CancelFunc

	bufs   sync.Pool   // 16 KiB copy buffers (TCP splice)
	hbufs  bufferPool  // 32 KiB body copy buffers (HTTP), up to 32 kept
	errLog *log.Logger // httputil.ReverseProxy's, discarded: errors are answered and logged

	wg    sync.WaitGroup // opaque TCP connections
	mu    sync.Mutex
	conns map[net.Conn]struct{} // TCP connections, closed after the grace period
}

// New builds a proxy; Serve runs it.
func New(o Options) *Proxy {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.DiscoveryTimeout == 0 {
		o.DiscoveryTimeout = 3 * time.Second
	}
	if o.HeaderTimeout == 0 {
		o.HeaderTimeout = 10 * time.Second
	}
	o.HTTP2 = o.HTTP2.WithDefaults()
	p := &Proxy{o: o, conns: map[net.Conn]struct{}{}, errLog: log.New(io.Discard, "", 0)}
	p.bufs.New = func() any { b := make([]byte, 16<<10); return &b }
	p.hbufs = newBufferPool(32<<10, 32)
	p.appH1 = plainTransport(o.InboundConnectTimeout, false)
	p.appH2 = newAppH2(o.InboundConnectTimeout, o.HTTP2)
	p.appFast = h1.NewClient(o.InboundConnectTimeout, o.Now)
	p.plainH1 = plainTransport(o.OutboundConnectTimeout, false)
	p.plainH2 = plainTransport(o.OutboundConnectTimeout, true)
	p.services = newServiceCache(p)
	p.drainCtx, p.startDrain = context.WithCancel(context.Background())
	p.h1In = h1.Server{Handler: http.HandlerFunc(p.serveInbound), HeaderTimeout: o.HeaderTimeout, Drain: p.drainCtx, Log: o.Log}
	p.h1Out = p.h1In
	p.h1Out.Handler = http.HandlerFunc(p.serveOutbound)
	p.h2In = h2.Server{Handler: h2.HandlerFunc(p.serveInboundH2), HeaderTimeout: o.HeaderTimeout, Timeouts: o.HTTP2,
		Drain: p.drainCtx, Log: o.Log}
	p.h2Out = h2.Server{Handler: h2.HTTPHandler(http.HandlerFunc(p.serveOutbound)), HeaderTimeout: o.HeaderTimeout,
		Timeouts: o.HTTP2, Drain: p.drainCtx, Log: o.Log}
	return p
}

// closeWait bounds the wait, after the grace period has closed every connection, for
// their goroutines to return.
const closeWait = 5 * time.Second

// Serve accepts on both listeners until ctx ends, then stops accepting and drains:
// in-flight requests and connections get until grace ends, then are closed. It
// returns when every goroutine it started has returned (after the close, within
// closeWait).
func (p *Proxy) Serve(ctx context.Context, inbound, outbound net.Listener, grace time.Duration) error {
	if ap, err := netip.ParseAddrPort(inbound.Addr().String()); err == nil {
		p.inPort = ap.Port()
	}

	connCtx, cancelConns := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelConns()
	var accept sync.WaitGroup
	for _, l := range []struct {
		lis    net.Listener
		handle func(context.Context, net.Conn)
	}{{inbound, p.handleInbound}, {outbound, p.handleOutbound}} {
		accept.Add(1)
		go func() {
			defer accept.Done()
			for {
				c, err := l.lis.Accept()
				if err != nil {
					if errors.Is(err, net.ErrClosed) {
						return
					}
					p.o.Log.Warn("accept", "err", err)
					time.Sleep(10 * time.Millisecond)
					continue
				}
				if tc, ok := c.(*net.TCPConn); ok {
					_ = tc.SetKeepAlive(true)
					_ = tc.SetNoDelay(true)
				}
				c = sockio.Wrap(c)
				p.wg.Add(1)
				untrack := p.track(c) // closed after the grace period, even while detecting
				go func() {
					defer p.wg.Done()
					defer untrack()
					l.handle(connCtx, c)
				}()
			}
		}()
	}
	<-ctx.Done()
	p.startDrain()
	_ = inbound.Close()
	_ = outbound.Close()
	accept.Wait()
	p.o.Log.Info("draining", "grace", grace)
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	// Connections end as their in-flight requests finish (startDrain told them).
	done := make(chan struct{})
	go func() { p.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-sctx.Done():
		cancelConns()
		p.closeAll()
		select {
		case <-done:
		case <-time.After(closeWait):
			p.o.Log.Warn("connections still running after the close", "wait", closeWait)
		}
	}
	p.services.close()
	p.appFast.CloseIdleConnections()
	p.appH2.CloseIdleConnections()
	return nil
}

func (p *Proxy) track(c net.Conn) func() {
	p.mu.Lock()
	p.conns[c] = struct{}{}
	p.mu.Unlock()
	return func() {
		p.mu.Lock()
		delete(p.conns, c)
		p.mu.Unlock()
	}
}

func (p *Proxy) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		_ = c.Close()
	}
}

// plainTransport sends HTTP/1.1, or HTTP/2 with prior knowledge, over plain TCP
// (sockio connections).
func plainTransport(connectTimeout time.Duration, h2 bool) *http.Transport {
	if connectTimeout == 0 {
		connectTimeout = time.Second
	}
	d := &net.Dialer{Timeout: connectTimeout, KeepAlive: 10 * time.Second}
	t := &http.Transport{
		// sockio, as on every other proxy socket: with net.TCPConn, each write to the
		// app entered the runtime's syscall hand-off (sysmon wake-ups, futexes),
		// which made the inbound hop of gRPC (HTTP/2 to the app) cost more than haproxy's.
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return sockio.Wrap(c), nil
		},
		MaxIdleConns:          1000,
		MaxIdleConnsPerHost:   100,
		IdleConnTimeout:       90 * time.Second,
		DisableCompression:    true,
		ResponseHeaderTimeout: 0,
	}
	var ps http.Protocols
	if h2 {
		ps.SetUnencryptedHTTP2(true)
	} else {
		ps.SetHTTP1(true)
	}
	t.Protocols = &ps
	return t
}

// bufferPool lends the HTTP paths their body copy buffers (httputil.ReverseProxy's
// BufferPool, copyResponse). It is a free list of at most cap(free) buffers, which
// the garbage collector leaves alone: a sync.Pool is emptied by collections, and
// refilling it cost a 32 KiB allocation every hundred requests or so, a tenth of
// the bytes the proxy allocates per request.
type bufferPool struct {
	free chan []byte
	size int
}

func newBufferPool(size, keep int) bufferPool {
	return bufferPool{free: make(chan []byte, keep), size: size}
}

func (b *bufferPool) Get() []byte {
	select {
	case p := <-b.free:
		return p
	default:
		return make([]byte, b.size)
	}
}

func (b *bufferPool) Put(p []byte) {
	if cap(p) < b.size {
		return
	}
	select {
	case b.free <- p[:b.size]:
	default: // enough kept
	}
}
