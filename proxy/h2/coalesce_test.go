package h2

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// writeLog records each Write on a connection.
type writeLog struct {
	net.Conn
	mu     sync.Mutex
	writes [][]byte
}

func (c *writeLog) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.writes = append(c.writes, bytes.Clone(p))
	c.mu.Unlock()
	return c.Conn.Write(p)
}

// frames returns, for each Write, the frames it carried on stream id, as
// "TYPE" or "TYPE+END" (END_STREAM).
func (c *writeLog) frames(t *testing.T, id uint32) [][]string {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	var out [][]string
	for _, w := range c.writes {
		w = bytes.TrimPrefix(w, []byte(http2.ClientPreface))
		fr := http2.NewFramer(nil, bytes.NewReader(w))
		var got []string
		for {
			f, err := fr.ReadFrame()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("a write that is not whole frames: %v", err)
			}
			if f.Header().StreamID != id {
				continue
			}
			s := f.Header().Type.String()
			if f.Header().Flags.Has(http2.FlagDataEndStream) && (f.Header().Type == http2.FrameData || f.Header().Type == http2.FrameHeaders) {
				s += "+END"
			}
			got = append(got, s)
		}
		if len(got) > 0 {
			out = append(out, got)
		}
	}
	return out
}

// readyBody is a request body whose bytes are all here (as a proxied gRPC
// request's usually are); like the server's bodies, it reports its end with the
// last bytes.
type readyBody struct{ *strings.Reader }

func (b readyBody) Read(p []byte) (int, error) {
	n, err := b.Reader.Read(p)
	if err == nil && b.Len() == 0 {
		err = io.EOF
	}
	return n, err
}

func (readyBody) Ready() bool  { return true }
func (readyBody) Close() error { return nil }

// A message that is already here leaves in one write: the client sends a request
// whose body is Ready with its HEADERS, and a handler that holds its DATA with
// WriteMore sends headers, data and trailers together. This is what saves a gRPC
// call two of its three writes per direction and hop (docs/benchmarks.md).
func TestH2OneWritePerReadyMessage(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	srvLog := make(chan *writeLog, 1)
	srv := &Server{Handler: HTTPHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/grpc")
		w.WriteHeader(http.StatusOK)
		if _, err := w.(interface{ WriteMore([]byte) (int, error) }).WriteMore(body); err != nil {
			t.Errorf("WriteMore: %v", err)
		}
		w.Header().Set(http.TrailerPrefix+"Grpc-Status", "0")
	}))}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		wl := &writeLog{Conn: c}
		srvLog <- wl
		srv.ServeConn(ctx, wl)
	}()
	var cliLog *writeLog
	pool := &Pool{Timeouts: Timeouts{Write: 5 * time.Second}, Dial: func(ctx context.Context) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, "tcp", l.Addr().String())
		if err != nil {
			return nil, err
		}
		cliLog = &writeLog{Conn: c}
		return cliLog, nil
	}}
	t.Cleanup(pool.CloseIdleConnections)
	const msg = "\x00\x00\x00\x00\x03abc"
	req, _ := http.NewRequestWithContext(ctx, "POST", "http://app.test/pkg.Svc/Call", readyBody{strings.NewReader(msg)})
	req.ContentLength = -1
	req.Header.Set("Content-Type", "application/grpc")
	resp, err := pool.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil || string(got) != msg || resp.Trailer.Get("Grpc-Status") != "0" {
		t.Fatalf("response %q, %v, trailers %v", got, err, resp.Trailer)
	}
	if f := cliLog.frames(t, 1); len(f) != 1 || strings.Join(f[0], ",") != "HEADERS,DATA+END" {
		t.Errorf("request frames per write %v, want one write [HEADERS DATA+END]", f)
	}
	wl := <-srvLog
	if f := wl.frames(t, 1); len(f) != 1 || strings.Join(f[0], ",") != "HEADERS,DATA,HEADERS+END" {
		t.Errorf("response frames per write %v, want one write [HEADERS DATA HEADERS+END]", f)
	}
}
