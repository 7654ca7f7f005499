package stat

import (
	"fmt"
	"io"
	"math"
	"net"
	"sort"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// The proxy's metric families mesh stat reads (proxy/metrics, Linkerd's names).
const (
	familyResponses = "response_total"
	familyLatency   = "response_latency_ms"
	familyTCPOpen   = "tcp_open_connections"
)

// labelSet is one series' label pairs.
type labelSet map[string]string

// key is the series' identity: its label pairs, sorted.
func (l labelSet) key() string {
	names := make([]string, 0, len(l))
	for n := range l {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		b.WriteString(n)
		b.WriteByte(0)
		b.WriteString(l[n])
		b.WriteByte(0)
	}
	return b.String()
}

// targetIP is the host of target_addr (ip:port), "" when it is not one.
func (l labelSet) targetIP() string {
	host, _, err := net.SplitHostPort(l["target_addr"])
	if err != nil {
		return ""
	}
	return host
}

type scalarSeries struct {
	labels labelSet
	value  float64
}

type histogramSeries struct {
	labels  labelSet
	buckets []Bucket // cumulative, sorted by upper bound, +Inf last
}

// sample is one scrape of one proxy: the series mesh stat reads, by key.
type sample struct {
	at        time.Time
	responses map[string]scalarSeries
	latency   map[string]histogramSeries
	tcpOpen   map[string]scalarSeries
}

// parseSample reads the Prometheus text exposition of a proxy's /metrics with
// Prometheus's own parser (expfmt), keeping the families mesh stat reads. A family
// of an unexpected type is an error naming it.
func parseSample(r io.Reader, at time.Time) (*sample, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	s := &sample{at: at, responses: map[string]scalarSeries{}, latency: map[string]histogramSeries{}, tcpOpen: map[string]scalarSeries{}}
	if f := fams[familyResponses]; f != nil {
		if f.GetType() != dto.MetricType_COUNTER {
			return nil, fmt.Errorf("metrics: %s: type %s, want counter", familyResponses, f.GetType())
		}
		for _, m := range f.GetMetric() {
			l := labelsOf(m)
			s.responses[l.key()] = scalarSeries{l, m.GetCounter().GetValue()}
		}
	}
	if f := fams[familyTCPOpen]; f != nil {
		if f.GetType() != dto.MetricType_GAUGE {
			return nil, fmt.Errorf("metrics: %s: type %s, want gauge", familyTCPOpen, f.GetType())
		}
		for _, m := range f.GetMetric() {
			l := labelsOf(m)
			s.tcpOpen[l.key()] = scalarSeries{l, m.GetGauge().GetValue()}
		}
	}
	if f := fams[familyLatency]; f != nil {
		if f.GetType() != dto.MetricType_HISTOGRAM {
			return nil, fmt.Errorf("metrics: %s: type %s, want histogram", familyLatency, f.GetType())
		}
		for _, m := range f.GetMetric() {
			l := labelsOf(m)
			s.latency[l.key()] = histogramSeries{l, bucketsOf(m.GetHistogram())}
		}
	}
	return s, nil
}

func labelsOf(m *dto.Metric) labelSet {
	l := make(labelSet, len(m.GetLabel()))
	for _, p := range m.GetLabel() {
		l[p.GetName()] = p.GetValue()
	}
	return l
}

// bucketsOf is a histogram's cumulative buckets with +Inf last (the sample count
// when the exposition has no +Inf line).
func bucketsOf(h *dto.Histogram) []Bucket {
	out := make([]Bucket, 0, len(h.GetBucket())+1)
	for _, b := range h.GetBucket() {
		c := float64(b.GetCumulativeCount())
		if b.CumulativeCountFloat != nil {
			c = b.GetCumulativeCountFloat()
		}
		out = append(out, Bucket{UpperBound: b.GetUpperBound(), Count: c})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].UpperBound < out[j].UpperBound })
	if len(out) == 0 || !math.IsInf(out[len(out)-1].UpperBound, +1) {
		c := float64(h.GetSampleCount())
		if h.SampleCountFloat != nil {
			c = h.GetSampleCountFloat()
		}
		out = append(out, Bucket{UpperBound: math.Inf(+1), Count: c})
	}
	return out
}

// podDelta is what one proxy counted between its two samples.
type podDelta struct {
	seconds   float64           // between the two scrapes
	responses []scalarSeries    // increases of response_total
	latency   []histogramSeries // increases of response_latency_ms's buckets
	tcpOpen   []scalarSeries    // tcp_open_connections at the second sample
}

// increase is Prometheus's increase over two points: the difference, or, when the
// counter went down (the proxy restarted and counted again from 0), the new value.
func increase(before, after float64) float64 {
	if after < before {
		return after
	}
	return after - before
}

// deltas computes what the proxy counted from a to b. A series first seen in b was
// created inside the window (the proxy creates series at their first event, from
// 0), so all of its value counts. A histogram series in which any bucket went down
// was reset: all of its new counts count.
func deltas(a, b *sample) podDelta {
	d := podDelta{seconds: b.at.Sub(a.at).Seconds()}
	for k, s := range b.responses {
		v := s.value
		if old, ok := a.responses[k]; ok {
			v = increase(old.value, s.value)
		}
		d.responses = append(d.responses, scalarSeries{s.labels, v})
	}
	for k, s := range b.latency {
		old, ok := a.latency[k]
		d.latency = append(d.latency, histogramSeries{s.labels, bucketIncrease(old.buckets, s.buckets, ok)})
	}
	for _, s := range b.tcpOpen {
		d.tcpOpen = append(d.tcpOpen, s)
	}
	return d
}

func bucketIncrease(before, after []Bucket, seen bool) []Bucket {
	out := append([]Bucket(nil), after...)
	if !seen {
		return out
	}
	prev := make(map[float64]float64, len(before))
	for _, b := range before {
		prev[b.UpperBound] = b.Count
	}
	for _, b := range after {
		if p, ok := prev[b.UpperBound]; ok && b.Count < p {
			return out // reset
		}
	}
	for i := range out {
		out[i].Count -= prev[out[i].UpperBound]
	}
	return out
}
