package stat

import (
	"fmt"
	"math"
	"sort"
	"strings"
)

// proxyCounts is what a fake proxy has counted so far; text renders it as the
// proxy's /metrics does (proxy/metrics: Prometheus text, Linkerd's names and
// buckets). Tests build the two samples of each pod from known counts.
type proxyCounts struct {
	responses []counted
	latency   []observed
	tcpOpen   []counted
}

type counted struct {
	labels map[string]string
	value  float64
}

type observed struct {
	labels map[string]string
	ms     []float64 // every observation so far, in milliseconds
}

// proxyBuckets are the proxy's buckets (proxy/metrics.LatencyBuckets, which viz
// tests may not import).
var proxyBuckets = []float64{1, 2, 3, 4, 5, 10, 20, 30, 40, 50, 100, 200, 300, 400, 500,
	1000, 2000, 3000, 4000, 5000, 10000, 20000, 30000, 40000, 50000}

func labelText(l map[string]string, extra ...string) string {
	var parts []string
	for k, v := range l {
		parts = append(parts, fmt.Sprintf("%s=%q", k, v))
	}
	sort.Strings(parts)
	parts = append(parts, extra...)
	return "{" + strings.Join(parts, ",") + "}"
}

func (p proxyCounts) text() string {
	var b strings.Builder
	b.WriteString("# HELP request_total Total count of HTTP requests.\n# TYPE request_total counter\n")
	b.WriteString("# HELP response_latency_ms Elapsed times.\n# TYPE response_latency_ms histogram\n")
	for _, o := range p.latency {
		var sum float64
		for _, ub := range append(proxyBuckets, math.Inf(+1)) {
			n := 0
			for _, v := range o.ms {
				if v <= ub {
					n++
				}
			}
			le := fmt.Sprint(ub)
			if math.IsInf(ub, +1) {
				le = "+Inf"
			}
			fmt.Fprintf(&b, "response_latency_ms_bucket%s %d\n", labelText(o.labels, fmt.Sprintf("le=%q", le)), n)
		}
		for _, v := range o.ms {
			sum += v
		}
		fmt.Fprintf(&b, "response_latency_ms_sum%s %g\n", labelText(o.labels), sum)
		fmt.Fprintf(&b, "response_latency_ms_count%s %d\n", labelText(o.labels), len(o.ms))
	}
	b.WriteString("# HELP response_total Total count of HTTP responses.\n# TYPE response_total counter\n")
	for _, c := range p.responses {
		fmt.Fprintf(&b, "response_total%s %g\n", labelText(c.labels), c.value)
	}
	b.WriteString("# HELP tcp_open_connections Number of currently-open connections.\n# TYPE tcp_open_connections gauge\n")
	for _, c := range p.tcpOpen {
		fmt.Fprintf(&b, "tcp_open_connections%s %g\n", labelText(c.labels), c.value)
	}
	b.WriteString("# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds 1.7e+09\n")
	return b.String()
}

// obs is n observations of v milliseconds.
func obs(n int, v float64) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = v
	}
	return out
}

// in and out are the base labels of inbound and outbound series.
func in(tls string, extra ...string) map[string]string {
	l := map[string]string{"direction": "inbound", "tls": tls}
	for i := 0; i+1 < len(extra); i += 2 {
		l[extra[i]] = extra[i+1]
	}
	return l
}

func out(dstNS, dstSvc, dstPod string, extra ...string) map[string]string {
	l := map[string]string{"direction": "outbound", "tls": "true", "dst_namespace": dstNS, "dst_service": dstSvc, "dst_pod": dstPod}
	for i := 0; i+1 < len(extra); i += 2 {
		l[extra[i]] = extra[i+1]
	}
	return l
}

func with(l map[string]string, kv ...string) map[string]string {
	c := map[string]string{}
	for k, v := range l {
		c[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		c[kv[i]] = kv[i+1]
	}
	return c
}
