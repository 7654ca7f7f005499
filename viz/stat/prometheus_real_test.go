package stat

import (
	"context"
	"math"
	"net/http"
	"testing"
	"time"

	"github.com/meshplane/mesh/internal/testing/promtest"
)

// realPrometheus is a Prometheus server (internal/testing/promtest) and the
// Source over it.
type realPrometheus struct {
	URL  string
	prom *Prometheus
}

func startPrometheus(t *testing.T, targets []promtest.Target) *realPrometheus {
	t.Helper()
	url := promtest.Start(t, targets, promtest.Options{})
	p, err := NewPrometheus(url, &http.Client{Timeout: 10 * time.Second}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &realPrometheus{URL: url, prom: p}
}

// waitFor polls query until cond holds on its only sample's value.
func (rp *realPrometheus) waitFor(t *testing.T, query string, cond func(float64) bool, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last []Sample
	var lastErr error
	for time.Now().Before(deadline) {
		last, lastErr = rp.prom.Query(context.Background(), query)
		if lastErr == nil && len(last) == 1 && cond(last[0].Value) {
			return
		}
		time.Sleep(200 * time.Millisecond) // polling interval of a condition, not a wait for time to pass
	}
	t.Fatalf("waiting %s for %s: last result %v, %v", timeout, query, last, lastErr)
}

// value runs a query that must return one sample.
func (rp *realPrometheus) value(t *testing.T, query string) float64 {
	t.Helper()
	s, err := rp.prom.Query(context.Background(), query)
	if err != nil {
		t.Fatal(err)
	}
	if len(s) != 1 {
		t.Fatalf("%s: %d samples, want 1: %v", query, len(s), s)
	}
	return s[0].Value
}

// The traffic of the fake mesh below, per batch (10 batches a second):
//
//	web pods (deployment web, two pods), inbound, each: 10 responses
//	  7 tls=true 200 success, latency 4 <=10ms, 2 <=20ms, 1 <=100ms
//	  1 tls=true 500 failure, latency <=10ms
//	  2 tls=false 200 success, latency <=20ms
//	  => 100 rps a pod, success 0.9, tls 0.8; latency 5 in (5,10], 4 in (10,20],
//	     1 in (50,100]: p50 10, p95 75, p99 95 (histogram_quantile's interpolation)
//	  tcp_open_connections inbound: peer=src 3, peer=dst 1
//	api pod (deployment api, one pod), outbound to each web pod: 5 responses
//	  4 tls=true 200 success, latency 2 <=20ms, 2 <=30ms
//	  1 tls=true 503 failure, latency <=30ms
//	  => 100 rps to web, success 0.8, tls 1; p50 20+10*0.5/3, p95 20+10*2.75/3,
//	     p99 20+10*2.95/3
//	  and outbound to api: 1 response, 200, <=5ms (10 rps a pod)
//	a decoy: the same metrics on a port not named mesh-admin, which the keep rule drops
const (
	batchesPerSecond = 10.0
	webRPS           = 200.0 // both pods
	apiToWebRPS      = 100.0
)

func webProxy() *promtest.FakeProxy {
	in := promtest.HTTPBase{Direction: "inbound", Authority: "web.shop.svc.cluster.local:80", TargetAddr: "127.0.0.1:8080", TLS: "true",
		ClientID: "api.shop.serviceaccount.identity.cluster.local", Route: "GET /items"} // a ServiceProfile route (the route dashboard)
	plain := in
	plain.TLS, plain.NoTLSReason, plain.ClientID = "false", "no_identity", ""
	return &promtest.FakeProxy{BatchesPerSecond: batchesPerSecond,
		HTTP: []promtest.HTTPSeries{
			{Base: in, StatusCode: "200", Count: 7, Latency: map[float64]int{10: 4, 20: 2, 100: 1}},
			{Base: in, StatusCode: "500", Failure: true, Count: 1, Latency: map[float64]int{10: 1}},
			{Base: plain, StatusCode: "200", Count: 2, Latency: map[float64]int{20: 2}},
		},
		// A little outbound traffic to api (the deployment dashboard's outbound panels).
		HTTPOut: []promtest.HTTPSeries{{Base: promtest.HTTPBase{Direction: "outbound", Authority: "api.shop.svc.cluster.local:80", TargetAddr: "10.0.0.7:80",
			TLS: "true", ServerID: "api.shop.serviceaccount.identity.cluster.local", DstNamespace: "shop", DstService: "api",
			DstPod: "api-7c4f9d8b5-kkkkk", DstWorkloadKind: "replicaset", DstWorkloadName: "api-7c4f9d8b5"},
			StatusCode: "200", Count: 1, Latency: map[float64]int{5: 1}}},
		TCP: []promtest.TCPSeries{
			{Direction: "inbound", Peer: "src", TargetAddr: "10.0.0.2:8080", TLS: "true", Open: 3},
			{Direction: "inbound", Peer: "dst", TargetAddr: "127.0.0.1:8080", TLS: "false", Open: 1},
		}}
}

func apiProxy() *promtest.FakeProxy {
	f := &promtest.FakeProxy{BatchesPerSecond: batchesPerSecond}
	for _, pod := range []string{"web-5d8f7c9b6-abcde", "web-5d8f7c9b6-fghij"} {
		out := promtest.HTTPBase{Direction: "outbound", Authority: "web.shop.svc.cluster.local:80", TargetAddr: "10.0.0.9:80", TLS: "true",
			ServerID: "web.shop.serviceaccount.identity.cluster.local", DstNamespace: "shop", DstService: "web", DstPod: pod,
			DstWorkloadKind: "replicaset", DstWorkloadName: "web-5d8f7c9b6"}
		f.HTTP = append(f.HTTP,
			promtest.HTTPSeries{Base: out, StatusCode: "200", Count: 4, Latency: map[float64]int{20: 2, 30: 2}},
			promtest.HTTPSeries{Base: out, StatusCode: "503", Failure: true, Count: 1, Latency: map[float64]int{30: 1}})
	}
	return f
}

func within(got, want, tol float64) bool { return math.Abs(got-want) <= tol }

// TestRealPrometheus scrapes fake proxies with Debian's Prometheus and the install's
// relabelling, then checks that the Prometheus Source's rows, Linkerd's published
// stat queries and Flagger's Linkerd queries give the traffic's known numbers.
//
// Tolerances: rates from increase() over the window are extrapolated by
// Prometheus (to the window's edges, from samples a scrape apart) and quantised by
// the batches (ten a second, so a 10s window is exact to 1% a pod): 10%. Ratios (success
// rate, mTLS share) hold batch by batch in every series: 0.005. Percentiles come
// from irate over the last two scrapes, where every bucket grows in the same
// proportion: 0.5 ms.
func TestRealPrometheus(t *testing.T) {
	t.Parallel()
	const window = 10 * time.Second
	rp := startPrometheus(t, []promtest.Target{
		{Proxy: webProxy(), Meta: promtest.PodMeta("shop", "web-5d8f7c9b6-abcde", "ReplicaSet", "web-5d8f7c9b6", "5d8f7c9b6")},
		{Proxy: webProxy(), Meta: promtest.PodMeta("shop", "web-5d8f7c9b6-fghij", "ReplicaSet", "web-5d8f7c9b6", "5d8f7c9b6")},
		{Proxy: apiProxy(), Meta: promtest.PodMeta("shop", "api-7c4f9d8b5-kkkkk", "ReplicaSet", "api-7c4f9d8b5", "7c4f9d8b5")},
		{Proxy: webProxy(), Meta: func() map[string]string {
			m := promtest.PodMeta("shop", "decoy-1", "StatefulSet", "decoy", "")
			m["__meta_kubernetes_pod_container_port_name"] = "http"
			return m
		}()},
	})

	// Enough samples: every series began before the window (so no rate sees its
	// start) and has a full window of samples.
	rp.waitFor(t, `min(count_over_time(response_total[20s]))`, func(v float64) bool { return v >= 15 }, 120*time.Second)

	if up := rp.value(t, `count(up == 1)`); up != 3 {
		t.Errorf("targets up = %v, want 3 (the decoy port must be dropped)", up)
	}
	if n := rp.value(t, `count(count by (pod) (response_total{deployment="web", namespace="shop", replicaset="web-5d8f7c9b6"}))`); n != 2 {
		t.Errorf("web pods with workload labels = %v, want 2", n)
	}

	ctx := context.Background()
	stat := func(q Query) []Row {
		t.Helper()
		q.Window = window
		rows, err := rp.prom.Stat(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		return rows
	}
	type want struct {
		name               string
		rps, sr, tls       float64
		p50, p95, p99, tcp float64
		checkTCP           bool
	}
	check := func(what string, rows []Row, w want) {
		t.Helper()
		var r *Row
		for i := range rows {
			if rows[i].Resource.Name == w.name {
				r = &rows[i]
			}
		}
		if r == nil {
			t.Errorf("%s: no row %s in %+v", what, w.name, rows)
			return
		}
		t.Logf("%s %s: rps %.2f (want %v), success %.4f, tls %.4f, p50/95/99 %.2f/%.2f/%.2f, tcp %v",
			what, w.name, r.RPS, w.rps, r.SuccessRate, r.TLSShare, r.LatencyP50, r.LatencyP95, r.LatencyP99, r.TCPConnections)
		if !within(r.RPS, w.rps, 0.1*w.rps) || !within(r.Requests, w.rps*window.Seconds(), 0.1*w.rps*window.Seconds()) {
			t.Errorf("%s %s: rps %v requests %v, want %v rps", what, w.name, r.RPS, r.Requests, w.rps)
		}
		if !within(r.SuccessRate, w.sr, 0.005) || !within(r.TLSShare, w.tls, 0.005) {
			t.Errorf("%s %s: success rate %v, tls %v; want %v, %v", what, w.name, r.SuccessRate, r.TLSShare, w.sr, w.tls)
		}
		if !within(r.LatencyP50, w.p50, 0.5) || !within(r.LatencyP95, w.p95, 0.5) || !within(r.LatencyP99, w.p99, 0.5) {
			t.Errorf("%s %s: p50 %v p95 %v p99 %v, want %v %v %v", what, w.name, r.LatencyP50, r.LatencyP95, r.LatencyP99, w.p50, w.p95, w.p99)
		}
		if w.checkTCP && r.TCPConnections != w.tcp {
			t.Errorf("%s %s: tcp %v, want %v", what, w.name, r.TCPConnections, w.tcp)
		}
	}
	webRow := want{name: "web", rps: webRPS, sr: 0.9, tls: 0.8, p50: 10, p95: 75, p99: 95, tcp: 6, checkTCP: true}
	apiToWeb := want{rps: apiToWebRPS, sr: 0.8, tls: 1, p50: 20 + 10*0.5/3, p95: 20 + 10*2.75/3, p99: 20 + 10*2.95/3}

	t.Run("deployments", func(t *testing.T) {
		rows := stat(Query{Resource: *res("deployment", "shop", "")})
		check("stat deploy", rows, webRow)
		for _, r := range rows {
			if r.Resource.Name == "decoy" || r.Resource.Name == "api" {
				t.Errorf("row %s: the api deployment has no inbound traffic, the decoy is not scraped", r.Resource.Name)
			}
		}
	})
	t.Run("pod", func(t *testing.T) {
		pod := webRow
		pod.name, pod.rps, pod.tcp = "web-5d8f7c9b6-abcde", webRPS/2, 3
		check("stat po", stat(Query{Resource: *res("pod", "shop", "web-5d8f7c9b6-abcde")}), pod)
	})
	t.Run("namespace", func(t *testing.T) {
		ns := webRow
		ns.name = "shop"
		check("stat ns", stat(Query{Resource: *res("namespace", "", "")}), ns)
	})
	t.Run("to", func(t *testing.T) {
		w := apiToWeb
		w.name = "api"
		check("stat deploy/api --to deploy/web", stat(Query{Resource: *res("deployment", "shop", "api"), To: res("deployment", "shop", "web")}), w)
		check("stat deploy --to svc/web", stat(Query{Resource: *res("deployment", "shop", ""), To: res("service", "shop", "web")}), w)
	})
	t.Run("from", func(t *testing.T) {
		w := apiToWeb
		w.name = "web"
		check("stat deploy/web --from deploy/api", stat(Query{Resource: *res("deployment", "shop", "web"), From: res("deployment", "shop", "api")}), w)
	})
	t.Run("service", func(t *testing.T) {
		w := apiToWeb
		w.name = "web"
		check("stat svc", stat(Query{Resource: *res("service", "shop", "")}), w)
	})

	// Linkerd's published queries, as `linkerd viz stat deploy/web -n shop -t 10s`
	// sends them (viz/metrics-api/stat_summary.go, labels printed by model.LabelSet).
	t.Run("linkerd", func(t *testing.T) {
		samples, err := rp.prom.Query(ctx, `sum(increase(response_total{deployment="web", direction="inbound", namespace="shop"}[10s])) by (namespace, deployment, classification, tls)`)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]float64{}
		for _, s := range samples {
			got[s.Metric["classification"]+"/"+s.Metric["tls"]] = s.Value
		}
		per := webRPS * window.Seconds() / 10 // requests per unit of a batch's 10
		for k, n := range map[string]float64{"success/true": 7, "failure/true": 1, "success/false": 2} {
			if !within(got[k], n*per, 0.1*n*per) {
				t.Errorf("linkerd requests %s = %v, want %v", k, got[k], n*per)
			}
		}
		for q, want := range map[string]float64{"0.5": 10, "0.95": 75, "0.99": 95} {
			v := rp.value(t, `histogram_quantile(`+q+`, sum(irate(response_latency_ms_bucket{deployment="web", direction="inbound", namespace="shop"}[10s])) by (le, namespace, deployment))`)
			if !within(v, want, 0.5) {
				t.Errorf("linkerd p%s = %v, want %v", q, v, want)
			}
		}
		if v := rp.value(t, `sum(tcp_open_connections{deployment="web", direction="inbound", namespace="shop", peer="src"}) by (namespace, deployment)`); v != 6 {
			t.Errorf("linkerd tcp connections = %v, want 6", v)
		}
	})

	// The install's recording rules load and record the stat queries' numbers.
	t.Run("recording rules", func(t *testing.T) {
		rp.waitFor(t, `count(deployment:tcp_open_connections:sum)`, func(v float64) bool { return v >= 1 }, 30*time.Second)
		rp.waitFor(t, `count(count_over_time(deployment:response_latency_ms_bucket:irate1m{deployment="web"}[5s]) >= 2)`, func(v float64) bool { return v >= 1 }, 30*time.Second)
		if v := rp.value(t, `deployment:tcp_open_connections:sum{deployment="web", namespace="shop"}`); v != 6 {
			t.Errorf("deployment:tcp_open_connections:sum = %v, want 6", v)
		}
		if v := rp.value(t, `histogram_quantile(0.95, deployment:response_latency_ms_bucket:irate1m{deployment="web", namespace="shop"})`); !within(v, 75, 0.5) {
			t.Errorf("p95 from deployment:response_latency_ms_bucket:irate1m = %v, want 75", v)
		}
		sr := rp.value(t, `sum(deployment:response_total:increase1m{deployment="web", classification="success"}) / sum(deployment:response_total:increase1m{deployment="web"})`)
		if !within(sr, 0.9, 0.005) {
			t.Errorf("success rate from deployment:response_total:increase1m = %v, want 0.9", sr)
		}
		for _, kind := range []string{"namespace", "pod"} {
			if n := rp.value(t, `count(`+kind+`:response_total:increase1m)`); n < 1 {
				t.Errorf("%s:response_total:increase1m: no series", kind)
			}
		}
	})

	// Every query of the Grafana dashboards returns data, and no NaN.
	t.Run("dashboards", func(t *testing.T) {
		for _, q := range dashboardQueries(t) {
			samples, err := rp.prom.Query(ctx, grafanaToPromQL(q.expr))
			if err != nil {
				t.Errorf("%s: %v", q.where, err)
				continue
			}
			if len(samples) == 0 {
				t.Errorf("%s: no data for %s", q.where, grafanaToPromQL(q.expr))
			}
			for _, s := range samples {
				if math.IsNaN(s.Value) {
					t.Errorf("%s: NaN in %v for %s", q.where, s.Metric, grafanaToPromQL(q.expr))
				}
			}
		}
	})

	// Flagger's built-in Linkerd checks of a canary of deployment web.
	t.Run("flagger", func(t *testing.T) {
		if v := rp.value(t, RenderFlagger(QueryFlaggerSuccess, "shop", "web", window)); !within(v, 90, 0.5) {
			t.Errorf("flagger request-success-rate = %v, want 90", v)
		}
		if v := rp.value(t, RenderFlagger(QueryFlaggerLatency, "shop", "web", window)); !within(v, 95, 0.5) {
			t.Errorf("flagger request-duration = %v, want 95", v)
		}
		// The canary's primary (web-primary) matches too, by Flagger's =~.
		if v := rp.value(t, RenderFlagger(QueryFlaggerSuccess, "shop", "web|web-primary", window)); !within(v, 90, 0.5) {
			t.Errorf("flagger request-success-rate over web|web-primary = %v, want 90", v)
		}
	})
}
