package vizsource

import (
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/meshplane/mesh/cli/exitcode"
	"github.com/meshplane/mesh/viz/dashboard"
	"github.com/meshplane/mesh/viz/stat"
)

// Both sources serve every command and the dashboard.
var (
	_ Source            = (*stat.Direct)(nil)
	_ Source            = (*stat.Prometheus)(nil)
	_ dashboard.Metrics = Source(nil)
)

// The flag binds to its string; Check passes "" and http(s) URLs and refuses the
// rest as bad usage naming the flag; New gives the direct source without a URL
// and the Prometheus one, over the direct source's cluster, with one.
func TestFlagCheckNew(t *testing.T) {
	t.Parallel()
	var url string
	fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
	Bind(fs, &url)
	if err := fs.Parse([]string{"--prometheus-url", "http://prom:9090"}); err != nil || url != "http://prom:9090" {
		t.Fatalf("parse: %v, url %q", err, url)
	}
	for _, u := range []string{"", "http://prom:9090", "https://prom.example/prometheus"} {
		if err := Check(u); err != nil {
			t.Errorf("Check(%q): %v", u, err)
		}
	}
	for _, u := range []string{"ftp://prom", "prom:9090", "http://", "http://a b/"} {
		err := Check(u)
		if err == nil || exitcode.For(err) != exitcode.UsageCode || !strings.Contains(err.Error(), "--prometheus-url") {
			t.Errorf("Check(%q): %v (exit %d), want a usage error naming --prometheus-url", u, err, exitcode.For(err))
		}
	}
	d := &stat.Direct{}
	if src, err := New("", d); err != nil || src != Source(d) {
		t.Errorf("New without a URL: %v, %v; want the direct source", src, err)
	}
	src, err := New("http://prom:9090", d)
	if p, ok := src.(*stat.Prometheus); err != nil || !ok || p.Kube != d.Client {
		t.Errorf("New with a URL: %T, %v; want the Prometheus source", src, err)
	}
	if _, err := New("ftp://prom", d); exitcode.For(err) != exitcode.UsageCode {
		t.Errorf("New with a bad URL: %v, want a usage error", err)
	}
}
