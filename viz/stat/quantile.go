package stat

import (
	"math"
	"sort"
)

// Bucket is one cumulative histogram bucket: the count of observations <= UpperBound.
type Bucket struct {
	UpperBound float64
	Count      float64
}

// Quantile is the q-quantile (0 <= q <= 1) of a cumulative histogram, computed exactly
// as Prometheus's histogram_quantile does for classic histograms (promql/quantile.go,
// bucketQuantile), so the direct source and the Prometheus source agree:
//
//   - the buckets are sorted by upper bound; without a +Inf bucket the result is NaN;
//   - buckets with the same upper bound are summed, and counts are made monotonic
//     (a count lower than the one before it is raised to it);
//   - with fewer than two buckets, or no observation, the result is NaN;
//   - the rank is q times the number of observations (the +Inf bucket's count); the
//     result lies in the first bucket whose count reaches the rank;
//   - in the +Inf bucket, the result is the upper bound of the highest finite bucket;
//   - in the lowest bucket, the range starts at 0 (unless its upper bound is <= 0:
//     then that bound is the result);
//   - otherwise, the result is interpolated linearly within the bucket:
//     start + (end-start) * (rank-countBefore) / (count-countBefore).
//
// q < 0 gives -Inf and q > 1 gives +Inf, as in Prometheus.
func Quantile(q float64, buckets []Bucket) float64 {
	if math.IsNaN(q) {
		return math.NaN()
	}
	if q < 0 {
		return math.Inf(-1)
	}
	if q > 1 {
		return math.Inf(+1)
	}
	b := append([]Bucket(nil), buckets...)
	sort.SliceStable(b, func(i, j int) bool { return b[i].UpperBound < b[j].UpperBound })
	if len(b) == 0 || !math.IsInf(b[len(b)-1].UpperBound, +1) {
		return math.NaN()
	}
	b = coalesce(b)
	monotonic(b)
	if len(b) < 2 {
		return math.NaN()
	}
	observations := b[len(b)-1].Count
	if observations == 0 || math.IsNaN(observations) {
		return math.NaN()
	}
	rank := q * observations
	i := sort.Search(len(b)-1, func(i int) bool { return b[i].Count >= rank })
	if i == len(b)-1 {
		return b[len(b)-2].UpperBound
	}
	if i == 0 && b[0].UpperBound <= 0 {
		return b[0].UpperBound
	}
	var start float64
	end, count := b[i].UpperBound, b[i].Count
	if i > 0 {
		start = b[i-1].UpperBound
		count -= b[i-1].Count
		rank -= b[i-1].Count
	}
	return start + (end-start)*(rank/count)
}

// coalesce sums the counts of sorted buckets with the same upper bound.
func coalesce(b []Bucket) []Bucket {
	out := b[:0]
	for _, x := range b {
		if n := len(out); n > 0 && out[n-1].UpperBound == x.UpperBound {
			out[n-1].Count += x.Count
			continue
		}
		out = append(out, x)
	}
	return out
}

// monotonic raises every count that is below the count before it (Prometheus's
// ensureMonotonic: rates of buckets scraped at slightly different times, or a reset
// seen by some buckets only, can break cumulative order).
func monotonic(b []Bucket) {
	highest := math.Inf(-1)
	for i := range b {
		if b[i].Count > highest {
			highest = b[i].Count
		} else {
			b[i].Count = highest
		}
	}
}
