package metrics

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// contentType is the media type of the Prometheus text exposition format.
const contentType = "text/plain; version=0.0.4; charset=utf-8"

// kind is a metric family's type.
type kind uint8

const (
	kindCounter kind = iota
	kindGauge
	kindHistogram
)

func (k kind) String() string {
	switch k {
	case kindCounter:
		return "counter"
	case kindGauge:
		return "gauge"
	default:
		return "histogram"
	}
}

// family describes a metric family.
type family struct {
	name, help string
	kind       kind
	// names are the label names sorted, as exposed; perm[i] is the position of
	// names[i] in the order the values are given in (base values, then extra).
	names []string
	perm  []int
}

func newFamily(name, help string, k kind, labelNames []string) family {
	perm := make([]int, len(labelNames))
	for i := range perm {
		perm[i] = i
	}
	slices.SortFunc(perm, func(a, b int) int { return strings.Compare(labelNames[a], labelNames[b]) })
	names := make([]string, len(perm))
	for i, p := range perm {
		names[i] = labelNames[p]
	}
	return family{name: name, help: help, kind: k, names: names, perm: perm}
}

// sample is one series of a family at a scrape.
type sample struct {
	off  int     // its label values: familyRows.values[off : off+len(names)]
	v    float64 // counters and gauges
	hist int     // histograms: index in familyRows.hists
}

// familyRows gathers one family's series at a scrape.
type familyRows struct {
	f       *family
	values  []string // label values, len(f.names) per sample, in f.names order
	samples []sample
	hists   []histSnapshot
}

func newRows(f *family) *familyRows { return &familyRows{f: f} }

// grow makes room for n more samples.
func (fr *familyRows) grow(n int) *familyRows {
	fr.values = slices.Grow(fr.values, n*len(fr.f.names))
	fr.samples = slices.Grow(fr.samples, n)
	if fr.f.kind == kindHistogram {
		fr.hists = slices.Grow(fr.hists, n)
	}
	return fr
}

// labels appends the label values base+extra (in the family's given order) and
// returns their offset.
func (fr *familyRows) labels(base, extra []string) int {
	off := len(fr.values)
	for _, p := range fr.f.perm {
		if p < len(base) {
			fr.values = append(fr.values, base[p])
		} else {
			fr.values = append(fr.values, extra[p-len(base)])
		}
	}
	return off
}

func (fr *familyRows) add(base, extra []string, v float64) {
	fr.samples = append(fr.samples, sample{off: fr.labels(base, extra), v: v})
}

func (fr *familyRows) addHist(base, extra []string, h *histogram) {
	fr.hists = append(fr.hists, h.snapshot())
	fr.samples = append(fr.samples, sample{off: fr.labels(base, extra), hist: len(fr.hists) - 1})
}

func (fr *familyRows) key(s sample) []string { return fr.values[s.off : s.off+len(fr.f.names)] }

// finish sorts the samples by label values and sums the ones with equal labels
// (label structs that differ only in what sanitizing or TLS drops).
func (fr *familyRows) finish() {
	// Unstable is enough: samples with equal labels are summed, in any order.
	slices.SortFunc(fr.samples, func(a, b sample) int { return slices.Compare(fr.key(a), fr.key(b)) })
	out := fr.samples[:0]
	for _, s := range fr.samples {
		if n := len(out); n > 0 && slices.Equal(fr.key(out[n-1]), fr.key(s)) {
			if fr.f.kind == kindHistogram {
				fr.hists[out[n-1].hist].merge(&fr.hists[s.hist])
			} else {
				out[n-1].v += s.v
			}
			continue
		}
		out = append(out, s)
	}
	fr.samples = out
}

// collection gathers the families of one exposition.
type collection struct {
	requests, responses, latency                               *familyRows
	tcpOpen, tcpClose, tcpOpenConns, tcpRead, tcpWrite, tcpDur *familyRows
}

// writeText writes the whole exposition to w.
func (r *Registry) writeText(w io.Writer) error {
	f := &r.fam
	hs, ts := r.httpSeries(), r.tcpSeries()
	nh, nt := len(hs), len(ts)
	// Room for the usual case: a status child of each kind per HTTP series.
	sc := &collection{
		requests: newRows(&f.requests).grow(nh), responses: newRows(&f.responses).grow(nh),
		latency: newRows(&f.latency).grow(nh), tcpOpen: newRows(&f.tcpOpen).grow(nt),
		tcpClose: newRows(&f.tcpClose).grow(2 * nt), tcpOpenConns: newRows(&f.tcpOpenConns).grow(nt),
		tcpRead: newRows(&f.tcpRead).grow(nt), tcpWrite: newRows(&f.tcpWrite).grow(nt),
		tcpDur: newRows(&f.tcpDur).grow(2 * nt),
	}
	for _, s := range hs {
		s.collect(sc)
	}
	for _, s := range ts {
		s.collect(sc)
	}
	expiry, overflows := newRows(&f.certExpiry), newRows(&f.overflows)
	expiry.add(nil, nil, math.Float64frombits(r.certExpiry.Load()))
	overflows.add(nil, nil, r.overflows.value())
	all := []*familyRows{sc.requests, sc.responses, sc.latency, sc.tcpOpen, sc.tcpClose, sc.tcpOpenConns,
		sc.tcpRead, sc.tcpWrite, sc.tcpDur, expiry, overflows}
	if r.collectors {
		all = append(all, r.processFamilies()...)
		all = append(all, goFamilies()...)
	}
	slices.SortFunc(all, func(a, b *familyRows) int { return strings.Compare(a.f.name, b.f.name) })

	tw := textWriter{w: bufio.NewWriterSize(w, 32<<10)}
	for _, b := range r.bounds {
		tw.les = append(tw.les, formatFloat(float64(b)/float64(time.Millisecond)))
	}
	tw.les = append(tw.les, "+Inf")
	for _, fr := range all {
		fr.finish()
		tw.family(fr)
	}
	if err := tw.w.Flush(); err != nil {
		return fmt.Errorf("metrics: write exposition: %w", err)
	}
	return nil
}

// httpSeries lists the HTTP series, overflow ones included.
func (r *Registry) httpSeries() []*HTTPSeries {
	r.httpMu.RLock()
	defer r.httpMu.RUnlock()
	out := make([]*HTTPSeries, 0, len(r.http)+len(r.httpOverflow))
	for _, ss := range r.http {
		out = append(out, ss...)
	}
	for _, s := range r.httpOverflow {
		out = append(out, s)
	}
	return out
}

// tcpSeries lists the TCP series, overflow ones included.
func (r *Registry) tcpSeries() []*TCPSeries {
	r.tcpMu.RLock()
	defer r.tcpMu.RUnlock()
	out := make([]*TCPSeries, 0, len(r.tcp)+len(r.tcpOverflow))
	for _, s := range r.tcp {
		out = append(out, s)
	}
	for _, s := range r.tcpOverflow {
		out = append(out, s)
	}
	return out
}

// textWriter writes families in the text format. Write errors stick in the
// bufio.Writer and come out of Flush.
type textWriter struct {
	w      *bufio.Writer
	les    []string // the le label values of the histogram buckets
	labels []byte   // the current sample's labels, rendered: a="x",b="y"
	buf    []byte
}

// family writes one family; none at all when it has no samples.
func (t *textWriter) family(fr *familyRows) {
	if len(fr.samples) == 0 {
		return
	}
	f := fr.f
	b := append(t.buf[:0], "# HELP "...)
	b = append(b, f.name...)
	b = append(b, ' ')
	b = appendEscaped(b, f.help, false)
	b = append(b, "\n# TYPE "...)
	b = append(b, f.name...)
	b = append(b, ' ')
	b = append(b, f.kind.String()...)
	b = append(b, '\n')
	t.write(b)
	for _, s := range fr.samples {
		// Render the labels once: a histogram repeats them on 28 lines.
		t.labels = t.labels[:0]
		for i, v := range fr.key(s) {
			if i > 0 {
				t.labels = append(t.labels, ',')
			}
			t.labels = append(t.labels, f.names[i]...)
			t.labels = append(t.labels, `="`...)
			t.labels = appendEscaped(t.labels, v, true)
			t.labels = append(t.labels, '"')
		}
		if f.kind != kindHistogram {
			t.sample(f.name, "", "", s.v)
			continue
		}
		h := &fr.hists[s.hist]
		var cum uint64
		for i, c := range h.counts {
			cum += c
			t.sample(f.name, "_bucket", t.les[i], float64(cum))
		}
		t.sample(f.name, "_sum", "", h.sumMillis())
		t.sample(f.name, "_count", "", float64(cum))
	}
}

// sample writes one line: name+suffix{labels[,le="le"]} value.
func (t *textWriter) sample(name, suffix, le string, v float64) {
	b := append(t.buf[:0], name...)
	b = append(b, suffix...)
	if len(t.labels) > 0 || le != "" {
		b = append(b, '{')
		b = append(b, t.labels...)
		if le != "" {
			if len(t.labels) > 0 {
				b = append(b, ',')
			}
			b = append(b, `le="`...)
			b = append(b, le...)
			b = append(b, '"')
		}
		b = append(b, '}')
	}
	b = append(b, ' ')
	b = appendFloat(b, v)
	b = append(b, '\n')
	t.write(b)
}

// write writes b, and keeps it as the scratch buffer. An error sticks in the
// bufio.Writer (later writes do nothing) and comes out of Flush.
func (t *textWriter) write(b []byte) {
	_, _ = t.w.Write(b)
	t.buf = b
}

// appendEscaped appends s with backslash and newline escaped, and double quotes
// too in a label value.
func appendEscaped(b []byte, s string, quote bool) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\':
			b = append(b, `\\`...)
		case c == '\n':
			b = append(b, `\n`...)
		case c == '"' && quote:
			b = append(b, `\"`...)
		default:
			b = append(b, c)
		}
	}
	return b
}

// appendFloat formats v as the Prometheus client library does: 'g', shortest.
func appendFloat(b []byte, v float64) []byte {
	switch {
	case v == 1:
		return append(b, '1')
	case v == 0:
		return append(b, '0')
	case v == -1:
		return append(b, "-1"...)
	case math.IsNaN(v):
		return append(b, "NaN"...)
	case math.IsInf(v, +1):
		return append(b, "+Inf"...)
	case math.IsInf(v, -1):
		return append(b, "-Inf"...)
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}

func formatFloat(v float64) string { return string(appendFloat(nil, v)) }
