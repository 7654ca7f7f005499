package h2

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/meshplane/mesh/proxy/httpfield"
	"github.com/meshplane/mesh/proxy/reqctx"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// The HTTP/2 client between proxies (over mTLS). Like the inbound server it writes a
// request's frames in the caller's goroutine, and one goroutine per connection reads
// frames and hands each response to its caller: net/http's client also starts a
// goroutine per request. Only a request body gets a goroutine of its own.

var (
	// errH2Retry: the request was certainly not processed (the connection was
	// going away, or the peer refused the stream); it may go on another connection.
	errH2Retry  = errors.New("http2: request not processed, retry")
	errH2Closed = errors.New("http2: connection closed")
	// ErrPeerGone: the peer answered no PING (h2keepalive).
	ErrPeerGone  = errors.New("http2: peer unresponsive (keep-alive PING unanswered)")
	errH2Aborted = errors.New("http2: stream reset")
)

// h2ClientIdleTimeout closes a pooled connection idle this long (as h1.Client does).
const h2ClientIdleTimeout = 90 * time.Second

// Pool holds the connections to one endpoint.
type Pool struct {
	// Dial connects to the endpoint (a TLS connection that negotiated "h2", or h2c).
	Dial func(ctx context.Context) (net.Conn, error)
	// Timeouts are the connections' write deadline and keep-alive (WithDefaults).
	Timeouts Timeouts

	mu      sync.Mutex
	conns   []*h2cc
	dialing chan struct{} // closed when the dial in progress ends
}

func (p *Pool) RoundTrip(req *http.Request) (*http.Response, error) {
	for attempt := 0; ; attempt++ {
		cc, err := p.conn(req.Context())
		if err != nil {
			return nil, err
		}
		resp, err := cc.roundTrip(req)
		bodiless := req.Body == nil || req.Body == http.NoBody || req.ContentLength == 0
		if errors.Is(err, errH2Retry) && bodiless && attempt < 3 && req.Context().Err() == nil {
			continue
		}
		return resp, err
	}
}

// conn returns a connection with room for one more stream, which it reserves.
func (p *Pool) conn(ctx context.Context) (*h2cc, error) {
	for {
		p.mu.Lock()
		for _, cc := range p.conns {
			if cc.takeSlot() {
				p.mu.Unlock()
				return cc, nil
			}
		}
		if ch := p.dialing; ch != nil {
			p.mu.Unlock()
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		ch := make(chan struct{})
		p.dialing = ch
		p.mu.Unlock()
		cc, err := p.newConn(ctx)
		p.mu.Lock()
		p.dialing = nil
		close(ch)
		if err != nil {
			p.mu.Unlock()
			return nil, err
		}
		p.conns = append(p.conns, cc)
		p.mu.Unlock()
	}
}

func (p *Pool) remove(cc *h2cc) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, c := range p.conns {
		if c == cc {
			p.conns = append(p.conns[:i], p.conns[i+1:]...)
			return
		}
	}
}

// CloseIdleConnections stops using the pool's connections: idle ones close now,
// busy ones once their streams end.
func (p *Pool) CloseIdleConnections() {
	p.mu.Lock()
	conns := p.conns
	p.conns = nil
	p.mu.Unlock()
	for _, cc := range conns {
		cc.retire()
	}
}

// h2cc is one client connection.
type h2cc struct {
	h2wire
	pool *Pool

	// Guarded by mu:
	streams    map[uint32]*h2cs
	reserved   int // streams reserved or open
	nextID     uint32
	maxStreams int
	retired    bool // no new streams (GOAWAY, drained, or broken)
	idle       *time.Timer
}

// h2cs is one request's stream.
type h2cs struct {
	cc      *h2cc
	id      uint32
	req     *http.Request
	sendWin int64 // guarded by cc.mu
	done    chan struct{}
	resp    *http.Response
	err     error
	body    *h2rbody // nil, or rbody once the response has a body
	rbody   h2rbody
	// delivered: resp or err was handed to the caller (done closed); guarded by cc.mu.
	delivered bool
	reset     bool // guarded by cc.mu
	sent      bool // guarded by cc.mu: request fully sent
	recvd     bool // guarded by cc.mu: response fully received
	stop      reqctx.Registration
}

func (p *Pool) newConn(ctx context.Context) (*h2cc, error) {
	nc, err := p.Dial(ctx)
	if err != nil {
		return nil, err
	}
	if _, ok := nc.(*tls.Conn); !ok {
		// h2c: without a buffer, the framer reads each frame's header and payload
		// with a system call each (TLS buffers its records).
		nc = &readBuffered{Conn: nc, r: bufio.NewReaderSize(nc, 4<<10)}
	}
	cc := &h2cc{pool: p, streams: map[uint32]*h2cs{}, nextID: 1, maxStreams: 100}
	cc.init(nc, p.Timeouts.WithDefaults())
	err = cc.write(func() error {
		if _, err := cc.bw.WriteString(http2.ClientPreface); err != nil {
			return err
		}
		if err := cc.fw.WriteSettings(
			http2.Setting{ID: http2.SettingEnablePush, Val: 0},
			http2.Setting{ID: http2.SettingInitialWindowSize, Val: StreamWindow},
			http2.Setting{ID: http2.SettingMaxHeaderListSize, Val: httpfield.MaxHeaderBytes},
		); err != nil {
			return err
		}
		return cc.fw.WriteWindowUpdate(0, ConnWindow-DefaultWindow)
	}, true)
	if err != nil {
		_ = nc.Close()
		return nil, err
	}
	cc.idle = time.AfterFunc(h2ClientIdleTimeout, cc.idleTimeout)
	cc.startKeepalive(func() { cc.close(ErrPeerGone) })
	go cc.readLoop()
	return cc, nil
}

func (cc *h2cc) takeSlot() bool {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.retired || cc.closed || cc.reserved >= cc.maxStreams {
		return false
	}
	cc.reserved++
	if cc.reserved == 1 {
		cc.idle.Stop()
	}
	return true
}

// roundTrip sends req on a stream reserved by the pool.
func (cc *h2cc) roundTrip(req *http.Request) (*http.Response, error) {
	hasBody := req.Body != nil && req.Body != http.NoBody && req.ContentLength != 0
	cs := &h2cs{cc: cc, req: req, done: make(chan struct{}), sent: !hasBody}
	// A body whose first bytes (or whole) are already here (a gRPC request through
	// the proxy) leaves with the HEADERS in one write, and a body sent whole needs
	// no goroutine.
	var first bodyChunk
	if r, ok := req.Body.(interface{ Ready() bool }); hasBody && ok && r.Ready() {
		first.buf = make([]byte, 16<<10)
		n, err := req.Body.Read(first.buf)
		first.p, first.err, first.read = first.buf[:n], err, true
	}
	var werr error
	cc.wmu.Lock()
	cc.mu.Lock()
	if cc.retired || cc.closed {
		cc.reserved--
		cc.mu.Unlock()
		cc.wmu.Unlock()
		return nil, errH2Retry
	}
	cs.id = cc.nextID
	cc.nextID += 2
	cs.sendWin = cc.peerInitWin
	cc.streams[cs.id] = cs
	cs.stop = reqctx.AfterDone(req.Context(), cs)
	frame := cc.peerFrame
	cc.mu.Unlock()
	if werr = cc.encodeRequest(req, hasBody); werr == nil {
		werr = writeHeaderBlock(cc.fw, cs.id, cc.hbuf.Bytes(), frame, !hasBody)
	}
	sentAll := false
	if werr == nil && first.read {
		sentAll, werr = cs.writeFirst(&first)
	}
	if werr == nil {
		werr = cc.bw.Flush()
	}
	cc.wmu.Unlock()
	if werr != nil {
		_ = cc.nc.Close()
		werr = fmt.Errorf("%w: %w", errH2Retry, werr)
		cc.endStream(cs, werr)
		if hasBody {
			_ = req.Body.Close()
		}
		return nil, werr
	}
	switch {
	case sentAll:
		_ = req.Body.Close()
		cs.bodySent()
	case hasBody:
		go cs.writeBody(first)
	}
	<-cs.done
	if cs.err != nil {
		if req.Context().Err() != nil {
			return nil, req.Context().Err()
		}
		return nil, cs.err
	}
	return cs.resp, nil
}

func (cc *h2cc) encodeRequest(req *http.Request, hasBody bool) error {
	cc.hbuf.Reset()
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	path := req.URL.RequestURI()
	enc := cc.henc
	_ = enc.WriteField(hpack.HeaderField{Name: ":method", Value: req.Method})
	_ = enc.WriteField(hpack.HeaderField{Name: ":scheme", Value: "https"})
	_ = enc.WriteField(hpack.HeaderField{Name: ":authority", Value: host})
	_ = enc.WriteField(hpack.HeaderField{Name: ":path", Value: path})
	for k, vs := range req.Header {
		if k == "Host" || k == "Content-Length" {
			continue
		}
		lk, ok := httpfield.LowerH2(k)
		if !ok {
			continue
		}
		for _, v := range vs {
			if lk == "te" && v != "trailers" || lk == "user-agent" && v == "" {
				continue
			}
			_ = enc.WriteField(hpack.HeaderField{Name: lk, Value: v})
		}
	}
	if hasBody && req.ContentLength > 0 {
		_ = enc.WriteField(hpack.HeaderField{Name: "content-length", Value: strconv.FormatInt(req.ContentLength, 10)})
	}
	if len(req.Trailer) > 0 {
		keys := make([]string, 0, len(req.Trailer))
		for k := range req.Trailer {
			keys = append(keys, k)
		}
		_ = enc.WriteField(hpack.HeaderField{Name: "trailer", Value: strings.Join(keys, ",")})
	}
	return nil
}

// writeHeaderBlock writes a HEADERS frame, and CONTINUATIONs for what does not fit.
func writeHeaderBlock(fw *http2.Framer, id uint32, block []byte, frame int, end bool) error {
	first := block[:min(len(block), frame)]
	block = block[len(first):]
	if err := fw.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: first, EndStream: end, EndHeaders: len(block) == 0}); err != nil {
		return err
	}
	for len(block) > 0 {
		n := min(len(block), frame)
		if err := fw.WriteContinuation(id, n == len(block), block[:n]); err != nil {
			return err
		}
		block = block[n:]
	}
	return nil
}

// writeBody sends the request body, then END_STREAM or the trailers.
// bodyChunk is what roundTrip read of a request body before the HEADERS went out.
type bodyChunk struct {
	buf  []byte // the read buffer, for writeBody to go on with
	p    []byte // bytes read and not yet sent
	err  error  // the read's error (io.EOF: p ends the body)
	read bool   // a read was made
}

// writeFirst writes, after the HEADERS and under the write lock, the DATA of first
// that the windows allow without waiting; true when that ended the request (no
// trailers follow). What is left stays in first for writeBody.
func (cs *h2cs) writeFirst(first *bodyChunk) (bool, error) {
	cc := cs.cc
	eof := errors.Is(first.err, io.EOF)
	if first.err != nil && !eof {
		return false, nil // writeBody cancels the stream
	}
	end := eof && len(cs.req.Trailer) == 0
	if len(first.p) == 0 {
		if !end {
			return false, nil
		}
		return true, cc.fw.WriteData(cs.id, true, nil)
	}
	for len(first.p) > 0 {
		m := cc.tryReserve(&cs.sendWin, &cs.reset, len(first.p))
		if m == 0 {
			return false, nil
		}
		last := m == len(first.p)
		if err := cc.fw.WriteData(cs.id, end && last, first.p[:m]); err != nil {
			return false, err
		}
		first.p = first.p[m:]
	}
	return end, nil
}

func (cs *h2cs) writeBody(first bodyChunk) {
	cc := cs.cc
	body := cs.req.Body
	defer func() { _ = body.Close() }()
	buf := first.buf
	if buf == nil {
		buf = make([]byte, 16<<10)
	}
	trailers := len(cs.req.Trailer) > 0
	for {
		var n int
		var rerr error
		var p []byte
		if first.read {
			p, rerr, first.read = first.p, first.err, false
		} else {
			n, rerr = body.Read(buf)
			p = buf[:n]
		}
		eof := errors.Is(rerr, io.EOF)
		for len(p) > 0 {
			m, err := cs.reserveSend(len(p))
			if err != nil {
				return
			}
			chunk := p[:m]
			// The body's last bytes carry END_STREAM when no trailers follow.
			end := eof && m == len(p) && !trailers
			if err := cc.write(func() error { return cc.fw.WriteData(cs.id, end, chunk) }, true); err != nil {
				return
			}
			p = p[m:]
			if end {
				cs.bodySent()
				return
			}
		}
		if eof {
			break
		}
		if rerr != nil {
			cs.cancel(fmt.Errorf("reading the request body: %w", rerr))
			return
		}
	}
	var err error
	if t := cs.req.Trailer; len(t) > 0 {
		err = cc.write(func() error {
			cc.hbuf.Reset()
			for k, vs := range t {
				lk, _ := httpfield.LowerH2(k)
				for _, v := range vs {
					_ = cc.henc.WriteField(hpack.HeaderField{Name: lk, Value: v})
				}
			}
			cc.mu.Lock()
			frame := cc.peerFrame
			cc.mu.Unlock()
			return writeHeaderBlock(cc.fw, cs.id, cc.hbuf.Bytes(), frame, true)
		}, true)
	} else {
		err = cc.write(func() error { return cc.fw.WriteData(cs.id, true, nil) }, true)
	}
	if err == nil {
		cs.bodySent()
	}
}

// bodySent: the request is fully sent; the stream is done once the response is too.
func (cs *h2cs) bodySent() {
	cc := cs.cc
	cc.mu.Lock()
	cs.sent = true
	finished := cs.recvd
	cc.mu.Unlock()
	if finished {
		cc.endStream(cs, nil)
	}
}

func (cs *h2cs) reserveSend(n int) (int, error) { return cs.cc.reserve(&cs.sendWin, &cs.reset, n) }

// CtxDone: the request's context is done.
func (cs *h2cs) CtxDone() { cs.cancel(cs.req.Context().Err()) }

// cancel resets the stream from our side.
func (cs *h2cs) cancel(err error) {
	cc := cs.cc
	cc.mu.Lock()
	_, open := cc.streams[cs.id]
	cc.mu.Unlock()
	if !open {
		return
	}
	cc.queue(h2ctrl{typ: http2.FrameRSTStream, id: cs.id, code: http2.ErrCodeCancel})
	cc.endStream(cs, err)
}

// endStream forgets the stream; err (if any) fails its waiter and its body.
func (cc *h2cc) endStream(cs *h2cs, err error) {
	cc.mu.Lock()
	if _, ok := cc.streams[cs.id]; !ok {
		cc.mu.Unlock()
		return
	}
	delete(cc.streams, cs.id)
	cs.reset = true // a request body still being sent stops
	cc.reserved--
	idle := cc.reserved == 0
	closeNow := idle && cc.retired
	if idle && !cc.closed {
		cc.idle.Reset(h2ClientIdleTimeout)
	}
	stop := cs.stop
	cs.stop = reqctx.Registration{}
	deliver := err != nil && !cs.delivered
	if deliver {
		cs.delivered, cs.err = true, err
	}
	cc.cond.Broadcast()
	cc.mu.Unlock()
	switch {
	case deliver:
		close(cs.done)
	case err != nil && cs.body != nil:
		cs.body.fail(err)
	}
	stop.Stop()
	if closeNow {
		cc.close(errH2Closed)
	}
}

func (cc *h2cc) retire() {
	cc.mu.Lock()
	cc.retired = true
	idle := cc.reserved == 0
	cc.mu.Unlock()
	if idle {
		cc.close(errH2Closed)
	}
}

func (cc *h2cc) idleTimeout() {
	cc.pool.remove(cc)
	cc.retire()
}

func (cc *h2cc) close(err error) {
	cc.mu.Lock()
	if cc.closed {
		cc.mu.Unlock()
		_ = cc.nc.Close()
		return
	}
	cc.closed, cc.retired = true, true // before the socket closes: the read loop's own close then finds it so, and err stays the cause
	defer cc.shutdown()
	cc.idle.Stop()
	streams := make([]*h2cs, 0, len(cc.streams))
	for _, cs := range cc.streams {
		streams = append(streams, cs)
	}
	cc.cond.Broadcast()
	cc.mu.Unlock()
	_ = cc.nc.Close()
	cc.pool.remove(cc)
	for _, cs := range streams {
		cc.endStream(cs, err)
	}
}

// readBuffered is a connection read through a buffer (an h2c connection's).
type readBuffered struct {
	net.Conn
	r *bufio.Reader
}

func (c *readBuffered) Read(p []byte) (int, error) { return c.r.Read(p) }
