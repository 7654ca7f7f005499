package dataplane

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshplane/mesh/proxy/h2"
	"github.com/meshplane/mesh/proxy/httpfield"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

func TestH2FlowControl(t *testing.T) {
	const reqSize, respSize = 3<<20 + 12345, 4<<20 + 777
	reqBody := make([]byte, reqSize)
	_, _ = rand.NewChaCha8([32]byte{1}).Read(reqBody)
	respBody := make([]byte, respSize)
	_, _ = rand.NewChaCha8([32]byte{2}).Read(respBody)
	appAddr := h2App(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, err := io.Copy(h, r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("X-Req-Sum", hex.EncodeToString(h.Sum(nil)))
		w.Header().Set("X-Req-Len", strconv.FormatInt(n, 10))
		w.Header().Set("X-App-Proto", r.Proto)
		if r.URL.Query().Get("cl") == "1" {
			w.Header().Set("Content-Length", strconv.Itoa(respSize))
		}
		_, _ = w.Write(respBody)
	}))
	tp := plainProxy(t, appAddr, 2*time.Second)
	wantReq := sha256.Sum256(reqBody)
	wantResp := sha256.Sum256(respBody)

	for _, tc := range []struct {
		name, path, proto string
		extra             []string
		timer             bool // grant window on a timer, not when the last grant is used up
	}{
		{"h2c streamed/grant when used up", "/big", "HTTP/2.0", nil, false},
		{"orig-proto with lengths/grant when used up", "/big?cl=1", "HTTP/1.1", []string{"mesh-orig-proto", "HTTP/1.1", "content-length", strconv.Itoa(reqSize)}, false},
		{"h2c streamed/grant on a timer", "/big", "HTTP/2.0", nil, true},
		{"orig-proto with lengths/grant on a timer", "/big?cl=1", "HTTP/1.1", []string{"mesh-orig-proto", "HTTP/1.1", "content-length", strconv.Itoa(reqSize)}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialH2Raw(t, tp.in.Addr().String(), http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1000})
			var (
				mu                   sync.Mutex // all below
				cond                 = sync.Cond{L: &mu}
				sendConn, sendStream = int64(h2.DefaultWindow), int64(h2.DefaultWindow) // ours, as the server grants
				readErr              error
				got                  int64 // response DATA received (flow-controlled bytes)
				// Response window granted so far.
				streamAllowed, connAllowed = int64(1000), int64(h2.DefaultWindow)
			)
			// grant sends WINDOW_UPDATEs; mu is held.
			grant := func(stream, conn uint32) {
				streamAllowed += int64(stream)
				connAllowed += int64(conn)
				c.write(func() error {
					if stream > 0 {
						if err := c.fr.WriteWindowUpdate(1, stream); err != nil {
							return err
						}
					}
					if conn > 0 {
						return c.fr.WriteWindowUpdate(0, conn)
					}
					return nil
				})
			}
			stopTimer, timerDone := make(chan struct{}), make(chan struct{})
			defer func() { close(stopTimer); <-timerDone }() // it writes frames: never after the test ends
			if !tc.timer {
				close(timerDone)
			} else {
				go func() {
					defer close(timerDone)
					tick := time.NewTicker(time.Millisecond)
					defer tick.Stop()
					for {
						select {
						case <-stopTimer:
							return
						case <-tick.C:
						}
						mu.Lock()
						var s, cw uint32
						// Up to 64000 bytes outstanding: past the server's write
						// buffer, so that the bug above stays out of the way.
						if streamAllowed-got < 64000 {
							s = 16000
						}
						if connAllowed-got < 64000 {
							cw = 16000
						}
						if s > 0 || cw > 0 {
							grant(s, cw)
						}
						mu.Unlock()
					}
				}()
			}
			type result struct {
				status, sum, n, proto string
				hash                  []byte
				err                   error
			}
			done := make(chan result, 1)
			go func() { // the reader
				var res result
				defer func() {
					mu.Lock()
					readErr = errors.Join(res.err, errors.New("reader done"))
					cond.Broadcast()
					mu.Unlock()
					done <- res
				}()
				h := sha256.New()
				grants := []uint32{1000, 1, 16384, 40000, 7, 3000}
				ng := 0
				for {
					f, err := c.fr.ReadFrame()
					if err != nil {
						mu.Lock()
						res.err = fmt.Errorf("after %d response bytes (windows allow %d, %d; our send windows %d, %d): %w", got, streamAllowed, connAllowed, sendStream, sendConn, err)
						mu.Unlock()
						return
					}
					switch f := f.(type) {
					case *http2.SettingsFrame:
						if f.IsAck() {
							continue
						}
						if v, ok := f.Value(http2.SettingInitialWindowSize); ok {
							mu.Lock()
							sendStream += int64(v) - h2.DefaultWindow
							cond.Broadcast()
							mu.Unlock()
						}
						c.write(c.fr.WriteSettingsAck)
					case *http2.WindowUpdateFrame:
						mu.Lock()
						if f.StreamID == 0 {
							sendConn += int64(f.Increment)
						} else {
							sendStream += int64(f.Increment)
						}
						cond.Broadcast()
						mu.Unlock()
					case *http2.MetaHeadersFrame:
						if res.status == "" {
							res.status = f.PseudoValue("status")
							hd := fieldsHeader(f.RegularFields())
							res.sum, res.n, res.proto = hd.Get("x-req-sum"), hd.Get("x-req-len"), hd.Get("x-app-proto")
						}
						if f.StreamEnded() {
							res.hash = h.Sum(nil)
							return
						}
					case *http2.DataFrame:
						_, _ = h.Write(f.Data())
						mu.Lock()
						got += int64(f.Length)
						if got > streamAllowed || got > connAllowed {
							res.err = fmt.Errorf("server sent %d bytes, windows allow %d (stream), %d (connection)", got, streamAllowed, connAllowed)
							mu.Unlock()
							return
						}
						if f.StreamEnded() {
							mu.Unlock()
							res.hash = h.Sum(nil)
							return
						}
						if !tc.timer && got == streamAllowed {
							if ng++; ng%64 == 0 {
								time.Sleep(time.Millisecond) // let the server wait for window
							}
							grant(grants[ng%len(grants)], 0)
						}
						if !tc.timer && got == connAllowed {
							grant(0, 50000)
						}
						mu.Unlock()
					case *http2.RSTStreamFrame:
						res.err = fmt.Errorf("stream reset: %v", f.ErrCode)
						return
					case *http2.GoAwayFrame:
						res.err = fmt.Errorf("GOAWAY: %v", f.ErrCode)
						return
					}
				}
			}()

			c.request(1, "POST", tc.path, false, tc.extra...)
			for off := 0; off < len(reqBody); {
				mu.Lock()
				for min(sendConn, sendStream) <= 0 && readErr == nil {
					cond.Wait()
				}
				if readErr != nil {
					mu.Unlock()
					t.Fatalf("request body stuck at %d of %d bytes: %v", off, len(reqBody), readErr)
				}
				n := int(min(int64(h2.DefaultFrameSize), sendConn, sendStream, int64(len(reqBody)-off)))
				sendConn -= int64(n)
				sendStream -= int64(n)
				mu.Unlock()
				chunk, end := reqBody[off:off+n], off+n == len(reqBody)
				c.write(func() error { return c.fr.WriteData(1, end, chunk) })
				off += n
			}
			res := <-done
			if res.err != nil {
				t.Fatal(res.err)
			}
			if res.status != "200" || res.proto != tc.proto || res.n != strconv.Itoa(reqSize) || res.sum != hex.EncodeToString(wantReq[:]) {
				t.Errorf("status %s, app saw %s, %s bytes with sum %s", res.status, res.proto, res.n, res.sum)
			}
			mu.Lock()
			defer mu.Unlock()
			if got != respSize || !bytes.Equal(res.hash, wantResp[:]) {
				t.Errorf("response: %d bytes (want %d), hash match %v", got, respSize, bytes.Equal(res.hash, wantResp[:]))
			}
		})
	}
}

// echoHandler answers "proto method query body" and reflects request trailers.
func echoHandler(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Trailer", "X-Resp-Trailer")
	_, _ = fmt.Fprintf(w, "%s %s %s %s", r.Proto, r.Method, r.URL.RawQuery, body)
	w.Header().Set("X-Resp-Trailer", "req-trailer="+r.Trailer.Get("X-Req-Trailer"))
}

// TestH2ConcurrentStreams runs 100 requests at once on one connection, over the three
// ways to the application (h2c, HTTP/1.1 bodiless through h1Client, HTTP/1.1 with a
// body through http.Transport).
func TestH2ConcurrentStreams(t *testing.T) {
	tp := plainProxy(t, h2App(t, http.HandlerFunc(echoHandler)), 2*time.Second)
	cc := h2cConn(t, dialTCP(t, tp.in.Addr().String()))
	var wg sync.WaitGroup
	for i := range 100 {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			method, body, want := "POST", strings.Repeat(fmt.Sprintf("body-%d.", i), 1000), ""
			var req *http.Request
			switch i % 3 {
			case 0:
				req, _ = http.NewRequestWithContext(ctx, method, "http://web.test/echo?i="+strconv.Itoa(i), strings.NewReader(body))
				want = "HTTP/2.0 POST i=" + strconv.Itoa(i) + " " + body
			case 1:
				req, _ = http.NewRequestWithContext(ctx, "GET", "http://web.test/echo?i="+strconv.Itoa(i), nil)
				req.Header.Set(httpfield.OrigProto, "HTTP/1.1")
				want = "HTTP/1.1 GET i=" + strconv.Itoa(i) + " "
			case 2:
				req, _ = http.NewRequestWithContext(ctx, method, "http://web.test/echo?i="+strconv.Itoa(i), strings.NewReader(body))
				req.Header.Set(httpfield.OrigProto, "HTTP/1.1")
				want = "HTTP/1.1 POST i=" + strconv.Itoa(i) + " " + body
			}
			resp, err := cc.RoundTrip(req)
			if err != nil {
				t.Errorf("request %d: %v", i, err)
				return
			}
			got, err := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if err != nil || resp.StatusCode != 200 || string(got) != want {
				t.Errorf("request %d: %d %v, body %.60q (want %.60q)", i, resp.StatusCode, err, got, want)
			}
		})
	}
	wg.Wait()
}

// TestH2Trailers: request trailers reach the application and its response trailers
// (plain and gRPC-style) come back, over h2c and HTTP/1.1 (chunked) to the app.
func TestH2Trailers(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/echo", echoHandler)
	mux.HandleFunc("/grpc", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/grpc")
		w.Header().Set("Trailer", "Grpc-Status, Grpc-Message")
		_, _ = w.Write([]byte{0, 0, 0, 0, 0})
		w.(http.Flusher).Flush()
		w.Header().Set("Grpc-Status", "7")
		w.Header().Set("Grpc-Message", "denied")
	})
	mux.HandleFunc("/grpc-trailers-only", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/grpc")
		w.Header().Set("Grpc-Status", "5")
		w.WriteHeader(http.StatusOK)
	})
	tp := plainProxy(t, h2App(t, mux), 2*time.Second)
	cc := h2cConn(t, dialTCP(t, tp.in.Addr().String()))
	do := func(req *http.Request) (*http.Response, string) {
		t.Helper()
		resp, err := cc.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		return resp, string(b)
	}

	for _, tc := range []struct {
		origProto, reqTrailer bool
	}{{false, false}, {true, false}, {false, true}, {true, true}} {
		t.Run(fmt.Sprintf("orig-proto=%v,request-trailer=%v", tc.origProto, tc.reqTrailer), func(t *testing.T) {
			req, _ := http.NewRequest("POST", "http://web.test/echo", io.MultiReader(strings.NewReader("abc")))
			req.ContentLength = -1 // unknown: chunked to an HTTP/1.1 app, so it can carry trailers
			want := "req-trailer="
			if tc.reqTrailer {
				req.Trailer = http.Header{"X-Req-Trailer": {"rt-value"}}
				want += "rt-value"
			}
			proto := "HTTP/2.0"
			if tc.origProto {
				req.Header.Set(httpfield.OrigProto, "HTTP/1.1")
				proto = "HTTP/1.1"
			}
			resp, body := do(req)
			if resp.StatusCode != 200 || body != proto+" POST  abc" {
				t.Errorf("got %d %q", resp.StatusCode, body)
			}
			if got := resp.Trailer.Get("X-Resp-Trailer"); got != want {
				t.Errorf("response trailer %q (the app's view of the request trailer), want %q", got, want)
			}
		})
	}

	t.Run("grpc", func(t *testing.T) {
		req, _ := http.NewRequest("POST", "http://web.test/grpc", strings.NewReader("\x00\x00\x00\x00\x00"))
		req.Header.Set("Content-Type", "application/grpc")
		req.Header.Set("Te", "trailers")
		resp, body := do(req)
		if resp.StatusCode != 200 || len(body) != 5 || resp.Trailer.Get("Grpc-Status") != "7" || resp.Trailer.Get("Grpc-Message") != "denied" {
			t.Errorf("got %d %q, header %v, trailer %v", resp.StatusCode, body, resp.Header, resp.Trailer)
		}
		req, _ = http.NewRequest("POST", "http://web.test/grpc-trailers-only", strings.NewReader("\x00\x00\x00\x00\x00"))
		req.Header.Set("Content-Type", "application/grpc")
		resp, body = do(req)
		if resp.StatusCode != 200 || body != "" || resp.Header.Get("Grpc-Status")+resp.Trailer.Get("Grpc-Status") != "5" {
			t.Errorf("trailers-only: %d %q, header %v, trailer %v", resp.StatusCode, body, resp.Header, resp.Trailer)
		}
		// The gRPC statuses are counted, from the trailers and from the headers.
		waitFor(t, func() bool {
			out := grep(tp.scrape(t), "response_total{")
			return containsAll(out, `direction="inbound"`, `grpc_status_code="7"`, `classification="failure"`) &&
				containsAll(out, `direction="inbound"`, `grpc_status_code="5"`, `classification="failure"`)
		})
	})
}

// TestH2ClientResetCancelsApp: an RST_STREAM mid-response cancels the application's
// request, and the connection goes on serving.
func TestH2ClientResetCancelsApp(t *testing.T) {
	cancelled := make(chan string, 4)
	release, _ := releaser(t)
	mux := http.NewServeMux()
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "first")
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
			cancelled <- r.Proto
		case <-release:
		}
	})
	mux.HandleFunc("/ok", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
	tp := plainProxy(t, h2App(t, mux), 2*time.Second)
	for _, tc := range []struct {
		name  string
		extra []string
	}{{"h2c", nil}, {"orig-proto", []string{"mesh-orig-proto", "HTTP/1.1"}}} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialH2Raw(t, tp.in.Addr().String())
			c.request(1, "GET", "/slow", true, tc.extra...)
		first:
			for {
				switch f := c.read().(type) {
				case *http2.DataFrame:
					if string(f.Data()) != "first" || f.StreamEnded() {
						t.Fatalf("first DATA %q (end %v)", f.Data(), f.StreamEnded())
					}
					break first
				case *http2.RSTStreamFrame, *http2.GoAwayFrame:
					t.Fatalf("unexpected %v", f)
				}
			}
			c.write(func() error { return c.fr.WriteRSTStream(1, http2.ErrCodeCancel) })
			select {
			case <-cancelled:
			case <-time.After(10 * time.Second):
				t.Fatal("the app's request context was not cancelled after RST_STREAM")
			}
			c.request(3, "GET", "/ok", true, tc.extra...)
			if r := c.response(3, nil); r.status != "200" || string(r.body) != "ok" {
				t.Fatalf("next request: %s %q", r.status, r.body)
			}
		})
	}
}

// TestH2Protocol: SETTINGS and PING acks, a bad preface, and oversized headers.
func TestH2Protocol(t *testing.T) {
	tp := plainProxy(t, h2App(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok")
	})), 2*time.Second)
	addr := tp.in.Addr().String()
	// works checks that a new connection is served (the proxy survived).
	works := func(t *testing.T, c *h2Raw, id uint32) {
		t.Helper()
		if c == nil {
			c = dialH2Raw(t, addr)
		}
		c.request(id, "GET", "/", true)
		if r := c.response(id, nil); r.status != "200" || string(r.body) != "ok" {
			t.Fatalf("request: %s %q", r.status, r.body)
		}
	}

	t.Run("settings", func(t *testing.T) {
		c := dialH2Raw(t, addr, http2.Setting{ID: http2.SettingMaxFrameSize, Val: 1 << 20})
		var server http2.SettingsFrame
		gotSettings, gotWindow := false, false
		for {
			f := c.read()
			if s, ok := f.(*http2.SettingsFrame); ok {
				if s.IsAck() {
					break
				}
				server, gotSettings = *s, true
				if v, ok := s.Value(http2.SettingMaxConcurrentStreams); !ok || v != h2.MaxStreams {
					t.Errorf("MAX_CONCURRENT_STREAMS %d %v", v, ok)
				}
				if v, ok := s.Value(http2.SettingInitialWindowSize); !ok || v != h2.StreamWindow {
					t.Errorf("INITIAL_WINDOW_SIZE %d %v", v, ok)
				}
				continue
			}
			if w, ok := f.(*http2.WindowUpdateFrame); ok && w.StreamID == 0 {
				gotWindow = w.Increment == h2.ConnWindow-h2.DefaultWindow
			}
		}
		if !gotSettings || !gotWindow {
			t.Errorf("before the ack: settings %v (%v), connection window update %v", gotSettings, server.Header(), gotWindow)
		}
		works(t, c, 1)
	})

	t.Run("ping", func(t *testing.T) {
		c := dialH2Raw(t, addr)
		data := [8]byte{1, 2, 3, 4, 5, 6, 7, 8}
		c.write(func() error { return c.fr.WritePing(false, data) })
		for {
			if p, ok := c.read().(*http2.PingFrame); ok {
				if !p.IsAck() || p.Data != data {
					t.Fatalf("PING answer: ack %v data %v", p.IsAck(), p.Data)
				}
				return
			}
		}
	})

	t.Run("bad preface", func(t *testing.T) {
		nc := dialTCP(t, addr)
		_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
		_, _ = io.WriteString(nc, "PRI * HTTP/2.0\r\n\r\nXY\r\n\r\n")
		b, err := io.ReadAll(nc)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("connection still open after a bad preface (read %q)", b)
		}
		works(t, nil, 1)
	})

	t.Run("oversized headers", func(t *testing.T) {
		fields := func(n, size int) []hpack.HeaderField {
			fs := []hpack.HeaderField{{Name: ":method", Value: "GET"}, {Name: ":scheme", Value: "http"},
				{Name: ":authority", Value: "web.test"}, {Name: ":path", Value: "/"}}
			for i := range n {
				fs = append(fs, hpack.HeaderField{Name: fmt.Sprintf("x-big-%02d", i), Value: strings.Repeat("a", size)})
			}
			return fs
		}
		// 64 fields of 1000 bytes pass the 64 KiB list limit in the block's last
		// frame: 431, and the connection goes on.
		c := dialH2Raw(t, addr)
		if err := c.headers(1, true, fields(64, 1000)); err != nil {
			t.Fatal(err)
		}
		if r := c.response(1, nil); r.status != "431" {
			t.Errorf("status %s, want 431", r.status)
		}
		works(t, c, 3)

		// Past the limit with CONTINUATIONs still to come, or one value past it: a
		// 431, a stream error or a connection error will do, and the proxy goes on.
		for _, fs := range [][]hpack.HeaderField{fields(100, 1000), fields(1, 100<<10)} {
			c := dialH2Raw(t, addr)
			_ = c.headers(1, true, fs)
			for answered := false; !answered; {
				f, err := c.fr.ReadFrame()
				if errors.Is(err, os.ErrDeadlineExceeded) {
					t.Fatal("no answer to oversized headers")
				}
				switch f := f.(type) {
				case *http2.MetaHeadersFrame:
					if answered = f.StreamID == 1; answered && f.PseudoValue("status") != "431" {
						t.Errorf("status %s", f.PseudoValue("status"))
					}
				case *http2.RSTStreamFrame, *http2.GoAwayFrame:
					answered = true
				case nil:
					answered = true // closed
				}
			}
			works(t, nil, 1)
		}
	})
}

// TestH2RefusedStreams: past 250 open streams, new ones are refused with
// REFUSED_STREAM; the open ones complete once the application answers.
func TestH2RefusedStreams(t *testing.T) {
	const total = h2.MaxStreams + 10
	var arrived atomic.Int32
	release, releaseAll := releaser(t)
	tp := plainProxy(t, h2App(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		arrived.Add(1)
		<-release
		_, _ = io.WriteString(w, "ok")
	})), 2*time.Second)
	c := dialH2Raw(t, tp.in.Addr().String())
	for i := range total {
		// HTTP/1.1 to the app (one connection each): the app's own HTTP/2 stream
		// limit stays out of the way.
		c.request(uint32(2*i+1), "GET", "/", true, "mesh-orig-proto", "HTTP/1.1")
	}
	refused := map[uint32]bool{}
	for len(refused) < total-h2.MaxStreams {
		switch f := c.read().(type) {
		case *http2.RSTStreamFrame:
			if f.ErrCode != http2.ErrCodeRefusedStream {
				t.Fatalf("stream %d reset with %v", f.StreamID, f.ErrCode)
			}
			refused[f.StreamID] = true
		case *http2.MetaHeadersFrame:
			t.Fatalf("stream %d answered %s before the app was released", f.StreamID, f.PseudoValue("status"))
		}
	}
	for id := range refused {
		if id <= 2*h2.MaxStreams {
			t.Errorf("stream %d refused, though it was within the first %d", id, h2.MaxStreams)
		}
	}
	waitFor(t, func() bool { return arrived.Load() == h2.MaxStreams })
	releaseAll()
	ok := map[uint32]bool{}
	for len(ok) < h2.MaxStreams {
		switch f := c.read().(type) {
		case *http2.MetaHeadersFrame:
			if st := f.PseudoValue("status"); st != "" && st != "200" {
				t.Fatalf("stream %d: %s", f.StreamID, st)
			}
		case *http2.DataFrame:
			if f.StreamEnded() {
				ok[f.StreamID] = true
			}
		case *http2.RSTStreamFrame:
			t.Fatalf("stream %d reset with %v", f.StreamID, f.ErrCode)
		}
	}
}

// TestH2GracefulDrain: stopping the proxy sends GOAWAY, refuses new streams, lets the
// in-flight one finish, then closes the connection (well before the grace period).
func TestH2GracefulDrain(t *testing.T) {
	arrived := make(chan struct{}, 1)
	release, releaseAll := releaser(t)
	tp := plainProxy(t, h2App(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		arrived <- struct{}{}
		<-release
		_, _ = io.WriteString(w, "done")
	})), 30*time.Second)
	c := dialH2Raw(t, tp.in.Addr().String())
	c.request(1, "GET", "/", true)
	select {
	case <-arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("request never reached the app")
	}
	tp.stop()
	for {
		if g, ok := c.read().(*http2.GoAwayFrame); ok {
			if g.ErrCode != http2.ErrCodeNo || g.LastStreamID != 1 {
				t.Fatalf("GOAWAY %v, last stream %d", g.ErrCode, g.LastStreamID)
			}
			break
		}
	}
	c.request(3, "GET", "/", true)
	for {
		if r, ok := c.read().(*http2.RSTStreamFrame); ok {
			if r.StreamID != 3 || r.ErrCode != http2.ErrCodeRefusedStream {
				t.Fatalf("RST_STREAM %d %v, want stream 3 refused", r.StreamID, r.ErrCode)
			}
			break
		}
	}
	releaseAll()
	if r := c.response(1, nil); r.status != "200" || string(r.body) != "done" {
		t.Fatalf("in-flight request: %s %q", r.status, r.body)
	}
	for {
		_, err := c.fr.ReadFrame()
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatal("connection still open after its last stream ended")
		}
		if err != nil {
			break
		}
	}
}

// TestH2BodilessAndStreamedResponses: HEAD, 204 and 304 end on their HEADERS; a
// response with a length is HEADERS then DATA; a streamed one is flushed chunk by
// chunk (the client sees the first chunk before the app writes the second).
func TestH2BodilessAndStreamedResponses(t *testing.T) {
	var mu sync.Mutex
	next := map[string]chan struct{}{} // by request id, for /stream
	mux := http.NewServeMux()
	mux.HandleFunc("/head", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Length", "1234")
	})
	mux.HandleFunc("/204", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("/304", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Etag", `"v1"`)
		w.WriteHeader(http.StatusNotModified)
	})
	mux.HandleFunc("/cl", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Length", "5")
		_, _ = io.WriteString(w, "hello")
	})
	mux.HandleFunc("/stream", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		ch := next[r.URL.Query().Get("id")]
		mu.Unlock()
		_, _ = io.WriteString(w, "chunk1")
		w.(http.Flusher).Flush()
		select {
		case <-ch:
		case <-r.Context().Done():
			return
		}
		_, _ = io.WriteString(w, "chunk2")
	})
	tp := plainProxy(t, h2App(t, mux), 2*time.Second)
	for _, path := range []struct {
		name  string
		extra []string
	}{{"h2c", nil}, {"orig-proto", []string{"mesh-orig-proto", "HTTP/1.1"}}} {
		t.Run(path.name, func(t *testing.T) {
			c := dialH2Raw(t, tp.in.Addr().String())
			id := uint32(1)
			for _, tc := range []struct {
				method, path, status, cl string
			}{
				{"HEAD", "/head", "200", "1234"},
				{"GET", "/204", "204", ""},
				{"GET", "/304", "304", ""},
			} {
				c.request(id, tc.method, tc.path, true, path.extra...)
				r := c.response(id, nil)
				if r.status != tc.status || !r.endOnHeaders || len(r.body) != 0 || r.header.Get("content-length") != tc.cl {
					t.Errorf("%s %s: %s, END_STREAM on HEADERS %v, body %q, content-length %q", tc.method, tc.path, r.status, r.endOnHeaders, r.body, r.header.Get("content-length"))
				}
				id += 2
			}

			c.request(id, "GET", "/cl", true, path.extra...)
			if r := c.response(id, nil); r.status != "200" || r.endOnHeaders || string(r.body) != "hello" || r.header.Get("content-length") != "5" {
				t.Errorf("/cl: %s %q %v", r.status, r.body, r.header)
			}
			id += 2

			ch := make(chan struct{})
			mu.Lock()
			next[path.name] = ch
			mu.Unlock()
			c.request(id, "GET", "/stream?id="+path.name, true, path.extra...)
			var got []byte
			r := c.response(id, func(b []byte) {
				if got = append(got, b...); string(got) == "chunk1" {
					close(ch) // only now may the app write chunk2
				}
			})
			if r.status != "200" || string(r.body) != "chunk1chunk2" {
				t.Errorf("/stream: %s %q", r.status, r.body)
			}
		})
	}
}

// TestH2Metrics: inbound requests and responses are counted with their status.
func TestH2Metrics(t *testing.T) {
	tp := plainProxy(t, h2App(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/missing" {
			http.NotFound(w, r)
			return
		}
		_, _ = io.WriteString(w, "ok")
	})), 2*time.Second)
	c := dialH2Raw(t, tp.in.Addr().String())
	for i, path := range []string{"/", "/missing", "/", "/missing", "/"} {
		id := uint32(2*i + 1)
		c.request(id, "GET", path, true)
		_ = c.response(id, nil)
	}
	base := []string{`direction="inbound"`, `authority="web.test"`, `tls="false"`, `no_tls_reason="no_tls_from_remote"`}
	waitFor(t, func() bool {
		out := tp.scrape(t)
		return hasValue(grep(out, "request_total{"), "5", base...) &&
			hasValue(grep(out, "response_total{"), "3", append(base, `status_code="200"`, `classification="success"`)...) &&
			hasValue(grep(out, "response_total{"), "2", append(base, `status_code="404"`)...)
	})
}

// hasValue: a line of text has all of subs and the value v.
func hasValue(text, v string, subs ...string) bool {
	for _, line := range strings.Split(text, "\n") {
		if containsAll(line, subs...) && strings.HasSuffix(line, " "+v) {
			return true
		}
	}
	return false
}

// TestH2OverMTLS: a peer proxy's connection (mTLS, ALPN h2) is served by serveH2,
// and counted with the peer's identity.
func TestH2OverMTLS(t *testing.T) {
	cp := startCP(t)
	server := startProxy(t, cp, serverID, h2App(t, http.HandlerFunc(echoHandler)), netip.AddrPort{})
	client := startProxy(t, cp, clientID, netip.AddrPort{}, netip.AddrPort{}) // for its identity
	d := tls.Dialer{Config: client.id.ClientConfig(serverID, []string{alpnH2})}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nc, err := d.DialContext(ctx, "tcp", server.in.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	if p := nc.(*tls.Conn).ConnectionState().NegotiatedProtocol; p != alpnH2 {
		t.Fatalf("ALPN %q", p)
	}
	cc := h2cConn(t, nc)
	for _, tc := range []struct {
		method, body, origProto, want string
	}{
		{"GET", "", "HTTP/1.1", "HTTP/1.1 GET  "},
		{"POST", "x", "HTTP/1.1", "HTTP/1.1 POST  x"},
		{"POST", "y", "", "HTTP/2.0 POST  y"},
	} {
		req, _ := http.NewRequestWithContext(ctx, tc.method, "http://web.test/", strings.NewReader(tc.body))
		if tc.body == "" {
			req.Body = nil
		}
		if tc.origProto != "" {
			req.Header.Set(httpfield.OrigProto, tc.origProto)
		}
		resp, err := cc.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != tc.want {
			t.Errorf("%s: %d %q, want %q", tc.method, resp.StatusCode, b, tc.want)
		}
	}
	waitFor(t, func() bool {
		return hasValue(grep(server.scrape(t), "response_total{"), "3", `direction="inbound"`, `tls="true"`,
			`client_id="`+clientID+`"`, `status_code="200"`)
	})
}
