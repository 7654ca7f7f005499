// Package top is `mesh top`: the requests that the proxies of a resource see, tapped
// as `mesh tap` does (cli/tap's flags, resolution and port-forward) and aggregated
// by viz/top into a table of routes sorted by count, redrawn every interval.
package top

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/meshplane/mesh/cli/exitcode"
	"github.com/meshplane/mesh/cli/iostreams"
	"github.com/meshplane/mesh/cli/kube"
	clitap "github.com/meshplane/mesh/cli/tap"
	api "github.com/meshplane/mesh/controlplane/api/tap"
	vtap "github.com/meshplane/mesh/viz/tap"
	"github.com/meshplane/mesh/viz/top"
)

// DefaultInterval is --interval's default: how often the table is written.
const DefaultInterval = time.Second

// clearScreen moves the cursor home and clears the terminal (ANSI), before each
// table on a TTY.
const clearScreen = "\x1b[H\x1b[2J"

// Options of `mesh top`.
type Options struct {
	Resource  string // KIND/NAME
	Namespace string // "" until resolved: the kubeconfig context's
	Kube      kube.Flags
	Tap       vtap.Options // the filters and when to stop; Tap.Output is not used
	Top       top.Options
	Output    string // table or json
	Interval  time.Duration
}

// NewCmd builds `mesh top`; runF replaces the run function in tests.
func NewCmd(io *iostreams.IOStreams, runF func(*Options) error) *cobra.Command {
	o := &Options{Output: top.FormatTable, Interval: DefaultInterval}
	cmd := &cobra.Command{
		Use:   "top KIND/NAME",
		Short: "Show the routes that the proxies of a resource see, sorted by requests",
		Long: fmt.Sprintf(`Show, like 'linkerd viz top', the requests that the proxies of a resource (deploy,
sts, ds, rs, job, svc, pod or ns/NAME) see, inbound and outbound, tapped as mesh tap
does and aggregated into a table of routes sorted by count: SOURCE, DESTINATION,
METHOD, PATH (without its query), COUNT, BEST, WORST and LAST latency (to the
response's end) and SUCCESS_RATE (a failure: no response, a 5xx or a gRPC status
other than 0, as the proxy's metrics classify). --routes shows ServiceProfile routes
instead of methods and paths, --hide-sources merges the sources. The table keeps at
most %d rows, dropping the one updated least recently.

On a terminal the table is redrawn in place every --interval; otherwise one table
(or, with -o json, one JSON array on one line) is written per interval, and a last
one when it stops (--max-events, --timeout or Ctrl-C: all exit 0). stdout carries
only the tables; progress and warnings go to stderr. RBAC as mesh tap:
get/list on pods, get on the workload, create on pods/portforward.`, top.DefaultMaxRows),
		Example: `  mesh top deploy/web -n shop
  mesh top deploy/web --path /api --method POST --to svc/api --max-rps 100
  mesh top deploy/web --routes --hide-sources
  mesh top pod/web-7d9f-abcde --timeout 30s -o json | tail -1 | jq '.[0]'`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return exitcode.Usage(fmt.Errorf("want one resource, such as deploy/web (got %d arguments)", len(args)))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Resource = args[0]
			if err := o.validate(); err != nil {
				return exitcode.Usage(err)
			}
			if runF != nil {
				return runF(o)
			}
			c, err := clitap.NewCluster(&o.Kube, &o.Namespace, io)
			if err != nil {
				return err
			}
			return Run(cmd.Context(), io, o, c)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.Namespace, "namespace", "n", "", "namespace of the resource (default: the kubeconfig context's)")
	clitap.BindFilters(f, &o.Tap)
	f.BoolVar(&o.Top.HideSources, "hide-sources", false, "merge the rows of every source (no SOURCE column)")
	f.BoolVar(&o.Top.Routes, "routes", false, "rows per ServiceProfile route instead of method and path")
	f.StringVarP(&o.Output, "output", "o", o.Output, "output: table or json")
	f.DurationVar(&o.Interval, "interval", o.Interval, "how often the table is written")
	o.Kube.Bind(f)
	return cmd
}

func (o *Options) validate() error {
	var errs []error
	switch o.Output {
	case top.FormatTable, top.FormatJSON:
	default:
		errs = append(errs, fmt.Errorf("--output must be table or json, not %q", o.Output))
	}
	if o.Interval <= 0 {
		errs = append(errs, fmt.Errorf("--interval %s: must be positive", o.Interval))
	}
	errs = append(errs, clitap.CheckResource(o.Resource))
	errs = append(errs, clitap.CheckFilters(o.Tap)...)
	return errors.Join(errs...)
}

// Run resolves the resource to its meshed pods, taps them and writes the table every
// o.Interval, and once more when the tap stops.
func Run(ctx context.Context, io *iostreams.IOStreams, o *Options, c clitap.Cluster) error {
	if ctx == nil {
		ctx = context.Background()
	}
	pods, err := c.Pods(ctx, o.Namespace, o.Resource)
	if err != nil {
		return err
	}
	fmt.Fprintf(io.ErrOut, "tapping %d pod(s) of %s in %s\n", len(pods), o.Resource, o.Namespace)
	var mu sync.Mutex
	table := top.New(o.Top)
	done := make(chan error, 1)
	go func() {
		done <- vtap.Follow(ctx, o.Tap, pods, c.Dialer, func(ev *api.Event) error {
			mu.Lock()
			defer mu.Unlock()
			table.Add(ev)
			return nil
		}, io.ErrOut)
	}()
	tick := time.NewTicker(o.Interval)
	defer tick.Stop()
	written := 0
	write := func() error {
		mu.Lock()
		rows := table.Rows()
		mu.Unlock()
		switch {
		case io.IsStdoutTTY() && o.Output == top.FormatTable:
			fmt.Fprint(io.Out, clearScreen)
		case written > 0 && o.Output == top.FormatTable:
			fmt.Fprintln(io.Out)
		}
		written++
		if err := top.Write(io.Out, o.Output, o.Top, rows); err != nil {
			return fmt.Errorf("writing the table: %w", err)
		}
		return nil
	}
	for {
		select {
		case <-tick.C:
			if err := write(); err != nil {
				return err
			}
		case err := <-done:
			if err != nil {
				return err
			}
			return write()
		}
	}
}
