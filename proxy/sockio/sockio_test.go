package sockio_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/meshplane/mesh/proxy/sockio"
)

// pair is a connected loopback pair, both ends wrapped when wrap is set.
func pair(t testing.TB, wrap bool) (a, b net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	done := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			done <- nil
			return
		}
		done <- c
	}()
	a, err = net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b = <-done
	if b == nil {
		t.Fatal("accept failed")
	}
	if wrap {
		a, b = sockio.Wrap(a), sockio.Wrap(b)
	}
	t.Cleanup(func() { _ = a.Close(); _ = b.Close() })
	return a, b
}

func TestWrapIsRaw(t *testing.T) {
	t.Parallel()
	a, _ := pair(t, true)
	if _, ok := a.(*sockio.Conn); !ok && runtime.GOOS == "linux" {
		t.Fatalf("Wrap gave %T", a)
	}
	tc, ok := sockio.TCP(a)
	if !ok || tc == nil {
		t.Fatal("TCP does not unwrap a Conn")
	}
	if _, ok := sockio.TCP(struct{ net.Conn }{a}); ok {
		t.Fatal("TCP unwrapped a connection it does not know")
	}
	p1, _ := net.Pipe()
	defer p1.Close()
	if sockio.Wrap(p1) != p1 {
		t.Fatal("Wrap changed a connection that is not TCP")
	}
}

// A large write crosses the socket buffers (partial writes, waits for writability);
// the other side reads exactly those bytes, then EOF after CloseWrite.
func TestLargeWriteThenEOF(t *testing.T) {
	t.Parallel()
	a, b := pair(t, true)
	want := make([]byte, 8<<20)
	_, _ = rand.Read(want)
	errc := make(chan error, 1)
	go func() {
		n, err := a.Write(want)
		if err == nil && n != len(want) {
			err = io.ErrShortWrite
		}
		if err == nil {
			err = a.(interface{ CloseWrite() error }).CloseWrite()
		}
		errc <- err
	}()
	got, err := io.ReadAll(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("read %d bytes, not the %d written", len(got), len(want))
	}
	if n, err := b.Read(make([]byte, 1)); n != 0 || err != io.EOF { //nolint:errorlint // io.Reader returns io.EOF itself, unwrapped
		t.Fatalf("read after EOF: %d, %v", n, err)
	}
}

// Errors are what net.TCPConn gives for the same failures.
func TestErrorsMatchNet(t *testing.T) {
	t.Parallel()
	for _, wrap := range []bool{false, true} {
		type result struct {
			op      string
			timeout bool
			is      []error
		}
		check := func(name string, err error, want result) {
			t.Helper()
			var oe *net.OpError
			if !errors.As(err, &oe) || oe.Op != want.op || oe.Net != "tcp" || oe.Source == nil || oe.Addr == nil {
				t.Errorf("wrap=%v %s: %#v, want a *net.OpError %q with addresses", wrap, name, err, want.op)
				return
			}
			var ne net.Error
			if errors.As(err, &ne); ne.Timeout() != want.timeout {
				t.Errorf("wrap=%v %s: Timeout()=%v", wrap, name, ne.Timeout())
			}
			for _, target := range want.is {
				if !errors.Is(err, target) {
					t.Errorf("wrap=%v %s: %v is not %v", wrap, name, err, target)
				}
			}
		}

		a, b := pair(t, wrap)
		_ = a.SetReadDeadline(time.Now().Add(-time.Second))
		_, err := a.Read(make([]byte, 10))
		check("read deadline", err, result{"read", true, []error{os.ErrDeadlineExceeded}})

		// Fill the peer's buffers: a write past its deadline returns what it wrote.
		_ = a.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		n, err := a.Write(make([]byte, 64<<20))
		check("write deadline", err, result{"write", true, []error{os.ErrDeadlineExceeded}})
		if n <= 0 || n >= 64<<20 {
			t.Errorf("wrap=%v: a write cut by its deadline reported %d bytes", wrap, n)
		}

		// Unread data on a when it closes: a sends RST (loopback delivers the write
		// into a's receive queue before Write returns).
		if _, err := b.Write([]byte("unread")); err != nil {
			t.Fatal(err)
		}
		_ = a.Close()
		_, err = a.Read(make([]byte, 10))
		check("read after close", err, result{"read", false, []error{net.ErrClosed}})
		_, err = a.Write([]byte("x"))
		check("write after close", err, result{"write", false, []error{net.ErrClosed}})

		// The peer's reset: RST after close with unread data.
		_, err = b.Read(make([]byte, 1<<20))
		for err == nil {
			_, err = b.Read(make([]byte, 1<<20))
		}
		check("read reset", err, result{"read", false, []error{syscall.ECONNRESET}})
	}
}

// One reader and one writer at once, both ways (run with -race).
func TestConcurrentReadWrite(t *testing.T) {
	t.Parallel()
	a, b := pair(t, true)
	const rounds = 2000
	echo := make(chan error, 1)
	go func() {
		buf := make([]byte, 64)
		for range rounds {
			if _, err := io.ReadFull(b, buf); err != nil {
				echo <- err
				return
			}
			if _, err := b.Write(buf); err != nil {
				echo <- err
				return
			}
		}
		echo <- nil
	}()
	msg, buf := bytes.Repeat([]byte("m"), 64), make([]byte, 64)
	for range rounds {
		if _, err := a.Write(msg); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(a, buf); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-echo; err != nil {
		t.Fatal(err)
	}
}

// A net/http server on a Listen listener (the tap API's) gets Conns, streams a
// flushed response, and sees the client go away (its background read, which
// net/http stops with a past deadline, works on a Conn).
func TestListenServesHTTP(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gone := make(chan struct{})
	connType := make(chan string, 1)
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			select {
			case connType <- fmt.Sprintf("%T", c):
			default:
			}
			return ctx
		},
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, "first\n")
			_ = http.NewResponseController(w).Flush()
			<-r.Context().Done()
			close(gone)
		})}
	go func() { _ = srv.Serve(sockio.Listen(l)) }()
	t.Cleanup(func() { _ = srv.Close() })
	resp, err := http.Get("http://" + l.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || line != "first\n" {
		t.Fatalf("read %q, %v", line, err)
	}
	if ct := <-connType; runtime.GOOS == "linux" && ct != "*sockio.Conn" {
		t.Errorf("the server got a %s", ct)
	}
	_ = resp.Body.Close() // the client goes away
	select {
	case <-gone:
	case <-time.After(10 * time.Second):
		t.Fatal("the handler did not see the client go")
	}
}
