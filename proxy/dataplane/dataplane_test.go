package dataplane

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/meshplane/mesh/controlplane/api/identityclient"
	"github.com/meshplane/mesh/controlplane/api/identityclient/identitytest"
	meshv1 "github.com/meshplane/mesh/controlplane/api/mesh/v1"
	"github.com/meshplane/mesh/proxy/discovery"
	"github.com/meshplane/mesh/proxy/httpfield"
	"github.com/meshplane/mesh/proxy/metrics"
	"github.com/meshplane/mesh/proxy/proxytest"
)

const (
	clientID = "client.default.serviceaccount.identity.cluster.local"
	serverID = "server.default.serviceaccount.identity.cluster.local"
)

type testProxy struct {
	in, out net.Listener
	stop    func() // SIGTERM: stop accepting, drain
	reg     *metrics.Registry
	id      *identityclient.Identity
}

func (tp *testProxy) inAddr() netip.AddrPort    { return netip.MustParseAddrPort(tp.in.Addr().String()) }
func (tp *testProxy) outURL(path string) string { return "http://" + tp.out.Addr().String() + path }

// scrape returns the proxy's /metrics text.
func (tp *testProxy) scrape(t *testing.T) string {
	t.Helper()
	rec := httptest.NewRecorder()
	tp.reg.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	return rec.Body.String()
}

func startCP(t testing.TB) *proxytest.ControlPlane {
	t.Helper()
	return proxytest.Start(t)
}

// startProxy runs a proxy with a real identity (certified by the test control plane)
// and real discovery.
func startProxy(t testing.TB, cp *proxytest.ControlPlane, name string, inboundOrig, outboundOrig netip.AddrPort, tweak ...func(*Options)) *testProxy {
	t.Helper()
	dir := t.TempDir()
	token := filepath.Join(dir, "token")
	if err := os.WriteFile(token, []byte(identitytest.Token(name)), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	id, err := identityclient.New(identityclient.Config{LocalName: name, TokenFile: token, TrustAnchorsPEM: cp.AnchorsPEM,
		Addr: cp.IdentityAddr, Name: proxytest.IdentityName, Now: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = id.Run(ctx) }()
	disc, err := discovery.New(discovery.Options{Addr: cp.DestinationAddr, Creds: id.GRPCCredentials(proxytest.DestinationName)})
	if err != nil {
		t.Fatal(err)
	}
	tp := &testProxy{reg: metrics.New(), id: id, stop: cancel}
	tp.in, _ = net.Listen("tcp", "127.0.0.1:0")
	tp.out, _ = net.Listen("tcp", "127.0.0.1:0")
	o := Options{Identity: id, Discovery: disc, Metrics: tp.reg, InboundOrigDst: inboundOrig, OutboundOrigDst: outboundOrig,
		DetectTimeout: 10 * time.Second, InboundConnectTimeout: time.Second, OutboundConnectTimeout: time.Second, DiscoveryTimeout: 3 * time.Second,
		ProfileNetworks: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}
	for _, f := range tweak {
		f(&o)
	}
	p := New(o)
	done := make(chan struct{})
	go func() { _ = p.Serve(ctx, tp.in, tp.out, 2*time.Second); close(done) }()
	t.Cleanup(func() {
		cancel()
		<-done
		_ = disc.Close()
	})
	deadline := time.Now().Add(10 * time.Second)
	for !id.Ready() {
		if time.Now().After(deadline) {
			t.Fatalf("proxy %s never got a certificate", name)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return tp
}

// app is an HTTP server that speaks HTTP/1.1 and h2c and shows what it saw.
func app(t testing.TB) netip.AddrPort {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-App-Proto", r.Proto)
		w.Header().Set("X-App-Host", r.Host)
		w.Header().Set("X-App-Custom", r.Header.Get("X-Custom"))
		w.Header().Set("Trailer", "X-Trailer")
		body, _ := io.ReadAll(r.Body)
		_, _ = fmt.Fprintf(w, "hello %s", body)
		w.Header().Set("X-Trailer", "done")
	})
	mux.HandleFunc("/fail", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusInternalServerError) })
	mux.HandleFunc("/stream", func(w http.ResponseWriter, r *http.Request) {
		f := w.(http.Flusher)
		_, _ = io.WriteString(w, "first\n")
		f.Flush()
		<-r.Context().Done() // the client closes after the first chunk
	})
	mux.HandleFunc("/upgrade", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "echo" {
			http.Error(w, "want upgrade", http.StatusBadRequest)
			return
		}
		c, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer func() { _ = c.Close() }()
		_, _ = rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		_ = rw.Flush()
		line, _ := rw.ReadString('\n')
		_, _ = rw.WriteString("echo: " + line)
		_ = rw.Flush()
	})
	return proxytest.H2CApp(t, mux)
}

// meshPair is client app → client proxy → (mTLS) → server proxy → app.
func meshPair(t testing.TB, cp *proxytest.ControlPlane, appAddr netip.AddrPort) (client, server *testProxy, svc netip.AddrPort) {
	t.Helper()
	server = startProxy(t, cp, serverID, appAddr, netip.AddrPort{})
	svc = netip.MustParseAddrPort("10.96.0.10:80") // a "Service address" only discovery knows
	cp.Set(svc.String(), proxytest.Endpoint{Addr: server.inAddr(), Identity: serverID, Labels: map[string]string{"namespace": "default", "service": "web", "pod": "web-1"}})
	client = startProxy(t, cp, clientID, netip.AddrPort{}, svc)
	return client, server, svc
}

func TestHTTP1OverMTLS(t *testing.T) {
	cp := startCP(t)
	client, server, _ := meshPair(t, cp, app(t))
	req, _ := http.NewRequest("POST", client.outURL("/echo"), strings.NewReader("world"))
	req.Header.Set("X-Custom", "kept")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "hello world" {
		t.Fatalf("got %d %q (%s)", resp.StatusCode, body, resp.Header.Get(httpfield.ProxyError))
	}
	// The app got HTTP/1.1 back (upgraded to h2 between the proxies, then downgraded).
	if got := resp.Header.Get("X-App-Proto"); got != "HTTP/1.1" {
		t.Errorf("app saw %s, want HTTP/1.1", got)
	}
	if resp.Header.Get("X-App-Custom") != "kept" || resp.Trailer.Get("X-Trailer") != "done" {
		t.Errorf("headers or trailers lost: %v %v", resp.Header, resp.Trailer)
	}
	// The server proxy saw the client's identity over mTLS, and both counted.
	in := server.scrape(t)
	if !strings.Contains(in, `client_id="`+clientID+`"`) || !containsAll(in, "request_total{", `direction="inbound"`, `tls="true"`) {
		t.Errorf("server proxy metrics lack the client identity:\n%s", grep(in, "request_total"))
	}
	out := client.scrape(t)
	if !containsAll(grep(out, "response_total"), `direction="outbound"`, `server_id="`+serverID+`"`, `tls="true"`, `status_code="200"`, `classification="success"`, `dst_service="web"`) {
		t.Errorf("client proxy metrics:\n%s", grep(out, "response_total"))
	}
}

func TestH2AndGRPCOverMTLS(t *testing.T) {
	cp := startCP(t)
	client, _, _ := meshPair(t, cp, app(t))
	var ps http.Protocols
	ps.SetUnencryptedHTTP2(true)
	h2c := &http.Client{Transport: &http.Transport{Protocols: &ps}}
	resp, err := h2c.Get(client.outURL("/echo"))
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("X-App-Proto") != "HTTP/2.0" || resp.Trailer.Get("X-Trailer") != "done" {
		t.Fatalf("h2: %d proto %q trailer %q", resp.StatusCode, resp.Header.Get("X-App-Proto"), resp.Trailer.Get("X-Trailer"))
	}

	// gRPC: a real grpc-go server behind its own server proxy.
	gl, _ := net.Listen("tcp", "127.0.0.1:0")
	gs := grpc.NewServer()
	hs := health.NewServer()
	healthpb.RegisterHealthServer(gs, hs)
	go func() { _ = gs.Serve(gl) }()
	t.Cleanup(gs.Stop)
	gclient, gserver, _ := meshPair(t, cp, netip.MustParseAddrPort(gl.Addr().String()))
	conn, err := grpc.NewClient(gclient.out.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	hc := healthpb.NewHealthClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, err := hc.Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("grpc check: %v %v", r, err)
	}
	// A gRPC error status arrives in trailers and is classified as a failure.
	_, err = hc.Check(ctx, &healthpb.HealthCheckRequest{Service: "unknown"})
	if err == nil || !strings.Contains(err.Error(), "NotFound") {
		t.Fatalf("want NotFound, got %v", err)
	}
	// Server streaming.
	w, err := hc.Watch(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if m, err := w.Recv(); err != nil || m.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("watch: %v %v", m, err)
	}
	hs.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	if m, err := w.Recv(); err != nil || m.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("watch update: %v %v", m, err)
	}
	cancel()
	out := grep(gclient.scrape(t), "response_total")
	if !containsAll(out, `grpc_status_code="5"`, `classification="failure"`) || !containsAll(out, `grpc_status_code="0"`, `classification="success"`) {
		t.Errorf("grpc classification missing:\n%s", out)
	}
	if !strings.Contains(grep(gserver.scrape(t), "request_total"), `tls="true"`) {
		t.Errorf("server side not over TLS")
	}
}

func TestStreamingAndUpgrade(t *testing.T) {
	cp := startCP(t)
	client, _, _ := meshPair(t, cp, app(t))
	resp, err := http.Get(client.outURL("/stream"))
	if err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	_ = resp.Body.Close()
	if err != nil || line != "first\n" {
		t.Fatalf("streamed chunk: %q %v", line, err)
	}

	c, err := net.Dial("tcp", client.out.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	_, _ = io.WriteString(c, "GET /upgrade HTTP/1.1\r\nHost: web\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	br := bufio.NewReader(c)
	ur, err := http.ReadResponse(br, nil)
	if err != nil || ur.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", ur, err)
	}
	_, _ = io.WriteString(c, "ping\n")
	got, err := br.ReadString('\n')
	if err != nil || got != "echo: ping\n" {
		t.Fatalf("after upgrade: %q %v", got, err)
	}
}

func TestOpaqueServerSpeaksFirst(t *testing.T) {
	cp := startCP(t)
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	t.Cleanup(func() { _ = l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer func() { _ = c.Close() }()
				_, _ = io.WriteString(c, "220 banner\n")
				line, _ := bufio.NewReader(c).ReadString('\n')
				_, _ = io.WriteString(c, "got "+line)
			}()
		}
	}()
	appAddr := netip.MustParseAddrPort(l.Addr().String())
	server := startProxy(t, cp, serverID, appAddr, netip.AddrPort{})
	svc := netip.MustParseAddrPort("10.96.0.11:3306")
	cp.Set(svc.String(), proxytest.Endpoint{Addr: server.inAddr(), Identity: serverID, Opaque: true})
	client := startProxy(t, cp, clientID, netip.AddrPort{}, svc)

	c, err := net.Dial("tcp", client.out.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second)) // well under the 10 s detect timeout
	br := bufio.NewReader(c)
	banner, err := br.ReadString('\n')
	if err != nil || banner != "220 banner\n" {
		t.Fatalf("banner: %q %v", banner, err)
	}
	_, _ = io.WriteString(c, "hi\n")
	if got, _ := br.ReadString('\n'); got != "got hi\n" {
		t.Fatalf("echo: %q", got)
	}
	_ = c.Close()
	waitFor(t, func() bool {
		return containsAll(grep(server.scrape(t), "tcp_open_total"), `direction="inbound"`, `tls="true"`, `client_id="`+clientID+`"`)
	})
}

func TestNotMeshedNoEndpointsDeadBackend(t *testing.T) {
	cp := startCP(t)
	appAddr := app(t)
	// Not in the mesh: straight to the original destination, in plaintext.
	client := startProxy(t, cp, clientID, netip.AddrPort{}, appAddr)
	resp, err := http.Get(client.outURL("/echo"))
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("plaintext fallback: %d %s", resp.StatusCode, resp.Header.Get(httpfield.ProxyError))
	}
	if out := grep(client.scrape(t), "request_total"); !containsAll(out, `tls="false"`, `no_tls_reason="not_provided_by_service_discovery"`) {
		t.Errorf("labels:\n%s", out)
	}

	// Known service, no endpoints: 503 with the proxy's error header.
	svc := netip.MustParseAddrPort("10.96.0.12:80")
	cp.Set(svc.String())
	c2 := startProxy(t, cp, clientID, netip.AddrPort{}, svc)
	resp, err = http.Get(c2.outURL("/echo"))
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get(httpfield.ProxyError) == "" {
		t.Fatalf("no endpoints: %d %q", resp.StatusCode, resp.Header.Get(httpfield.ProxyError))
	}

	// A dead meshed endpoint: 502 with the error, and the proxy keeps serving.
	dead, _ := net.Listen("tcp", "127.0.0.1:0")
	deadAddr := netip.MustParseAddrPort(dead.Addr().String())
	_ = dead.Close()
	cp.Set(svc.String(), proxytest.Endpoint{Addr: deadAddr, Identity: serverID})
	waitFor(t, func() bool {
		resp, err := http.Get(c2.outURL("/echo"))
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == 502 && strings.Contains(resp.Header.Get(httpfield.ProxyError), "connect")
	})

	// Malformed HTTP gets a 400 from the proxy, which stays up.
	c, _ := net.Dial("tcp", c2.out.Addr().String())
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nBad Header Line\r\n\r\n")
	line, _ := bufio.NewReader(c).ReadString('\n')
	_ = c.Close()
	if !strings.HasPrefix(line, "HTTP/1.1 400") {
		t.Errorf("malformed request: %q", line)
	}
}

func TestBalancesAndFollowsDiscovery(t *testing.T) {
	cp := startCP(t)
	var mu sync.Mutex
	hits := map[string]int{}
	mk := func(name string) netip.AddrPort {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			time.Sleep(5 * time.Millisecond)
			mu.Lock()
			hits[name]++
			mu.Unlock()
		}))
		t.Cleanup(srv.Close)
		return netip.MustParseAddrPort(strings.TrimPrefix(srv.URL, "http://"))
	}
	a, b := mk("a"), mk("b")
	sa := startProxy(t, cp, serverID, a, netip.AddrPort{})
	sb := startProxy(t, cp, serverID, b, netip.AddrPort{})
	svc := netip.MustParseAddrPort("10.96.0.13:80")
	cp.Set(svc.String(), proxytest.Endpoint{Addr: sa.inAddr(), Identity: serverID}, proxytest.Endpoint{Addr: sb.inAddr(), Identity: serverID})
	client := startProxy(t, cp, clientID, netip.AddrPort{}, svc)
	get := func() {
		resp, err := http.Get(client.outURL("/"))
		if err != nil {
			t.Error(err)
			return
		}
		_ = resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("status %d %s", resp.StatusCode, resp.Header.Get(httpfield.ProxyError))
		}
	}
	// Concurrent requests: in-flight load spreads them over both endpoints (one at a
	// time, peak-EWMA rightly keeps choosing whichever answered fastest).
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10 {
				get()
			}
		}()
	}
	wg.Wait()
	mu.Lock()
	if hits["a"] < 10 || hits["b"] < 10 {
		t.Errorf("not balanced: %v", hits)
	}
	hits = map[string]int{}
	mu.Unlock()
	// b leaves: new requests go to a only.
	cp.Set(svc.String(), proxytest.Endpoint{Addr: sa.inAddr(), Identity: serverID})
	waitFor(t, func() bool {
		mu.Lock()
		hits = map[string]int{}
		mu.Unlock()
		for range 20 {
			get()
		}
		mu.Lock()
		defer mu.Unlock()
		return hits["b"] == 0
	})
}

func waitFor(t *testing.T, f func() bool) { proxytest.WaitFor(t, f) }

func containsAll(s string, subs ...string) bool {
	for _, line := range strings.Split(s, "\n") {
		ok := true
		for _, sub := range subs {
			if !strings.Contains(line, sub) {
				ok = false
				break
			}
		}
		if ok && len(subs) > 0 {
			return true
		}
	}
	return false
}

func grep(s, prefix string) string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		if strings.HasPrefix(line, prefix) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// A ServiceProfile's retryable route retries a failed idempotent request; its timeout
// answers 504 with the proxy's error. The profile is found by the service's name, and
// for a short name or a cluster IP (no ".svc." in Host) by the original destination.
func TestProfileRetriesAndTimeouts(t *testing.T) {
	for _, c := range []struct{ name, host, key string }{
		{"by name", "web.default.svc.cluster.local", "web.default.svc.cluster.local:80"},
		{"by short name", "web", "10.96.0.14:80"},
		{"by cluster IP", "10.96.0.14", "10.96.0.14:80"},
	} {
		t.Run(c.name, func(t *testing.T) { testProfile(t, c.host, c.key) })
	}
}

// Only destinations in the profile networks are looked up by IP.
func TestInNetworks(t *testing.T) {
	t.Parallel()
	nets := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.168.0.0/16")}
	for a, want := range map[string]bool{"10.96.0.14": true, "192.168.1.1": true, "::ffff:10.1.2.3": true, "127.0.0.1": false, "203.0.113.9": false, "fd00::1": false} {
		if got := inNetworks(nets, netip.MustParseAddr(a)); got != want {
			t.Errorf("%s: %v, want %v", a, got, want)
		}
	}
	if inNetworks(nil, netip.MustParseAddr("10.0.0.1")) {
		t.Error("no networks: looked up")
	}
}

func testProfile(t *testing.T, host, key string) {
	cp := startCP(t)
	var mu sync.Mutex
	calls := 0
	mux := http.NewServeMux()
	mux.HandleFunc("/flaky", func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		calls++
		n := calls
		mu.Unlock()
		if n%2 == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ok")
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(2 * time.Second):
		case <-r.Context().Done():
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	appAddr := netip.MustParseAddrPort(strings.TrimPrefix(srv.URL, "http://"))
	server := startProxy(t, cp, serverID, appAddr, netip.AddrPort{})
	cp.Set(key, proxytest.Endpoint{Addr: server.inAddr(), Identity: serverID})
	cp.SetProfile(key, &meshv1.DestinationProfile{FullyQualifiedName: "web.default.svc.cluster.local", Routes: []*meshv1.Route{
		{Name: "flaky", Condition: &meshv1.RequestMatch{Method: "GET", PathRegex: "/flaky"}, IsRetryable: true},
		{Name: "slow", Condition: &meshv1.RequestMatch{PathRegex: "/slow"}, Timeout: durationpb.New(200 * time.Millisecond)},
	}, RetryBudget: &meshv1.RetryBudget{RetryRatio: 0.2, MinRetriesPerSecond: 10, Ttl: durationpb.New(10 * time.Second)}})
	client := startProxy(t, cp, clientID, netip.AddrPort{}, netip.MustParseAddrPort("10.96.0.14:80"))

	do := func(path string) *http.Response {
		req, _ := http.NewRequest("GET", client.outURL(path), nil)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		return resp
	}
	// The profile arrives asynchronously: wait until the route is in force.
	// (Without the retry, every other request fails.)
	waitFor(t, func() bool {
		first, second := do("/flaky").StatusCode, do("/flaky").StatusCode
		return first == 200 && second == 200
	})
	mu.Lock()
	before := calls
	mu.Unlock()
	for range 5 {
		if resp := do("/flaky"); resp.StatusCode != 200 {
			t.Fatalf("retried request: %d", resp.StatusCode)
		}
	}
	mu.Lock()
	if calls-before != 10 {
		t.Errorf("5 requests made %d calls, want 10 (each retried once)", calls-before)
	}
	mu.Unlock()
	// The app answers 200 after 2 s; a 504 proves the route's 200 ms timeout fired.
	resp := do("/slow")
	if resp.StatusCode != http.StatusGatewayTimeout || !strings.Contains(resp.Header.Get(httpfield.ProxyError), "timeout") {
		t.Errorf("timeout route: %d %q", resp.StatusCode, resp.Header.Get(httpfield.ProxyError))
	}
	if out := grep(client.scrape(t), "response_total"); !strings.Contains(out, `route="flaky"`) {
		t.Errorf("route label missing:\n%s", out)
	}
}

// Bytes through an mTLS connection are not retained (the handshake recorder stops
// after the handshake): 32 MiB through the opaque path leaves the heap near where it was.
func TestLongConnectionMemoryBounded(t *testing.T) {
	cp := startCP(t)
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	t.Cleanup(func() { _ = l.Close() })
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		_, _ = io.CopyN(io.Discard, c, 32<<20)
		_, _ = io.WriteString(c, "ok")
		_, _ = io.Copy(io.Discard, c)
		_ = c.Close()
	}()
	server := startProxy(t, cp, serverID, netip.MustParseAddrPort(l.Addr().String()), netip.AddrPort{})
	svc := netip.MustParseAddrPort("10.96.0.15:6379")
	cp.Set(svc.String(), proxytest.Endpoint{Addr: server.inAddr(), Identity: serverID, Opaque: true})
	client := startProxy(t, cp, clientID, netip.AddrPort{}, svc)
	c, err := net.Dial("tcp", client.out.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 64<<10)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range 512 { // 32 MiB
		if _, err := c.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	// Measured while the connection is still open.
	ack := make([]byte, 2)
	if _, err := io.ReadFull(c, ack); err != nil || string(ack) != "ok" {
		t.Fatalf("ack %q %v", ack, err)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	_ = c.Close()
	if grew := int64(after.HeapAlloc) - int64(before.HeapAlloc); grew > 16<<20 {
		t.Errorf("heap grew by %d MiB after 32 MiB through one connection", grew>>20)
	}
}

// Bad clients: a slowloris client is cut off after the header timeout, oversized
// headers get 431, and the proxy keeps serving others meanwhile.
func TestSlowlorisAndOversizedHeaders(t *testing.T) {
	cp := startCP(t)
	client := startProxy(t, cp, clientID, netip.AddrPort{}, app(t), func(o *Options) { o.HeaderTimeout = 300 * time.Millisecond })

	slow, err := net.Dial("tcp", client.out.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = slow.Close() }()
	_, _ = io.WriteString(slow, "GET /echo HTTP/1.1\r\nHost: web\r\nX-Slow: ")
	// Meanwhile a normal client is served.
	resp, err := http.Get(client.outURL("/echo"))
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("normal request during slowloris: %d", resp.StatusCode)
	}
	// The slow client's connection is closed (with or without a 408) once the timeout passes.
	_ = slow.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(slow)
	if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("slowloris connection still open after 5 s (read %q)", b)
	}

	big, err := net.Dial("tcp", client.out.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = big.Close() }()
	_ = big.SetDeadline(time.Now().Add(5 * time.Second))
	_, _ = io.WriteString(big, "GET /echo HTTP/1.1\r\nHost: web\r\nX-Big: "+strings.Repeat("a", 2*httpfield.MaxHeaderBytes)+"\r\n\r\n")
	line, _ := bufio.NewReader(big).ReadString('\n')
	if !strings.HasPrefix(line, "HTTP/1.1 431") {
		t.Errorf("oversized headers: %q", line)
	}
}

// On shutdown the proxy stops accepting but lets an in-flight request finish.
func TestShutdownDrainsInFlight(t *testing.T) {
	cp := startCP(t)
	arrived := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		close(arrived)
		time.Sleep(300 * time.Millisecond)
		_, _ = io.WriteString(w, "finished")
	}))
	t.Cleanup(srv.Close)
	client := startProxy(t, cp, clientID, netip.AddrPort{}, netip.MustParseAddrPort(strings.TrimPrefix(srv.URL, "http://")))
	type result struct {
		body string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := http.Get(client.outURL("/"))
		if err != nil {
			done <- result{err: err}
			return
		}
		b, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		done <- result{string(b), err}
	}()
	<-arrived
	client.stop()
	r := <-done
	if r.err != nil || r.body != "finished" {
		t.Fatalf("in-flight request during shutdown: %q %v", r.body, r.err)
	}
	waitFor(t, func() bool {
		c, err := net.DialTimeout("tcp", client.out.Addr().String(), time.Second)
		if err == nil {
			_ = c.Close()
		}
		return err != nil
	})
}

// An endpoint discovery still lists but that cannot be reached (a pod just deleted):
// a request without a body was not sent there, so it goes to another pick and
// succeeds, on the first retry: a refused connect is quick, so the balancer would
// rate the dead endpoint the fastest and pick it again. (Fresh client proxies, so
// that each starts knowing nothing of either.)
func TestConnectFailureGoesToAnotherEndpoint(t *testing.T) {
	cp := startCP(t)
	live := startProxy(t, cp, serverID, app(t), netip.AddrPort{})
	dead, _ := net.Listen("tcp", "127.0.0.1:0")
	deadAddr := netip.MustParseAddrPort(dead.Addr().String())
	_ = dead.Close()
	for i := range 20 {
		svc := netip.AddrPortFrom(netip.MustParseAddr("10.96.1.14"), uint16(80+i))
		cp.Set(svc.String(), proxytest.Endpoint{Addr: deadAddr, Identity: serverID}, proxytest.Endpoint{Addr: live.inAddr(), Identity: serverID})
		client := startProxy(t, cp, clientID, netip.AddrPort{}, svc)
		for j := range 5 {
			resp, err := http.Get(client.outURL("/echo"))
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("client %d, GET %d: %d %s, want 200 (the dead endpoint skipped)", i, j, resp.StatusCode, resp.Header.Get(httpfield.ProxyError))
			}
		}
	}
}
