package testcluster

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// recorder stands in for a test, to see what Kubeconfig does without a cluster.
type recorder struct {
	testing.TB
	skipped, failed string
}

func (r *recorder) Helper()           {}
func (r *recorder) Skip(args ...any)  { r.skipped = fmt.Sprint(args...) }
func (r *recorder) Fatal(args ...any) { r.failed = fmt.Sprint(args...) }

func TestKubeconfigWithoutCluster(t *testing.T) {
	existing := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(existing, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	gone := filepath.Join(t.TempDir(), "kubeconfig")
	tests := []struct {
		name, kubeconfig, require string
		want                      string // the returned path
		skip, fail                string // in the message, "" if none
	}{
		{name: "unset", skip: EnvKubeconfig + " is not set"},
		{name: "unset, required", require: "1", fail: EnvKubeconfig + " is not set"},
		{name: "stopped", kubeconfig: gone, skip: gone + " does not exist"},
		{name: "stopped, required", kubeconfig: gone, require: "1", fail: gone + " does not exist"},
		{name: "running", kubeconfig: existing, want: existing},
		{name: "running, required", kubeconfig: existing, require: "1", want: existing},
		{name: "required=0", require: "0", skip: "is not set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(EnvKubeconfig, tt.kubeconfig)
			t.Setenv(EnvRequire, tt.require)
			r := &recorder{TB: t}
			if got := Kubeconfig(r); got != tt.want {
				t.Errorf("Kubeconfig() = %q, want %q", got, tt.want)
			}
			check := func(kind, got, want string) {
				switch {
				case want == "" && got != "":
					t.Errorf("unexpected %s: %s", kind, got)
				case want != "" && !strings.Contains(got, want):
					t.Errorf("%s message %q does not contain %q", kind, got, want)
				case want != "" && !strings.Contains(got, howToStart):
					t.Errorf("%s message %q does not say how to start the cluster", kind, got)
				}
			}
			check("skip", r.skipped, tt.skip)
			check("fatal", r.failed, tt.fail)
		})
	}
}

func TestNamePrefix(t *testing.T) {
	for in, want := range map[string]string{
		"TestFoo":                      "t-testfoo-",
		"TestFoo/sub_case#01":          "t-testfoo-sub-case-01-",
		"Test__X--":                    "t-test-x-",
		strings.Repeat("TestLong", 10): "t-" + strings.Repeat("testlong", 10)[:50] + "-",
	} {
		if got := namePrefix(in); got != want {
			t.Errorf("namePrefix(%q) = %q, want %q", in, got, want)
		}
		if n := len(namePrefix(in)) + 5; n > 63 {
			t.Errorf("namePrefix(%q): names of %d characters, over 63", in, n)
		}
	}
}
