package dataplane

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/meshplane/mesh/proxy/httpfield"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// The inbound HTTP/2 server. Peer proxies send every request over HTTP/2, so this is
// the proxy's hottest path; net/http's server spends most of its time handing each
// frame between goroutines (a read loop, a serve loop, a goroutine per stream and one
// per flush). This one reads frames in the connection's goroutine and runs each
// stream in a pooled worker, which writes its own frames straight to the connection
// under a lock: a small response is one HEADERS and one DATA frame in one write.
//
// It implements what a proxy needs of RFC 9113: streams up to h2MaxStreams, flow
// control in both directions, SETTINGS, PING, RST_STREAM, GOAWAY (graceful drain),
// trailers, and header size limits; no server push, priorities or CONNECT.

const (
	h2MaxStreams   = 250
	h2StreamWindow = 1 << 20 // receive window per stream, as advertised
	h2ConnWindow   = 1 << 20 // receive window per connection
	h2DefaultWin   = 65535   // the protocol's initial window
	h2DefaultFrame = 16384
	h2IdleTimeout  = 10 * time.Minute
	h2WriteBuf     = 32 << 10
)

var errStreamReset = errors.New("stream reset by peer")

// h2conn is one HTTP/2 server connection.
type h2conn struct {
	h2wire
	p       *Proxy
	m       *meta
	inbound bool
	ctx     context.Context // the connection's; streams derive from it

	// Guarded by mu:
	streams   map[uint32]*h2stream
	lastID    uint32 // highest stream the peer opened
	closedIDs h2ClosedRing
	goingAway bool
	idle      *time.Timer
}

// h2stream is one request.
type h2stream struct {
	c       *h2conn
	id      uint32
	ctx     context.Context
	cancel  context.CancelFunc
	body    *h2body // nil when the request had no body
	sendWin int64   // guarded by c.mu
	reset   bool    // guarded by c.mu: either side reset it, or the connection ended
	ended   bool    // the response's END_STREAM was written (handler goroutine only)

	// Guarded by c.mu: the halves of the stream's state (RFC 9113 §5.1), and who
	// reset it.
	remoteEnded bool // END_STREAM received
	localEnded  bool // END_STREAM sent (set before the frame is written)
	peerReset   bool // RST_STREAM received
}

// stateLocked is stream id's state and, unless idle or gone, the stream; c.mu held.
func (c *h2conn) stateLocked(id uint32) (h2StreamState, *h2stream) {
	s := c.streams[id]
	switch {
	case s == nil && id > c.lastID:
		return h2Idle, nil
	case s == nil || s.peerReset || s.reset || s.remoteEnded && s.localEnded:
		return h2Closed, s
	case s.remoteEnded:
		return h2HalfClosedRemote, s
	case s.localEnded:
		return h2HalfClosedLocal, s
	}
	return h2Open, s
}

// causeLocked is how closed stream id ended; c.mu held.
func (c *h2conn) causeLocked(id uint32, s *h2stream) h2CloseCause {
	switch {
	case s == nil:
		return c.closedIDs.cause(id)
	case s.peerReset:
		return h2ClosePeerReset
	case s.reset:
		return h2CloseLocalReset
	}
	return h2CloseEnded
}

// state is stream id's state, how it closed (if closed) and the stream (if open).
func (c *h2conn) state(id uint32) (h2StreamState, h2CloseCause, *h2stream) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st, s := c.stateLocked(id)
	var cause h2CloseCause
	if st == h2Closed {
		cause = c.causeLocked(id, s)
	}
	return st, cause, s
}

// serveH2 serves an HTTP/2 connection until it ends; c has not yet sent its preface.
// inbound picks the handler: serveInboundH2, else serveOutbound.
func (p *Proxy) serveH2(ctx context.Context, nc net.Conn, m *meta, inbound bool) {
	defer p.track(nc)()
	cctx, cancel := context.WithCancel(context.WithValue(ctx, metaKey{}, m))
	defer cancel()
	c := &h2conn{p: p, m: m, inbound: inbound, ctx: cctx, streams: map[uint32]*h2stream{}}
	c.init(nc, p.o.HTTP2)
	c.idle = time.AfterFunc(h2IdleTimeout, c.idleTimeout)
	stopDrain := context.AfterFunc(p.drainCtx, c.goAway)
	defer stopDrain()
	defer c.close()
	if err := c.serve(); !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
		p.o.Log.Debug("inbound HTTP/2 connection", "err", err)
	}
}

func (c *h2conn) serve() error {
	_ = c.nc.SetReadDeadline(time.Now().Add(c.p.o.HeaderTimeout))
	var preface [len(http2.ClientPreface)]byte
	if _, err := io.ReadFull(c.nc, preface[:]); err != nil {
		return err
	}
	if string(preface[:]) != http2.ClientPreface {
		return errors.New("bad HTTP/2 client preface")
	}
	_ = c.nc.SetReadDeadline(time.Time{})
	if err := c.write(func() error {
		if err := c.fw.WriteSettings(
			http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: h2MaxStreams},
			http2.Setting{ID: http2.SettingInitialWindowSize, Val: h2StreamWindow},
			http2.Setting{ID: http2.SettingMaxHeaderListSize, Val: httpfield.MaxHeaderBytes},
		); err != nil {
			return err
		}
		return c.fw.WriteWindowUpdate(0, h2ConnWindow-h2DefaultWin)
	}, true); err != nil {
		return err
	}
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			var se http2.StreamError
			if errors.As(err, &se) {
				c.streamError(se.StreamID, se.Code)
				continue
			}
			var ce http2.ConnectionError
			switch {
			case errors.As(err, &ce):
				c.fail(http2.ErrCode(ce))
			case errors.Is(err, http2.ErrFrameTooLarge):
				c.fail(http2.ErrCodeFrameSize) // RFC 9113 §4.2
			}
			return err
		}
		if err := c.frame(f); err != nil {
			var ce http2.ConnectionError
			if errors.As(err, &ce) {
				c.fail(http2.ErrCode(ce))
			}
			return err
		}
	}
}

func (c *h2conn) frame(f http2.Frame) error {
	switch f := f.(type) {
	case *http2.MetaHeadersFrame:
		return c.headers(f)
	case *http2.DataFrame:
		return c.data(f)
	case *http2.SettingsFrame:
		if f.IsAck() {
			return nil
		}
		if err := c.settings(f); err != nil {
			return err
		}
		c.queue(h2ctrl{typ: http2.FrameSettings, ack: true})
		return nil
	case *http2.WindowUpdateFrame:
		return c.windowUpdate(f)
	case *http2.PingFrame:
		if f.IsAck() {
			return nil
		}
		c.queue(h2ctrl{typ: http2.FramePing, ack: true, data: f.Data})
		return nil
	case *http2.RSTStreamFrame:
		return c.rstStream(f)
	case *http2.PriorityFrame:
		// Priorities are not acted on (RFC 9113 §5.3.2 deprecates them), but a stream
		// cannot depend on itself (RFC 7540 §5.3.1).
		if f.StreamDep == f.StreamID {
			c.streamError(f.StreamID, http2.ErrCodeProtocol)
		}
		return nil
	case *http2.GoAwayFrame:
		return nil
	case *http2.PushPromiseFrame:
		return http2.ConnectionError(http2.ErrCodeProtocol)
	default: // unknown frame types are ignored
		return nil
	}
}

func (c *h2conn) settings(f *http2.SettingsFrame) error {
	return f.ForeachSetting(func(s http2.Setting) error {
		if err := s.Valid(); err != nil {
			return err
		}
		switch s.ID {
		case http2.SettingInitialWindowSize:
			c.mu.Lock()
			delta := int64(s.Val) - c.peerInitWin
			c.peerInitWin = int64(s.Val)
			for _, st := range c.streams {
				st.sendWin += delta
			}
			c.cond.Broadcast()
			c.mu.Unlock()
		case http2.SettingMaxFrameSize:
			c.mu.Lock()
			c.peerFrame = int(s.Val)
			c.mu.Unlock()
		case http2.SettingHeaderTableSize:
			c.wmu.Lock()
			c.henc.SetMaxDynamicTableSize(min(s.Val, 4096))
			c.wmu.Unlock()
		}
		return nil
	})
}

func (c *h2conn) windowUpdate(f *http2.WindowUpdateFrame) error {
	inc := int64(f.Increment)
	c.mu.Lock()
	if f.StreamID == 0 {
		defer c.mu.Unlock()
		if c.sendWin+inc > 1<<31-1 { // RFC 9113 §6.9.1
			return http2.ConnectionError(http2.ErrCodeFlowControl)
		}
		c.sendWin += inc
		c.cond.Broadcast()
		return nil
	}
	st, s := c.stateLocked(f.StreamID)
	overflow := s != nil && s.sendWin+inc > 1<<31-1
	if s != nil && !overflow {
		s.sendWin += inc
		c.cond.Broadcast()
	}
	c.mu.Unlock()
	switch {
	case st == h2Idle: // RFC 9113 §5.1, idle
		return http2.ConnectionError(http2.ErrCodeProtocol)
	case overflow && st != h2Closed: // RFC 9113 §6.9.1
		c.streamError(f.StreamID, http2.ErrCodeFlowControl)
	}
	return nil // on a closed stream it may still arrive (RFC 9113 §5.1, closed)
}

// rstStream handles the peer's RST_STREAM (RFC 9113 §6.4).
func (c *h2conn) rstStream(f *http2.RSTStreamFrame) error {
	c.mu.Lock()
	st, s := c.stateLocked(f.StreamID)
	if s != nil {
		s.peerReset = true
	}
	c.mu.Unlock()
	if st == h2Idle {
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	if s != nil {
		s.abort(errStreamReset)
	}
	return nil
}

// streamError answers a stream error (RFC 9113 §5.4.2): RST_STREAM with code, and
// the stream's handler, if it still runs, is stopped.
func (c *h2conn) streamError(id uint32, code http2.ErrCode) {
	c.mu.Lock()
	s := c.streams[id]
	if s == nil && id > c.lastID {
		c.lastID = id // the frame opened the stream, which ends here
		c.closedIDs.add(id, h2CloseLocalReset)
	}
	if s != nil {
		s.reset = true
	}
	c.mu.Unlock()
	c.resetStream(id, code)
	if s != nil {
		s.abort(errStreamReset)
	}
}

func (c *h2conn) headers(f *http2.MetaHeadersFrame) error {
	id := f.StreamID
	if id%2 == 0 { // RFC 9113 §5.1.1: clients open odd streams
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	st, cause, s := c.state(id)
	switch st {
	case h2Idle:
		return c.open(f)
	case h2Open, h2HalfClosedLocal: // trailers
		if err := httpfield.CheckH2Trailers(f); err != nil {
			c.streamError(id, http2.ErrCodeProtocol)
			return nil
		}
		c.mu.Lock()
		s.remoteEnded = true
		c.mu.Unlock()
		if !s.body.trailers(f.RegularFields()) {
			c.streamError(id, http2.ErrCodeProtocol) // short of content-length
		}
		return nil
	case h2HalfClosedRemote:
		c.streamError(id, http2.ErrCodeStreamClosed) // RFC 9113 §5.1
		return nil
	}
	switch cause { // closed, RFC 9113 §5.1
	case h2ClosePeerReset:
		c.streamError(id, http2.ErrCodeStreamClosed)
	case h2CloseLocalReset:
		// Sent before the peer saw our RST_STREAM: ignored (the framer has
		// decoded it, so HPACK stays in sync).
	case h2CloseEnded:
		return http2.ConnectionError(http2.ErrCodeStreamClosed)
	default: // below the highest stream opened: reused or skipped (RFC 9113 §5.1.1)
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	return nil
}

// open starts the stream HEADERS f opens.
func (c *h2conn) open(f *http2.MetaHeadersFrame) error {
	id := f.StreamID
	if f.HasPriority() && f.Priority.StreamDep == id { // RFC 7540 §5.3.1
		c.streamError(id, http2.ErrCodeProtocol)
		return nil
	}
	rq, err := httpfield.CheckH2Request(f)
	if err != nil && !f.Truncated {
		c.p.o.Log.Debug("HTTP/2 request refused", "err", err)
		c.streamError(id, http2.ErrCodeProtocol)
		return nil
	}
	c.mu.Lock()
	c.lastID = id
	if c.goingAway || len(c.streams) >= h2MaxStreams {
		c.closedIDs.add(id, h2CloseLocalReset)
		c.mu.Unlock()
		c.resetStream(id, http2.ErrCodeRefusedStream)
		return nil
	}
	s := &h2stream{c: c, id: id, sendWin: c.peerInitWin, remoteEnded: f.StreamEnded()}
	s.ctx, s.cancel = context.WithCancel(c.ctx)
	if !f.StreamEnded() {
		s.body = newH2Body(s)
		s.body.want = rq.ContentLength
	}
	c.streams[id] = s
	if len(c.streams) == 1 {
		c.idle.Stop()
	}
	c.mu.Unlock()

	req, status := c.request(f, rq, s)
	c.p.work.run(func() { c.runStream(s, req, status) })
	return nil
}

// request builds the stream's request from its checked fields, or the status to
// refuse it with.
func (c *h2conn) request(f *http2.MetaHeadersFrame, rq httpfield.H2Request, s *h2stream) (*http.Request, int) {
	if f.Truncated {
		return nil, http.StatusRequestHeaderFieldsTooLarge // RFC 9113 §10.5.1
	}
	if rq.Method == http.MethodConnect {
		return nil, http.StatusMethodNotAllowed // the proxy does not tunnel
	}
	var u *url.URL
	if rq.Path == "*" {
		u = &url.URL{Path: "*"}
	} else {
		var err error
		if u, err = url.ParseRequestURI(rq.Path); err != nil {
			return nil, http.StatusBadRequest
		}
	}
	fields := f.RegularFields()
	h := make(http.Header, len(fields))
	var cookies []string
	for _, hf := range fields {
		k := httpfield.CanonicalH2(hf.Name)
		if k == "Cookie" {
			cookies = append(cookies, hf.Value)
			continue
		}
		h[k] = append(h[k], hf.Value)
	}
	if len(cookies) > 0 {
		h["Cookie"] = []string{strings.Join(cookies, "; ")} // RFC 9113 §8.2.3
	}
	authority := rq.Authority
	if authority == "" {
		authority = h.Get("Host")
	}
	h.Del("Host")
	r := &http.Request{
		Method: rq.Method, URL: u, Proto: "HTTP/2.0", ProtoMajor: 2, Header: h, Host: authority,
		RemoteAddr: c.nc.RemoteAddr().String(), RequestURI: rq.Path, Body: http.NoBody,
	}
	if s.body != nil {
		r.Body = s.body
		r.ContentLength = rq.ContentLength
		r.Trailer = trailerMap(h)
		s.body.trailer = r.Trailer
	}
	return r.WithContext(s.ctx), 0
}

func (c *h2conn) runStream(s *h2stream, r *http.Request, status int) {
	defer c.endStream(s)
	defer func() {
		if v := recover(); v != nil {
			if v != http.ErrAbortHandler { //nolint:errorlint // the sentinel is panicked, not wrapped
				c.p.o.Log.Error("panic serving a request", "panic", v)
			}
			if !s.ended {
				c.resetStream(s.id, http2.ErrCodeInternal)
				s.ended = true
			}
		}
	}()
	if r == nil {
		_ = s.respond(status, http.Header{"Content-Type": {"text/plain; charset=utf-8"}}, []byte(http.StatusText(status)+"\n"))
		return
	}
	if c.inbound {
		c.p.serveInboundH2(s, r)
		return
	}
	w := &h2rw{s: s, h: http.Header{}}
	c.p.serveOutbound(w, r)
	w.finish()
}

func (c *h2conn) data(f *http2.DataFrame) error {
	n := int64(f.Length)
	if !c.takeRecv(n) {
		return http2.ConnectionError(http2.ErrCodeFlowControl)
	}
	st, cause, s := c.state(f.StreamID)
	if st != h2Open && st != h2HalfClosedLocal {
		// Only the connection window matters: give it back.
		c.giveBack(0, nil, n)
		switch {
		case st == h2Idle: // RFC 9113 §5.1, idle
			return http2.ConnectionError(http2.ErrCodeProtocol)
		case cause != h2CloseLocalReset: // RFC 9113 §5.1, §6.1
			c.streamError(f.StreamID, http2.ErrCodeStreamClosed)
		}
		return nil
	}
	// Padding is flow-controlled but never read: give it back at once.
	data := f.Data()
	if pad := n - int64(len(data)); pad > 0 {
		c.giveBack(0, nil, pad)
	}
	if f.StreamEnded() {
		c.mu.Lock()
		s.remoteEnded = true
		c.mu.Unlock()
	}
	switch s.body.push(data, f.StreamEnded()) {
	case h2PushWindow:
		c.giveBack(0, nil, int64(len(data)))
		c.streamError(f.StreamID, http2.ErrCodeFlowControl)
	case h2PushLength: // RFC 9113 §8.1.1
		c.streamError(f.StreamID, http2.ErrCodeProtocol)
	}
	return nil
}

func (c *h2conn) lastIDLocked() uint32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastID
}

func (c *h2conn) resetStream(id uint32, code http2.ErrCode) {
	c.queue(h2ctrl{typ: http2.FrameRSTStream, id: id, code: code})
}

// fail ends the connection with a GOAWAY carrying code.
func (c *h2conn) fail(code http2.ErrCode) {
	last := c.lastIDLocked()
	c.queue(h2ctrl{typ: http2.FrameGoAway, id: last, code: code, close: true})
}

// goAway starts a graceful shutdown: no new streams; the connection closes once the
// open ones finish (or when the proxy's grace period ends).
func (c *h2conn) goAway() {
	c.mu.Lock()
	if c.goingAway || c.closed {
		c.mu.Unlock()
		return
	}
	c.goingAway = true
	last, open := c.lastID, len(c.streams)
	c.mu.Unlock()
	// With no stream open the connection closes once the GOAWAY is written.
	c.queue(h2ctrl{typ: http2.FrameGoAway, id: last, code: http2.ErrCodeNo, close: open == 0})
}

func (c *h2conn) idleTimeout() {
	c.mu.Lock()
	idle := len(c.streams) == 0
	c.mu.Unlock()
	if idle {
		c.goAway()
	}
}

func (c *h2conn) endStream(s *h2stream) {
	s.cancel()
	remoteOpen := s.body != nil && s.body.discard()
	c.mu.Lock()
	delete(c.streams, s.id)
	reset := s.reset
	switch {
	case s.peerReset:
		c.closedIDs.add(s.id, h2ClosePeerReset)
	case reset || !s.ended || remoteOpen:
		c.closedIDs.add(s.id, h2CloseLocalReset) // reset below, or before
	default:
		c.closedIDs.add(s.id, h2CloseEnded)
	}
	last := len(c.streams) == 0
	closeNow := last && c.goingAway
	if last && !c.closed {
		c.idle.Reset(h2IdleTimeout)
	}
	c.mu.Unlock()
	if !reset && (!s.ended || remoteOpen) {
		// The response ended early, or the request body was not read to its end:
		// tell the peer to stop sending.
		code := http2.ErrCodeNo
		if !s.ended {
			code = http2.ErrCodeInternal
		}
		c.resetStream(s.id, code)
	}
	if closeNow {
		c.queue(h2ctrl{close: true}) // after what is queued (the RST_STREAM above)
	}
}

func (c *h2conn) close() {
	c.shutdown()
	c.mu.Lock()
	c.closed = true
	c.idle.Stop()
	streams := make([]*h2stream, 0, len(c.streams))
	for _, s := range c.streams {
		streams = append(streams, s)
	}
	c.mu.Unlock()
	for _, s := range streams {
		s.abort(net.ErrClosed)
	}
}

// abort ends the stream from the peer's side: its handler's context is cancelled, and
// its body reads and response writes fail.
func (s *h2stream) abort(err error) {
	s.c.mu.Lock()
	s.reset = true
	s.c.cond.Broadcast()
	s.c.mu.Unlock()
	s.cancel()
	if s.body != nil {
		s.body.fail(err)
	}
}

// reserve waits until up to n bytes may be sent on the stream and takes them from
// both send windows.
func (s *h2stream) reserve(n int) (int, error) { return s.c.reserve(&s.sendWin, &s.reset, n) }

// writeHeaders sends a HEADERS frame (and CONTINUATIONs) with status (0 for
// trailers) and h.
func (s *h2stream) writeHeaders(status int, h http.Header, end, flush bool) error {
	c := s.c
	c.mu.Lock()
	frame := c.peerFrame
	reset := s.reset
	c.mu.Unlock()
	if reset {
		return errStreamReset
	}
	if end {
		s.ended = true
		s.endLocal()
	}
	return c.write(func() error {
		c.hbuf.Reset()
		if status != 0 {
			_ = c.henc.WriteField(hpack.HeaderField{Name: ":status", Value: statusText(status)})
		}
		for k, vs := range h {
			lk, ok := httpfield.LowerH2(k)
			if !ok {
				continue
			}
			for _, v := range vs {
				if lk == "te" && v != "trailers" {
					continue
				}
				_ = c.henc.WriteField(hpack.HeaderField{Name: lk, Value: v})
			}
		}
		block := c.hbuf.Bytes()
		first := block
		if len(first) > frame {
			first = first[:frame]
		}
		block = block[len(first):]
		if err := c.fw.WriteHeaders(http2.HeadersFrameParam{StreamID: s.id, BlockFragment: first, EndStream: end, EndHeaders: len(block) == 0}); err != nil {
			return err
		}
		for len(block) > 0 {
			n := min(len(block), frame)
			if err := c.fw.WriteContinuation(s.id, n == len(block), block[:n]); err != nil {
				return err
			}
			block = block[n:]
		}
		return nil
	}, flush || end)
}

// writeData sends p in DATA frames within the flow-control windows; end sets
// END_STREAM on the last one. The frames are flushed.
func (s *h2stream) writeData(p []byte, end bool) error { return s.writeDataFlush(p, end, true) }

// writeDataFlush is writeData; flush false leaves the last frame buffered.
func (s *h2stream) writeDataFlush(p []byte, end, flush bool) error {
	for {
		if len(p) == 0 {
			if !end {
				return nil
			}
			s.ended = true
			s.endLocal()
			return s.c.write(func() error { return s.c.fw.WriteData(s.id, true, nil) }, true)
		}
		n, err := s.reserve(len(p))
		if err != nil {
			return err
		}
		last := n == len(p)
		chunk := p[:n]
		if last && end {
			s.ended = true
			s.endLocal()
		}
		if err := s.c.write(func() error { return s.c.fw.WriteData(s.id, last && end, chunk) }, !last || flush || end); err != nil { // never wait for window with frames unsent
			return err
		}
		if last {
			return nil
		}
		p = p[n:]
	}
}

// endLocal notes, before the frame carrying END_STREAM is written, that the
// stream is half-closed (local): a peer that answers at once finds it so.
func (s *h2stream) endLocal() {
	s.c.mu.Lock()
	s.localEnded = true
	s.c.mu.Unlock()
}

// respond sends a whole response.
func (s *h2stream) respond(status int, h http.Header, body []byte) error {
	if err := s.writeHeaders(status, h, len(body) == 0, false); err != nil || len(body) == 0 {
		return err
	}
	return s.writeData(body, true)
}
