// Package routes is `mesh routes`: the golden metrics of a workload's inbound
// traffic per ServiceProfile route, from the proxies themselves (the direct
// source of viz/stat) or from Prometheus.
package routes

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/dynamic"

	"github.com/meshplane/mesh/cli/exitcode"
	"github.com/meshplane/mesh/cli/iostreams"
	"github.com/meshplane/mesh/cli/kube"
	"github.com/meshplane/mesh/cli/vizsource"
	"github.com/meshplane/mesh/viz/stat"
)

// DefaultWindow is -t's default, Linkerd viz's: how long the CLI waits between
// the two samples.
const DefaultWindow = time.Minute

// Options of `mesh routes`.
type Options struct {
	Resource  stat.Resource // from the arguments, in -n
	Namespace string        // -n; "" means the kubeconfig context's
	Window    time.Duration // -t
	Output    string        // table, wide or json
	// PrometheusURL is --prometheus-url: the Prometheus source.
	PrometheusURL string
	Kube          kube.Flags
	// Now is the clock and Sleep the wait between samples (a timer when nil).
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
}

// Source gives the route rows; *stat.Direct and *stat.Prometheus (with a
// dynamic client) are.
type Source interface {
	Routes(ctx context.Context, r stat.Resource, window time.Duration) ([]stat.RouteRow, error)
}

const long = `Show the golden metrics of a workload's inbound traffic per ServiceProfile
route, like 'linkerd viz routes': per route, success rate, requests per second and
latency percentiles (p50, p95, p99), with -o wide the share over mTLS. [DEFAULT] is
the requests no route matched. Routes of the ServiceProfiles of the services that
select the workload's pods are listed even without traffic ('-'), when the
ServiceProfile CRD is installed and readable.

KIND/NAME is a deploy, sts, ds, po or svc. Sources, the same rows from both:
  direct (default)  the CLI scrapes the object's meshed pods' proxy /metrics
                    through the API server as you (pods/proxy), twice, -t apart
                    (default 1m).
  --prometheus-url  the stat queries of Linkerd viz, per route label, against that
                    Prometheus over -t.
Both need get and list on pods and services and get on the object (the direct
source get on pods/proxy too), and list on serviceprofiles.policy.meshplane.io
(optional).

Exit codes, whatever -o:
  0  the rows were shown
  1  the command ran and failed: the object does not exist, no proxy could be
     scraped, Prometheus failed
  2  bad usage: flags, arguments, kinds, no kubeconfig, a --prometheus-url that is
     not http(s)://HOST[:PORT][/PATH]
  3  the cluster is unreachable, or refused the kubeconfig's credentials`

// NewCmd builds `mesh routes`. runF replaces the run function in tests.
func NewCmd(io *iostreams.IOStreams, runF func(*Options) error) *cobra.Command {
	opts := &Options{Window: DefaultWindow, Output: stat.FormatTable, Now: time.Now}
	cmd := &cobra.Command{
		Use:   "routes KIND/NAME",
		Short: "Show success rate, RPS and latency per ServiceProfile route",
		Long:  long,
		Example: `  mesh routes deploy/web -n shop -t 1m
  mesh routes svc/web -n shop -o json
  mesh routes deploy/web -n shop --prometheus-url http://localhost:9090`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) < 1 || len(args) > 2 {
				return exitcode.Usage(fmt.Errorf("want KIND/NAME or KIND NAME, got %d arguments", len(args)))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := opts.complete(args); err != nil {
				return exitcode.Usage(err)
			}
			if runF != nil {
				return runF(opts)
			}
			return Run(cmd.Context(), io, opts)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&opts.Namespace, "namespace", "n", "", "namespace of the object (default: the kubeconfig context's)")
	f.DurationVarP(&opts.Window, "time-window", "t", opts.Window, "window of the rates: the wait between the two samples")
	f.StringVarP(&opts.Output, "output", "o", opts.Output, "output: table, wide or json")
	vizsource.Bind(f, &opts.PrometheusURL)
	opts.Kube.Bind(f)
	return cmd
}

func (o *Options) complete(args []string) error {
	switch o.Output {
	case stat.FormatTable, stat.FormatWide, stat.FormatJSON:
	default:
		return fmt.Errorf("--output must be %s, not %q", strings.Join(stat.Formats(), ", "), o.Output)
	}
	if o.Window <= 0 {
		return fmt.Errorf("--time-window %s: must be positive", o.Window)
	}
	r, err := stat.ParseArgs(args, o.Namespace)
	if err != nil {
		return err
	}
	if r.Name == "" || r.Kind == stat.KindNamespace {
		return fmt.Errorf("%s: name one deploy, sts, ds, po or svc (KIND/NAME)", r)
	}
	o.Resource = r
	return nil
}

// profiled is a source with the dynamic client for ServiceProfiles.
type profiled struct {
	src vizsource.Source
	dyn dynamic.Interface
}

func (s profiled) Routes(ctx context.Context, r stat.Resource, w time.Duration) ([]stat.RouteRow, error) {
	return s.src.Routes(ctx, s.dyn, r, w)
}

// Run connects to the cluster and shows the routes of the direct source, or of
// --prometheus-url's.
func Run(ctx context.Context, io *iostreams.IOStreams, o *Options) error {
	if err := vizsource.Check(o.PrometheusURL); err != nil {
		return err // a bad URL is bad input: said before the cluster is reached
	}
	c, err := o.Kube.Connect(ctx)
	if err != nil {
		return err
	}
	if o.Resource.Namespace == "" {
		if o.Resource.Namespace, err = o.Kube.Namespace(); err != nil {
			return err
		}
	}
	src, err := vizsource.New(o.PrometheusURL, &stat.Direct{Client: c.Clientset, Now: o.Now, Sleep: o.Sleep, Warnings: io.ErrOut})
	if err != nil {
		return err
	}
	return Show(ctx, io, o, profiled{src, c.Dynamic})
}

// Show asks src for the rows and writes them to stdout.
func Show(ctx context.Context, io *iostreams.IOStreams, o *Options, src Source) error {
	rows, err := src.Routes(ctx, o.Resource, o.Window)
	if err != nil {
		return err
	}
	return stat.WriteRoutes(io.Out, o.Output, rows)
}
