// Package vizsource is where `mesh stat`, `mesh edges` and `mesh routes` get their
// metrics: viz/stat's direct source (the proxies, through the API server), or its
// Prometheus source with --prometheus-url. The flag, its check and the choice
// live here once, so the three commands take and refuse the same URLs.
package vizsource

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/client-go/dynamic"

	"github.com/meshplane/mesh/cli/exitcode"
	"github.com/meshplane/mesh/viz/stat"
)

// Flag is --prometheus-url's name.
const Flag = "prometheus-url"

// Source is what both sources give: *stat.Direct and *stat.Prometheus.
type Source interface {
	Stat(ctx context.Context, q stat.Query) ([]stat.Row, error)
	Edges(ctx context.Context, ns, kind string, window time.Duration) ([]stat.Edge, error)
	Routes(ctx context.Context, dyn dynamic.Interface, r stat.Resource, window time.Duration) ([]stat.RouteRow, error)
}

// Bind adds --prometheus-url to fs, bound to url.
func Bind(fs *pflag.FlagSet, url *string) {
	fs.StringVar(url, Flag, *url, "read the metrics from this Prometheus instead of the proxies")
}

// Check refuses a --prometheus-url that is not http(s)://host[:port][/path]: a
// usage error (exit 2), to be said before the cluster is reached. "" (the
// direct source) passes.
func Check(url string) error {
	if url == "" {
		return nil
	}
	if _, err := stat.NewPrometheus(url, nil, nil, nil); err != nil {
		return exitcode.Usage(fmt.Errorf("--%s: %w", Flag, err))
	}
	return nil
}

// New is d, or with url the Prometheus source at url over d's cluster: the same
// rows, pod counts and identities from Kubernetes as d, the numbers from
// Prometheus (Linkerd viz's queries), warnings where d writes its own.
func New(url string, d *stat.Direct) (Source, error) {
	if url == "" {
		return d, nil
	}
	p, err := stat.NewPrometheus(url, nil, stat.KubePods{Client: d.Client}, nil)
	if err != nil {
		return nil, exitcode.Usage(fmt.Errorf("--%s: %w", Flag, err))
	}
	p.Kube, p.Warnings = d.Client, d.Warnings
	return p, nil
}
