// Package edges is `mesh edges`: which workloads talk to which, with the client
// and server identities and whether each edge is mTLS, from the proxies
// themselves (the direct source of viz/stat) or from Prometheus.
package edges

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

// Options of `mesh edges`.
type Options struct {
	Kind          string        // canonical, from the argument
	Namespace     string        // -n; "" means the kubeconfig context's
	AllNamespaces bool          // -A
	Window        time.Duration // -t; 0: one scrape, counts since the proxies started
	Output        string        // table, wide or json
	PrometheusURL string        // --prometheus-url: the Prometheus source
	Kube          kube.Flags
	// Now is the clock and Sleep the wait between samples (a timer when nil).
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
}

// Source lists edges; *stat.Direct and *stat.Prometheus are.
type Source interface {
	Edges(ctx context.Context, ns, kind string, window time.Duration) ([]stat.Edge, error)
}

const long = `Show which workloads talk to which, like 'linkerd viz edges': per pair of
workloads of KIND (deploy, sts, ds or po), the source and destination with their
namespaces, whether the edge is secured (every request over mTLS with a verified
server identity) and, with -o wide, the client and server identities, the request
count and rate and why an edge is not secured.

Sources, the same edges from both:
  direct (default)  the CLI reads each meshed pod's proxy /metrics through the API
                    server as you (pods/proxy): a source's outbound requests name
                    the pod they went to, which is mapped to the workload that owns
                    it. Needs get and list on pods and on KIND, and get on
                    pods/proxy. By default (-t 0) each proxy is scraped once and
                    REQUESTS counts since it started; with -t 10s it is scraped
                    twice, 10s apart, and the rates are over that window.
  --prometheus-url  Linkerd viz's edges queries against that Prometheus: the
                    destination is the dst_ workload label of the install's
                    relabelling; with -t, the requests over that window, without,
                    the proxies' counters as they are. The workloads and their
                    identities still come from Kubernetes (get and list on pods
                    and on KIND).

A pod of no workload of KIND is shown as its service (svc/NAME). Callers without a
proxy show as '-' (seen by the destination's proxy, without a client identity).

Exit codes, whatever -o:
  0  the edges were shown (none is not an error)
  1  the command ran and failed: no proxy could be scraped, Prometheus failed
  2  bad usage: flags, arguments, kinds, no kubeconfig, a --prometheus-url that is
     not http(s)://HOST[:PORT][/PATH]
  3  the cluster is unreachable, or refused the kubeconfig's credentials`

// NewCmd builds `mesh edges`. runF replaces the run function in tests.
func NewCmd(io *iostreams.IOStreams, runF func(*Options) error) *cobra.Command {
	opts := &Options{Output: stat.FormatTable, Now: time.Now}
	cmd := &cobra.Command{
		Use:   "edges KIND",
		Short: "Show which meshed workloads talk to which, and whether over mTLS",
		Long:  long,
		Example: `  mesh edges deploy -n shop
  mesh edges po -A -o wide
  mesh edges deploy -n shop -t 10s -o json
  mesh edges deploy -n shop -t 1m --prometheus-url http://localhost:9090`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return exitcode.Usage(fmt.Errorf("want KIND, got %d arguments (KIND: %s)", len(args), strings.Join(stat.EdgeKinds(), ", ")))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := opts.complete(args[0]); err != nil {
				return exitcode.Usage(err)
			}
			if runF != nil {
				return runF(opts)
			}
			return Run(cmd.Context(), io, opts)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&opts.Namespace, "namespace", "n", "", "namespace of the workloads (default: the kubeconfig context's)")
	f.BoolVarP(&opts.AllNamespaces, "all-namespaces", "A", false, "workloads of every namespace")
	f.DurationVarP(&opts.Window, "time-window", "t", 0, "window of the rates: the wait between two scrapes (0: one scrape)")
	f.StringVarP(&opts.Output, "output", "o", opts.Output, "output: table, wide or json")
	vizsource.Bind(f, &opts.PrometheusURL)
	opts.Kube.Bind(f)
	return cmd
}

func (o *Options) complete(kind string) error {
	switch o.Output {
	case stat.FormatTable, stat.FormatWide, stat.FormatJSON:
	default:
		return fmt.Errorf("--output must be %s, not %q", strings.Join(stat.Formats(), ", "), o.Output)
	}
	if o.AllNamespaces && o.Namespace != "" {
		return errors.New("-A and -n: give one")
	}
	if o.Window < 0 {
		return fmt.Errorf("--time-window %s: must not be negative", o.Window)
	}
	if strings.Contains(kind, "/") {
		return fmt.Errorf("%q: edges takes a KIND, not KIND/NAME", kind)
	}
	k, err := stat.ParseKind(kind)
	if err != nil {
		return err
	}
	for _, ok := range stat.EdgeKinds() {
		if k == ok {
			o.Kind = k
			return nil
		}
	}
	return fmt.Errorf("edges of %s: want one of %s", k, strings.Join(stat.EdgeKinds(), ", "))
}

// Run connects to the cluster and shows the edges of the direct source, or of
// --prometheus-url's.
func Run(ctx context.Context, io *iostreams.IOStreams, o *Options) error {
	if err := vizsource.Check(o.PrometheusURL); err != nil {
		return err // a bad URL is bad input: said before the cluster is reached
	}
	c, err := o.Kube.Connect(ctx)
	if err != nil {
		return err
	}
	if !o.AllNamespaces && o.Namespace == "" {
		if o.Namespace, err = o.Kube.Namespace(); err != nil {
			return err
		}
	}
	src, err := vizsource.New(o.PrometheusURL, &stat.Direct{Client: c.Clientset, Now: o.Now, Sleep: o.Sleep, Warnings: io.ErrOut})
	if err != nil {
		return err
	}
	return Show(ctx, io, o, src)
}

// Show asks src for the edges and writes them to stdout.
func Show(ctx context.Context, io *iostreams.IOStreams, o *Options, src Source) error {
	ns := o.Namespace
	if o.AllNamespaces {
		ns = ""
	}
	edges, err := src.Edges(ctx, ns, o.Kind, o.Window)
	if err != nil {
		return err
	}
	return stat.WriteEdges(io.Out, o.Output, edges)
}
