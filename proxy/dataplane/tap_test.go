package dataplane

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	api "github.com/meshplane/mesh/controlplane/api/tap"
	"github.com/meshplane/mesh/proxy/proxytest"
	"github.com/meshplane/mesh/proxy/tap"
)

// tapStream subscribes to hub's endpoint, served on a loopback socket, and returns
// the stream's raw lines.
func tapStream(t *testing.T, hub *tap.Hub, m api.Match, maxRPS float64) <-chan []byte {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: hub.Handler(20 * time.Millisecond), ReadHeaderTimeout: time.Second}
	go func() { _ = srv.Serve(lis) }()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); _ = srv.Close() })
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+lis.Addr().String()+api.Path+"?"+m.Query(maxRPS).Encode(), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("tap: %s", resp.Status)
	}
	lines := make(chan []byte, 1000)
	go func() {
		defer func() { _ = resp.Body.Close() }()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines <- append([]byte(nil), sc.Bytes()...)
		}
	}()
	return lines
}

// next is the stream's next record.
func next(t *testing.T, lines <-chan []byte, raw *strings.Builder) api.Event {
	t.Helper()
	select {
	case l := <-lines:
		raw.Write(l)
		var e api.Event
		if err := json.Unmarshal(l, &e); err != nil {
			t.Fatalf("record %q: %v", l, err)
		}
		return e
	case <-time.After(10 * time.Second):
		t.Fatal("no tap record in 10s")
		return api.Event{}
	}
}

const secret = "s3cr3t-value"

func secretApp(t *testing.T) netip.AddrPort {
	mux := http.NewServeMux()
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Set-Cookie", "session="+secret)
		w.Header().Set("X-Internal-Token", secret)
		w.Header().Set("X-Seen", "yes")
		w.WriteHeader(201)
		_, _ = io.WriteString(w, "created")
	})
	return proxytest.H2CApp(t, mux)
}

func TestTapHTTP1AndH2OverMTLS(t *testing.T) {
	cp := startCP(t)
	hubOpts := tap.Options{Rate: 1000, Redact: []string{"X-Internal-Token"}}
	inHub, outHub := tap.New(hubOpts), tap.New(hubOpts)
	appAddr := secretApp(t)
	server := startProxy(t, cp, serverID, appAddr, netip.AddrPort{}, func(o *Options) { o.Tap = inHub })
	svc := netip.MustParseAddrPort("10.96.0.10:80")
	cp.Set(svc.String(), proxytest.Endpoint{Addr: server.inAddr(), Identity: serverID, Labels: map[string]string{"namespace": "default", "service": "web", "pod": "web-1", "deployment": "web"}})
	client := startProxy(t, cp, clientID, netip.AddrPort{}, svc, func(o *Options) { o.Tap = outHub })

	in := tapStream(t, inHub, api.Match{}, 0)
	out := tapStream(t, outHub, api.Match{Method: "POST", Destination: "deploy/web"}, 0)
	var raw strings.Builder

	send := func(c *http.Client, method, path string) {
		t.Helper()
		req, _ := http.NewRequest(method, client.outURL(path), strings.NewReader("hello"))
		req.Header.Set("Authorization", "Bearer "+secret)
		req.Header.Set("Proxy-Authorization", "Basic "+secret)
		req.Header.Set("Cookie", "c="+secret)
		req.Header.Set("X-Internal-Token", secret)
		req.Header.Set("X-Visible", "shown")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != 201 {
			t.Fatalf("%s %s: %d", method, path, resp.StatusCode)
		}
	}
	// A GET the outbound subscriber does not want, then a POST it does.
	send(http.DefaultClient, "GET", "/api/skip")
	send(http.DefaultClient, "POST", "/api/items?page=2")

	o := next(t, out, &raw)
	if o.Type != api.TypeHTTP || o.Direction != api.Outbound || o.Method != "POST" || o.Path != "/api/items?page=2" ||
		o.Status != 201 || !o.TLS || o.ClientID != clientID || o.ServerID != serverID || o.DstAddr != server.inAddr().String() ||
		o.Dst["service"] != "web" || o.Dst["workloadKind"] != "deployment" || o.RequestBytes != 5 || o.ResponseBytes != 7 ||
		o.LatencyToEndNs <= 0 || o.LatencyToHeadersNs <= 0 || o.SrcAddr == "" || o.RequestHeaders["X-Visible"][0] != "shown" ||
		o.ResponseHeaders["X-Seen"][0] != "yes" {
		t.Errorf("outbound event: %+v", o)
	}
	for _, path := range []string{"/api/skip", "/api/items?page=2"} {
		e := next(t, in, &raw)
		if e.Direction != api.Inbound || e.Path != path || e.Status != 201 || !e.TLS || e.ClientID != clientID || e.ServerID != serverID ||
			e.DstAddr != appAddr.String() || e.ResponseBytes != 7 {
			t.Errorf("inbound event: %+v", e)
		}
	}

	// HTTP/2 from the client app: the inbound side is the HTTP/2 fast path.
	var ps http.Protocols
	ps.SetUnencryptedHTTP2(true)
	send(&http.Client{Transport: &http.Transport{Protocols: &ps}}, "POST", "/api/h2")
	if o := next(t, out, &raw); o.Path != "/api/h2" || o.Status != 201 || o.ServerID != serverID {
		t.Errorf("outbound h2 event: %+v", o)
	}
	if e := next(t, in, &raw); e.Path != "/api/h2" || e.Status != 201 || e.ClientID != clientID || e.ResponseBytes != 7 {
		t.Errorf("inbound h2 event: %+v", e)
	}

	for _, bad := range []string{secret, "Authorization", "Cookie", "X-Internal-Token"} {
		if strings.Contains(raw.String(), bad) {
			t.Errorf("the tap stream carries %q:\n%s", bad, raw.String())
		}
	}
}

func TestTapGRPC(t *testing.T) {
	cp := startCP(t)
	gl, _ := net.Listen("tcp", "127.0.0.1:0")
	gs := grpc.NewServer()
	healthpb.RegisterHealthServer(gs, health.NewServer())
	go func() { _ = gs.Serve(gl) }()
	t.Cleanup(gs.Stop)
	inHub := tap.New(tap.Options{})
	server := startProxy(t, cp, serverID, netip.MustParseAddrPort(gl.Addr().String()), netip.AddrPort{}, func(o *Options) { o.Tap = inHub })
	svc := netip.MustParseAddrPort("10.96.0.11:80")
	cp.Set(svc.String(), proxytest.Endpoint{Addr: server.inAddr(), Identity: serverID})
	client := startProxy(t, cp, clientID, netip.AddrPort{}, svc)
	in := tapStream(t, inHub, api.Match{PathPrefix: "/grpc.health.v1.Health/Check"}, 0)

	conn, err := grpc.NewClient(client.out.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: "unknown"})
	if err == nil {
		t.Fatal("want NotFound")
	}
	var raw strings.Builder
	e := next(t, in, &raw)
	if e.Method != "POST" || e.Status != 200 || e.GRPCStatus != "5" || e.ClientID != clientID || !e.TLS {
		t.Errorf("grpc event: %+v", e)
	}
}

// At the proxy-wide cap a request is counted when it comes (tap.Counted), or, while
// another subscriber matches on the destination's labels, at its end
// (tap.CountAtEnd): the counts are the same.
func TestTapRateLimitReportsDrops(t *testing.T) {
	for _, byDst := range []bool{false, true} {
		t.Run(map[bool]string{false: "counted-at-start", true: "counted-at-end"}[byDst], func(t *testing.T) {
			cp := startCP(t)
			hub := tap.New(tap.Options{Rate: 0.01, Burst: 1})
			client := startProxy(t, cp, clientID, netip.AddrPort{}, app(t), func(o *Options) { o.Tap = hub })
			lines := tapStream(t, hub, api.Match{Direction: api.Outbound}, 0)
			var other <-chan []byte
			if byDst {
				other = tapStream(t, hub, api.Match{Destination: "svc/none"}, 0)
			}
			for range 5 {
				resp, err := http.Get(client.outURL("/echo"))
				if err != nil {
					t.Fatal(err)
				}
				_, _ = io.ReadAll(resp.Body)
				_ = resp.Body.Close()
			}
			var raw strings.Builder
			var events int
			var dropped uint64
			for dropped < 4 {
				switch e := next(t, lines, &raw); e.Type {
				case api.TypeHTTP:
					events++
					if e.TLS || e.NoTLSReason != "not_provided_by_service_discovery" {
						t.Errorf("plaintext event: %+v", e)
					}
				case api.TypeDropped:
					dropped += e.Dropped
				}
			}
			if events != 1 || dropped != 4 {
				t.Errorf("events %d dropped %d, want 1 and 4", events, dropped)
			}
			select {
			case l := <-other:
				t.Errorf("the svc/none subscriber got %s", l)
			default:
			}
		})
	}
}

// An upgraded (websocket-like) connection goes through forward (ReverseProxy): its
// event comes when the upgraded connection ends, with status 101; a request the
// proxy answers itself (no endpoints) carries the proxy's error.
func TestTapUpgradeAndProxyError(t *testing.T) {
	cp := startCP(t)
	hub := tap.New(tap.Options{})
	server := startProxy(t, cp, serverID, app(t), netip.AddrPort{})
	svc := netip.MustParseAddrPort("10.96.0.12:80")
	cp.Set(svc.String(), proxytest.Endpoint{Addr: server.inAddr(), Identity: serverID})
	client := startProxy(t, cp, clientID, netip.AddrPort{}, svc, func(o *Options) { o.Tap = hub })
	lines := tapStream(t, hub, api.Match{}, 0)
	var raw strings.Builder

	c, err := net.Dial("tcp", client.out.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	_, _ = io.WriteString(c, "GET /upgrade HTTP/1.1\r\nHost: web\r\nConnection: Upgrade\r\nUpgrade: echo\r\nCookie: c="+secret+"\r\n\r\n")
	br := bufio.NewReader(c)
	ur, err := http.ReadResponse(br, nil)
	if err != nil || ur.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", ur, err)
	}
	_, _ = io.WriteString(c, "ping\n")
	if got, err := br.ReadString('\n'); err != nil || got != "echo: ping\n" {
		t.Fatalf("after upgrade: %q %v", got, err)
	}
	_ = c.Close()
	e := next(t, lines, &raw)
	if e.Path != "/upgrade" || e.Status != http.StatusSwitchingProtocols || !e.TLS || e.ServerID != serverID || e.ResponseBytes == 0 {
		t.Errorf("upgrade event: %+v", e)
	}

	// No endpoints: the proxy answers 503 itself.
	cp.Set(svc.String())
	waitFor(t, func() bool {
		resp, err := http.Get(client.outURL("/none"))
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusServiceUnavailable
	})
	for {
		e := next(t, lines, &raw)
		if e.Path != "/none" || e.Status != http.StatusServiceUnavailable {
			continue // requests before discovery caught up
		}
		if e.Error == "" || e.NoTLSReason != "no_endpoints" {
			t.Errorf("proxy error event: %+v", e)
		}
		break
	}
	if strings.Contains(raw.String(), secret) {
		t.Errorf("the stream carries the cookie:\n%s", raw.String())
	}
}
