// Package tap is `mesh tap`: a live stream of the requests the proxies of a resource
// see, read from each proxy's tap API through the Kubernetes API (pods/portforward,
// under the user's own RBAC). viz/tap does the work. Its filter flags, checks and
// cluster (BindFilters, CheckFilters, CheckResource, NewCluster) are mesh top's too.
package tap

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/client-go/kubernetes"

	"github.com/meshplane/mesh/cli/exitcode"
	"github.com/meshplane/mesh/cli/iostreams"
	"github.com/meshplane/mesh/cli/kube"
	api "github.com/meshplane/mesh/controlplane/api/tap"
	vtap "github.com/meshplane/mesh/viz/tap"
)

// Options of `mesh tap`.
type Options struct {
	Resource  string // KIND/NAME
	Namespace string // "" until resolved: the kubeconfig context's
	Kube      kube.Flags
	Tap       vtap.Options
}

// Cluster is what Run needs of the cluster: the pods of a resource and a way to their
// tap ports. KubeCluster is the real one; tests pass their own.
type Cluster struct {
	Pods   func(ctx context.Context, namespace, resource string) ([]vtap.Pod, error)
	Dialer vtap.Dialer
}

// NewCmd builds `mesh tap`; runF replaces the run function in tests.
func NewCmd(io *iostreams.IOStreams, runF func(*Options) error) *cobra.Command {
	o := &Options{Tap: vtap.Options{Output: vtap.OutputTable}}
	cmd := &cobra.Command{
		Use:   "tap KIND/NAME",
		Short: "Stream the requests that the proxies of a resource see",
		Long: `Stream the requests that the proxies of a resource (deploy, sts, ds, rs, job, svc,
pod or ns/NAME) see, inbound and outbound, as they end: method, authority, path,
status, gRPC status, latency, bytes, addresses, mTLS identities.

Each proxy's tap API listens on the pod's loopback only; mesh tap reaches it through
the Kubernetes API (pods/portforward) as you: a namespace-scoped Role with get/list
on pods, get on the workload and create on pods/portforward is enough. The proxies
never send bodies, nor the Authorization, Proxy-Authorization, Cookie and
Set-Cookie headers (nor those their MESH_PROXY_TAP_REDACT_HEADERS name), and cap the
events they send (MESH_PROXY_TAP_MAX_EVENTS_PER_SECOND, 100/s by default); dropped
events are reported on stderr.

-o json writes the events as NDJSON (docs/tap.md has the schema); the table goes to
stdout, warnings to stderr. Stops after --max-events events, after --timeout, or on
Ctrl-C: all exit 0.`,
		Example: `  mesh tap deploy/web -n shop
  mesh tap deploy/web --path /api --method POST --to svc/api --max-rps 100 -o wide
  mesh tap pod/web-7d9f-abcde --max-events 10 -o json | jq .status`,
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
			c, err := KubeCluster(o, io)
			if err != nil {
				return err
			}
			return Run(cmd.Context(), io, o, c)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.Namespace, "namespace", "n", "", "namespace of the resource (default: the kubeconfig context's)")
	BindFilters(f, &o.Tap)
	f.StringVarP(&o.Tap.Output, "output", "o", o.Tap.Output, "output: table, wide or json (NDJSON)")
	o.Kube.Bind(f)
	return cmd
}

func (o *Options) validate() error {
	var errs []error
	switch o.Tap.Output {
	case vtap.OutputTable, vtap.OutputWide, vtap.OutputJSON:
	default:
		errs = append(errs, fmt.Errorf("--output must be table, wide or json, not %q", o.Tap.Output))
	}
	errs = append(errs, CheckResource(o.Resource))
	errs = append(errs, CheckFilters(o.Tap)...)
	return errors.Join(errs...)
}

// BindFilters binds the flags that select what is tapped, and when to stop, onto o:
// --path, --method, --authority, --to, --max-rps, --max-events, --timeout. mesh tap
// and mesh top share them.
func BindFilters(f *pflag.FlagSet, o *vtap.Options) {
	f.StringVar(&o.Match.PathPrefix, "path", "", "only requests whose path starts with this")
	f.StringVar(&o.Match.Method, "method", "", "only requests of this method")
	f.StringVar(&o.Match.Authority, "authority", "", "only requests to this authority")
	f.StringVar(&o.Match.Destination, "to", "", "only requests to this destination: KIND/NAME (svc, deploy, sts, ds, job, pod, ns) or an authority")
	f.Float64Var(&o.MaxRPS, "max-rps", 0, "at most this many events per second from each proxy (0: the proxy's cap)")
	f.IntVar(&o.MaxEvents, "max-events", 0, "stop after this many events (0: no limit)")
	f.DurationVar(&o.Timeout, "timeout", 0, "stop after this long (0: until Ctrl-C)")
}

// CheckFilters checks the flags of BindFilters, naming them.
func CheckFilters(o vtap.Options) []error {
	var errs []error
	if o.MaxRPS < 0 {
		errs = append(errs, fmt.Errorf("--max-rps must not be negative"))
	}
	if o.MaxEvents < 0 {
		errs = append(errs, fmt.Errorf("--max-events must not be negative"))
	}
	if o.Timeout < 0 {
		errs = append(errs, fmt.Errorf("--timeout must not be negative"))
	}
	// The proxy checks the query too; saying it here names the flag.
	if _, _, err := api.ParseQuery(o.Match.Query(o.MaxRPS)); err != nil {
		errs = append(errs, fmt.Errorf("--to: %w", err))
	}
	return errs
}

// CheckResource checks that resource is KIND/NAME (viz/tap.Resolve knows the kinds).
func CheckResource(resource string) error {
	if kind, name, ok := strings.Cut(resource, "/"); !ok || kind == "" || name == "" {
		return fmt.Errorf("resource %q: want KIND/NAME, such as deploy/web", resource)
	}
	return nil
}

// KubeCluster is the cluster of o's kubeconfig: the namespace defaults to its context's.
func KubeCluster(o *Options, io *iostreams.IOStreams) (Cluster, error) {
	return NewCluster(&o.Kube, &o.Namespace, io)
}

// NewCluster is the cluster of k's kubeconfig; an empty *namespace is set to its
// context's. mesh top uses it too.
func NewCluster(k *kube.Flags, namespace *string, io *iostreams.IOStreams) (Cluster, error) {
	cfg, err := k.RESTConfig()
	if err != nil {
		return Cluster{}, err
	}
	if *namespace == "" {
		if *namespace, err = k.Namespace(); err != nil {
			return Cluster{}, err
		}
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return Cluster{}, exitcode.Usage(fmt.Errorf("kubeconfig: %w", err))
	}
	return Cluster{
		Pods: func(ctx context.Context, ns, resource string) ([]vtap.Pod, error) {
			return vtap.Resolve(ctx, cs, ns, resource)
		},
		Dialer: vtap.PortForward{Config: cfg, Client: cs, ErrOut: io.ErrOut},
	}, nil
}

// Run resolves the resource to its meshed pods and streams their events to stdout.
func Run(ctx context.Context, io *iostreams.IOStreams, o *Options, c Cluster) error {
	if ctx == nil {
		ctx = context.Background()
	}
	pods, err := c.Pods(ctx, o.Namespace, o.Resource)
	if err != nil {
		return err
	}
	fmt.Fprintf(io.ErrOut, "tapping %d pod(s) of %s in %s\n", len(pods), o.Resource, o.Namespace)
	return vtap.Stream(ctx, o.Tap, pods, c.Dialer, io.Out, io.ErrOut)
}
