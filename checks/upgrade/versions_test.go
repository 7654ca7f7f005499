package upgrade

import "testing"

func TestCompare(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		cli, v string
		force  bool
		want   Skew
	}{
		{"1.4.0", "1.4.0", false, InSkew},
		{"1.4.2", "v1.4.0", false, InSkew},
		{"v1.4.0", "1.3.9", false, InSkew},
		{"1.4.0", "1.2.0", false, TooOld},
		{"2.0.0", "1.9.0", false, TooOld},
		{"1.4.0", "1.5.0", false, Newer},
		{"1.4.0", "1.4.1", false, Newer},
		{"1.4.0", "2.0.0", false, Newer},
		{"1.4.0", "1.5.0", true, InSkewForce},
		{"dev", "1.4.0", false, Dev},
		{"1.4.0", "dev", false, Dev},
		{"1.4.0", "", false, Dev},
		{"1.5.0-rc.1", "1.4.0", false, InSkew},
	} {
		if got := Compare(tc.cli, tc.v, tc.force); got != tc.want {
			t.Errorf("Compare(%q, %q, %v) = %d, want %d", tc.cli, tc.v, tc.force, got, tc.want)
		}
	}
}
