// Package h2 is the proxy's HTTP/2 engine (RFC 9113, over x/net's framer and
// HPACK): a server that hands each stream to a Handler, and the client pool the
// proxies use between them. The header rules are proxy/httpfield's.
package h2

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/meshplane/mesh/proxy/httpfield"
	"github.com/meshplane/mesh/proxy/reqctx"
	"golang.org/x/net/http2"
)

// The server. Peer proxies send every request over HTTP/2, so this is
// the proxy's hottest path; net/http's server spends most of its time handing each
// frame between goroutines (a read loop, a serve loop, a goroutine per stream and one
// per flush). This one reads frames in the connection's goroutine and runs each
// stream in a pooled worker, which writes its own frames straight to the connection
// under a lock: a small response is one HEADERS and one DATA frame in one write.
//
// It implements what a proxy needs of RFC 9113: streams up to MaxStreams, flow
// control in both directions, SETTINGS, PING, RST_STREAM, GOAWAY (graceful drain),
// trailers, and header size limits; no server push, priorities or CONNECT.

// The server's limits, as advertised in its SETTINGS and enforced, and the
// protocol's defaults.
const (
	MaxStreams       = 250     // SETTINGS_MAX_CONCURRENT_STREAMS; REFUSED_STREAM past it
	StreamWindow     = 1 << 20 // receive window per stream, as advertised
	ConnWindow       = 1 << 20 // receive window per connection
	DefaultWindow    = 65535   // the protocol's initial window
	DefaultFrameSize = 16384   // SETTINGS_MAX_FRAME_SIZE, left at the default and enforced
	h2IdleTimeout    = 10 * time.Minute
	h2WriteBuf       = 32 << 10
)

var errStreamReset = errors.New("stream reset by peer")

// h2conn is one HTTP/2 server connection.
type h2conn struct {
	h2wire
	srv    *Server
	ctx    context.Context // the connection's; streams derive from it
	remote string          // nc.RemoteAddr().String(), for the requests

	// Guarded by mu:
	streams   map[uint32]*Stream
	lastID    uint32 // highest stream the peer opened
	closedIDs h2ClosedRing
	goingAway bool
	idle      *time.Timer
}

// Stream is one request.
type Stream struct {
	c       *h2conn
	id      uint32
	ctx     *reqctx.Ctx
	body    *h2body // nil when the request had no body
	sendWin int64   // guarded by c.mu
	reset   bool    // guarded by c.mu: either side reset it, or the connection ended
	ended   bool    // the response's END_STREAM was written (handler goroutine only)
	// req, or the status to refuse it with, until the worker takes it (run).
	req    *http.Request
	status int

	// Guarded by c.mu: the halves of the stream's state (RFC 9113 §5.1), and who
	// reset it.
	remoteEnded bool // END_STREAM received
	localEnded  bool // END_STREAM sent (set before the frame is written)
	peerReset   bool // RST_STREAM received
}

// stateLocked is stream id's state and, unless idle or gone, the stream; c.mu held.
func (c *h2conn) stateLocked(id uint32) (h2StreamState, *Stream) {
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
func (c *h2conn) causeLocked(id uint32, s *Stream) h2CloseCause {
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
func (c *h2conn) state(id uint32) (h2StreamState, h2CloseCause, *Stream) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st, s := c.stateLocked(id)
	var cause h2CloseCause
	if st == h2Closed {
		cause = c.causeLocked(id, s)
	}
	return st, cause, s
}

// Handler answers a stream's request. It writes the response on the stream
// (WriteHeaders, WriteData, Respond) or resets it; the stream ends when ServeH2
// returns. The request's context is done when the stream or the connection ends.
type Handler interface {
	ServeH2(s *Stream, r *http.Request)
}

// HandlerFunc is a function as a Handler.
type HandlerFunc func(s *Stream, r *http.Request)

// ServeH2 calls f(s, r).
func (f HandlerFunc) ServeH2(s *Stream, r *http.Request) { f(s, r) }

// HTTPHandler serves streams with a net/http handler: it gets an
// http.ResponseWriter (also an http.Flusher, and ResetStream resets the stream).
func HTTPHandler(h http.Handler) Handler {
	return HandlerFunc(func(s *Stream, r *http.Request) {
		w := &h2rw{s: s, h: http.Header{}}
		h.ServeHTTP(w, r)
		w.finish()
	})
}

// Server serves HTTP/2 connections (prior knowledge, or after ALPN "h2"), each in
// the goroutine that calls ServeConn; streams run on pooled goroutines.
type Server struct {
	Handler Handler
	// HeaderTimeout bounds the wait for the client's preface; 10 s if zero.
	HeaderTimeout time.Duration
	// Timeouts are the connection's write deadline and keep-alive (WithDefaults).
	Timeouts Timeouts
	// Drain, once done, sends GOAWAY: the streams already open finish, no new one
	// starts, and the connection closes after the last. Nil: never.
	Drain context.Context
	// Log gets refused requests and handler panics; nil discards.
	Log *slog.Logger

	work workers
}

func (srv *Server) headerTimeout() time.Duration {
	if srv.HeaderTimeout > 0 {
		return srv.HeaderTimeout
	}
	return 10 * time.Second
}

func (srv *Server) log() *slog.Logger {
	if srv.Log != nil {
		return srv.Log
	}
	return slog.New(slog.DiscardHandler)
}

// ServeConn serves an HTTP/2 connection until it ends, then closes it; the client
// has not yet sent its preface. Streams' contexts derive from ctx.
func (srv *Server) ServeConn(ctx context.Context, nc net.Conn) {
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c := &h2conn{srv: srv, ctx: cctx, streams: map[uint32]*Stream{}}
	c.init(nc, srv.Timeouts.WithDefaults())
	c.remote = nc.RemoteAddr().String()
	c.idle = time.AfterFunc(h2IdleTimeout, c.idleTimeout)
	if srv.Drain != nil {
		stopDrain := context.AfterFunc(srv.Drain, c.goAway)
		defer stopDrain()
	}
	// The streams' contexts end with the connection's (reqctx).
	stopCtx := context.AfterFunc(cctx, c.fireStreams)
	defer stopCtx()
	defer c.close()
	if err := c.serve(); !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
		srv.log().Debug("HTTP/2 connection", "err", err)
	}
}

func (c *h2conn) serve() error {
	_ = c.nc.SetReadDeadline(time.Now().Add(c.srv.headerTimeout()))
	var preface [len(http2.ClientPreface)]byte
	if _, err := io.ReadFull(c.nc, preface[:]); err != nil {
		return err
	}
	if string(preface[:]) != http2.ClientPreface {
		// A connection error (RFC 9113 §3.4), without GOAWAY: the server's first
		// frame must be SETTINGS, and this client does not speak HTTP/2. What it
		// sent is read before the close, so that the close is a FIN and not a
		// reset that could discard an answer.
		lingerClose(c.nc)
		return errors.New("bad HTTP/2 client preface")
	}
	_ = c.nc.SetReadDeadline(time.Time{})
	if err := c.write(func() error {
		if err := c.fw.WriteSettings(
			http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: MaxStreams},
			http2.Setting{ID: http2.SettingInitialWindowSize, Val: StreamWindow},
			http2.Setting{ID: http2.SettingMaxHeaderListSize, Val: httpfield.MaxHeaderBytes},
		); err != nil {
			return err
		}
		return c.fw.WriteWindowUpdate(0, ConnWindow-DefaultWindow)
	}, true); err != nil {
		return err
	}
	for {
		f, err := c.readFrame()
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
		// Valid settings are acknowledged before they apply: what a larger window
		// lets a stream send goes out after the ACK (writeQueuedLocked).
		if err := validSettings(f); err != nil {
			return err
		}
		c.queue(h2ctrl{typ: http2.FrameSettings, ack: true})
		if err := c.settings(f); err != nil {
			return err
		}
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

// validSettings checks every setting of f (RFC 9113 §6.5.2).
func validSettings(f *http2.SettingsFrame) error {
	return f.ForeachSetting(func(s http2.Setting) error { return s.Valid() })
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
		c.srv.log().Debug("HTTP/2 request refused", "err", err)
		c.streamError(id, http2.ErrCodeProtocol)
		return nil
	}
	c.mu.Lock()
	c.lastID = id
	if c.goingAway || len(c.streams) >= MaxStreams {
		c.closedIDs.add(id, h2CloseLocalReset)
		c.mu.Unlock()
		c.resetStream(id, http2.ErrCodeRefusedStream)
		return nil
	}
	s := &Stream{c: c, id: id, sendWin: c.peerInitWin, remoteEnded: f.StreamEnded()}
	s.ctx = reqctx.New(c.ctx)
	if !f.StreamEnded() {
		s.body = newH2Body(s)
		s.body.want = rq.ContentLength
	}
	c.streams[id] = s
	if len(c.streams) == 1 {
		c.idle.Stop()
	}
	c.mu.Unlock()

	s.req, s.status = c.request(f, rq, s)
	c.srv.work.run(s)
	return nil
}

// run serves the stream, in a worker.
func (s *Stream) run() {
	r, status := s.req, s.status
	s.req = nil
	s.c.runStream(s, r, status)
}

// request builds the stream's request from its checked fields, or the status to
// refuse it with.
func (c *h2conn) request(f *http2.MetaHeadersFrame, rq httpfield.H2Request, s *Stream) (*http.Request, int) {
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
	strs := make([]string, len(fields))
	var cookies []string
	for _, hf := range fields {
		k := httpfield.CanonicalH2(hf.Name)
		if k == "Cookie" {
			cookies = append(cookies, hf.Value)
			continue
		}
		addField(h, &strs, k, hf.Value)
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
		RemoteAddr: c.remote, RequestURI: rq.Path, Body: http.NoBody,
	}
	if s.body != nil {
		r.Body = s.body
		r.ContentLength = rq.ContentLength
		r.Trailer = trailerMap(h)
		s.body.trailer = r.Trailer
	}
	return r.WithContext(s.ctx), 0
}

func (c *h2conn) runStream(s *Stream, r *http.Request, status int) {
	defer c.endStream(s)
	defer func() {
		if v := recover(); v != nil {
			if v != http.ErrAbortHandler { //nolint:errorlint // the sentinel is panicked, not wrapped
				c.srv.log().Error("panic serving a request", "panic", v)
			}
			if !s.ended {
				c.resetStream(s.id, http2.ErrCodeInternal)
				s.ended = true
			}
		}
	}()
	if r == nil {
		_ = s.Respond(status, http.Header{"Content-Type": {"text/plain; charset=utf-8"}}, []byte(http.StatusText(status)+"\n"))
		return
	}
	c.srv.Handler.ServeH2(s, r)
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

// fireStreams runs what the open streams' clients registered with reqctx.AfterDone: the
// connection's context is done, and so are theirs.
func (c *h2conn) fireStreams() {
	c.mu.Lock()
	streams := make([]*Stream, 0, len(c.streams))
	for _, s := range c.streams {
		streams = append(streams, s)
	}
	c.mu.Unlock()
	for _, s := range streams {
		s.ctx.Fire()
	}
}

func (c *h2conn) idleTimeout() {
	c.mu.Lock()
	idle := len(c.streams) == 0
	c.mu.Unlock()
	if idle {
		c.goAway()
	}
}

func (c *h2conn) endStream(s *Stream) {
	s.ctx.Cancel()
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
	streams := make([]*Stream, 0, len(c.streams))
	for _, s := range c.streams {
		streams = append(streams, s)
	}
	c.mu.Unlock()
	for _, s := range streams {
		s.abort(net.ErrClosed)
	}
}

// lingerClose half-closes nc and reads (up to 64 KiB, for a second) what the peer
// still sends.
func lingerClose(nc net.Conn) {
	for c := nc; c != nil; {
		switch x := c.(type) {
		case interface{ CloseWrite() error }:
			_ = x.CloseWrite()
			c = nil
		case interface{ NetConn() net.Conn }: // a wrapper, like the proxy's peeking ones
			c = x.NetConn()
		default:
			c = nil
		}
	}
	_ = nc.SetReadDeadline(time.Now().Add(time.Second))
	_, _ = io.CopyN(io.Discard, nc, 64<<10)
}
