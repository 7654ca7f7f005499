// Package h1 is the proxy's HTTP/1.1 engine (RFC 9112): a strict server, which
// parses and frames requests itself and hands them to an http.Handler, and a
// client for bodiless requests. The header rules are proxy/httpfield's.
package h1

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meshplane/mesh/proxy/httpfield"
	"github.com/meshplane/mesh/proxy/reqctx"
)

// The server. net/http's server starts a goroutine per request to watch the
// connection while the handler runs, and arms and disarms deadlines around it; a
// proxy that forwards each request and then waits for the next needs none of that.
// This one serves a connection's requests one after another in its goroutine.

const (
	h1IdleWait    = 10 * time.Minute // for the next request on a kept-alive connection
	h1BodyDrain   = 256 << 10        // unread request body read to keep the connection
	h1WriteBuffer = 16 << 10
	// h1Linger bounds how long a connection closed with input unread (a refused
	// request, a broken body) is read and discarded after its answer, so that
	// closing it does not reset the connection before the client reads the answer.
	h1Linger = time.Second
)

// h1conn is one HTTP/1 connection.
type h1conn struct {
	srv *Server
	nc  net.Conn
	br  *bufio.Reader
	bw  *bufio.Writer

	head       []byte      // the request head being parsed
	respHeader http.Header // the current response's (h1rw.h)
	fields     []fieldPos  // its field lines
	lastMethod string
	// broken: a request body failed; the connection must not be reused. Set by
	// whoever reads the body (http.Transport may, from its own goroutine).
	broken atomic.Bool

	mu       sync.Mutex
	rctx     *reqctx.Ctx // the current request's context
	busy     bool        // a request is being served
	draining bool
	hijacked bool
}

// Server serves HTTP/1 connections, each in the goroutine that calls ServeConn.
type Server struct {
	// Handler answers every request. It may hijack the connection (upgrades).
	Handler http.Handler
	// HeaderTimeout bounds the wait for a request's head (slowloris); 10 s if zero.
	HeaderTimeout time.Duration
	// Drain, once done, closes idle connections, and busy ones after their
	// current response. Nil: never.
	Drain context.Context
	// Log gets refused requests and handler panics; nil discards.
	Log *slog.Logger
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

// ServeConn serves HTTP/1 requests on nc until the connection ends, then closes it
// (unless the handler hijacked it). Each request's context derives from ctx.
func (srv *Server) ServeConn(ctx context.Context, nc net.Conn) {
	c := &h1conn{srv: srv, nc: nc}
	c.br = bufio.NewReaderSize(nc, 4<<10)
	c.bw = bufio.NewWriterSize(nc, h1WriteBuffer)
	stop := func() bool { return false }
	if srv.Drain != nil {
		stop = context.AfterFunc(srv.Drain, c.drain)
	}
	linger := false
	defer func() {
		stop()
		if c.hijacked {
			return
		}
		if linger {
			c.lingerClose()
		}
		_ = nc.Close()
	}()
	remote := nc.RemoteAddr().String()
	// The requests' contexts end with the connection's (reqctx).
	stopCtx := context.AfterFunc(ctx, func() {
		c.mu.Lock()
		rc := c.rctx
		c.mu.Unlock()
		if rc != nil {
			rc.Fire()
		}
	})
	defer stopCtx()
	for {
		rctx := reqctx.New(ctx)
		c.mu.Lock()
		c.rctx = rctx
		c.mu.Unlock()
		r, err := c.readRequest(rctx)
		if err != nil {
			rctx.Cancel()
			linger = c.refuse(err)
			return
		}
		r.RemoteAddr = remote
		keep := c.serve(r, srv.Handler)
		rctx.Cancel()
		if !keep {
			// Input left unread (a broken body, pipelined requests): linger.
			linger = c.broken.Load() || c.br.Buffered() > 0
			return
		}
	}
}

func (c *h1conn) readRequest(ctx context.Context) (*http.Request, error) {
	_ = c.nc.SetReadDeadline(time.Now().Add(h1IdleWait))
	if c.lastMethod == http.MethodPost {
		// Old clients send a CRLF after a POST body (tolerated as net/http does,
		// RFC 9112 §2.2).
		peek, _ := c.br.Peek(4)
		n := 0
		for n < len(peek) && (peek[n] == '\r' || peek[n] == '\n') {
			n++
		}
		_, _ = c.br.Discard(n)
	}
	if _, err := c.br.Peek(1); err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.draining {
		c.mu.Unlock()
		return nil, net.ErrClosed
	}
	c.busy = true
	c.mu.Unlock()
	_ = c.nc.SetReadDeadline(time.Now().Add(c.srv.headerTimeout()))
	err := c.readHead()
	var r *http.Request
	if err == nil {
		r, err = c.parseHead(ctx)
	}
	if cap(c.head) > 16<<10 {
		c.head = nil // a large head's buffer is not kept for the connection's life
	}
	if err != nil {
		return nil, err
	}
	_ = c.nc.SetReadDeadline(time.Time{})
	c.lastMethod = r.Method
	r.Body = http.NoBody
	if r.ContentLength != 0 {
		r.Body = &h1ReqBody{c: c, br: c.br, chunked: r.ContentLength < 0, left: max(r.ContentLength, 0), trailer: r.Trailer}
	}
	return r, nil
}

// refuse answers a request that could not be read, if it makes sense to; true when
// it did (the connection then lingers before it closes).
func (c *h1conn) refuse(err error) bool {
	var ne net.Error
	var se *statusError
	status := http.StatusBadRequest
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed), errors.As(err, &ne) && ne.Timeout():
		return false
	case errors.Is(err, errHeadersTooLarge):
		status = http.StatusRequestHeaderFieldsTooLarge
	case errors.As(err, &se):
		status = se.code
	}
	c.srv.log().Debug("HTTP/1 request refused", "status", status, "err", err)
	_, _ = fmt.Fprintf(c.bw, "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n%s\n",
		status, http.StatusText(status), http.StatusText(status))
	_ = c.bw.Flush()
	return true
}

// lingerClose half-closes the connection and reads what the client still sends
// (bounded in time and bytes) before the close: closing with unread input makes the
// kernel reset the connection, which can destroy the answer before it is read.
func (c *h1conn) lingerClose() {
	closeWrite(c.nc)
	_ = c.nc.SetReadDeadline(time.Now().Add(h1Linger))
	_, _ = io.CopyN(io.Discard, c.br, h1BodyDrain)
}

// closeWrite shuts down the writing side of c (TCP FIN, or TLS close_notify).
func closeWrite(c net.Conn) {
	for {
		switch x := c.(type) {
		case interface{ CloseWrite() error }:
			_ = x.CloseWrite()
			return
		case interface{ NetConn() net.Conn }: // a wrapper, like the proxy's peeking ones
			c = x.NetConn()
		default:
			return
		}
	}
}

// serve runs h for r; false when the connection must not be reused.
func (c *h1conn) serve(r *http.Request, h http.Handler) (keep bool) {
	// Read before the handler runs: forwarding strips the request's hop-by-hop headers.
	http10 := !r.ProtoAtLeast(1, 1)
	// The response header map is the connection's, cleared for each request: only
	// the handler and finish use it, and they are done with it when serve returns.
	if c.respHeader == nil {
		c.respHeader = http.Header{}
	} else {
		clear(c.respHeader)
	}
	w := &h1rw{c: c, r: r, h: c.respHeader, http10: http10, closeReq: r.Close, length: -1,
		keepAlive10: http10 && !r.Close}
	body, _ := r.Body.(*h1ReqBody)
	var cr *continueReader
	// Expect (RFC 9110 §10.1.1), as net/http's server reads it: 100-continue is
	// answered before the body is read (HTTP/1.1 with a body), anything else is 417.
	switch expect := r.Header.Get("Expect"); {
	case hasToken(expect, "100-continue"):
		if r.ProtoAtLeast(1, 1) && r.Body != http.NoBody {
			cr = &continueReader{ReadCloser: r.Body, w: w}
			r.Body = cr
		}
	case expect != "":
		w.closeAfter = true
		w.WriteHeader(http.StatusExpectationFailed)
		w.finish()
		return false
	}
	r.Header.Del("Expect")
	ok := func() (ok bool) {
		defer func() {
			if v := recover(); v != nil {
				if v != http.ErrAbortHandler { //nolint:errorlint // the sentinel is panicked, not wrapped
					c.srv.log().Error("panic serving a request", "panic", v)
				}
				ok = false
			}
		}()
		h.ServeHTTP(w, r)
		return true
	}()
	if c.hijacked {
		return false
	}
	if !ok {
		return false
	}
	w.finish()
	if w.err != nil || w.closeAfter || w.closeReq || c.broken.Load() {
		return false
	}
	// Read what is left of the request body (within reason) to reuse the
	// connection; not when the client still waits for a 100 Continue.
	if body != nil {
		if cr != nil && !cr.sent || !body.drain(h1BodyDrain) {
			return false
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.busy = false
	return !c.draining
}

// drain closes the connection if it is idle, else after its current request.
func (c *h1conn) drain() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.draining = true
	if !c.busy && !c.hijacked {
		_ = c.nc.SetReadDeadline(time.Unix(1, 0))
	}
}

// hasToken is true when v has token (ASCII, case-insensitive) between the list
// separators ' ', ',' and '\t' (as net/http's server looks for 100-continue).
func hasToken(v, token string) bool {
	for i := 0; i+len(token) <= len(v); i++ {
		if i > 0 && !isTokenBoundary(v[i-1]) || i+len(token) < len(v) && !isTokenBoundary(v[i+len(token)]) {
			continue
		}
		if strings.EqualFold(v[i:i+len(token)], token) {
			return true
		}
	}
	return false
}

func isTokenBoundary(b byte) bool { return b == ' ' || b == ',' || b == '\t' }

// continueReader sends "100 Continue" before the body is first read.
type continueReader struct {
	io.ReadCloser
	w    *h1rw
	sent bool
}

func (cr *continueReader) Read(p []byte) (int, error) {
	if !cr.sent {
		cr.sent = true
		if cr.w.status == 0 {
			_, _ = cr.w.c.bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
			_ = cr.w.c.bw.Flush()
		}
	}
	return cr.ReadCloser.Read(p)
}

// h1rw is the server's http.ResponseWriter (and Flusher, and Hijacker).
type h1rw struct {
	c           *h1conn
	r           *http.Request
	h           http.Header
	status      int
	sent        bool // status line and headers written
	chunked     bool
	noBody      bool
	closeAfter  bool
	closeReq    bool  // the client asked to close (Connection: close)
	http10      bool  // an HTTP/1.0 request
	keepAlive10 bool  // ... that asked for keep-alive
	length      int64 // the response's Content-Length, or -1
	written     int64 // body bytes written
	declared    []string
	err         error
}

var errResponseTooLong = errors.New("response body longer than its Content-Length")

func (w *h1rw) Header() http.Header { return w.h }

func (w *h1rw) WriteHeader(code int) {
	if w.status != 0 || code < 200 && code != http.StatusSwitchingProtocols {
		return // informational responses are not forwarded
	}
	w.status = code
}

// writeHead writes the status line and headers, choosing the body's framing.
func (w *h1rw) writeHead() {
	if w.sent {
		return
	}
	w.sent = true
	if w.status == 0 {
		w.status = http.StatusOK
	}
	h := w.h
	w.noBody = w.r.Method == http.MethodHead || w.status < 200 || w.status == http.StatusNoContent || w.status == http.StatusNotModified
	if w.http10 && !w.keepAlive10 {
		w.closeAfter = true
	}
	// One valid Content-Length or none (RFC 9110 §8.6); none in a 1xx or 204.
	if cl, ok := h["Content-Length"]; ok {
		n, valid := int64(-1), len(cl) == 1
		if valid {
			n, valid = httpfield.ParseContentLength(cl[0])
		}
		if !valid || w.status < 200 || w.status == http.StatusNoContent {
			delete(h, "Content-Length")
		} else if !w.noBody {
			w.length = n
		}
	}
	if _, ok := h["Content-Length"]; !ok && !w.noBody {
		if w.http10 {
			w.closeAfter = true // the body ends when the connection does
		} else {
			w.chunked = true
		}
	}
	w.declared = httpfield.DeclaredTrailers(h)
	bw := w.c.bw
	_, _ = bw.WriteString(statusLine(w.status))
	for k, vs := range h {
		// The framing and the connection's fate are this writer's: Transfer-Encoding
		// and Connection are its own (but for a 101's Connection: Upgrade).
		if k == "Transfer-Encoding" || k == "Connection" && w.status != http.StatusSwitchingProtocols ||
			strings.HasPrefix(k, http.TrailerPrefix) || !httpfield.ValidFieldName(k) || k == "Trailer" && !w.chunked {
			continue
		}
		for _, v := range vs {
			_, _ = bw.WriteString(k)
			_, _ = bw.WriteString(": ")
			writeHeaderValue(bw, v)
			_, _ = bw.WriteString("\r\n")
		}
	}
	if w.chunked {
		_, _ = bw.WriteString("Transfer-Encoding: chunked\r\n")
	}
	switch {
	case w.closeAfter || w.closeReq || w.c.broken.Load():
		_, _ = bw.WriteString("Connection: close\r\n")
	case w.keepAlive10:
		_, _ = bw.WriteString("Connection: keep-alive\r\n")
	}
	_, _ = bw.WriteString("\r\n")
}

func (w *h1rw) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	w.writeHead()
	if w.noBody || len(p) == 0 {
		return len(p), nil
	}
	if w.length >= 0 && w.written+int64(len(p)) > w.length {
		// What goes past the length would be read as another response.
		n, _ := w.Write(p[:w.length-w.written])
		w.err = errResponseTooLong
		return n, w.err
	}
	w.written += int64(len(p))
	bw := w.c.bw
	if w.chunked {
		_, _ = bw.WriteString(strconv.FormatInt(int64(len(p)), 16))
		_, _ = bw.WriteString("\r\n")
	}
	if _, err := bw.Write(p); err != nil {
		w.err = err
		return 0, err
	}
	if w.chunked {
		if _, err := bw.WriteString("\r\n"); err != nil {
			w.err = err
			return 0, err
		}
	}
	return len(p), nil
}

func (w *h1rw) Flush() {
	if w.err != nil {
		return
	}
	w.writeHead()
	w.err = w.c.bw.Flush()
}

// finish ends the response (the last chunk and the trailers) and sends it. A body
// shorter than its Content-Length leaves the connection unusable.
func (w *h1rw) finish() {
	if w.err != nil {
		return
	}
	w.writeHead()
	if w.length >= 0 && w.written < w.length {
		_ = w.c.bw.Flush()
		w.err = io.ErrShortWrite
		return
	}
	if w.chunked {
		bw := w.c.bw
		_, _ = bw.WriteString("0\r\n")
		for k, vs := range w.h {
			name := ""
			switch {
			case strings.HasPrefix(k, http.TrailerPrefix):
				name = strings.TrimPrefix(k, http.TrailerPrefix)
			case containsString(w.declared, k):
				name = k
			}
			if name == "" || !httpfield.ValidFieldName(name) || !httpfield.ValidTrailerField(http.CanonicalHeaderKey(name)) {
				continue
			}
			for _, v := range vs {
				_, _ = bw.WriteString(name)
				_, _ = bw.WriteString(": ")
				writeHeaderValue(bw, v)
				_, _ = bw.WriteString("\r\n")
			}
		}
		_, _ = bw.WriteString("\r\n")
	}
	w.err = w.c.bw.Flush()
}

// Hijack hands the connection to the handler (upgrades).
func (w *h1rw) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c := w.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.hijacked {
		return nil, nil, http.ErrHijacked
	}
	c.hijacked = true
	return c.nc, bufio.NewReadWriter(c.br, c.bw), nil
}

func containsString(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// writeHeaderValue writes v with any CR or LF turned into a space.
func writeHeaderValue(bw *bufio.Writer, v string) {
	if !strings.ContainsAny(v, "\r\n") {
		_, _ = bw.WriteString(v)
		return
	}
	_, _ = bw.WriteString(strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' {
			return ' '
		}
		return r
	}, v))
}

func statusLine(code int) string {
	switch code {
	case http.StatusOK:
		return "HTTP/1.1 200 OK\r\n"
	case http.StatusNotFound:
		return "HTTP/1.1 404 Not Found\r\n"
	}
	text := http.StatusText(code)
	if text == "" {
		text = "status code " + strconv.Itoa(code)
	}
	return "HTTP/1.1 " + strconv.Itoa(code) + " " + text + "\r\n"
}
