package h1

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/meshplane/mesh/proxy/httpfield"
)

// FuzzH1Server feeds arbitrary bytes to the HTTP/1 server, whose handler records
// each request as forwarding would pass it on, and compares with net/http on the
// same bytes (http.ReadRequest and the checks of net/http's server): whatever the
// proxy forwards must be what net/http parses at the same place in the stream —
// method, target, Host, headers without the hop-by-hop ones, body, declared
// trailers — or the proxy must have refused it. Any panic or hang fails.
//
// Each input is served twice: by a handler that reads the body (as forwarding does)
// and by one that does not (the server then drains it).
//
//	go test ./proxy/h1 -run '^$' -fuzz FuzzH1Server -fuzztime 30s
func FuzzH1Server(f *testing.F) {
	srv := &Server{HeaderTimeout: time.Second}
	f.Fuzz(func(t *testing.T, data []byte) {
		want := netHTTPRequests(t, data)
		for _, read := range []bool{true, false} {
			got := proxyRequests(t, srv, data, read)
			if err := compareForwarded(got, want, read); err != nil {
				t.Fatalf("reading bodies %v: %v\ninput %q\nproxy:   %+v\nnet/http: %+v", read, err, data, got, want)
			}
		}
	})
}

// forwarded is a request as the application would get it.
type forwarded struct {
	Method, RequestURI, URL, Host, Proto string
	Header                               http.Header
	ContentLength                        int64
	Close                                bool
	Body                                 string
	BodyOK                               bool // the body was read to its end
	Trailer                              http.Header
}

func record(r *http.Request, body []byte, bodyErr error) forwarded {
	h := r.Header.Clone()
	httpfield.RemoveHopHeaders(h)
	delete(h, "Expect")
	return forwarded{Method: r.Method, RequestURI: r.RequestURI, URL: r.URL.String(), Host: r.Host, Proto: r.Proto,
		Header: h, ContentLength: r.ContentLength, Close: r.Close, Body: string(body), BodyOK: bodyErr == nil,
		Trailer: r.Trailer.Clone()}
}

// proxyRequests serves data with the proxy's HTTP/1 server over an in-memory
// connection and returns the requests its handler saw.
func proxyRequests(t *testing.T, srv *Server, data []byte, read bool) []forwarded {
	var got []forwarded
	var panicked any
	h := func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				panicked = v
			}
		}()
		var body []byte
		var err error
		if read {
			body, err = io.ReadAll(r.Body)
		}
		got = append(got, record(r, body, err))
		_, _ = io.WriteString(w, "ok")
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s := *srv
		s.Handler = http.HandlerFunc(h)
		s.ServeConn(context.Background(), &memConn{r: bytes.NewReader(data)})
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("the server hangs on %q", data)
	}
	if panicked != nil {
		t.Fatalf("panic reading %q: %v", data, panicked)
	}
	return got
}

// netHTTPRequests serves data with net/http's server over an in-memory connection
// and returns the requests its handler saw, each with its body read.
func netHTTPRequests(t *testing.T, data []byte) []forwarded {
	var mu sync.Mutex
	var reqs []forwarded
	c := &memConn{r: bytes.NewReader(data), closed: make(chan struct{})}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, err := io.ReadAll(r.Body)
			mu.Lock()
			reqs = append(reqs, record(r, body, err))
			mu.Unlock()
			_, _ = io.WriteString(w, "ok")
		}),
		DisableGeneralOptionsHandler: true,
		ErrorLog:                     log.New(io.Discard, "", 0),
	}
	l := &oneConnListener{c: c, done: make(chan struct{})}
	go func() { _ = srv.Serve(l) }()
	select {
	case <-c.closed:
	case <-time.After(10 * time.Second):
		t.Fatalf("net/http's server hangs on %q", data)
	}
	_ = srv.Close()
	mu.Lock()
	defer mu.Unlock()
	return reqs
}

// oneConnListener accepts c, then nothing until it is closed.
type oneConnListener struct {
	c        net.Conn
	accepted bool
	done     chan struct{}
	once     sync.Once
}

func (l *oneConnListener) Accept() (net.Conn, error) {
	if !l.accepted {
		l.accepted = true
		return l.c, nil
	}
	<-l.done
	return nil, net.ErrClosed
}

func (l *oneConnListener) Close() error   { l.once.Do(func() { close(l.done) }); return nil }
func (l *oneConnListener) Addr() net.Addr { return memAddr{} }

// compareForwarded checks that each request the proxy forwarded is the one net/http
// parsed at the same place: the proxy may stop earlier (it refused), never later,
// never differently; a body the proxy read to its end net/http read too, to the
// same bytes; after a broken body nothing more is served.
func compareForwarded(got, want []forwarded, read bool) error {
	for i, g := range got {
		if i >= len(want) {
			return fmt.Errorf("request %d forwarded, net/http refused it", i)
		}
		w := want[i]
		fixPragma(g.Header)
		if g.Method != w.Method || g.RequestURI != w.RequestURI || g.URL != w.URL || g.Host != w.Host ||
			g.Proto != w.Proto || g.ContentLength != w.ContentLength || g.Close != w.Close {
			return fmt.Errorf("request %d differs", i)
		}
		if !reflect.DeepEqual(g.Header, w.Header) {
			return fmt.Errorf("request %d: header %v, net/http %v", i, g.Header, w.Header)
		}
		if !read {
			continue
		}
		if !g.BodyOK {
			if i != len(got)-1 {
				return fmt.Errorf("request %d: served after a broken body", i+1)
			}
			continue
		}
		if !w.BodyOK || g.Body != w.Body {
			return fmt.Errorf("request %d: body %q (complete), net/http %q (complete: %v)", i, g.Body, w.Body, w.BodyOK)
		}
		for k, vs := range g.Trailer {
			if vs != nil && !reflect.DeepEqual(vs, w.Trailer[k]) {
				return fmt.Errorf("request %d: trailer %s: %q, net/http %q", i, k, vs, w.Trailer[k])
			}
		}
	}
	return nil
}

// fixPragma adds what http.ReadRequest adds (a Cache-Control for Pragma: no-cache),
// which the proxy does not.
func fixPragma(h http.Header) {
	if hp, ok := h["Pragma"]; ok && len(hp) > 0 && hp[0] == "no-cache" {
		if _, ok := h["Cache-Control"]; !ok {
			h["Cache-Control"] = []string{"no-cache"}
		}
	}
}

// memConn is a connection that reads r to its end and discards writes; closed, if
// set, is closed with it.
type memConn struct {
	mu     sync.Mutex
	r      *bytes.Reader
	closed chan struct{}
	once   sync.Once
}

func (c *memConn) Read(p []byte) (int, error) {
	c.mu.Lock() // net/http's server reads from two goroutines (one in the background)
	defer c.mu.Unlock()
	return c.r.Read(p)
}

func (c *memConn) Write(p []byte) (int, error) { return len(p), nil }

func (c *memConn) Close() error {
	c.once.Do(func() {
		if c.closed != nil {
			close(c.closed)
		}
	})
	return nil
}

func (c *memConn) LocalAddr() net.Addr              { return memAddr{} }
func (c *memConn) RemoteAddr() net.Addr             { return memAddr{} }
func (c *memConn) SetDeadline(time.Time) error      { return nil }
func (c *memConn) SetReadDeadline(time.Time) error  { return nil }
func (c *memConn) SetWriteDeadline(time.Time) error { return nil }

type memAddr struct{}

func (memAddr) Network() string { return "mem" }
func (memAddr) String() string  { return "mem" }
