package metrics

import (
	"fmt"
	"io"
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
