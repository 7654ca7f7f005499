package metrics

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// BenchmarkHTTPSeries is the per-request cost on a cached series.
func BenchmarkHTTPSeries(b *testing.B) {
	s := New(WithoutProcessCollectors()).HTTP(outboundLabels())
	s.Response(200, "", time.Millisecond)
	s.End(200, "")
	b.ReportAllocs()
	for b.Loop() {
		s.Request()
		s.Response(200, "", 3*time.Millisecond)
		s.End(200, "")
	}
}

// BenchmarkHTTPSeriesParallel is the same from all cores on one series.
func BenchmarkHTTPSeriesParallel(b *testing.B) {
	s := New(WithoutProcessCollectors()).HTTP(outboundLabels())
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			s.Request()
			s.Response(200, "", 3*time.Millisecond)
			s.End(200, "0")
		}
	})
}

// BenchmarkHTTPLookup is Registry.HTTP on a cached label set plus the request.
func BenchmarkHTTPLookup(b *testing.B) {
	r := New(WithoutProcessCollectors())
	l := outboundLabels()
	r.HTTP(l)
	b.ReportAllocs()
	for b.Loop() {
		s := r.HTTP(l)
		s.Request()
		s.Response(200, "", 3*time.Millisecond)
		s.End(200, "")
	}
}

// BenchmarkTCPSeries is one connection's lifecycle on a cached series.
func BenchmarkTCPSeries(b *testing.B) {
	r := New(WithoutProcessCollectors())
	l := TCPLabels{Direction: "outbound", Peer: "dst", TargetAddr: "10.0.0.7:8080", TLS: true}
	b.ReportAllocs()
	for b.Loop() {
		s := r.TCP(l)
		s.Open()
		s.Read(512)
		s.Write(1024)
		s.Close(false, time.Second)
	}
}

// BenchmarkScrape is one exposition of 1,000 HTTP and 1,000 TCP series.
func BenchmarkScrape(b *testing.B) {
	r := New(WithoutProcessCollectors())
	for i := range 1000 {
		l := outboundLabels()
		l.Authority = fmt.Sprintf("svc-%d:80", i)
		s := r.HTTP(l)
		s.Request()
		s.Response(200, "", time.Millisecond)
		s.End(200, "")
		r.TCP(TCPLabels{Direction: "outbound", Peer: "dst", TargetAddr: l.Authority}).Open()
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := r.writeText(io.Discard); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkScrape1000Series is issue 14's figure: one GET /metrics over loopback of
// an exposition with about 1,000 series (sample lines: every bucket counts), with
// the process and Go collectors on, as a proxy serves it.
func BenchmarkScrape1000Series(b *testing.B) {
	r := New()
	for i := range 11 { // 11 HTTP and TCP label sets: about 90 series each, buckets included
		l := outboundLabels()
		l.Authority = fmt.Sprintf("svc-%d:80", i)
		s := r.HTTP(l)
		s.Request()
		s.Response(200, "", time.Millisecond)
		s.End(200, "")
		r.TCP(TCPLabels{Direction: "outbound", Peer: "dst", TargetAddr: l.Authority}).Open()
	}
	srv := httptest.NewServer(r.Handler())
	defer srv.Close()
	get := func() []byte {
		resp, err := http.Get(srv.URL)
		if err != nil {
			b.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if err != nil {
			b.Fatal(err)
		}
		return body
	}
	series := 0
	for _, line := range strings.Split(string(get()), "\n") {
		if line != "" && !strings.HasPrefix(line, "#") {
			series++
		}
	}
	if series < 1000 || series > 1300 {
		b.Fatalf("%d series, want about 1,000", series)
	}
	b.ReportAllocs()
	for b.Loop() {
		get()
	}
	b.ReportMetric(float64(series), "series")
}
