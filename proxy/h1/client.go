package h1

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/net/http/httpguts"

	"github.com/meshplane/mesh/proxy/httpfield"
	"github.com/meshplane/mesh/proxy/reqctx"
	"github.com/meshplane/mesh/proxy/sockio"
)

// Client sends bodiless HTTP/1.1 requests to the application on localhost, in the
// calling goroutine: http.Transport hands every request to a write goroutine and
// every response from a read goroutine, which costs more than the request itself.
// Requests with a body still go through http.Transport (it can read an early response
// while the body is being sent).
type Client struct {
	connectTimeout time.Duration
	now            func() time.Time

	mu   sync.Mutex
	idle map[string][]*h1Conn // by address, most recently used last
}

type h1Conn struct {
	nc   net.Conn
	br   *bufio.Reader
	bw   *bufio.Writer
	addr string
	used time.Time // when it went idle
	keys []string  // writeRequest's sorted header keys
}

const (
	h1MaxIdlePerAddr  = 100
	clientIdleTimeout = 90 * time.Second // idle connections of the HTTP/1 and HTTP/2 clients
	// h1FreshIdle: a request that must not be sent twice only reuses a connection idle
	// for less than this (the application may close idle connections at any time).
	h1FreshIdle = time.Second
)

func NewClient(connectTimeout time.Duration, now func() time.Time) *Client {
	if connectTimeout == 0 {
		connectTimeout = time.Second
	}
	return &Client{connectTimeout: connectTimeout, now: now, idle: map[string][]*h1Conn{}}
}

// replayable is true when sending r twice is harmless (as http.Transport decides).
func replayable(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return r.Header.Get("Idempotency-Key") != "" || r.Header.Get("X-Idempotency-Key") != ""
}

// RoundTrip sends r (which has no body) to r.URL.Host. A request that came over
// HTTP/2 is checked before anything is written: its method, target and authority
// become the HTTP/1 request line and Host.
func (h *Client) RoundTrip(r *http.Request) (*http.Response, error) {
	host := r.Host
	if host == "" {
		host = r.URL.Host
	}
	if err := httpfield.CheckH1Request(r.Method, httpfield.ValidURLTarget(r.Method, r.URL), host, r.Header); err != nil {
		return nil, err
	}
	addr := r.URL.Host
	replay := replayable(r)
	for attempt := 0; ; attempt++ {
		var c *h1Conn
		var reused bool
		if attempt == 0 { // a retry dials: the server may have closed every idle one
			c, reused = h.get(addr, replay)
		}
		if c == nil {
			var err error
			if c, err = h.dial(r.Context(), addr); err != nil {
				return nil, err
			}
		}
		resp, err := h.send(c, r)
		if err == nil {
			return resp, nil
		}
		_ = c.nc.Close()
		// A reused connection the application had already closed: try a new one.
		if reused && replay && attempt == 0 && r.Context().Err() == nil && errors.Is(err, errNothingRead) {
			continue
		}
		return nil, err
	}
}

var errNothingRead = errors.New("connection closed before any response")

func (h *Client) send(c *h1Conn, r *http.Request) (*http.Response, error) {
	stop := reqctx.AfterDone(r.Context(), c)
	if err := c.writeRequest(r); err != nil {
		stop.Stop()
		return nil, fmt.Errorf("%w: %w", errNothingRead, err)
	}
	if err := c.bw.Flush(); err != nil {
		stop.Stop()
		return nil, fmt.Errorf("%w: %w", errNothingRead, err)
	}
	for {
		if _, err := c.br.Peek(1); err != nil {
			stop.Stop()
			return nil, fmt.Errorf("%w: %w", errNothingRead, err)
		}
		resp, err := http.ReadResponse(c.br, r)
		if err != nil {
			stop.Stop()
			return nil, err
		}
		if resp.StatusCode >= 100 && resp.StatusCode < 200 {
			if resp.StatusCode == http.StatusSwitchingProtocols {
				stop.Stop()
				return nil, errors.New("unexpected 101 Switching Protocols")
			}
			continue // informational: wait for the final response
		}
		resp.Body = &h1Body{rc: resp.Body, c: c, h: h, stop: stop, keep: !resp.Close && !r.Close}
		return resp, nil
	}
}

// CtxDone: the request's context is done; its reads and writes fail at once.
func (c *h1Conn) CtxDone() { _ = c.nc.SetDeadline(time.Unix(1, 0)) }

func (h *Client) dial(ctx context.Context, addr string) (*h1Conn, error) {
	d := net.Dialer{Timeout: h.connectTimeout, KeepAlive: 10 * time.Second}
	nc, err := sockio.Dial(ctx, &d, addr)
	if err != nil {
		return nil, err
	}
	return &h1Conn{nc: nc, br: bufio.NewReaderSize(nc, 4<<10), bw: bufio.NewWriterSize(nc, 4<<10), addr: addr}, nil
}

// get takes an idle connection to addr; fresh asks for one idle only briefly.
func (h *Client) get(addr string, replay bool) (*h1Conn, bool) {
	now := h.now()
	h.mu.Lock()
	defer h.mu.Unlock()
	cs := h.idle[addr]
	for len(cs) > 0 {
		c := cs[len(cs)-1]
		idle := now.Sub(c.used)
		if !replay && idle > h1FreshIdle && idle <= clientIdleTimeout {
			return nil, false // older ones are older still; they stay for replayable requests
		}
		cs = cs[:len(cs)-1]
		h.idle[addr] = cs
		if idle > clientIdleTimeout {
			_ = c.nc.Close()
			continue
		}
		return c, true
	}
	return nil, false
}

func (h *Client) put(c *h1Conn) {
	c.used = h.now()
	_ = c.nc.SetDeadline(time.Time{})
	h.mu.Lock()
	defer h.mu.Unlock()
	cs := h.idle[c.addr]
	if len(cs) >= h1MaxIdlePerAddr {
		_ = cs[0].nc.Close()
		cs = append(cs[:0], cs[1:]...)
	}
	h.idle[c.addr] = append(cs, c)
}

// CloseIdleConnections closes the idle connections.
func (h *Client) CloseIdleConnections() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for a, cs := range h.idle {
		for _, c := range cs {
			_ = c.nc.Close()
		}
		delete(h.idle, a)
	}
}

// h1Body returns its connection to the pool once read to the end.
type h1Body struct {
	rc   io.ReadCloser
	c    *h1Conn
	h    *Client
	stop reqctx.Registration
	keep bool
	done bool
}

func (b *h1Body) Read(p []byte) (int, error) {
	if b.done {
		return 0, io.EOF
	}
	n, err := b.rc.Read(p)
	if err != nil {
		b.finish(err == io.EOF)
	}
	return n, err
}

func (b *h1Body) Close() error {
	if !b.done {
		b.finish(false)
	}
	return nil
}

func (b *h1Body) finish(atEOF bool) {
	b.done = true
	stopped := b.stop.Stop()
	if atEOF && b.keep && stopped {
		_ = b.rc.Close()
		b.h.put(b.c)
		return
	}
	// Close the connection first: closing a body that is not at its end reads it
	// to the end.
	_ = b.c.nc.Close()
	_ = b.rc.Close()
}

// writeRequest writes r (which has no body) as r.Write(bw) would, byte for byte,
// without its allocations (a transfer writer, fmt's boxed arguments, the sorted
// header's key-value slice); anything out of the ordinary goes to r.Write.
func (c *h1Conn) writeRequest(r *http.Request) error {
	host, ruri, ok := c.leanWritable(r)
	if !ok {
		return r.Write(c.bw)
	}
	bw := c.bw
	_, _ = bw.WriteString(r.Method)
	_ = bw.WriteByte(' ')
	_, _ = bw.WriteString(ruri)
	_, _ = bw.WriteString(" HTTP/1.1\r\nHost: ")
	_, _ = bw.WriteString(host)
	_, _ = bw.WriteString("\r\n")
	ua := "Go-http-client/1.1" // net/http's default, unless the header has one
	if vs, ok := r.Header["User-Agent"]; ok {
		ua = ""
		if len(vs) > 0 {
			ua = textproto.TrimString(vs[0])
		}
	}
	if ua != "" {
		_, _ = bw.WriteString("User-Agent: ")
		_, _ = bw.WriteString(ua)
		_, _ = bw.WriteString("\r\n")
	}
	switch r.Method {
	case http.MethodPost, http.MethodPut, http.MethodPatch: // as net/http's transferWriter
		_, _ = bw.WriteString("Content-Length: 0\r\n")
	}
	for _, k := range c.keys {
		for _, v := range r.Header[k] {
			_, _ = bw.WriteString(k)
			_, _ = bw.WriteString(": ")
			_, _ = bw.WriteString(textproto.TrimString(v))
			_, _ = bw.WriteString("\r\n")
		}
	}
	_, err := bw.WriteString("\r\n")
	return err
}

// leanWritable is true when writeRequest may write r itself, with the Host and
// request target it returns; it leaves the header's keys to write, sorted, in
// c.keys.
func (c *h1Conn) leanWritable(r *http.Request) (host, ruri string, ok bool) {
	if r.Body != nil && r.Body != http.NoBody || r.ContentLength != 0 || len(r.TransferEncoding) > 0 ||
		len(r.Trailer) > 0 || r.Close || r.Method == "" || r.Method == http.MethodConnect || r.URL == nil ||
		httptrace.ContextClientTrace(r.Context()) != nil {
		return "", "", false
	}
	host = r.Host
	if host == "" {
		host = r.URL.Host
	}
	// As is in Request.write: ASCII (no Punycode), valid, and no IPv6 zone.
	for i := 0; i < len(host); i++ {
		if host[i] >= utf8.RuneSelf || host[i] == '%' {
			return "", "", false
		}
	}
	ruri = r.URL.RequestURI()
	if !httpguts.ValidHostHeader(host) || !httpfield.ValidOriginTarget(r.Method, ruri) {
		return "", "", false
	}
	c.keys = c.keys[:0]
	for k, vs := range r.Header {
		for _, v := range vs {
			if strings.ContainsAny(v, "\r\n") {
				return "", "", false
			}
		}
		switch k {
		case "Host", "User-Agent", "Content-Length", "Transfer-Encoding", "Trailer":
			continue
		}
		if !httpguts.ValidHeaderFieldName(k) {
			return "", "", false
		}
		c.keys = append(c.keys, k)
	}
	slices.Sort(c.keys)
	return host, ruri, true
}
