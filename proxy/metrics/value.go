package metrics

import (
	"sync/atomic"
	"time"
)

// numBuckets is the number of finite histogram bounds (len(LatencyBuckets())).
const numBuckets = 25

// bucketBounds are the finite upper bounds of a histogram, ascending.
type bucketBounds [numBuckets]time.Duration

// counter is a monotonic count.
type counter struct{ v atomic.Uint64 }

func (c *counter) inc()           { c.v.Add(1) }
func (c *counter) add(n uint64)   { c.v.Add(n) }
func (c *counter) value() float64 { return float64(c.v.Load()) }

// gauge is a count that goes up and down.
type gauge struct{ v atomic.Int64 }

func (g *gauge) inc()           { g.v.Add(1) }
func (g *gauge) dec()           { g.v.Add(-1) }
func (g *gauge) value() float64 { return float64(g.v.Load()) }

// histogram counts durations in buckets of bucketBounds, and sums them. The
// exposition is in milliseconds.
type histogram struct {
	// counts[i] counts observations in (bounds[i-1], bounds[i]]; counts[numBuckets]
	// those above the last bound. Not cumulative: an observation is one add.
	counts [numBuckets + 1]atomic.Uint64
	sumNS  atomic.Uint64 // sum of the observations, in nanoseconds
}

// observe records d; a negative d counts as 0.
func (h *histogram) observe(b *bucketBounds, d time.Duration) {
	if d < 0 {
		d = 0
	}
	// The first bound >= d: the bucket whose le d falls in.
	lo, hi := 0, numBuckets
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if b[m] < d {
			lo = m + 1
		} else {
			hi = m
		}
	}
	h.counts[lo].Add(1)
	h.sumNS.Add(uint64(d))
}

// histSnapshot is a histogram read at a scrape.
type histSnapshot struct {
	counts [numBuckets + 1]uint64 // not cumulative
	sumNS  uint64
}

func (h *histogram) snapshot() histSnapshot {
	var s histSnapshot
	for i := range h.counts {
		s.counts[i] = h.counts[i].Load()
	}
	s.sumNS = h.sumNS.Load()
	return s
}

func (s *histSnapshot) merge(o *histSnapshot) {
	for i := range s.counts {
		s.counts[i] += o.counts[i]
	}
	s.sumNS += o.sumNS
}

// sumMillis is the sum in milliseconds.
func (s *histSnapshot) sumMillis() float64 { return float64(s.sumNS) / float64(time.Millisecond) }
