package dataplane

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/meshplane/mesh/proxy/h2"
	"github.com/meshplane/mesh/proxy/metrics"
	"github.com/meshplane/mesh/proxy/proxytest"
)

// plainProxy runs a proxy without identity or discovery, which is all plaintext
// inbound traffic needs: an h2 preface on the inbound listener goes to serveH2 with
// appAddr as the target. grace is Serve's drain period.
func plainProxy(t *testing.T, appAddr netip.AddrPort, grace time.Duration) *testProxy {
	t.Helper()
	return runProxy(t, Options{InboundOrigDst: appAddr,
		trustPlaintextPeers: true}, grace) // plaintext h2c stands in for a peer proxy
}

// runProxy runs New(o) on two loopback listeners until the test ends, with the
// tests' timeouts where o has none and a fresh metrics registry; grace is Serve's
// drain period.
func runProxy(t testing.TB, o Options, grace time.Duration) *testProxy {
	t.Helper()
	tp := &testProxy{reg: metrics.New()}
	var err error
	if tp.in, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	if tp.out, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	o.Metrics = tp.reg
	if o.DetectTimeout == 0 {
		o.DetectTimeout = 10 * time.Second
	}
	if o.InboundConnectTimeout == 0 {
		o.InboundConnectTimeout = time.Second
	}
	if o.OutboundConnectTimeout == 0 {
		o.OutboundConnectTimeout = time.Second
	}
	ctx, cancel := context.WithCancel(context.Background())
	tp.stop = cancel
	p := New(o)
	done := make(chan struct{})
	go func() { _ = p.Serve(ctx, tp.in, tp.out, grace); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return tp
}

// h2App serves h with HTTP/1.1 and h2c (prior knowledge).
func h2App(t *testing.T, h http.Handler) netip.AddrPort { return proxytest.H2CApp(t, h) }

// releaser is a channel closed once, by the test or at its cleanup (so that blocked
// handlers never hold up the proxy's drain).
func releaser(t *testing.T) (ch chan struct{}, release func()) {
	ch = make(chan struct{})
	var once sync.Once
	release = func() { once.Do(func() { close(ch) }) }
	t.Cleanup(release)
	return ch, release
}

// h2cConn is one HTTP/2 client connection (prior knowledge) over nc.
func h2cConn(t *testing.T, nc net.Conn) *http.ClientConn {
	t.Helper()
	var ps http.Protocols
	ps.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: &ps, DialContext: func(context.Context, string, string) (net.Conn, error) { return nc, nil }}
	cc, err := tr.NewClientConn(context.Background(), "http", nc.RemoteAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

func dialTCP(t *testing.T, addr string) net.Conn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	return nc
}

// h2Raw is a frame-level HTTP/2 client.
type h2Raw struct {
	t    *testing.T
	nc   net.Conn
	fr   *http2.Framer
	wmu  sync.Mutex // writes and henc
	henc *hpack.Encoder
	hbuf bytes.Buffer
}

// dialH2Raw connects, sends the preface and a SETTINGS frame with settings. Every
// read and write must be done within 10 s.
func dialH2Raw(t *testing.T, addr string, settings ...http2.Setting) *h2Raw {
	t.Helper()
	nc := dialTCP(t, addr)
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	c := &h2Raw{t: t, nc: nc, fr: http2.NewFramer(nc, nc)}
	c.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	c.fr.MaxHeaderListSize = 1 << 20
	c.henc = hpack.NewEncoder(&c.hbuf)
	if _, err := io.WriteString(nc, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	c.write(func() error { return c.fr.WriteSettings(settings...) })
	return c
}

// write runs fn under the write lock; errors fail the test (from any goroutine).
func (c *h2Raw) write(fn func() error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := fn(); err != nil {
		c.t.Errorf("write frame: %v", err)
	}
}

// headers sends a header block on stream id, in CONTINUATIONs past 16 KiB.
func (c *h2Raw) headers(id uint32, end bool, fields []hpack.HeaderField) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.hbuf.Reset()
	for _, f := range fields {
		_ = c.henc.WriteField(f)
	}
	block := c.hbuf.Bytes()
	first := block[:min(len(block), h2.DefaultFrameSize)]
	block = block[len(first):]
	err := c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: first, EndStream: end, EndHeaders: len(block) == 0})
	for err == nil && len(block) > 0 {
		n := min(len(block), h2.DefaultFrameSize)
		err = c.fr.WriteContinuation(id, n == len(block), block[:n])
		block = block[n:]
	}
	return err
}

// request opens stream id; extra are more header fields, as name, value pairs.
func (c *h2Raw) request(id uint32, method, path string, end bool, extra ...string) {
	fields := []hpack.HeaderField{{Name: ":method", Value: method}, {Name: ":scheme", Value: "http"},
		{Name: ":authority", Value: "web.test"}, {Name: ":path", Value: path}}
	for i := 0; i+1 < len(extra); i += 2 {
		fields = append(fields, hpack.HeaderField{Name: extra[i], Value: extra[i+1]})
	}
	if err := c.headers(id, end, fields); err != nil {
		c.t.Errorf("write headers: %v", err)
	}
}

func (c *h2Raw) read() http2.Frame {
	c.t.Helper()
	f, err := c.fr.ReadFrame()
	if err != nil {
		c.t.Fatalf("read frame: %v", err)
	}
	return f
}

// h2Resp is a response as the raw client saw it.
type h2Resp struct {
	status       string
	header       http.Header
	trailer      http.Header
	body         []byte
	endOnHeaders bool // END_STREAM on the response's HEADERS
}

func fieldsHeader(fs []hpack.HeaderField) http.Header {
	h := http.Header{}
	for _, f := range fs {
		h.Add(f.Name, f.Value)
	}
	return h
}

// response reads the response on stream id to its end, returning window for its
// DATA; onData, if set, sees each DATA frame's payload. Frames of other streams are
// ignored; an RST_STREAM or GOAWAY fails the test.
func (c *h2Raw) response(id uint32, onData func([]byte)) *h2Resp {
	c.t.Helper()
	var r h2Resp
	for {
		switch f := c.read().(type) {
		case *http2.MetaHeadersFrame:
			if f.StreamID != id {
				continue
			}
			if r.header == nil {
				r.status, r.header = f.PseudoValue("status"), fieldsHeader(f.RegularFields())
				r.endOnHeaders = f.StreamEnded()
			} else {
				r.trailer = fieldsHeader(f.RegularFields())
			}
			if f.StreamEnded() {
				return &r
			}
		case *http2.DataFrame:
			if f.StreamID != id {
				continue
			}
			r.body = append(r.body, f.Data()...)
			if onData != nil {
				onData(f.Data())
			}
			if f.StreamEnded() {
				return &r
			}
			if n := f.Length; n > 0 {
				c.write(func() error {
					if err := c.fr.WriteWindowUpdate(0, n); err != nil {
						return err
					}
					return c.fr.WriteWindowUpdate(id, n)
				})
			}
		case *http2.RSTStreamFrame:
			if f.StreamID == id {
				c.t.Fatalf("stream %d reset: %v", id, f.ErrCode)
			}
		case *http2.GoAwayFrame:
			c.t.Fatalf("GOAWAY %v while waiting for stream %d", f.ErrCode, id)
		}
	}
}

// TestH2FlowControl sends a large request body and reads a large response through a
// client advertising a 1000-byte stream window and no extra connection window,
// returning window only once the server has used all of it: the server never
// overruns either window, the bodies arrive intact, and the server returns request
// window as the application reads (4 MiB is well past its 1 MiB windows).
