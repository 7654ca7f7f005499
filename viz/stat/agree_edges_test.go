package stat

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"testing"
	"time"

	"github.com/meshplane/mesh/internal/testing/promtest"
)

// edgeMesh is the traffic of TestEdgesAndRoutesSourcesAgree, per batch (ten a
// second): client -> web over mTLS (6 responses, 5 ok, on route "GET /books"
// at web), an unmeshed caller -> web in plain text (2, on no route), web -> api
// over mTLS (3) and web -> service db, which has no pod, in plain text (1).
type edgeMesh struct{ ns, hash string }

func (m edgeMesh) id(sa string) string {
	return sa + "." + m.ns + ".serviceaccount.identity.cluster.local"
}

func (m edgeMesh) pod(app string) string { return app + "-" + m.hash + "-aaaaa" }

// to is an outbound series' base to app's pod (or, app "db", to a service without one).
func (m edgeMesh) to(app string) promtest.HTTPBase {
	b := promtest.HTTPBase{Direction: "outbound", Authority: app + "." + m.ns + ".svc.cluster.local:80", TargetAddr: "10.0.0.9:80",
		TLS: "true", ServerID: m.id(app), DstNamespace: m.ns, DstService: app, DstPod: m.pod(app),
		DstWorkloadKind: "replicaset", DstWorkloadName: app + "-" + m.hash}
	if app == "db" {
		b.TLS, b.NoTLSReason, b.ServerID, b.DstPod, b.DstWorkloadKind, b.DstWorkloadName = "false", "not_provided_by_service_discovery", "", "", "", ""
	}
	return b
}

func (m edgeMesh) from(sa, route string) promtest.HTTPBase {
	b := promtest.HTTPBase{Direction: "inbound", Authority: "x." + m.ns + ".svc.cluster.local:80", TargetAddr: "127.0.0.1:8080",
		TLS: "true", ClientID: m.id(sa), Route: route}
	if sa == "" {
		b.TLS, b.NoTLSReason, b.ClientID = "false", "not_provided_by_remote", ""
	}
	return b
}

func (m edgeMesh) proxies() map[string]*promtest.FakeProxy {
	fp := func(series ...promtest.HTTPSeries) *promtest.FakeProxy {
		return &promtest.FakeProxy{BatchesPerSecond: batchesPerSecond, HTTP: series}
	}
	ok := func(b promtest.HTTPBase, n int, latency map[float64]int) promtest.HTTPSeries {
		return promtest.HTTPSeries{Base: b, StatusCode: "200", Count: n, Latency: latency}
	}
	return map[string]*promtest.FakeProxy{
		"client": fp(ok(m.to("web"), 6, map[float64]int{20: 6})),
		"web": fp(
			ok(m.from("client", "GET /books"), 5, map[float64]int{10: 4, 20: 1}),
			promtest.HTTPSeries{Base: m.from("client", "GET /books"), StatusCode: "500", Failure: true, Count: 1, Latency: map[float64]int{100: 1}},
			ok(m.from("", ""), 2, map[float64]int{5: 2}),
			ok(m.to("api"), 3, map[float64]int{10: 3}),
			ok(m.to("db"), 1, map[float64]int{3: 1}),
		),
		"api": fp(ok(m.from("web", ""), 3, map[float64]int{5: 3})),
	}
}

// Two sources, same edges and routes (issue 14): the proxies of three
// Deployments, scraped through the real API server by the direct source and by
// Debian's Prometheus through the install's relabelling, give the same edges
// (sources, destinations, identities, secured flags exactly; requests and rates
// within stat's 10%) and the same route rows (names, services and pods exactly;
// rates within 10%, ratios within 0.005, percentiles within 0.5 ms), and both
// give the known traffic.
func TestEdgesAndRoutesSourcesAgree(t *testing.T) {
	t.Parallel()
	cs, dyn, ns, ip := edgeCluster(t)
	m := edgeMesh{ns: ns, hash: "7f9c6d5b8"}
	const window = 10 * time.Second
	ctx := context.Background()

	var pods []meshedPod
	proxies := m.proxies()
	for _, app := range []string{"client", "web", "api"} {
		pods = append(pods, meshedPod{name: m.pod(app), app: app, hash: m.hash, serviceAccount: app, proxy: proxies[app]})
	}
	createApps(t, cs, ns, "client", "web", "api")
	createServices(t, cs, ns, "web", "db")
	booksProfile(t, dyn, ns, "GET", "POST")
	rp := startPrometheus(t, servePods(t, cs, ns, ip, pods))
	rp.waitFor(t, `min(count_over_time(response_total[20s]))`, func(v float64) bool { return v >= 15 }, 120*time.Second)

	prom, err := NewPrometheus(rp.URL, &http.Client{Timeout: 10 * time.Second}, KubePods{Client: cs}, nil)
	if err != nil {
		t.Fatal(err)
	}
	prom.Kube = cs
	direct := &Direct{Client: cs} // the real clock: two scrapes a window apart
	deploy := func(name string) Resource { return Resource{Kind: KindDeployment, Namespace: ns, Name: name} }

	// The known edges, at rates per second (batches a second x responses a batch).
	per := func(n float64) float64 { return n * batchesPerSecond }
	wantEdges := []Edge{
		{Dst: deploy("web"), NoTLSReason: "not_provided_by_remote", RPS: per(2)},
		{Src: deploy("client"), Dst: deploy("web"), ClientID: m.id("client"), ServerID: m.id("web"), Secured: true, RPS: per(6)},
		{Src: deploy("web"), Dst: deploy("api"), ClientID: m.id("web"), ServerID: m.id("api"), Secured: true, RPS: per(3)},
		{Src: deploy("web"), Dst: Resource{Kind: KindService, Namespace: ns, Name: "db"}, NoTLSReason: "not_provided_by_service_discovery", RPS: per(1)},
	}
	for _, w := range []time.Duration{window, 0} {
		viaDirect, err := direct.Edges(ctx, ns, KindDeployment, w)
		if err != nil {
			t.Fatal(err)
		}
		viaProm, err := prom.Edges(ctx, ns, KindDeployment, w)
		if err != nil {
			t.Fatal(err)
		}
		logEdges(t, fmt.Sprintf("-t %s direct", w), viaDirect)
		logEdges(t, fmt.Sprintf("-t %s prometheus", w), viaProm)
		for _, src := range []struct {
			what  string
			edges []Edge
		}{{"direct", viaDirect}, {"prometheus", viaProm}} {
			if len(src.edges) != len(wantEdges) {
				t.Errorf("-t %s %s: %d edges, want %d", w, src.what, len(src.edges), len(wantEdges))
				continue
			}
			for i, e := range src.edges {
				want := wantEdges[i]
				got := e
				got.Requests, got.RPS, want.RPS = 0, 0, 0
				if got != want {
					t.Errorf("-t %s %s: edge %d\n got %+v\nwant %+v", w, src.what, i, got, want)
				}
				if w > 0 && (!within(e.RPS, wantEdges[i].RPS, 0.1*wantEdges[i].RPS) || !within(e.Requests, wantEdges[i].RPS*w.Seconds(), 0.1*wantEdges[i].RPS*w.Seconds())) {
					t.Errorf("-t %s %s: edge %d: rps %v requests %v, want %v rps", w, src.what, i, e.RPS, e.Requests, wantEdges[i].RPS)
				}
				if w == 0 && (!math.IsNaN(e.RPS) || e.Requests <= 0) {
					t.Errorf("-t 0 %s: edge %d: rps %v requests %v, want NaN and the count since the start", src.what, i, e.RPS, e.Requests)
				}
			}
		}
		if len(viaDirect) == len(viaProm) {
			for i := range viaDirect {
				d, p := viaDirect[i].Requests, viaProm[i].Requests
				if !within(d, p, 0.1*math.Max(d, p)) {
					t.Errorf("-t %s: edge %d: direct %v requests, prometheus %v", w, i, d, p)
				}
			}
		}
	}

	// Routes of web: GET /books 60 rps at 5/6 success, per batch 4 in (5,10], 1
	// in (10,20] and 1 in (50,100]: p50 5+5*3/4, p95 50+50*0.7, p99 50+50*0.94;
	// POST /books none; [DEFAULT] 20 rps in plain text, all ok, in (4,5].
	viaDirect, err := direct.Routes(ctx, dyn, deploy("web"), window)
	if err != nil {
		t.Fatal(err)
	}
	viaProm, err := prom.Routes(ctx, dyn, deploy("web"), window)
	if err != nil {
		t.Fatal(err)
	}
	nan := math.NaN()
	type wantRoute struct {
		route, service        string
		rps, sr, tls          float64
		p50, p95, p99         float64
		meshedPods, totalPods int
	}
	wantRoutes := []wantRoute{
		{"GET /books", "web", per(6), 5.0 / 6, 1, 8.75, 85, 97, 1, 1},
		{"POST /books", "web", nan, nan, nan, nan, nan, nan, 1, 1},
		{DefaultRoute, "", per(2), 1, 0, 4 + 0.5, 4 + 0.95, 4 + 0.99, 1, 1},
	}
	for _, src := range []struct {
		what string
		rows []RouteRow
	}{{"direct", viaDirect}, {"prometheus", viaProm}} {
		if len(src.rows) != len(wantRoutes) {
			t.Errorf("routes %s: %d rows, want %d: %+v", src.what, len(src.rows), len(wantRoutes), src.rows)
			continue
		}
		for i, r := range src.rows {
			w := wantRoutes[i]
			t.Logf("routes %s %s: rps %.2f success %.4f tls %.4f p50/95/99 %.2f/%.2f/%.2f meshed %d/%d",
				src.what, r.Route, r.RPS, r.SuccessRate, r.TLSShare, r.LatencyP50, r.LatencyP95, r.LatencyP99, r.MeshedPods, r.TotalPods)
			if r.Route != w.route || r.Service != w.service || r.Resource != deploy("web") || r.MeshedPods != w.meshedPods || r.TotalPods != w.totalPods {
				t.Errorf("routes %s row %d: %s %s %v %d/%d, want %s %s %d/%d", src.what, i, r.Route, r.Service, r.Resource, r.MeshedPods, r.TotalPods, w.route, w.service, w.meshedPods, w.totalPods)
			}
			if !near(r.RPS, w.rps, 0.1*w.rps) || !near(r.SuccessRate, w.sr, 0.005) || !near(r.TLSShare, w.tls, 0.005) ||
				!near(r.LatencyP50, w.p50, 0.5) || !near(r.LatencyP95, w.p95, 0.5) || !near(r.LatencyP99, w.p99, 0.5) || !math.IsNaN(r.TCPConnections) {
				t.Errorf("routes %s %s: %+v\nwant %+v", src.what, r.Route, r.Row, w)
			}
		}
	}
}

// near is within, with NaN equal to NaN only.
func near(got, want, tol float64) bool {
	if math.IsNaN(want) || math.IsNaN(got) {
		return math.IsNaN(want) && math.IsNaN(got)
	}
	return within(got, want, tol)
}

func logEdges(t *testing.T, what string, edges []Edge) {
	t.Helper()
	for _, e := range edges {
		t.Logf("%s: %s -> %s secured %v client %q server %q reason %q requests %.1f rps %.2f",
			what, e.Src, e.Dst, e.Secured, e.ClientID, e.ServerID, e.NoTLSReason, e.Requests, e.RPS)
	}
}
