package dataplane

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// h1Exchange sends raw request bytes to the proxy's inbound listener and reads one
// response with br (shared across calls on one connection).
func h1Exchange(t *testing.T, c net.Conn, br *bufio.Reader, raw string, method string) *http.Response {
	t.Helper()
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		t.Fatalf("reading the response to %q: %v", strings.SplitN(raw, "\r\n", 2)[0], err)
	}
	return resp
}

// dialRaw connects to addr, with a 10 s deadline; the connection closes at the end.
func dialRaw(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return c, bufio.NewReader(c)
}

func body(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	return string(b)
}

// The HTTP/1 server keeps connections alive (HTTP/1.1, and HTTP/1.0 that asks),
// chunks responses of unknown length with their trailers, answers 100-continue,
// refuses unknown expectations and malformed requests, and hands over upgrades.
func TestH1Server(t *testing.T) {
	app := h2App(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/chunked":
			w.Header().Set("Trailer", "X-Sum")
			w.WriteHeader(200)
			_, _ = io.WriteString(w, "part one,")
			w.(http.Flusher).Flush()
			_, _ = io.WriteString(w, "part two")
			w.Header().Set("X-Sum", "42")
		case "/upload":
			b, _ := io.ReadAll(r.Body)
			_, _ = io.WriteString(w, "got "+string(b))
		case "/upgrade":
			w.Header().Set("Connection", "Upgrade")
			w.Header().Set("Upgrade", "echo")
			w.WriteHeader(http.StatusSwitchingProtocols)
			c, brw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			defer func() { _ = c.Close() }()
			line, _ := brw.ReadString('\n')
			_, _ = brw.WriteString("echo: " + line)
			_ = brw.Flush()
		default:
			_, _ = io.WriteString(w, "hello "+r.Proto)
		}
	}))
	tp := plainProxy(t, app, 5*time.Second)
	dial := func() (net.Conn, *bufio.Reader) { return dialRaw(t, tp.in.Addr().String()) }

	t.Run("keep-alive and chunked trailers", func(t *testing.T) {
		c, br := dial()
		r1 := h1Exchange(t, c, br, "GET /chunked HTTP/1.1\r\nHost: web\r\n\r\n", "GET")
		if got := body(t, r1); got != "part one,part two" || r1.Trailer.Get("X-Sum") != "42" || len(r1.TransferEncoding) == 0 {
			t.Fatalf("chunked: %q trailer %q te %v", got, r1.Trailer.Get("X-Sum"), r1.TransferEncoding)
		}
		r2 := h1Exchange(t, c, br, "HEAD / HTTP/1.1\r\nHost: web\r\n\r\n", "HEAD")
		if got := body(t, r2); r2.StatusCode != 200 || got != "" {
			t.Fatalf("HEAD on the same connection: %d %q", r2.StatusCode, got)
		}
		r3 := h1Exchange(t, c, br, "GET / HTTP/1.1\r\nHost: web\r\n\r\n", "GET")
		if got := body(t, r3); got != "hello HTTP/1.1" {
			t.Fatalf("third request on the same connection: %q", got)
		}
	})

	t.Run("HTTP/1.0 keep-alive only when asked", func(t *testing.T) {
		c, br := dial()
		r := h1Exchange(t, c, br, "GET / HTTP/1.0\r\nHost: web\r\nConnection: keep-alive\r\n\r\n", "GET")
		if body(t, r); r.Close || r.ContentLength < 0 {
			t.Fatalf("HTTP/1.0 keep-alive: close=%v length=%d", r.Close, r.ContentLength)
		}
		r = h1Exchange(t, c, br, "GET / HTTP/1.0\r\nHost: web\r\n\r\n", "GET")
		if body(t, r); !r.Close {
			t.Fatalf("HTTP/1.0 without keep-alive must close")
		}
		if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
			t.Fatalf("connection still open after HTTP/1.0 without keep-alive: %v", err)
		}
	})

	t.Run("HTTP/1.1 Connection: close", func(t *testing.T) {
		c, br := dial()
		r := h1Exchange(t, c, br, "GET / HTTP/1.1\r\nHost: web\r\nConnection: close\r\n\r\n", "GET")
		if got := body(t, r); got != "hello HTTP/1.1" || !r.Close {
			t.Fatalf("Connection: close: %q close=%v", got, r.Close)
		}
		if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
			t.Fatalf("connection still open after Connection: close: %v", err)
		}
	})

	t.Run("100-continue", func(t *testing.T) {
		c, br := dial()
		_, _ = io.WriteString(c, "POST /upload HTTP/1.1\r\nHost: web\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
		interim, err := http.ReadResponse(br, &http.Request{Method: "POST"})
		if err != nil || interim.StatusCode != http.StatusContinue {
			t.Fatalf("want 100 Continue before the body, got %v %v", interim, err)
		}
		_, _ = io.WriteString(c, "hello")
		r, err := http.ReadResponse(br, &http.Request{Method: "POST"})
		if err != nil {
			t.Fatal(err)
		}
		if got := body(t, r); got != "got hello" {
			t.Fatalf("upload after 100-continue: %q", got)
		}
	})

	t.Run("unknown expectation", func(t *testing.T) {
		c, br := dial()
		r := h1Exchange(t, c, br, "POST /upload HTTP/1.1\r\nHost: web\r\nContent-Length: 1\r\nExpect: magic\r\n\r\nx", "POST")
		if r.StatusCode != http.StatusExpectationFailed || !r.Close {
			t.Fatalf("unknown Expect: %d close=%v", r.StatusCode, r.Close)
		}
	})

	t.Run("malformed", func(t *testing.T) {
		c, br := dial()
		r := h1Exchange(t, c, br, "GET / HTTP/1.1\r\nHost: web\r\nBad Header Line\r\n\r\n", "GET")
		if r.StatusCode != http.StatusBadRequest || !r.Close {
			t.Fatalf("malformed request: %d close=%v", r.StatusCode, r.Close)
		}
	})

	t.Run("upgrade", func(t *testing.T) {
		c, br := dial()
		r := h1Exchange(t, c, br, "GET /upgrade HTTP/1.1\r\nHost: web\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n", "GET")
		if r.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("upgrade: %d", r.StatusCode)
		}
		_, _ = io.WriteString(c, "ping\n")
		if got, err := br.ReadString('\n'); err != nil || got != "echo: ping\n" {
			t.Fatalf("after the upgrade: %q %v", got, err)
		}
	})
}

// A connection idle at drain is closed; one busy with a request gets its response
// (with Connection: close semantics) and is closed after it.
func TestH1ServerDrain(t *testing.T) {
	arrived := make(chan struct{})
	release, releaseNow := releaser(t)
	app := h2App(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(arrived)
			<-release
		}
		_, _ = io.WriteString(w, "done")
	}))
	tp := plainProxy(t, app, 10*time.Second)
	dial := func() (net.Conn, *bufio.Reader) { return dialRaw(t, tp.in.Addr().String()) }
	idle, idleBR := dial()
	if got := body(t, h1Exchange(t, idle, idleBR, "GET / HTTP/1.1\r\nHost: web\r\n\r\n", "GET")); got != "done" {
		t.Fatalf("warm-up: %q", got)
	}
	busy, busyBR := dial()
	_, _ = io.WriteString(busy, "GET /slow HTTP/1.1\r\nHost: web\r\n\r\n")
	<-arrived
	tp.stop()
	if _, err := idleBR.ReadByte(); err == nil {
		t.Fatal("idle connection still open after drain started")
	}
	releaseNow()
	r, err := http.ReadResponse(busyBR, &http.Request{Method: "GET"})
	if err != nil {
		t.Fatalf("in-flight request during drain: %v", err)
	}
	if got := body(t, r); got != "done" {
		t.Fatalf("in-flight request during drain: %q", got)
	}
	if _, err := busyBR.ReadByte(); err == nil {
		t.Fatal("busy connection still open after its request during drain")
	}
	_ = idle
}
