package h1

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is newH1Client's now, moved by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// rawH1 is an HTTP/1.1 server written by hand: respond writes the answer to each
// request on connection conn (numbered from 1 in accept order) and says whether to
// keep the connection open for more.
type rawH1 struct {
	l       net.Listener
	accepts atomic.Int32
	reqs    chan rawReq   // every request read
	closed  chan int32    // connections that ended (the client closed, or respond said so)
	quit    chan struct{} // closed at cleanup
}

type rawReq struct {
	conn   int32
	method string
	path   string
}

func startRawH1(t *testing.T, respond func(conn int32, r *http.Request, w *bufio.Writer) (keep bool)) *rawH1 {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &rawH1{l: l, reqs: make(chan rawReq, 100), closed: make(chan int32, 100), quit: make(chan struct{})}
	var wg sync.WaitGroup
	t.Cleanup(func() { close(s.quit); _ = l.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			n := s.accepts.Add(1)
			wg.Go(func() {
				defer func() { _ = c.Close(); s.closed <- n }()
				go func() { <-s.quit; _ = c.Close() }()
				br, bw := bufio.NewReader(c), bufio.NewWriter(c)
				for {
					r, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					_, _ = io.Copy(io.Discard, r.Body)
					s.reqs <- rawReq{n, r.Method, r.URL.Path}
					keep := respond(n, r, bw)
					if bw.Flush() != nil || !keep {
						return
					}
				}
			})
		}
	})
	return s
}

func (s *rawH1) addr() string { return s.l.Addr().String() }

// countingServer is an httptest server that counts its connections.
func countingServer(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &conns
}

// h1Do sends a bodiless request through h and reads the whole response.
func h1Do(t *testing.T, h *Client, method, url string) (*http.Response, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := h.RoundTrip(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	b, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		t.Fatalf("%s %s: body: %v", method, url, err)
	}
	return resp, string(b)
}

// Sequential requests — with a length, chunked with trailers, HEAD — share one
// connection.
func TestH1ClientReuse(t *testing.T) {
	srv, conns := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/chunked":
			w.Header().Set("Trailer", "X-Sum")
			_, _ = io.WriteString(w, "part1,")
			w.(http.Flusher).Flush()
			_, _ = io.WriteString(w, "part2")
			w.Header().Set("X-Sum", "42")
		case "/head":
			w.Header().Set("Content-Length", "1234")
		default:
			_, _ = io.WriteString(w, "hello "+r.Method)
		}
	})
	h := NewClient(time.Second, time.Now)
	defer h.CloseIdleConnections()
	for range 3 {
		if resp, body := h1Do(t, h, "GET", srv.URL+"/"); resp.StatusCode != 200 || body != "hello GET" {
			t.Fatalf("GET: %d %q", resp.StatusCode, body)
		}
	}
	resp, body := h1Do(t, h, "GET", srv.URL+"/chunked")
	if body != "part1,part2" || resp.Trailer.Get("X-Sum") != "42" || resp.ContentLength != -1 {
		t.Errorf("chunked: %q, trailer %v, length %d", body, resp.Trailer, resp.ContentLength)
	}
	resp, body = h1Do(t, h, "HEAD", srv.URL+"/head")
	if resp.StatusCode != 200 || body != "" || resp.ContentLength != 1234 {
		t.Errorf("HEAD: %d %q, length %d", resp.StatusCode, body, resp.ContentLength)
	}
	if resp, body := h1Do(t, h, "POST", srv.URL+"/"); body != "hello POST" {
		t.Errorf("POST: %d %q", resp.StatusCode, body)
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections for 6 sequential requests, want 1", n)
	}
}

// A pooled connection the server closed while idle: a GET is retried on a new one.
func TestH1ClientRetriesClosedIdle(t *testing.T) {
	s := startRawH1(t, func(_ int32, _ *http.Request, w *bufio.Writer) bool {
		_, _ = io.WriteString(w, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		return false // close once answered (without saying so)
	})
	h := NewClient(time.Second, time.Now)
	defer h.CloseIdleConnections()
	url := "http://" + s.addr() + "/"
	if _, body := h1Do(t, h, "GET", url); body != "ok" {
		t.Fatalf("first: %q", body)
	}
	select {
	case <-s.closed: // the pooled connection is closed at the server
	case <-time.After(10 * time.Second):
		t.Fatal("server never closed")
	}
	if resp, body := h1Do(t, h, "GET", url); resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("retried GET: %d %q", resp.StatusCode, body)
	}
	if n := s.accepts.Load(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
}

// When the server closed every pooled connection (as an application does after its
// idle timeout), the retry dials a new one instead of taking the next dead one.
func TestH1ClientRetryDialsWhenAllIdleClosed(t *testing.T) {
	s := startRawH1(t, func(_ int32, _ *http.Request, w *bufio.Writer) bool {
		_, _ = io.WriteString(w, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		return false // close once answered (without saying so)
	})
	h := NewClient(time.Second, time.Now)
	defer h.CloseIdleConnections()
	url := "http://" + s.addr() + "/"
	// Two connections at once, both pooled when their bodies are read.
	var bodies []io.ReadCloser
	for range 2 {
		req, _ := http.NewRequest("GET", url, nil)
		resp, err := h.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		bodies = append(bodies, resp.Body)
	}
	for _, b := range bodies {
		_, _ = io.ReadAll(b)
		_ = b.Close()
	}
	for range 2 {
		select {
		case <-s.closed:
		case <-time.After(10 * time.Second):
			t.Fatal("server never closed")
		}
	}
	if resp, body := h1Do(t, h, "GET", url); resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("retried GET: %d %q", resp.StatusCode, body)
	}
	if n := s.accepts.Load(); n != 3 {
		t.Errorf("%d connections, want 3", n)
	}
}

// A request that must not be sent twice only goes on a connection idle for less
// than h1FreshIdle; a GET may use an older one.
func TestH1ClientFreshIdleForUnreplayable(t *testing.T) {
	s := startRawH1(t, func(_ int32, _ *http.Request, w *bufio.Writer) bool {
		_, _ = io.WriteString(w, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		return true
	})
	clock := &fakeClock{t: time.Unix(1e9, 0)}
	h := NewClient(time.Second, clock.now)
	defer h.CloseIdleConnections()
	url := "http://" + s.addr() + "/"
	seen := func() rawReq {
		select {
		case r := <-s.reqs:
			return r
		case <-time.After(10 * time.Second):
			t.Fatal("no request at the server")
			return rawReq{}
		}
	}
	for _, step := range []struct {
		idle     time.Duration
		method   string
		wantConn int32
	}{
		{0, "GET", 1},
		{h1FreshIdle / 2, "POST", 1},                // fresh enough
		{2 * h1FreshIdle, "GET", 1},                 // replayable: reuse
		{h1FreshIdle + time.Millisecond, "POST", 2}, // stale: a new connection
		{h1FreshIdle / 2, "DELETE", 2},              // fresh again
		{2 * h1FreshIdle, "PATCH", 3},
	} {
		clock.advance(step.idle)
		h1Do(t, h, step.method, url)
		if r := seen(); r.conn != step.wantConn || r.method != step.method {
			t.Errorf("%s after %v idle went on connection %d, want %d", step.method, step.idle, r.conn, step.wantConn)
		}
	}
	// Past clientIdleTimeout nothing is reused.
	clock.advance(clientIdleTimeout + time.Second)
	h1Do(t, h, "GET", url)
	if r := seen(); r.conn != 4 {
		t.Errorf("GET after %v idle went on connection %d, want a new one", clientIdleTimeout, r.conn)
	}
}

// Interim 1xx responses are skipped; 101 is an error; "Connection: close" and a
// body closed before its end leave the connection out of the pool.
func TestH1ClientResponses(t *testing.T) {
	s := startRawH1(t, func(_ int32, r *http.Request, w *bufio.Writer) bool {
		switch r.URL.Path {
		case "/hints":
			_, _ = io.WriteString(w, "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"+
				"HTTP/1.1 100 Continue\r\n\r\n"+
				"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal")
		case "/switch":
			_, _ = io.WriteString(w, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: x\r\n\r\n")
		case "/close":
			// Says close but stays open: only the header may keep it out of the pool.
			_, _ = io.WriteString(w, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok")
		case "/big":
			_, _ = io.WriteString(w, "HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n"+strings.Repeat("x", 1000000))
		default:
			_, _ = io.WriteString(w, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
		return true
	})
	h := NewClient(time.Second, time.Now)
	defer h.CloseIdleConnections()
	url := "http://" + s.addr()
	seen := func() int32 {
		select {
		case r := <-s.reqs:
			return r.conn
		case <-time.After(10 * time.Second):
			t.Fatal("no request at the server")
			return 0
		}
	}

	if resp, body := h1Do(t, h, "GET", url+"/hints"); resp.StatusCode != 200 || body != "final" {
		t.Errorf("after 1xx: %d %q", resp.StatusCode, body)
	}
	seen()
	if _, body := h1Do(t, h, "GET", url+"/"); body != "ok" || seen() != 1 {
		t.Errorf("connection not reused after 1xx (body %q)", body)
	}

	if resp, body := h1Do(t, h, "GET", url+"/close"); body != "ok" || !resp.Close {
		t.Errorf("close: %q, Close %v", body, resp.Close)
	}
	seen()
	if h1Do(t, h, "GET", url+"/"); seen() != 2 {
		t.Error(`a "Connection: close" connection was reused`)
	}

	req, _ := http.NewRequest("GET", url+"/big", nil)
	resp, err := h.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	bigConn := seen()
	if _, err := io.ReadFull(resp.Body, make([]byte, 10)); err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	for closed := false; !closed; {
		select {
		case n := <-s.closed:
			closed = n == bigConn
		case <-time.After(10 * time.Second):
			t.Fatal("a body closed before its end left its connection open")
		}
	}
	if h1Do(t, h, "GET", url+"/"); seen() == bigConn {
		t.Error("a connection whose body was closed early was reused")
	}

	req, _ = http.NewRequest("GET", url+"/switch", nil)
	if resp, err := h.RoundTrip(req); err == nil {
		_ = resp.Body.Close()
		t.Errorf("101: no error (status %d)", resp.StatusCode)
	}
}

// A request cancelled while waiting for its response returns at once, and its
// connection is closed.
func TestH1ClientCancelWhileWaiting(t *testing.T) {
	s := startRawH1(t, func(_ int32, _ *http.Request, _ *bufio.Writer) bool {
		return true // never answers
	})
	h := NewClient(time.Second, time.Now)
	defer h.CloseIdleConnections()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+s.addr()+"/", nil)
	errc := make(chan error, 1)
	go func() {
		resp, err := h.RoundTrip(req)
		if err == nil {
			_ = resp.Body.Close()
		}
		errc <- err
	}()
	select {
	case <-s.reqs:
	case <-time.After(10 * time.Second):
		t.Fatal("no request at the server")
	}
	cancel()
	select {
	case err := <-errc:
		if err == nil {
			t.Fatal("no error after the context was cancelled")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("RoundTrip still waiting 10 s after its context was cancelled")
	}
	select {
	case <-s.closed:
	case <-time.After(10 * time.Second):
		t.Fatal("the connection was not closed")
	}
	if s.accepts.Load() != 1 {
		t.Errorf("%d connections: a cancelled request was retried", s.accepts.Load())
	}
}

// A dial that fails is reported.
func TestH1ClientDialError(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	h := NewClient(0, time.Now)
	req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
	if resp, err := h.RoundTrip(req); err == nil {
		_ = resp.Body.Close()
		t.Error("no error from a closed port")
	}
}

// writeRequest writes what Request.Write does, byte for byte, whether it writes the
// request itself or leaves it to Request.Write.
func TestH1WriteRequestAsNetHTTP(t *testing.T) {
	mk := func(method, target, host string, h http.Header) *http.Request {
		u, err := url.ParseRequestURI(target)
		if err != nil {
			t.Fatal(err)
		}
		u.Scheme, u.Host = "http", "127.0.0.1:8080"
		return &http.Request{Method: method, URL: u, Host: host, Header: h, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}
	}
	reqs := []*http.Request{
		mk("GET", "/", "web.default.svc.cluster.local:8080", http.Header{"User-Agent": {""}}),
		mk("GET", "/a/b?x=1&y=%20", "web", http.Header{"User-Agent": {"curl/8"}, "Accept": {"*/*"}, "X-B": {"2", " 3 "}, "X-A": {"1"}}),
		mk("GET", "/", "", http.Header{}), // no Host: the URL's; no User-Agent: Go's
		mk("POST", "/p", "h", http.Header{"User-Agent": {""}}),
		mk("PUT", "/p", "h", http.Header{"User-Agent": {"u"}, "Content-Length": {"0"}, "Host": {"other"}}),
		mk("DELETE", "/d", "h", http.Header{"User-Agent": {"\tpadded "}, "Trailer": {"X"}, "Transfer-Encoding": {"chunked"}}),
		mk("OPTIONS", "*", "h", http.Header{}),
		mk("HEAD", "/h", "[fe80::1%25en0]:80", http.Header{}), // a zone: Request.Write's
		mk("GET", "/h", "bücher.example", http.Header{}),      // Punycode: Request.Write's
		mk("GET", "/h", "bad host", http.Header{}),            // invalid Host: Request.Write's
		mk("GET", "/h", "h", http.Header{"X-Nl": {"a\r\nb"}}), // Request.Write's
		mk("GET", "/h", "h", http.Header{"Bad Name": {"v"}}),  // Request.Write's (dropped)
		mk("PATCH", "/h", "h", http.Header{"Cookie": {"a=1; b=2"}, "Mesh-Orig-Proto": {"HTTP/1.1"}}),
	}
	closeReq := mk("GET", "/c", "h", http.Header{"User-Agent": {""}})
	closeReq.Close = true
	reqs = append(reqs, closeReq)
	lean := []bool{true, true, true, true, true, true, true, false, false, false, false, false, true, false}
	for i, r := range reqs {
		if _, _, ok := (&h1Conn{}).leanWritable(r); ok != lean[i] {
			t.Errorf("%s %s: leanWritable %v, want %v", r.Method, r.URL, ok, lean[i])
		}
		var want, got bytes.Buffer
		if err := r.Write(&want); err != nil {
			t.Fatalf("%s %s: Request.Write: %v", r.Method, r.URL, err)
		}
		c := &h1Conn{bw: bufio.NewWriter(&got)}
		if err := c.writeRequest(r); err != nil {
			t.Fatal(err)
		}
		_ = c.bw.Flush()
		if got.String() != want.String() {
			t.Errorf("%s %s:\n got %q\nwant %q", r.Method, r.URL, got.String(), want.String())
		}
	}
	// The common case allocates nothing.
	r := reqs[1]
	c := &h1Conn{bw: bufio.NewWriter(io.Discard)}
	if n := testing.AllocsPerRun(100, func() { _ = c.writeRequest(r) }); n > 1 { // RequestURI joins path and query
		t.Errorf("writeRequest: %v allocs", n)
	}
}
