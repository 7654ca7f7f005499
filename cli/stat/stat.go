// Package stat is `mesh stat`: the golden metrics (success rate, requests per second,
// latency percentiles, TCP connections, meshed pods, mTLS share) of deployments,
// statefulsets, daemonsets, pods, namespaces and services, from the proxies
// themselves (the direct source, the default) or from Prometheus.
package stat

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/meshplane/mesh/cli/exitcode"
	"github.com/meshplane/mesh/cli/iostreams"
	"github.com/meshplane/mesh/cli/kube"
	"github.com/meshplane/mesh/cli/vizsource"
	"github.com/meshplane/mesh/viz/stat"
)

// DefaultWindow is -t's default, Linkerd viz's: in the direct source, how long the
// CLI waits between the two samples.
const DefaultWindow = time.Minute

// Options of `mesh stat`.
type Options struct {
	// Query is what the flags and arguments ask; Window is bound to -t.
	Query         stat.Query
	Namespace     string // -n; "" means the kubeconfig context's
	AllNamespaces bool   // -A
	To, From      string // KIND/NAME, resolved into Query in the namespace below
	ToNamespace   string // default: the resource's namespace
	FromNamespace string
	Output        string // table, wide or json
	Watch         bool
	PrometheusURL string
	Kube          kube.Flags
	// Now is the clock and Sleep the wait between samples (a timer when nil).
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
}

const long = `Show the golden metrics of meshed workloads, like 'linkerd viz stat': per object,
meshed/total pods, success rate, requests per second, latency percentiles (p50, p95,
p99), open TCP connections and, with -o wide, the share of requests over mTLS.

KIND is deploy(ment), sts/statefulset, ds/daemonset, po/pod, ns/namespace or
svc/service (singular, plural or short, as kubectl spells them), with a NAME for one
object or none for all of the namespace (-n, or every namespace with -A).

Rows use Linkerd viz's traffic: a workload, pod or namespace its inbound requests and
connections; with --to, its outbound traffic to that object; with --from, the
outbound traffic of that object to each row's (rows without traffic are left out);
a service, the outbound traffic to it of every meshed pod. '-' means no request in
the window (or, for TCP_CONN, not measured: services have none).

Sources, the same numbers from both:
  direct (default)  nothing to install. The CLI scrapes each meshed pod's proxy
                    /metrics through the API server as you (pods/proxy), twice, -t
                    apart, and computes the rates: -t is how long it waits (default
                    1m; -t 10s for a quick look). Needs get and list on pods (and on
                    the kind shown) and get on pods/proxy. Pods that cannot be
                    scraped are warned about on stderr and left out.
  --prometheus-url  Linkerd viz's PromQL against that Prometheus, over -t.

--watch repeats: one table (or JSON array) per window, until interrupted.

Exit codes, whatever -o:
  0  the rows were shown (a row without traffic is not an error)
  1  the command ran and failed: an object named does not exist, no proxy could be
     scraped, or Prometheus failed
  2  bad usage: flags, arguments, kinds, no kubeconfig, a --prometheus-url that is
     not http(s)://HOST[:PORT][/PATH]
  3  the cluster is unreachable, or refused the kubeconfig's credentials`

// NewCmd builds `mesh stat`. runF replaces the run function in tests.
func NewCmd(io *iostreams.IOStreams, runF func(*Options) error) *cobra.Command {
	opts := &Options{Query: stat.Query{Window: DefaultWindow}, Output: stat.FormatTable, Now: time.Now}
	cmd := &cobra.Command{
		Use:   "stat KIND[/NAME] [NAME]",
		Short: "Show success rate, RPS, latency and TCP connections of meshed workloads",
		Long:  long,
		Example: `  mesh stat deploy -n shop
  mesh stat deploy/web -n shop --to svc/api -t 10s
  mesh stat deploy -n shop --from deploy/web
  mesh stat ns -A -o wide
  mesh stat po -n shop -o json --watch`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) < 1 || len(args) > 2 {
				return exitcode.Usage(fmt.Errorf("want KIND[/NAME] [NAME], got %d arguments (KIND: %s)", len(args), strings.Join(stat.Kinds(), ", ")))
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
	f.StringVarP(&opts.Namespace, "namespace", "n", "", "namespace of the objects (default: the kubeconfig context's)")
	f.BoolVarP(&opts.AllNamespaces, "all-namespaces", "A", false, "objects of every namespace")
	f.StringVar(&opts.To, "to", "", "only outbound traffic to this object, KIND/NAME")
	f.StringVar(&opts.ToNamespace, "to-namespace", "", "namespace of --to (default: -n)")
	f.StringVar(&opts.From, "from", "", "only inbound traffic from this object, KIND/NAME")
	f.StringVar(&opts.FromNamespace, "from-namespace", "", "namespace of --from (default: -n)")
	f.DurationVarP(&opts.Query.Window, "time-window", "t", opts.Query.Window, "window of the rates; direct: the wait between the two samples")
	f.StringVarP(&opts.Output, "output", "o", opts.Output, "output: table, wide or json")
	f.BoolVarP(&opts.Watch, "watch", "w", false, "repeat: one table per window, until interrupted")
	vizsource.Bind(f, &opts.PrometheusURL)
	opts.Kube.Bind(f)
	return cmd
}

// complete checks the flags and turns the arguments and --to/--from into the Query;
// namespaces left empty are filled from the kubeconfig in Run.
func (o *Options) complete(args []string) error {
	switch o.Output {
	case stat.FormatTable, stat.FormatWide, stat.FormatJSON:
	default:
		return fmt.Errorf("--output must be %s, not %q", strings.Join(stat.Formats(), ", "), o.Output)
	}
	if o.AllNamespaces && o.Namespace != "" {
		return errors.New("-A and -n: give one")
	}
	if o.Query.Window < 0 || (o.Watch && o.Query.Window == 0) {
		return fmt.Errorf("--time-window %s: must be positive", o.Query.Window)
	}
	r, err := stat.ParseArgs(args, o.Namespace)
	if err != nil {
		return err
	}
	if o.AllNamespaces && r.Kind != stat.KindNamespace {
		r.Namespace = ""
	}
	if r.Name != "" && o.AllNamespaces && r.Kind != stat.KindNamespace {
		return fmt.Errorf("%s with -A: a name needs one namespace (-n)", r)
	}
	o.Query.Resource = r
	o.Query.To, o.Query.From = nil, nil
	if o.To != "" && o.From != "" {
		return errors.New("--to and --from: give one")
	}
	for _, x := range []struct {
		flag, value, ns string
		dst             **stat.Resource
	}{{"--to", o.To, o.ToNamespace, &o.Query.To}, {"--from", o.From, o.FromNamespace, &o.Query.From}} {
		if x.value == "" {
			continue
		}
		ns := x.ns
		if ns == "" {
			ns = o.Namespace
		}
		t, err := stat.ParseResource(x.value, ns)
		if err != nil {
			return fmt.Errorf("%s: %w", x.flag, err)
		}
		if t.Kind != stat.KindNamespace && t.Namespace == "" && o.AllNamespaces {
			return fmt.Errorf("%s with -A: give its namespace (%s-namespace)", x.flag, x.flag)
		}
		*x.dst = &t
	}
	return o.Query.Validate()
}

// Run connects to the cluster, builds the source and writes the rows.
func Run(ctx context.Context, io *iostreams.IOStreams, o *Options) error {
	if err := vizsource.Check(o.PrometheusURL); err != nil {
		return err // a bad URL is bad input: said before the cluster is reached
	}
	c, err := o.Kube.Connect(ctx)
	if err != nil {
		return err
	}
	if !o.AllNamespaces {
		if err := o.fillNamespaces(); err != nil {
			return err
		}
	}
	// With --prometheus-url, the same rows and pod counts as the direct source,
	// the numbers from Prometheus over -t (Linkerd viz's queries).
	src, err := vizsource.New(o.PrometheusURL, &stat.Direct{Client: c.Clientset, Now: o.Now, Sleep: o.Sleep, Warnings: io.ErrOut})
	if err != nil {
		return err
	}
	return Show(ctx, io, o, src)
}

// fillNamespaces gives the kubeconfig context's namespace to the query's objects
// that have none (no -n).
func (o *Options) fillNamespaces() error {
	q := &o.Query
	need := q.Resource.Kind != stat.KindNamespace && q.Resource.Namespace == ""
	for _, r := range []*stat.Resource{q.To, q.From} {
		need = need || r != nil && r.Kind != stat.KindNamespace && r.Namespace == ""
	}
	if !need {
		return nil
	}
	ns, err := o.Kube.Namespace()
	if err != nil {
		return err
	}
	for _, r := range []*stat.Resource{&q.Resource, q.To, q.From} {
		if r != nil && r.Kind != stat.KindNamespace && r.Namespace == "" {
			r.Namespace = ns
		}
	}
	return nil
}

// Show asks src for the rows and writes them to stdout, once, or once per window
// with --watch until ctx ends (which is then no error).
func Show(ctx context.Context, io *iostreams.IOStreams, o *Options, src stat.Source) error {
	namespaces := o.AllNamespaces && o.Query.Resource.Kind != stat.KindNamespace
	for i := 0; ; i++ {
		rows, err := src.Stat(ctx, o.Query)
		if err != nil {
			if o.Watch && ctx.Err() != nil {
				return nil
			}
			return err
		}
		if o.Watch && i > 0 && o.Output != stat.FormatJSON {
			fmt.Fprintln(io.Out)
		}
		if err := stat.Write(io.Out, o.Output, namespaces, rows); err != nil {
			return err
		}
		if !o.Watch || ctx.Err() != nil {
			return nil
		}
	}
}
