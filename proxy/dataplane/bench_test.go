package dataplane

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"syscall"
	"testing"
	"time"

	api "github.com/meshplane/mesh/controlplane/api/tap"
	"github.com/meshplane/mesh/proxy/metrics"
	"github.com/meshplane/mesh/proxy/proxytest"
	"github.com/meshplane/mesh/proxy/tap"
)

// BenchmarkTwoHopsHTTP1 is one HTTP/1.1 request through client proxy → mTLS (h2) →
// server proxy → app, over loopback: the proxy's per-request cost in process (the
// load harness hack/bench-proxy.sh measures it against haproxy).
func BenchmarkTwoHopsHTTP1(b *testing.B) {
	cp := startCP(b)
	client, _, _ := meshPair(b, cp, app(b))
	url := client.outURL("/echo")
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		resp, err := hc.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
	}
}

// BenchmarkTwoHopsParallel keeps several requests in flight and reports the process's
// CPU time per request (client, app and both proxies: compare runs, not absolutes).
func BenchmarkTwoHopsParallel(b *testing.B) {
	cp := startCP(b)
	client, _, _ := meshPair(b, cp, fixedApp(b))
	url := client.outURL("/fixed")
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.ReportAllocs()
	b.SetParallelism(4)
	var ru0, ru1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := hc.Get(url)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
		}
	})
	b.StopTimer()
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	cpu := time.Duration(ru1.Utime.Nano() + ru1.Stime.Nano() - ru0.Utime.Nano() - ru0.Stime.Nano())
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
}

// fixedApp answers like fortio's echo: a small body with a Content-Length.
func fixedApp(t testing.TB) netip.AddrPort {
	t.Helper()
	body := []byte("fixed response body\n")
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		_, _ = w.Write(body)
	})}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return netip.MustParseAddrPort(l.Addr().String())
}

// BenchmarkDirect is BenchmarkTwoHops* without the proxies: the same client and
// application, so that the proxies' share of a two-hop run's B/op and allocs/op is
// the difference.
func BenchmarkDirect(b *testing.B) {
	for _, bc := range []struct {
		name string
		app  func(testing.TB) netip.AddrPort
		path string
	}{{"HTTP1", app, "/echo"}, {"Fixed", fixedApp, "/fixed"}} {
		b.Run(bc.name, func(b *testing.B) {
			url := "http://" + bc.app(b).String() + bc.path
			hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
			b.ReportAllocs()
			for b.Loop() {
				resp, err := hc.Get(url)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
			}
		})
	}
}

// BenchmarkTapTwoHops compares BenchmarkTwoHopsParallel's path with no tap
// subscriber and with one (both proxies tapped) that reads every event, or the
// proxy's default cap of them, for the "tap adds under 5% proxy CPU" goal: compare
// the cpu-ns/op.
func BenchmarkTapTwoHops(b *testing.B) {
	for _, tc := range []struct {
		name string
		sub  bool
		rate float64
	}{{"no-subscriber", false, 0}, {"one-subscriber-every-event", true, 1e9}, {"one-subscriber-default-cap", true, tap.DefaultRate}} {
		sub := tc.sub
		b.Run(tc.name, func(b *testing.B) {
			cp := startCP(b)
			appAddr := fixedApp(b)
			in, out := tap.New(tap.Options{Rate: tc.rate}), tap.New(tap.Options{Rate: tc.rate})
			server := startProxy(b, cp, serverID, appAddr, netip.AddrPort{}, func(o *Options) { o.Tap = in })
			svc := netip.MustParseAddrPort("10.96.0.10:80")
			cp.Set(svc.String(), proxytest.Endpoint{Addr: server.inAddr(), Identity: serverID})
			client := startProxy(b, cp, clientID, netip.AddrPort{}, svc, func(o *Options) { o.Tap = out })
			if sub {
				for _, h := range []*tap.Hub{in, out} {
					s := h.Subscribe(api.Match{}, 0)
					done := make(chan struct{})
					go func() {
						var buf []byte // what the endpoint does per event
						for {
							select {
							case ev := <-s.Events():
								buf = ev.AppendJSON(buf[:0])
							case <-done:
								return
							}
						}
					}()
					b.Cleanup(func() { close(done); s.Close() })
				}
			}
			url := client.outURL("/fixed")
			hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			b.ReportAllocs()
			b.SetParallelism(4)
			var ru0, ru1 syscall.Rusage
			_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					resp, err := hc.Get(url)
					if err != nil {
						b.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					_ = resp.Body.Close()
				}
			})
			b.StopTimer()
			_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
			cpu := time.Duration(ru1.Utime.Nano() + ru1.Stime.Nano() - ru0.Utime.Nano() - ru0.Stime.Nano())
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
		})
	}
}

// BenchmarkTapCapture is the data path's share of a tapped request, in process: a
// request the proxy-wide cap lets through ("captured": Hub.Begin, the headers
// without the redacted ones, the event, Publish) and one it refuses ("counted").
func BenchmarkTapCapture(b *testing.B) {
	for _, tc := range []struct {
		name string
		rate float64
	}{{"captured", 1e12}, {"counted", 1e-9}} {
		b.Run(tc.name, func(b *testing.B) {
			h := tap.New(tap.Options{Rate: tc.rate, Burst: 1})
			s := h.Subscribe(api.Match{}, 0)
			defer s.Close()
			p := &Proxy{o: Options{Tap: h}}
			r := httptest.NewRequest("GET", "http://web:8080/echo", nil)
			r.Header.Set("User-Agent", "fortio.org/fortio-1.66.5")
			rh := http.Header{"Content-Type": {"text/plain"}, "Date": {"Thu, 03 Dec 2026 18:00:00 GMT"}, "Content-Length": {"0"}}
			l := metrics.HTTPLabels{Direction: "inbound", TLS: true, PeerID: "client", TargetAddr: "127.0.0.1:80"}
			b.ReportAllocs()
			for b.Loop() {
				t := p.tapStart(r, api.Inbound)
				t.response(200, rh)
				t.end(l, "", 0)
				select {
				case <-s.Events():
				default:
				}
			}
		})
	}
}
