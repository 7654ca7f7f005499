package metrics

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// scrape fetches the registry's exposition over HTTP.
func scrape(t *testing.T, r *Registry) string {
	t.Helper()
	srv := httptest.NewServer(r.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape status %d", resp.StatusCode)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// wantLines fails unless every line is in the exposition.
func wantLines(t *testing.T, body string, lines ...string) {
	t.Helper()
	have := map[string]bool{}
	for l := range strings.SplitSeq(body, "\n") {
		have[l] = true
	}
	for _, l := range lines {
		if !have[l] {
			t.Errorf("missing line:\n  %s", l)
		}
	}
	if t.Failed() {
		t.Logf("exposition:\n%s", body)
	}
}

// series formats name{labels} value with the labels sorted, as the text format does.
func series(name string, labels map[string]string, value string) string {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	// Sorted by name, except that le (buckets) comes last.
	sort.Slice(keys, func(i, j int) bool {
		if (keys[i] == "le") != (keys[j] == "le") {
			return keys[j] == "le"
		}
		return keys[i] < keys[j]
	})
	var b strings.Builder
	b.WriteString(name + "{")
	for i, k := range keys {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, "%s=%q", k, labels[k])
	}
	b.WriteString("} " + value)
	return b.String()
}

func with(base map[string]string, kv ...string) map[string]string {
	m := make(map[string]string, len(base)+len(kv)/2)
	for k, v := range base {
		m[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

func outboundLabels() HTTPLabels {
	return HTTPLabels{
		Direction: "outbound", Authority: "api.shop.svc.cluster.local:8080", TargetAddr: "10.0.0.7:8080",
		TLS: true, PeerID: "api.shop.serviceaccount.identity.mesh.cluster.local",
		DstNamespace: "shop", DstService: "api", DstPod: "api-7d9f-abc",
		DstWorkloadKind: "deployment", DstWorkloadName: "api", Route: "GET /items",
	}
}

func outboundBase() map[string]string {
	return map[string]string{
		"direction": "outbound", "authority": "api.shop.svc.cluster.local:8080", "target_addr": "10.0.0.7:8080",
		"tls": "true", "no_tls_reason": "", "client_id": "",
		"server_id":     "api.shop.serviceaccount.identity.mesh.cluster.local",
		"dst_namespace": "shop", "dst_service": "api", "dst_pod": "api-7d9f-abc",
		"dst_workload_kind": "deployment", "dst_workload_name": "api", "route": "GET /items",
	}
}

func TestRequestTotalInbound(t *testing.T) {
	r := New(WithoutProcessCollectors())
	meshed := HTTPLabels{
		Direction: "inbound", Authority: "web:8080", TargetAddr: "127.0.0.1:8080",
		TLS: true, NoTLSReason: "dropped when tls is true", PeerID: "web.default.serviceaccount.identity.mesh.cluster.local",
	}
	s := r.HTTP(meshed)
	s.Request()
	s.Request()
	if r.HTTP(meshed) != s {
		t.Error("HTTP did not return the cached series")
	}
	r.HTTP(HTTPLabels{Direction: "inbound", Authority: "web:8080", TargetAddr: "127.0.0.1:8080", NoTLSReason: "no_identity"}).Request()
	wantLines(t, scrape(t, r),
		`request_total{authority="web:8080",client_id="web.default.serviceaccount.identity.mesh.cluster.local",direction="inbound",dst_namespace="",dst_pod="",dst_service="",dst_workload_kind="",dst_workload_name="",no_tls_reason="",route="",server_id="",target_addr="127.0.0.1:8080",tls="true"} 2`,
		`request_total{authority="web:8080",client_id="",direction="inbound",dst_namespace="",dst_pod="",dst_service="",dst_workload_kind="",dst_workload_name="",no_tls_reason="no_identity",route="",server_id="",target_addr="127.0.0.1:8080",tls="false"} 1`,
	)
}

func TestResponseClassification(t *testing.T) {
	r := New(WithoutProcessCollectors())
	s := r.HTTP(outboundLabels())
	for range 3 {
		s.Request()
		s.Response(200, "", 7*time.Millisecond)
		s.End(200, "")
	}
	s.Request()
	s.Response(503, "", 2*time.Millisecond)
	s.End(503, "")
	// gRPC: 200 headers, grpc-status 14 in the trailers.
	s.Request()
	s.Response(200, "", time.Millisecond)
	s.End(200, "14")
	s.Request()
	s.End(200, "0")
	// No response at all.
	s.Request()
	s.Response(0, "", time.Second)
	s.End(0, "")

	base := outboundBase()
	wantLines(t, scrape(t, r),
		series("request_total", base, "7"),
		series("response_total", with(base, "status_code", "200", "grpc_status_code", "", "classification", "success"), "3"),
		series("response_total", with(base, "status_code", "503", "grpc_status_code", "", "classification", "failure"), "1"),
		series("response_total", with(base, "status_code", "200", "grpc_status_code", "14", "classification", "failure"), "1"),
		series("response_total", with(base, "status_code", "200", "grpc_status_code", "0", "classification", "success"), "1"),
		series("response_total", with(base, "status_code", "", "grpc_status_code", "", "classification", "failure"), "1"),
		// 3 × 7 ms and 1 × 1 ms for 200; 2 ms for 503.
		series("response_latency_ms_bucket", with(base, "status_code", "200", "le", "1"), "1"),
		series("response_latency_ms_bucket", with(base, "status_code", "200", "le", "5"), "1"),
		series("response_latency_ms_bucket", with(base, "status_code", "200", "le", "10"), "4"),
		series("response_latency_ms_bucket", with(base, "status_code", "200", "le", "50000"), "4"),
		series("response_latency_ms_bucket", with(base, "status_code", "200", "le", "+Inf"), "4"),
		series("response_latency_ms_sum", with(base, "status_code", "200"), "22"),
		series("response_latency_ms_count", with(base, "status_code", "200"), "4"),
		series("response_latency_ms_bucket", with(base, "status_code", "503", "le", "1"), "0"),
		series("response_latency_ms_bucket", with(base, "status_code", "503", "le", "2"), "1"),
		series("response_latency_ms_count", with(base, "status_code", "503"), "1"),
	)
}

func TestLatencyBucketsAreMilliseconds(t *testing.T) {
	r := New(WithoutProcessCollectors())
	r.HTTP(outboundLabels()).Response(200, "", 1500*time.Microsecond)
	body := scrape(t, r)
	var les []string
	for l := range strings.SplitSeq(body, "\n") {
		if strings.HasPrefix(l, "response_latency_ms_bucket{") {
			i := strings.Index(l, `le="`)
			les = append(les, l[i+4:strings.Index(l[i+4:], `"`)+i+4])
		}
	}
	want := "1 2 3 4 5 10 20 30 40 50 100 200 300 400 500 1000 2000 3000 4000 5000 10000 20000 30000 40000 50000 +Inf"
	if got := strings.Join(les, " "); got != want {
		t.Errorf("buckets:\n got %s\nwant %s", got, want)
	}
	base := outboundBase()
	wantLines(t, body,
		series("response_latency_ms_bucket", with(base, "status_code", "200", "le", "1"), "0"),
		series("response_latency_ms_bucket", with(base, "status_code", "200", "le", "2"), "1"),
		series("response_latency_ms_sum", with(base, "status_code", "200"), "1.5"),
	)
}

func TestTCP(t *testing.T) {
	r := New(WithoutProcessCollectors())
	l := TCPLabels{Direction: "inbound", Peer: "src", TargetAddr: "10.0.0.9:5432", TLS: true, PeerID: "web.default.serviceaccount.identity.mesh.cluster.local"}
	s := r.TCP(l)
	if r.TCP(l) != s {
		t.Error("TCP did not return the cached series")
	}
	s.Open()
	s.Read(100)
	s.Write(250)
	s.Read(0)
	s.Close(false, 1500*time.Millisecond)
	s.Open()
	s.Read(5)
	s.Close(true, 20*time.Millisecond)
	s.Open()

	base := map[string]string{
		"direction": "inbound", "peer": "src", "target_addr": "10.0.0.9:5432", "tls": "true", "no_tls_reason": "",
		"client_id": "web.default.serviceaccount.identity.mesh.cluster.local", "server_id": "",
	}
	wantLines(t, scrape(t, r),
		`tcp_open_total{client_id="web.default.serviceaccount.identity.mesh.cluster.local",direction="inbound",no_tls_reason="",peer="src",server_id="",target_addr="10.0.0.9:5432",tls="true"} 3`,
		series("tcp_open_connections", base, "1"),
		series("tcp_read_bytes_total", base, "105"),
		series("tcp_write_bytes_total", base, "250"),
		series("tcp_close_total", with(base, "classification", "success"), "1"),
		series("tcp_close_total", with(base, "classification", "failure"), "1"),
		series("tcp_connection_duration_ms_bucket", with(base, "classification", "success", "le", "1000"), "0"),
		series("tcp_connection_duration_ms_bucket", with(base, "classification", "success", "le", "2000"), "1"),
		series("tcp_connection_duration_ms_sum", with(base, "classification", "success"), "1500"),
		series("tcp_connection_duration_ms_bucket", with(base, "classification", "failure", "le", "20"), "1"),
		series("tcp_connection_duration_ms_count", with(base, "classification", "failure"), "1"),
	)
}

func TestOverflowGuard(t *testing.T) {
	r := New(WithoutProcessCollectors(), WithMaxSeries(3))
	for i := range 1000 {
		s := r.HTTP(HTTPLabels{Direction: "inbound", Authority: fmt.Sprintf("host-%d", i), TLS: true})
		s.Request()
	}
	tcp := r.TCP(TCPLabels{Direction: "outbound", Peer: "dst", TargetAddr: "10.1.1.1:80", NoTLSReason: "no_identity"})
	tcp.Open()

	body := scrape(t, r)
	if n := strings.Count(body, "\nrequest_total{"); n != 4 {
		t.Errorf("request_total series = %d, want 3 + overflow", n)
	}
	in := map[string]string{
		"direction": "inbound", "tls": "true", "no_tls_reason": "", "client_id": "", "server_id": "", "target_addr": "",
		"dst_namespace": "", "dst_service": "", "dst_pod": "", "dst_workload_kind": "", "dst_workload_name": "", "route": "",
	}
	wantLines(t, body,
		series("request_total", with(in, "authority", "host-0"), "1"),
		series("request_total", with(in, "authority", "host-2"), "1"),
		series("request_total", with(in, "authority", "overflow"), "997"),
		series("tcp_open_total", map[string]string{
			"direction": "outbound", "peer": "dst", "target_addr": "overflow", "tls": "false",
			"no_tls_reason": "no_identity", "client_id": "", "server_id": "",
		}, "1"),
		"metrics_series_overflow_total 998",
	)
	if len(r.http) != 3 || len(r.httpOverflow) != 1 {
		t.Errorf("cached %d series + %d overflow, want 3 + 1", len(r.http), len(r.httpOverflow))
	}
}

func TestStatusOverflow(t *testing.T) {
	r := New(WithoutProcessCollectors())
	s := r.HTTP(outboundLabels())
	for code := 100; code < 100+maxStatusChildren+10; code++ {
		s.Response(code, "", time.Millisecond)
		s.End(code, "")
	}
	for i := range 100 {
		s.End(200, fmt.Sprint(1000+i)) // random grpc-status values
	}
	base := outboundBase()
	body := scrape(t, r)
	wantLines(t, body,
		series("response_total", with(base, "status_code", "100", "grpc_status_code", "", "classification", "success"), "1"),
		series("response_total", with(base, "status_code", "overflow", "grpc_status_code", "", "classification", "success"), "10"),
		series("response_total", with(base, "status_code", "overflow", "grpc_status_code", "overflow", "classification", "failure"), "100"),
		series("response_latency_ms_count", with(base, "status_code", "overflow"), "10"),
	)
	if n := strings.Count(body, "\nresponse_total{"); n != maxStatusChildren+2 {
		t.Errorf("response_total series = %d, want %d", n, maxStatusChildren+2)
	}
}

func TestLabelValuesSanitized(t *testing.T) {
	r := New(WithoutProcessCollectors())
	r.HTTP(HTTPLabels{Direction: "inbound", Authority: "bad\xff\xfehost"}).Request()
	r.HTTP(HTTPLabels{Direction: "inbound", Authority: strings.Repeat("a", 10000)}).Request()
	r.HTTP(HTTPLabels{Direction: "inbound", Authority: "x"}).End(502, "\xff")
	body := scrape(t, r)
	if !strings.Contains(body, `authority="bad\ufffdhost"`) && !strings.Contains(body, "authority=\"bad\uFFFDhost\"") {
		t.Errorf("invalid UTF-8 not repaired:\n%s", body)
	}
	if !strings.Contains(body, `authority="`+strings.Repeat("a", maxLabelLen)+`"`) {
		t.Error("long authority not cut")
	}
}

func TestIdentityExpiry(t *testing.T) {
	r := New(WithoutProcessCollectors())
	r.IdentityExpiry(time.Unix(1767225600, 500_000_000))
	wantLines(t, scrape(t, r), "identity_cert_expiration_timestamp_seconds 1.7672256005e+09")
}

func TestProcessCollectors(t *testing.T) {
	body := scrape(t, New())
	fams, err := parseExposition(body)
	if err != nil {
		t.Fatalf("%v\n%s", err, body)
	}
	want := []string{"go_goroutines", "go_threads", "go_info", "go_memstats_heap_inuse_bytes", "go_memstats_sys_bytes"}
	if runtime.GOOS == "linux" {
		want = append(want, "process_cpu_seconds_total", "process_resident_memory_bytes", "process_virtual_memory_bytes",
			"process_open_fds", "process_max_fds", "process_start_time_seconds")
	}
	for _, name := range want {
		f := familyByName(fams, name)
		if f == nil {
			t.Errorf("no %s", name)
			continue
		}
		if v := f.samples[0].value; v <= 0 && name != "process_cpu_seconds_total" {
			t.Errorf("%s = %v", name, v)
		}
	}
	if f := familyByName(fams, "process_start_time_seconds"); f != nil {
		if d := time.Since(time.Unix(int64(f.samples[0].value), 0)); d < -time.Minute || d > 24*time.Hour {
			t.Errorf("process_start_time_seconds is %v ago", d)
		}
	}
	if f := familyByName(fams, "go_info"); f != nil {
		if v, _ := f.samples[0].label("version"); v != runtime.Version() {
			t.Errorf("go_info version %q", v)
		}
	}

	body = scrape(t, New(WithoutProcessCollectors()))
	if strings.Contains(body, "\ngo_") || strings.Contains(body, "\nprocess_") {
		t.Errorf("WithoutProcessCollectors still exposes process or go metrics:\n%s", body)
	}
}

func TestReadProcFiles(t *testing.T) {
	dir := t.TempDir()
	stat := filepath.Join(dir, "stat")
	// comm holds a space and parentheses; utime 250 + stime 50 ticks, starttime 1234,
	// vsize 4096000, rss 100 pages.
	line := "42 (a) b (c) S 1 42 42 0 -1 4194560 1000 0 0 0 250 50 0 0 20 0 8 0 1234 4096000 100 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n"
	if err := os.WriteFile(stat, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := readProcStat(stat)
	if err != nil {
		t.Fatal(err)
	}
	want := procStat{cpuSeconds: 3, startTicks: 1234, vsize: 4096000, rss: 100 * float64(os.Getpagesize())}
	if st != want {
		t.Errorf("readProcStat = %+v, want %+v", st, want)
	}
	if err := os.WriteFile(stat, []byte("42 (short) S 1 2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := readProcStat(stat); err == nil {
		t.Error("short stat accepted")
	}
	if _, err := readProcStat(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v, want a wrapped ErrNotExist", err)
	}

	limits := filepath.Join(dir, "limits")
	for content, want := range map[string]float64{
		"Limit                     Soft Limit           Hard Limit           Units     \n" +
			"Max open files            1024                 524288               files     \n": 1024,
		"Max open files            unlimited            unlimited            files     \n": math.MaxUint64,
	} {
		if err := os.WriteFile(limits, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if got, err := readMaxFDs(limits); err != nil || got != want {
			t.Errorf("readMaxFDs = %v, %v; want %v", got, err, want)
		}
	}
	if err := os.WriteFile(limits, []byte("Max processes 10 10 processes\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := readMaxFDs(limits); err == nil {
		t.Error("limits without open files accepted")
	}
}

func TestNilIsNoop(t *testing.T) {
	var r *Registry
	h := r.HTTP(outboundLabels())
	h.Request()
	h.Response(200, "", time.Millisecond)
	h.End(200, "")
	c := r.TCP(TCPLabels{})
	c.Open()
	c.Read(1)
	c.Write(1)
	c.Close(false, time.Second)
	r.IdentityExpiry(time.Now())
	rec := httptest.NewRecorder()
	r.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("nil handler status %d", rec.Code)
	}
}

func TestConcurrent(t *testing.T) {
	r := New(WithoutProcessCollectors())
	statuses := []int{200, 201, 404, 500, 503}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				l := outboundLabels()
				l.Authority = fmt.Sprintf("svc-%d", (g+i)%4)
				s := r.HTTP(l)
				s.Request()
				st := statuses[(g*7+i)%len(statuses)]
				s.Response(st, "", time.Duration(i)*time.Microsecond)
				s.End(st, "")
				c := r.TCP(TCPLabels{Direction: "outbound", Peer: "dst", TargetAddr: l.Authority})
				c.Open()
				c.Read(10)
				c.Close(st >= 500, time.Millisecond)
			}
		})
	}
	wg.Wait()
	body := scrape(t, r)
	var total int
	for l := range strings.SplitSeq(body, "\n") {
		if strings.HasPrefix(l, "request_total{") {
			var n int
			_, _ = fmt.Sscan(l[strings.LastIndex(l, " ")+1:], &n)
			total += n
		}
	}
	if total != 8*500 {
		t.Errorf("requests = %d, want %d", total, 8*500)
	}
	if n := strings.Count(body, "\nresponse_total{"); n != 4*len(statuses) {
		t.Errorf("response_total series = %d, want %d", n, 4*len(statuses))
	}
}

func TestSeriesSharingAuthorityAndTarget(t *testing.T) {
	r := New(WithoutProcessCollectors())
	a, b := outboundLabels(), outboundLabels()
	b.Route = "POST /items"
	sa, sb := r.HTTP(a), r.HTTP(b)
	if sa == sb {
		t.Fatal("different routes share a series")
	}
	if r.HTTP(a) != sa || r.HTTP(b) != sb {
		t.Error("lookup returned the wrong series")
	}
	sa.Request()
	sb.Request()
	sb.Request()
	wantLines(t, scrape(t, r),
		series("request_total", outboundBase(), "1"),
		series("request_total", with(outboundBase(), "route", "POST /items"), "2"),
	)
}
