package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
)

// httpTarget answers pod-a, pod-b, pod-a...; every 5th request with 503.
func httpTarget(t *testing.T) string {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		i := n.Add(1)
		w.Header().Set("X-Served-By", map[bool]string{true: "pod-a", false: "pod-b"}[i%2 == 1])
		if i%5 == 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_, _ = io.WriteString(w, "hello\n")
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/"
}

func load(t *testing.T, mode, target string, cfg config) snapshot {
	t.Helper()
	req, err := newRequester(mode, target, cfg.concurrency)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = req.close() }()
	st := newStats()
	generate(context.Background(), cfg, req, st)
	return st.snapshot(false)
}

func TestHTTP(t *testing.T) {
	t.Parallel()
	s := load(t, "http", httpTarget(t), config{concurrency: 3, count: 20})
	if s.Requests != 20 || s.OK != 16 || s.Failed != 4 || s.Errors["503"] != 4 ||
		s.ByPod["pod-a"]+s.ByPod["pod-b"] != 20 || s.LatencyMs.P50 <= 0 {
		t.Errorf("stats: %+v", s)
	}
}

func TestPacing(t *testing.T) {
	t.Parallel()
	target := httpTarget(t)
	start := time.Now()
	s := load(t, "http", target, config{concurrency: 4, count: 10, rps: 200})
	if el := time.Since(start); s.Requests != 10 || el < 45*time.Millisecond {
		t.Errorf("10 requests at 200 rps: %d in %s, want 10 in >= 50ms", s.Requests, el)
	}
}

type fakeTestService struct {
	testpb.UnimplementedTestServiceServer
}

func (fakeTestService) UnaryCall(ctx context.Context, _ *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	_ = grpc.SetHeader(ctx, metadata.Pairs("x-served-by", "g1"))
	return &testpb.SimpleResponse{}, nil
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

func TestGRPC(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	testpb.RegisterTestServiceServer(srv, fakeTestService{})
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)

	if s := load(t, "grpc", ln.Addr().String(), config{concurrency: 2, count: 10}); s.OK != 10 || s.ByPod["g1"] != 10 {
		t.Errorf("stats: %+v", s)
	}
	if s := load(t, "grpc", closedAddr(t), config{concurrency: 1, count: 2}); s.Failed != 2 || s.Errors["Unavailable"] != 2 {
		t.Errorf("stats with nothing listening: %+v", s)
	}
}

// tcpTarget serves the server-speaks-first protocol; with bad it greets wrongly.
func tcpTarget(t *testing.T, bad bool) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if bad {
					_, _ = io.WriteString(c, "220 smtp ready\n")
					return
				}
				_, _ = io.WriteString(c, "HELLO web t1\n")
				sc := bufio.NewScanner(c)
				for sc.Scan() {
					_, _ = fmt.Fprintf(c, "web t1: %s\n", sc.Text())
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func TestTCP(t *testing.T) {
	t.Parallel()
	if s := load(t, "tcp", tcpTarget(t, false), config{concurrency: 2, count: 10}); s.OK != 10 || s.ByPod["t1"] != 10 {
		t.Errorf("stats: %+v", s)
	}
	if s := load(t, "tcp", tcpTarget(t, true), config{concurrency: 1, count: 2}); s.Failed != 2 || s.Errors["bad hello"] != 2 {
		t.Errorf("stats with a bad greeting: %+v", s)
	}
	if s := load(t, "tcp", closedAddr(t), config{concurrency: 1, count: 2}); s.Failed != 2 || s.Errors["connection refused"] != 2 {
		t.Errorf("stats with nothing listening: %+v", s)
	}
}

func TestStatsHandler(t *testing.T) {
	t.Parallel()
	st := newStats()
	st.record(result{ok: true, pod: "p1", key: "200"}, time.Millisecond)
	st.record(result{pod: "p2", key: "500"}, 2*time.Millisecond)
	srv := httptest.NewServer(st.handler())
	t.Cleanup(srv.Close)

	get := func(method, path string) (int, string) {
		req, err := http.NewRequest(method, srv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := get("GET", "/stats")
	var s snapshot
	if err := json.Unmarshal([]byte(body), &s); code != 200 || err != nil ||
		s.Requests != 2 || s.OK != 1 || s.Failed != 1 || s.Errors["500"] != 1 || s.ByPod["p1"] != 1 || s.ByPod["p2"] != 1 ||
		s.LatencyMs.P50 < 1 || s.LatencyMs.P50 > 1.05 || s.LatencyMs.P99 != 2 {
		t.Errorf("GET /stats: %d %s (%v)", code, body, err)
	}
	if code, body := get("POST", "/reset"); code != 200 || !strings.Contains(body, `"requests": 2`) {
		t.Errorf("POST /reset: %d %s", code, body)
	}
	if code, body := get("GET", "/stats"); code != 200 || !strings.Contains(body, `"requests": 0`) ||
		!strings.Contains(body, `"errors": {}`) || !strings.Contains(body, `"byPod": {}`) {
		t.Errorf("GET /stats after reset: %d %s", code, body)
	}
	if code, _ := get("GET", "/reset"); code != http.StatusMethodNotAllowed {
		t.Errorf("GET /reset: %d", code)
	}
	if code, body := get("GET", "/healthz"); code != 200 || body != "ok" {
		t.Errorf("GET /healthz: %d %q", code, body)
	}
}

func TestHistogram(t *testing.T) {
	t.Parallel()
	var h histogram
	for i := 1; i <= 1000; i++ {
		h.add(time.Duration(i) * time.Millisecond)
	}
	for _, c := range []struct{ q, want float64 }{{0.5, 500}, {0.95, 950}, {0.99, 990}, {1, 1000}} {
		if got := h.quantile(c.q); got < c.want || got > c.want*1.05 {
			t.Errorf("q%g = %g, want %g (+5%%)", c.q, got, c.want)
		}
	}
	h.add(time.Hour) // beyond the last bucket
	if got := h.quantile(1); got != ms(time.Hour) {
		t.Errorf("max = %g", got)
	}
}

func TestRun(t *testing.T) {
	t.Parallel()
	logger := log.New(io.Discard, "", 0)
	target := httpTarget(t)
	var out bytes.Buffer
	if err := run(context.Background(), config{once: true, mode: "http", target: target, concurrency: 1}, &out, logger); err != nil || out.String() != "pod-a 200\n" {
		t.Errorf("-once: %q, %v", out.String(), err)
	}
	out.Reset()
	if err := run(context.Background(), config{once: true, mode: "tcp", target: closedAddr(t), concurrency: 1}, &out, logger); err == nil || out.String() != "- connection refused\n" {
		t.Errorf("-once with nothing listening: %q, %v", out.String(), err)
	}
	out.Reset()
	cfg := config{mode: "http", target: target, concurrency: 2, count: 5, listen: "127.0.0.1:0"}
	var s snapshot
	if err := run(context.Background(), cfg, &out, logger); err != nil || json.Unmarshal(out.Bytes(), &s) != nil || s.Requests != 5 {
		t.Errorf("-count 5: %q, %v", out.String(), err)
	}
	if err := run(context.Background(), config{mode: "udp", target: "x:1", concurrency: 1}, &out, logger); err == nil {
		t.Error("-mode udp: no error")
	}
}

// POST /run's header parameters go with every request; a bad one is refused.
func TestRunHeaders(t *testing.T) {
	t.Parallel()
	var got atomic.Value
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Store(r.Header.Get("Authorization") + "|" + r.Header.Get("X-Visible"))
	}))
	t.Cleanup(target.Close)
	run := func(params string) *http.Response {
		t.Helper()
		rec := httptest.NewRecorder()
		serveRun(rec, httptest.NewRequest(http.MethodPost, "/run?mode=http&count=2&target="+url.QueryEscape(target.URL)+params, nil))
		return rec.Result()
	}
	if resp := run("&header=" + url.QueryEscape("Authorization: Bearer x") + "&header=" + url.QueryEscape("X-Visible:yes")); resp.StatusCode != http.StatusOK {
		t.Fatalf("with headers: %d", resp.StatusCode)
	}
	if v, _ := got.Load().(string); v != "Bearer x|yes" {
		t.Errorf("the target got %q, want the headers", v)
	}
	if resp := run("&header=nocolon"); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("a header without a colon: %d, want 400", resp.StatusCode)
	}
}
