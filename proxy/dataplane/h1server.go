package dataplane

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http/httpguts"
)

// The HTTP/1 server. net/http's server starts a goroutine per request to watch the
// connection while the handler runs, and arms and disarms deadlines around it; a
// proxy that forwards each request and then waits for the next needs none of that.
// This one serves a connection's requests one after another in its goroutine.

const (
	h1IdleWait    = 10 * time.Minute // for the next request on a kept-alive connection
	h1BodyDrain   = 256 << 10        // unread request body read to keep the connection
	h1WriteBuffer = 16 << 10
)

var errHeadersTooLarge = errors.New("request headers too large")

// limitReader fails reads past n bytes (the header limit) until it is lifted.
type limitReader struct {
	r io.Reader
	n int64 // < 0: no limit
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.n == 0 {
		return 0, errHeadersTooLarge
	}
	if l.n > 0 && int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	if l.n > 0 {
		l.n -= int64(n)
	}
	return n, err
}

// h1conn is one HTTP/1 connection.
type h1conn struct {
	p  *Proxy
	nc net.Conn
	lr limitReader
	br *bufio.Reader
	bw *bufio.Writer

	mu       sync.Mutex
	busy     bool // a request is being served
	draining bool
	hijacked bool
}

// serveH1 serves HTTP/1 requests on nc with h until the connection ends.
func (p *Proxy) serveH1(ctx context.Context, nc net.Conn, m *meta, h http.HandlerFunc) {
	untrack := p.track(nc)
	c := &h1conn{p: p, nc: nc}
	c.lr.r, c.lr.n = nc, -1
	c.br = bufio.NewReaderSize(&c.lr, 4<<10)
	c.bw = bufio.NewWriterSize(nc, h1WriteBuffer)
	stop := context.AfterFunc(p.drainCtx, c.drain)
	defer func() {
		stop()
		untrack()
		if !c.hijacked {
			_ = nc.Close()
		}
	}()
	cctx := context.WithValue(ctx, metaKey{}, m)
	remote := nc.RemoteAddr().String()
	for {
		r, err := c.readRequest()
		if err != nil {
			c.refuse(err)
			return
		}
		rctx, cancel := context.WithCancel(cctx)
		r = r.WithContext(rctx)
		r.RemoteAddr = remote
		keep := c.serve(r, h)
		cancel()
		if !keep {
			return
		}
	}
}

func (c *h1conn) readRequest() (*http.Request, error) {
	_ = c.nc.SetReadDeadline(time.Now().Add(h1IdleWait))
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
	_ = c.nc.SetReadDeadline(time.Now().Add(c.p.o.HeaderTimeout))
	c.lr.n = maxHeaderBytes + 4096 - int64(c.br.Buffered())
	r, err := http.ReadRequest(c.br)
	c.lr.n = -1
	if err != nil {
		return nil, err
	}
	_ = c.nc.SetReadDeadline(time.Time{})
	return r, nil
}

// refuse answers a request that could not be read, if it makes sense to.
func (c *h1conn) refuse(err error) {
	var ne net.Error
	status := http.StatusBadRequest
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed), errors.As(err, &ne) && ne.Timeout():
		return
	case errors.Is(err, errHeadersTooLarge):
		status = http.StatusRequestHeaderFieldsTooLarge
	}
	_, _ = fmt.Fprintf(c.bw, "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n%s\n",
		status, http.StatusText(status), http.StatusText(status))
	_ = c.bw.Flush()
}

// serve runs h for r; false when the connection must not be reused.
func (c *h1conn) serve(r *http.Request, h http.HandlerFunc) (keep bool) {
	// Read before the handler runs: forwarding strips the request's hop-by-hop headers.
	http10 := !r.ProtoAtLeast(1, 1)
	w := &h1rw{c: c, r: r, h: http.Header{}, http10: http10, closeReq: r.Close,
		keepAlive10: http10 && strings.EqualFold(r.Header.Get("Connection"), "keep-alive")}
	if r.Header.Get("Expect") != "" && r.Body != http.NoBody {
		if strings.EqualFold(r.Header.Get("Expect"), "100-continue") && r.ProtoAtLeast(1, 1) {
			r.Body = &continueReader{ReadCloser: r.Body, w: w}
		} else {
			w.h.Set("Connection", "close")
			w.WriteHeader(http.StatusExpectationFailed)
			w.finish()
			return false
		}
	}
	r.Header.Del("Expect")
	ok := func() (ok bool) {
		defer func() {
			if v := recover(); v != nil {
				if v != http.ErrAbortHandler { //nolint:errorlint // the sentinel is panicked, not wrapped
					c.p.o.Log.Error("panic serving a request", "panic", v)
				}
				ok = false
			}
		}()
		h(w, r)
		return true
	}()
	if c.hijacked {
		return false
	}
	if !ok {
		return false
	}
	w.finish()
	if w.err != nil || w.closeAfter || w.closeReq {
		return false
	}
	// Read what is left of the request body (within reason) to reuse the connection.
	if r.Body != nil {
		if n, _ := io.CopyN(io.Discard, r.Body, h1BodyDrain+1); n > h1BodyDrain {
			return false
		}
		_ = r.Body.Close()
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
	closeReq    bool // the client asked to close (Connection: close)
	http10      bool // an HTTP/1.0 request
	keepAlive10 bool // ... that asked for keep-alive
	declared    []string
	err         error
}

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
	w.noBody = w.r.Method == http.MethodHead || w.status == http.StatusNoContent || w.status == http.StatusNotModified
	if w.http10 && !w.keepAlive10 {
		w.closeAfter = true
	}
	if _, ok := h["Content-Length"]; !ok && !w.noBody {
		if w.http10 {
			w.closeAfter = true // the body ends when the connection does
		} else {
			w.chunked = true
		}
	}
	w.declared = declaredTrailers(h)
	bw := w.c.bw
	_, _ = bw.WriteString(statusLine(w.status))
	for k, vs := range h {
		if k == "Transfer-Encoding" || strings.HasPrefix(k, http.TrailerPrefix) || !httpguts.ValidHeaderFieldName(k) ||
			k == "Trailer" && !w.chunked {
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
	case w.closeAfter || w.closeReq:
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

// finish ends the response (the last chunk and the trailers) and sends it.
func (w *h1rw) finish() {
	if w.err != nil {
		return
	}
	w.writeHead()
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
			if name == "" || !httpguts.ValidHeaderFieldName(name) {
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
