package metrics

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestExpositionParses runs the strict parser on everything the registry exposes:
// HTTP, TCP, overflow and process metrics, and label values that need escaping.
func TestExpositionParses(t *testing.T) {
	r := New(WithMaxSeries(12))
	weird := "we\"ird\\host\nname"
	s := r.HTTP(HTTPLabels{Direction: "inbound", Authority: weird, TargetAddr: "127.0.0.1:80", Route: `GET /a\b "c"`})
	s.Request()
	s.Response(200, "", 3*time.Millisecond)
	s.End(200, "")
	s.End(0, "")
	s.Response(503, "", 70*time.Second)
	s.End(503, "14")
	o := r.HTTP(outboundLabels())
	o.Request()
	o.Response(200, "", 0)
	o.End(200, "0")
	tcp := r.TCP(TCPLabels{Direction: "inbound", Peer: "src", TargetAddr: "10.0.0.1:5432", TLS: true, PeerID: "id\"\\\n"})
	tcp.Open()
	tcp.Read(10)
	tcp.Close(true, time.Hour)
	for i := range 20 { // past the cap: overflow series
		r.HTTP(HTTPLabels{Direction: "outbound", Authority: fmt.Sprint("h", i)}).Request()
		r.TCP(TCPLabels{Direction: "outbound", Peer: "dst", TargetAddr: fmt.Sprint("t", i)}).Open()
	}
	r.IdentityExpiry(time.Unix(1767225600, 0))

	body := scrape(t, r)
	fams, err := parseExposition(body)
	if err != nil {
		t.Fatalf("%v\n%s", err, body)
	}
	for _, name := range []string{
		"request_total", "response_total", "response_latency_ms", "tcp_open_total", "tcp_open_connections",
		"tcp_read_bytes_total", "tcp_write_bytes_total", "tcp_close_total", "tcp_connection_duration_ms",
		"identity_cert_expiration_timestamp_seconds", "metrics_series_overflow_total", "go_goroutines",
	} {
		if familyByName(fams, name) == nil {
			t.Errorf("no family %s", name)
		}
	}
	// The escaped values come back as they were.
	var found, overflow bool
	for _, smp := range familyByName(fams, "request_total").samples {
		if a, _ := smp.label("authority"); a == weird {
			found = true
			if r, _ := smp.label("route"); r != `GET /a\b "c"` {
				t.Errorf("route = %q", r)
			}
		}
		if a, _ := smp.label("authority"); a == overflowValue {
			overflow = true
		}
	}
	if !found || !overflow {
		t.Errorf("request_total: weird authority found %v, overflow found %v", found, overflow)
	}
	var client string
	for _, smp := range familyByName(fams, "tcp_open_total").samples {
		if p, _ := smp.label("target_addr"); p == "10.0.0.1:5432" {
			client, _ = smp.label("client_id")
		}
	}
	if client != "id\"\\\n" {
		t.Errorf("client_id = %q", client)
	}
	// The 70 s response is only in +Inf; the hour-long connection too.
	wantLines(t, body,
		`response_latency_ms_bucket{authority="we\"ird\\host\nname",client_id="",direction="inbound",dst_namespace="",dst_pod="",dst_service="",dst_workload_kind="",dst_workload_name="",no_tls_reason="",route="GET /a\\b \"c\"",server_id="",status_code="503",target_addr="127.0.0.1:80",tls="false",le="50000"} 0`,
		`response_latency_ms_bucket{authority="we\"ird\\host\nname",client_id="",direction="inbound",dst_namespace="",dst_pod="",dst_service="",dst_workload_kind="",dst_workload_name="",no_tls_reason="",route="GET /a\\b \"c\"",server_id="",status_code="503",target_addr="127.0.0.1:80",tls="false",le="+Inf"} 1`,
		`response_latency_ms_sum{authority="we\"ird\\host\nname",client_id="",direction="inbound",dst_namespace="",dst_pod="",dst_service="",dst_workload_kind="",dst_workload_name="",no_tls_reason="",route="GET /a\\b \"c\"",server_id="",status_code="503",target_addr="127.0.0.1:80",tls="false"} 70000`,
		`tcp_connection_duration_ms_sum{classification="failure",client_id="id\"\\\n",direction="inbound",no_tls_reason="",peer="src",server_id="",target_addr="10.0.0.1:5432",tls="true"} 3.6e+06`,
		"identity_cert_expiration_timestamp_seconds 1.7672256e+09",
	)
}

// TestParserRejects makes sure the parser is strict enough to trust.
func TestParserRejects(t *testing.T) {
	const head = "# HELP a_total A.\n# TYPE a_total counter\n"
	const hist = "# HELP h H.\n# TYPE h histogram\n"
	for name, body := range map[string]string{
		"no newline":       head + "a_total 1",
		"no TYPE":          "# HELP a_total A.\na_total 1\n",
		"unsorted":         head + `a_total{x="b"} 1` + "\n" + `a_total{x="a"} 1` + "\n",
		"repeated series":  head + `a_total{x="a"} 1` + "\n" + `a_total{x="a"} 1` + "\n",
		"raw quote":        head + `a_total{x="a"b"} 1` + "\n",
		"bad escape":       head + `a_total{x="a\tb"} 1` + "\n",
		"labels unsorted":  head + `a_total{y="a",x="b"} 1` + "\n",
		"trailing comma":   head + `a_total{x="a",} 1` + "\n",
		"families order":   "# HELP b B.\n# TYPE b gauge\nb 1\n" + head + "a_total 1\n",
		"wrong family":     head + "b_total 1\n",
		"no +Inf":          hist + `h_bucket{le="1"} 1` + "\nh_sum 1\nh_count 1\n",
		"not cumulative":   hist + `h_bucket{le="1"} 2` + "\n" + `h_bucket{le="+Inf"} 1` + "\nh_sum 1\nh_count 1\n",
		"count mismatch":   hist + `h_bucket{le="1"} 1` + "\n" + `h_bucket{le="+Inf"} 1` + "\nh_sum 1\nh_count 2\n",
		"le not ascending": hist + `h_bucket{le="2"} 1` + "\n" + `h_bucket{le="1"} 1` + "\n" + `h_bucket{le="+Inf"} 1` + "\nh_sum 1\nh_count 1\n",
		"no sum":           hist + `h_bucket{le="+Inf"} 1` + "\nh_count 1\n",
		"bad value":        head + "a_total one\n",
		"negative counter": head + "a_total -1\n",
	} {
		_, err := parseExposition(body)
		if err == nil {
			t.Errorf("%s: accepted:\n%s", name, body)
			continue
		}
		t.Logf("%s: %v", name, err)
	}
	ok := head + `a_total{x="a\"\\\n"} 1` + "\n" + hist + `h_bucket{le="1"} 1` + "\n" + `h_bucket{le="+Inf"} 2` + "\nh_sum 1.5\nh_count 2\n"
	if _, err := parseExposition(ok); err != nil {
		t.Errorf("valid exposition refused: %v", err)
	}
}

// TestEqualLabelSetsMerged: label structs that differ only in what the labels drop
// (NoTLSReason under TLS, bytes past the length cap) are one series, summed.
func TestEqualLabelSetsMerged(t *testing.T) {
	r := New(WithoutProcessCollectors())
	a := HTTPLabels{Direction: "inbound", Authority: "web", TLS: true}
	b := a
	b.NoTLSReason = "ignored under tls"
	r.HTTP(a).Request()
	r.HTTP(b).Request()
	r.HTTP(b).Response(200, "", time.Millisecond)
	r.HTTP(a).Response(200, "", 2*time.Millisecond)
	r.HTTP(a).End(502, "\xff")
	r.HTTP(a).End(502, "\xfe")
	long := strings.Repeat("x", maxLabelLen)
	ta := TCPLabels{Direction: "outbound", Peer: "dst", TargetAddr: long + "1"}
	tb := TCPLabels{Direction: "outbound", Peer: "dst", TargetAddr: long + "2"}
	r.TCP(ta).Open()
	r.TCP(tb).Open()
	r.TCP(tb).Close(false, time.Second)
	body := scrape(t, r)
	fams, err := parseExposition(body) // it refuses repeated series
	if err != nil {
		t.Fatalf("%v\n%s", err, body)
	}
	base := map[string]string{
		"direction": "inbound", "authority": "web", "target_addr": "", "tls": "true", "no_tls_reason": "",
		"client_id": "", "server_id": "", "dst_namespace": "", "dst_service": "", "dst_pod": "",
		"dst_workload_kind": "", "dst_workload_name": "", "route": "",
	}
	wantLines(t, body,
		series("request_total", base, "2"),
		series("response_latency_ms_count", with(base, "status_code", "200"), "2"),
		series("response_latency_ms_sum", with(base, "status_code", "200"), "3"),
		series("response_total", with(base, "status_code", "502", "grpc_status_code", "\uFFFD", "classification", "failure"), "2"),
	)
	tcp := familyByName(fams, "tcp_open_connections")
	if tcp == nil || len(tcp.samples) != 1 || tcp.samples[0].value != 1 {
		t.Errorf("tcp_open_connections: %+v", tcp)
	}
}

// TestHotPathDoesNotAllocate checks the per-request and per-connection methods.
func TestHotPathDoesNotAllocate(t *testing.T) {
	r := New(WithoutProcessCollectors())
	l := outboundLabels()
	tl := TCPLabels{Direction: "outbound", Peer: "dst", TargetAddr: "10.0.0.7:8080", TLS: true}
	s, c := r.HTTP(l), r.TCP(tl)
	s.Response(200, "", time.Millisecond)
	s.End(200, "0")
	if n := testing.AllocsPerRun(1000, func() {
		s := r.HTTP(l)
		s.Request()
		s.Response(200, "", 3*time.Millisecond)
		s.End(200, "0")
		c := r.TCP(tl)
		c.Open()
		c.Read(10)
		c.Write(10)
		c.Close(true, time.Second)
	}); n != 0 {
		t.Errorf("hot path: %v allocations", n)
	}
	_ = c
}

func TestHandlerHeadersAndLimit(t *testing.T) {
	r := New(WithoutProcessCollectors())
	rec := httptest.NewRecorder()
	r.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if ct := rec.Header().Get("Content-Type"); ct != "text/plain; version=0.0.4; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	if !strings.Contains(rec.Body.String(), "\nmetrics_series_overflow_total 0\n") {
		t.Errorf("body:\n%s", rec.Body)
	}
	for range maxScrapes {
		r.scrapes <- struct{}{}
	}
	rec = httptest.NewRecorder()
	r.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("scrape past the limit: status %d", rec.Code)
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, fmt.Errorf("disk on fire") }

func TestWriteError(t *testing.T) {
	r := New(WithoutProcessCollectors())
	r.HTTP(outboundLabels()).Request()
	if err := r.writeText(failingWriter{}); err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Errorf("writeText error = %v", err)
	}
}

// TestManySeries scrapes a full registry: 10,000 label sets, all parseable.
func TestManySeries(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	r := New()
	for i := range DefaultMaxSeries / 4 {
		s := r.HTTP(HTTPLabels{Direction: "outbound", Authority: fmt.Sprintf("svc-%d.ns:80", i), TargetAddr: "10.0.0.1:80", TLS: true})
		s.Request()
		s.Response(200, "", time.Duration(i)*time.Microsecond)
		s.End(200, "")
		r.TCP(TCPLabels{Direction: "outbound", Peer: "dst", TargetAddr: fmt.Sprintf("10.0.%d.%d:80", i/256, i%256)}).Open()
	}
	start := time.Now()
	body := scrape(t, r)
	took := time.Since(start)
	fams, err := parseExposition(body)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(familyByName(fams, "request_total").samples); n != DefaultMaxSeries/4 {
		t.Errorf("request_total series = %d", n)
	}
	if n := r.series.Load(); n != DefaultMaxSeries {
		t.Errorf("label sets = %d, want %d", n, DefaultMaxSeries)
	}
	t.Logf("scrape of %d bytes took %v", len(body), took)
}
