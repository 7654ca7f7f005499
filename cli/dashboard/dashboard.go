// Package dashboard is `mesh dashboard`: a local web UI of the golden metrics, the
// topology and the live tap, served by the CLI on a loopback address with the
// user's kubeconfig (nothing to deploy or expose). viz/dashboard does the work.
package dashboard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/meshplane/mesh/cli/exitcode"
	"github.com/meshplane/mesh/cli/iostreams"
	"github.com/meshplane/mesh/cli/kube"
	"github.com/meshplane/mesh/cli/vizsource"
	vdash "github.com/meshplane/mesh/viz/dashboard"
	"github.com/meshplane/mesh/viz/stat"
	vtap "github.com/meshplane/mesh/viz/tap"
)

// DefaultAddress is --address's default: the loopback, never the network.
const DefaultAddress = "127.0.0.1"

// Options of `mesh dashboard`.
type Options struct {
	Namespace string        // -n; "" means the kubeconfig context's
	Address   string        // --address, an IP
	Port      int           // --port; 0: any free port
	Window    time.Duration // -t
	// AllowNonLoopback (--allow-non-loopback) lets --address be another address
	// than the loopback: the dashboard then serves whoever reaches it, as you.
	AllowNonLoopback bool
	// PrometheusURL (--prometheus-url): the numbers from that Prometheus, as
	// `mesh stat --prometheus-url` reads them; "" reads the proxies.
	PrometheusURL string
	Kube          kube.Flags
}

const long = `Serve a local web UI of the mesh on 127.0.0.1, with your kubeconfig: the
namespaces and their workloads with golden metrics (success rate, requests per
second, p50/p95/p99 latency, meshed/total pods, TCP connections, mTLS share), a
topology graph of the edges between workloads (solid: mTLS), and per workload
its routes, callers and destinations and a live tap of its requests. The pages
refresh on their own.

Nothing is deployed: the CLI reads the proxies as 'mesh stat', 'mesh edges',
'mesh routes' and 'mesh tap' do (pods/proxy and pods/portforward, as you), so
the dashboard shows exactly what your RBAC lets you see. Every refresh samples
each proxy twice, -t apart. With --prometheus-url the numbers come from that
Prometheus instead, with the queries of 'mesh stat --prometheus-url', over -t;
the live tap still reaches the proxies. The pages and their scripts are in the
binary (no CDN).

The URL goes to stderr; the dashboard serves until Ctrl-C. It answers only
requests for its own address (127.0.0.1:PORT or localhost:PORT) and no
cross-site request, so other web pages and DNS rebinding cannot use your
credentials through it. --address other than a loopback address is refused
unless --allow-non-loopback is given: then anyone who reaches it acts as you.

Exit codes:
  0  served until interrupted
  1  the port could not be listened on
  2  bad usage: flags, arguments, no kubeconfig, a --prometheus-url that is
     not http(s)://HOST[:PORT][/PATH]
  3  the cluster is unreachable, or refused the kubeconfig's credentials`

// NewCmd builds `mesh dashboard`. runF replaces the run function in tests.
func NewCmd(io *iostreams.IOStreams, runF func(*Options) error) *cobra.Command {
	opts := &Options{Address: DefaultAddress, Window: vdash.DefaultWindow}
	cmd := &cobra.Command{
		Use:   "dashboard",
		Short: "Serve a local web UI: golden metrics, topology, routes and live tap",
		Long:  long,
		Example: `  mesh dashboard -n shop
  mesh dashboard --port 50750 -t 30s
  mesh dashboard --prometheus-url http://localhost:9090`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 0 {
				return exitcode.Usage(fmt.Errorf("mesh dashboard takes no arguments, got %d", len(args)))
			}
			return nil
		},
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := opts.validate(); err != nil {
				return exitcode.Usage(err)
			}
			if runF != nil {
				return runF(opts)
			}
			return Run(cmd.Context(), io, opts)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&opts.Namespace, "namespace", "n", "", "namespace shown first (default: the kubeconfig context's)")
	f.StringVar(&opts.Address, "address", opts.Address, "IP address to listen on")
	f.IntVar(&opts.Port, "port", 0, "port to listen on (0: any free port)")
	f.DurationVarP(&opts.Window, "time-window", "t", opts.Window, "window of the rates: the wait between the two samples of each refresh")
	f.BoolVar(&opts.AllowNonLoopback, "allow-non-loopback", false, "allow an --address that is not a loopback address (anyone reaching it acts as you)")
	vizsource.Bind(f, &opts.PrometheusURL)
	opts.Kube.Bind(f)
	return cmd
}

func (o *Options) validate() error {
	var errs []error
	ip := net.ParseIP(o.Address)
	switch {
	case ip == nil:
		errs = append(errs, fmt.Errorf("--address %q: want an IP address, such as 127.0.0.1", o.Address))
	case !ip.IsLoopback() && !o.AllowNonLoopback:
		errs = append(errs, fmt.Errorf("--address %s is not a loopback address: the dashboard acts with your credentials; add --allow-non-loopback to serve it there anyway", o.Address))
	}
	if o.Port < 0 || o.Port > 65535 {
		errs = append(errs, fmt.Errorf("--port %d: want 0 to 65535", o.Port))
	}
	if o.Window <= 0 {
		errs = append(errs, fmt.Errorf("--time-window %s: must be positive", o.Window))
	}
	if err := vizsource.Check(o.PrometheusURL); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Run connects to the cluster and serves the dashboard until ctx ends.
func Run(ctx context.Context, io *iostreams.IOStreams, o *Options) error {
	c, err := o.Kube.Connect(ctx)
	if err != nil {
		return err
	}
	if o.Namespace == "" {
		if o.Namespace, err = o.Kube.Namespace(); err != nil {
			return err
		}
	}
	cs := c.Clientset
	src, err := vizsource.New(o.PrometheusURL, &stat.Direct{Client: cs, Warnings: io.ErrOut})
	if err != nil {
		return err
	}
	return Serve(ctx, io, o, vdash.Config{
		Metrics: src,
		Dynamic: c.Dynamic,
		TapPods: func(ctx context.Context, ns, resource string) ([]vtap.Pod, error) {
			return vtap.Resolve(ctx, cs, ns, resource)
		},
		TapDialer: vtap.PortForward{Config: c.Config, Client: cs, ErrOut: io.ErrOut},
	})
}

// Serve listens on o's address and port, prints the URL to stderr and serves the
// dashboard of cfg (its namespace and window from o) until ctx ends.
func Serve(ctx context.Context, io *iostreams.IOStreams, o *Options, cfg vdash.Config) error {
	if ctx == nil {
		ctx = context.Background()
	}
	l, err := net.Listen("tcp", net.JoinHostPort(o.Address, strconv.Itoa(o.Port)))
	if err != nil {
		return fmt.Errorf("mesh dashboard: %w", err)
	}
	cfg.Namespace, cfg.Window = o.Namespace, o.Window
	if cfg.Log == nil {
		cfg.Log = io.ErrOut
	}
	h, err := vdash.NewHandler(cfg, l.Addr())
	if err != nil {
		_ = l.Close()
		return err
	}
	fmt.Fprintf(io.ErrOut, "mesh dashboard: serving namespace %s on http://%s/ (Ctrl-C to stop)\n", o.Namespace, l.Addr())
	return vdash.Serve(ctx, l, h)
}
