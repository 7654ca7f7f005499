package stat

import (
	"math"
	"testing"
)

// The expected values are worked out by hand from Prometheus's bucketQuantile
// (promql/quantile.go), the rules listed on Quantile.
func TestQuantile(t *testing.T) {
	t.Parallel()
	inf := math.Inf(+1)
	// 2 observations <= 1, 4 in (1,2], 2 in (2,5], 2 above 5: 10 in all.
	h := []Bucket{{1, 2}, {2, 6}, {5, 8}, {inf, 10}}
	tests := []struct {
		name    string
		q       float64
		buckets []Bucket
		want    float64
	}{
		// rank 5 falls in (1,2] holding 4, 3 of them before the rank: 1 + 1*3/4.
		{"p50 interpolates in its bucket", 0.5, h, 1.75},
		// rank 1 falls in the lowest bucket, which starts at 0: 0 + 1*1/2.
		{"p10 lowest bucket from 0", 0.1, h, 0.5},
		// rank 8 is the count of (2,5]: its upper bound, 2 + 3*2/2.
		{"p80 reaches a bucket's bound", 0.8, h, 5},
		// rank 9.5 is above every finite bucket: the highest finite bound.
		{"p95 in +Inf", 0.95, h, 5},
		{"p100 in +Inf", 1, h, 5},
		{"p0", 0, h, 0},
		{"unsorted input", 0.5, []Bucket{{inf, 10}, {5, 8}, {1, 2}, {2, 6}}, 1.75},
		// le=1 given twice sums to 2: the same histogram as h.
		{"equal bounds coalesced", 0.5, []Bucket{{1, 1}, {1, 1}, {2, 6}, {5, 8}, {inf, 10}}, 1.75},
		// counts 3, 2, 4 become 3, 3, 4: rank 2 in the lowest bucket, 0 + 1*2/3.
		{"non-monotonic counts raised", 0.5, []Bucket{{1, 3}, {2, 2}, {inf, 4}}, 2.0 / 3},
		// lowest bound <= 0: that bound.
		{"lowest bound not positive", 0.25, []Bucket{{0, 5}, {1, 10}, {inf, 10}}, 0},
		{"no +Inf bucket", 0.5, []Bucket{{1, 2}, {2, 6}}, math.NaN()},
		{"only +Inf", 0.5, []Bucket{{inf, 10}}, math.NaN()},
		{"no observation", 0.5, []Bucket{{1, 0}, {inf, 0}}, math.NaN()},
		{"no buckets", 0.5, nil, math.NaN()},
		{"q below 0", -0.1, h, math.Inf(-1)},
		{"q above 1", 1.1, h, math.Inf(+1)},
		{"q NaN", math.NaN(), h, math.NaN()},
	}
	for _, tc := range tests {
		got := Quantile(tc.q, tc.buckets)
		if !(got == tc.want || math.IsNaN(got) && math.IsNaN(tc.want) || math.Abs(got-tc.want) < 1e-12) {
			t.Errorf("%s: Quantile(%v) = %v, want %v", tc.name, tc.q, got, tc.want)
		}
	}
	// The input is not modified.
	in := []Bucket{{inf, 10}, {1, 2}}
	Quantile(0.5, in)
	if in[0].UpperBound != inf {
		t.Errorf("Quantile sorted its input: %v", in)
	}
}
