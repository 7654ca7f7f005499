package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// syncBuffer is a bytes.Buffer safe for the logger and the test to share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type testApp struct {
	a               *app
	http, grpc, tcp string // addresses
	logs            *syncBuffer
	client          *http.Client
	stop            context.CancelFunc
	done            chan error
}

// startApp runs an app with all three servers on loopback; cleanup stops it and
// checks that it shut down cleanly.
func startApp(t *testing.T, drain time.Duration) *testApp {
	t.Helper()
	ls, err := listen("127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	ta := &testApp{
		a:    &app{name: "web", pod: "testpod", logger: log.New(logs, "app: ", 0)},
		http: ls.http.Addr().String(), grpc: ls.grpc.Addr().String(), tcp: ls.tcp.Addr().String(),
		logs:   logs,
		client: &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second},
		done:   make(chan error, 1),
	}
	ctx, cancel := context.WithCancel(context.Background())
	ta.stop = cancel
	go func() { ta.done <- run(ctx, ta.a, options{drainDelay: drain, shutdownTimeout: 5 * time.Second}, ls) }()
	t.Cleanup(func() {
		cancel()
		ta.client.CloseIdleConnections()
		select {
		case err := <-ta.done:
			if err != nil {
				t.Errorf("run: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("run did not return")
		}
	})
	return ta
}

// get fetches path and returns the status, the X-Served-By header and the body.
func (ta *testApp) get(t *testing.T, path string) (int, string, string) {
	t.Helper()
	resp, err := ta.client.Get("http://" + ta.http + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return resp.StatusCode, resp.Header.Get("X-Served-By"), string(b)
}

func TestHTTP(t *testing.T) {
	t.Parallel()
	ta := startApp(t, 0)
	code, pod, body := ta.get(t, "/some/path?x=1")
	lines := strings.Split(body, "\n")
	if code != 200 || pod != "testpod" || len(lines) < 2 ||
		!strings.HasPrefix(lines[0], "hello from web: GET /some/path?x=1 (Host: "+ta.http+"), my peer is 127.0.0.1:") ||
		lines[1] != "pod: testpod" {
		t.Errorf("GET: %d, X-Served-By %q, body %q", code, pod, body)
	}
	if !strings.Contains(ta.logs.String(), "app: 127.0.0.1 GET /some/path?x=1 200\n") {
		t.Errorf("log: %q", ta.logs.String())
	}
	for _, c := range []struct {
		path string
		code int
		body string // prefix
	}{
		{"/healthz", 200, "ok"},
		{"/status/418", 418, "hello from web: GET /status/418 "},
		{"/status/99", 400, "hello from web"},
		{"/status/x", 400, "hello from web"},
		{"/sleep?d=1ms", 200, "hello from web"},
		{"/sleep?d=bad", 400, "hello from web"},
		{"/delay?d=-1s", 400, "hello from web"},
		{"/delay", 200, "hello from web"},
	} {
		code, pod, body := ta.get(t, c.path)
		if code != c.code || pod != "testpod" || !strings.HasPrefix(body, c.body) {
			t.Errorf("GET %s: %d, X-Served-By %q, body %q; want %d, %q...", c.path, code, pod, body, c.code, c.body)
		}
	}
	if !strings.Contains(ta.logs.String(), "app: 127.0.0.1 GET /status/418 418\n") {
		t.Errorf("log: %q", ta.logs.String())
	}
}

func TestFlakyAndDelay(t *testing.T) {
	t.Parallel()
	ta := startApp(t, 0)
	for i, want := range []int{500, 200, 500, 200} {
		if code, _, _ := ta.get(t, "/flaky"); code != want {
			t.Errorf("/flaky #%d: %d, want %d", i+1, code, want)
		}
	}

	const d = 100 * time.Millisecond
	if code, _, body := ta.get(t, "/delay?d="+d.String()); code != 200 || !strings.Contains(body, "delay: 100ms") {
		t.Fatalf("/delay: %d %q", code, body)
	}
	start := time.Now()
	if code, _, _ := ta.get(t, "/"); code != 200 || time.Since(start) < d {
		t.Errorf("GET / with a delay: %d after %s, want 200 after >= %s", code, time.Since(start), d)
	}
	conn, r := dialTCP(t, ta.tcp)
	start = time.Now()
	if got := sendLine(t, conn, r, "x"); got != "web testpod: x\n" || time.Since(start) < d {
		t.Errorf("tcp with a delay: %q after %s", got, time.Since(start))
	}
	tc := testpb.NewTestServiceClient(dialGRPC(t, ta.grpc))
	start = time.Now()
	if _, err := tc.EmptyCall(context.Background(), &testpb.Empty{}); err != nil || time.Since(start) < d {
		t.Errorf("EmptyCall with a delay: %v after %s", err, time.Since(start))
	}

	if code, _, _ := ta.get(t, "/delay?d=0"); code != 200 || ta.a.delay.Load() != 0 {
		t.Errorf("/delay?d=0: %d, delay now %s", code, time.Duration(ta.a.delay.Load()))
	}
}

func dialGRPC(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

func TestGRPC(t *testing.T) {
	t.Parallel()
	ta := startApp(t, 0)
	cc := dialGRPC(t, ta.grpc)
	ctx := context.Background()
	hr, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || hr.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health: %v, %v", hr, err)
	}
	tc := testpb.NewTestServiceClient(cc)
	var md metadata.MD
	resp, err := tc.UnaryCall(ctx, &testpb.SimpleRequest{ResponseSize: 10}, grpc.Header(&md))
	if err != nil || len(resp.GetPayload().GetBody()) != 10 || resp.GetServerId() != "testpod" {
		t.Errorf("UnaryCall: %v, %v", resp, err)
	}
	if got := md.Get("x-served-by"); len(got) != 1 || got[0] != "testpod" {
		t.Errorf("x-served-by: %q", got)
	}
	_, err = tc.UnaryCall(ctx, &testpb.SimpleRequest{ResponseStatus: &testpb.EchoStatus{Code: int32(codes.Aborted), Message: "no"}})
	if status.Code(err) != codes.Aborted {
		t.Errorf("UnaryCall with response_status Aborted: %v", err)
	}
	if _, err := tc.UnimplementedCall(ctx, &testpb.Empty{}); status.Code(err) != codes.Unimplemented {
		t.Errorf("UnimplementedCall: %v", err)
	}
	if !strings.Contains(ta.logs.String(), "app: 127.0.0.1 GRPC /grpc.testing.TestService/UnaryCall OK\n") {
		t.Errorf("log: %q", ta.logs.String())
	}
}

func dialTCP(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	hello, err := r.ReadString('\n')
	if err != nil || hello != "HELLO web testpod\n" {
		t.Fatalf("hello: %q, %v", hello, err)
	}
	return c, r
}

func sendLine(t *testing.T, c net.Conn, r *bufio.Reader, line string) string {
	t.Helper()
	if _, err := io.WriteString(c, line+"\n"); err != nil {
		t.Fatal(err)
	}
	got, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("answer to %q: %q, %v", line, got, err)
	}
	return got
}

func TestTCP(t *testing.T) {
	t.Parallel()
	ta := startApp(t, 0)
	c, r := dialTCP(t, ta.tcp)
	for _, l := range []string{"one", "two words", "crlf\r"} {
		if got, want := sendLine(t, c, r, l), "web testpod: "+strings.TrimSuffix(l, "\r")+"\n"; got != want {
			t.Errorf("answer %q, want %q", got, want)
		}
	}
	_ = c.(*net.TCPConn).CloseWrite()
	if rest, err := io.ReadAll(r); err != nil || len(rest) != 0 {
		t.Errorf("after EOF: %q, %v; want the server to close", rest, err)
	}
}

// TestDrain: after the signal the app still answers for the drain delay, then finishes
// the requests in flight, closes idle TCP connections and returns nil.
func TestDrain(t *testing.T) {
	t.Parallel()
	ta := startApp(t, time.Second)
	idle, idleR := dialTCP(t, ta.tcp)
	ta.stop()

	sleeping := make(chan int, 1)
	go func() {
		resp, err := ta.client.Get("http://" + ta.http + "/sleep?d=1500ms") // outlasts the drain delay
		if err != nil {
			sleeping <- 0
			return
		}
		_ = resp.Body.Close()
		sleeping <- resp.StatusCode
	}()
	if code, _, _ := ta.get(t, "/"); code != 200 {
		t.Errorf("GET while draining: %d", code)
	}
	c, r := dialTCP(t, ta.tcp)
	if got := sendLine(t, c, r, "draining"); got != "web testpod: draining\n" {
		t.Errorf("tcp while draining: %q", got)
	}
	if got := sendLine(t, idle, idleR, "still"); got != "web testpod: still\n" {
		t.Errorf("tcp while draining: %q", got)
	}

	if code := <-sleeping; code != 200 {
		t.Errorf("request in flight at shutdown: %d, want 200", code)
	}
	if rest, err := io.ReadAll(idleR); err != nil || len(rest) != 0 {
		t.Errorf("idle tcp connection at shutdown: %q, %v; want it closed", rest, err)
	}
	select {
	case err := <-ta.done:
		ta.done <- err // for the cleanup
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return")
	}
}
