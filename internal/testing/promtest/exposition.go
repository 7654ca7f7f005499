// Package promtest runs a real Prometheus (Debian's prometheus binary) for tests,
// scraping fake mesh proxies on loopback ports through the install's relabelling,
// and generates /metrics text in the proxy's exposition layout.
package promtest

import (
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// This file generates /metrics text in exactly the layout proxy/metrics serves
// (viz tests may not import proxy/): the text exposition format 0.0.4; families
// sorted by name, each with # HELP and # TYPE; every HTTP series with all thirteen
// base labels (empty ones included) plus its own, sorted by name; histogram buckets
// with le last, the proxy's Linkerd bucket bounds and +Inf, then _sum and _count;
// values written with strconv's 'g' format. The layout is the one pinned by
// proxy/metrics/exposition_test.go (TestExpositionParses' expected lines) and
// described in proxy/metrics' package comment; the label names and bounds here are
// copied from proxy/metrics/metrics.go (httpLabelNames, tcpLabelNames,
// LatencyBuckets).

// LatencyBounds are proxy/metrics.LatencyBuckets.
func LatencyBounds() []float64 {
	return []float64{
		1, 2, 3, 4, 5, 10, 20, 30, 40, 50, 100, 200, 300, 400, 500,
		1000, 2000, 3000, 4000, 5000, 10000, 20000, 30000, 40000, 50000,
	}
}

// HTTPBase are the base labels of an HTTP series (proxy/metrics httpLabelNames).
type HTTPBase struct {
	Direction, Authority, TargetAddr, TLS, NoTLSReason, ClientID, ServerID    string
	DstNamespace, DstService, DstPod, DstWorkloadKind, DstWorkloadName, Route string
}

func (b HTTPBase) labels() map[string]string {
	return map[string]string{
		"direction": b.Direction, "authority": b.Authority, "target_addr": b.TargetAddr, "tls": b.TLS,
		"no_tls_reason": b.NoTLSReason, "client_id": b.ClientID, "server_id": b.ServerID,
		"dst_namespace": b.DstNamespace, "dst_service": b.DstService, "dst_pod": b.DstPod,
		"dst_workload_kind": b.DstWorkloadKind, "dst_workload_name": b.DstWorkloadName, "route": b.Route,
	}
}

// HTTPSeries is one response series: per batch of traffic, Count responses with
// StatusCode, and Latency[ms] of them answered in latency ms (an upper bucket bound).
type HTTPSeries struct {
	Base       HTTPBase
	StatusCode string
	GRPCStatus string
	Failure    bool
	Count      int
	Latency    map[float64]int // bucket upper bound (ms) -> responses per batch
}

// TCPSeries is one tcp_open_connections gauge (proxy/metrics tcpLabelNames).
type TCPSeries struct {
	Direction, Peer, TargetAddr, TLS string
	Open                             int
}

// FakeProxy serves a proxy's /metrics whose counters grow by one batch every
// 1/BatchesPerSecond: every series grows in step, so ratios between them hold at
// every scrape and every rate Prometheus computes is exact up to its extrapolation.
type FakeProxy struct {
	HTTP             []HTTPSeries
	HTTPOut          []HTTPSeries // more series, kept apart for readability
	TCP              []TCPSeries
	BatchesPerSecond float64

	// Now is the clock the counters follow (nil: time.Now).
	Now func() time.Time

	mu    sync.Mutex
	start time.Time
}

func (f *FakeProxy) batches() float64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.Now
	if now == nil {
		now = time.Now
	}
	if f.start.IsZero() {
		f.start = now()
	}
	return float64(int64(now().Sub(f.start).Seconds() * f.BatchesPerSecond))
}

func (f *FakeProxy) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	_, _ = w.Write([]byte(f.Exposition(f.batches())))
}

// labelString writes {a="x",b="y"} sorted by name, then extra (le) last.
func labelString(l map[string]string, extra ...string) string {
	names := make([]string, 0, len(l))
	for k := range l {
		names = append(names, k)
	}
	sort.Strings(names)
	parts := make([]string, 0, len(names)+1)
	for _, k := range names {
		parts = append(parts, k+"="+quoteLabel(l[k]))
	}
	parts = append(parts, extra...)
	return "{" + strings.Join(parts, ",") + "}"
}

// quoteLabel escapes as the exposition format does: backslash, quote, newline.
func quoteLabel(v string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(v) + `"`
}

func num(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// Exposition is the /metrics text after b batches.
func (f *FakeProxy) Exposition(b float64) string {
	type line struct{ key, text string }
	fam := func(name, help, kind string, lines []line) string {
		sort.SliceStable(lines, func(i, j int) bool { return lines[i].key < lines[j].key })
		var s strings.Builder
		fmt.Fprintf(&s, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, kind)
		for _, l := range lines {
			s.WriteString(l.text)
		}
		return s.String()
	}
	// request_total sums the responses of a base label set.
	reqs := map[string]float64{}
	reqLabels := map[string]map[string]string{}
	var resp, lat []line
	for _, s := range append(slices.Clone(f.HTTP), f.HTTPOut...) {
		base := s.Base.labels()
		k := labelString(base)
		reqs[k] += float64(s.Count) * b
		reqLabels[k] = base
		rl := s.Base.labels()
		rl["status_code"], rl["grpc_status_code"], rl["classification"] = s.StatusCode, s.GRPCStatus, "success"
		if s.Failure {
			rl["classification"] = "failure"
		}
		ls := labelString(rl)
		resp = append(resp, line{ls, fmt.Sprintf("response_total%s %s\n", ls, num(float64(s.Count)*b))})
		ll := s.Base.labels()
		ll["status_code"] = s.StatusCode
		key := labelString(ll)
		var t strings.Builder
		cum, sum := 0, 0.0
		for _, le := range LatencyBounds() {
			cum += s.Latency[le]
			sum += le * float64(s.Latency[le])
			fmt.Fprintf(&t, "response_latency_ms_bucket%s %s\n", labelString(ll, "le="+quoteLabel(num(le))), num(float64(cum)*b))
		}
		fmt.Fprintf(&t, "response_latency_ms_bucket%s %s\n", labelString(ll, `le="+Inf"`), num(float64(cum)*b))
		fmt.Fprintf(&t, "response_latency_ms_sum%s %s\n", key, num(sum*b))
		fmt.Fprintf(&t, "response_latency_ms_count%s %s\n", key, num(float64(cum)*b))
		lat = append(lat, line{key, t.String()})
	}
	var req []line
	for k, v := range reqs {
		req = append(req, line{k, fmt.Sprintf("request_total%s %s\n", labelString(reqLabels[k]), num(v))})
	}
	var tcp []line
	for _, s := range f.TCP {
		l := map[string]string{"direction": s.Direction, "peer": s.Peer, "target_addr": s.TargetAddr, "tls": s.TLS,
			"no_tls_reason": "", "client_id": "", "server_id": ""}
		ls := labelString(l)
		tcp = append(tcp, line{ls, fmt.Sprintf("tcp_open_connections%s %d\n", ls, s.Open)})
	}
	return fam("request_total", "Total count of HTTP requests.", "counter", req) +
		fam("response_latency_ms", "Elapsed times between a request's headers being received and its response headers being sent, in milliseconds.", "histogram", lat) +
		fam("response_total", "Total count of HTTP responses, counted at the end of the response stream.", "counter", resp) +
		fam("tcp_open_connections", "Number of currently-open connections.", "gauge", tcp)
}
