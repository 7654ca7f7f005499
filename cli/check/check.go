// Package check is `mesh check`: it runs the check suites and reports on them.
package check

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/meshplane/mesh/checks"
	"github.com/meshplane/mesh/checks/dataplane"
	"github.com/meshplane/mesh/checks/health"
	"github.com/meshplane/mesh/checks/metrics"
	"github.com/meshplane/mesh/checks/offline"
	"github.com/meshplane/mesh/checks/preinstall"
	"github.com/meshplane/mesh/checks/report"
	"github.com/meshplane/mesh/checks/schema"
	"github.com/meshplane/mesh/cli/exitcode"
	"github.com/meshplane/mesh/cli/iostreams"
	"github.com/meshplane/mesh/cli/kube"
	"github.com/meshplane/mesh/cli/version"
	lifeupgrade "github.com/meshplane/mesh/lifecycle/upgrade"
	"github.com/meshplane/mesh/render/install"
	"github.com/meshplane/mesh/render/manifest"
	"github.com/meshplane/mesh/render/values"
)

// Options of `mesh check`.
type Options struct {
	Inputs            manifest.Inputs
	KubernetesVersion string
	MinCertValidity   time.Duration
	Output            string // table, json, junit or short
	FailOn            string // error or warning
	Wait              time.Duration
	CLIVersion        string
	Now               func() time.Time

	// --pre: pre-install checks against the cluster of the kubeconfig.
	Pre bool
	// --pre --upgrade: before an upgrade, the skew, CRD and values checks of the new
	// render (from the values files of --from) against the cluster.
	Upgrade               bool
	From                  []string
	Force                 bool
	Proxy                 bool
	PodNamespace          string // --proxy: the pods' namespace, "" for all
	ControlPlaneNamespace string
	Kubeconfig            string
	Context               string
	Namespace             string

	// --metrics: the Prometheus at PrometheusURL has the labels the queries need.
	Metrics       bool
	PrometheusURL string
}

// NewCmd builds `mesh check`. now is the clock; runF replaces the run function in tests.
func NewCmd(io *iostreams.IOStreams, runF func(*Options) error, now func() time.Time) *cobra.Command {
	opts := &Options{KubernetesVersion: schema.Default, MinCertValidity: checks.DefaultMinCertValidity, Output: "table", FailOn: "error", CLIVersion: version.Version(), Now: now}
	var minValidity string
	cmd := &cobra.Command{
		Use:   "check [-f FILE|DIR|- | --pre | --proxy | --metrics --prometheus-url URL]",
		Short: "Check an installed mesh, a cluster before installing (--pre), or manifests offline (-f)",
		Long: `Check manifests offline, with no cluster: every built-in object strictly against the
Kubernetes OpenAPI schema of --kubernetes-version (embedded), custom resources against
their CRDs, and mesh's own rules: a complete control plane of one version, pinned
images, trust anchors and issuer that chain and stay valid for --min-cert-validity, no
committed private keys, a webhook that points at the injector, known annotations, and
injected proxies of the control plane's version.

With --pre, check the cluster of the kubeconfig before installing: the API is
reachable and of a supported version, you may create everything 'mesh install' holds,
no namespace or CRD of mesh's is in the way, and the clocks agree.

With --pre --upgrade, check the cluster before upgrading it to the render of this
CLI with the values files of --from (as 'mesh upgrade --from' does): the versions of
this CLI, the control plane and every proxy are within the skew rules (--force allows
a downgrade), every version the cluster stores mesh's custom resources at is still
served by the new CRDs, and the values set no renamed or removed key.

With --proxy, check the meshed pods of -n (all namespaces without it): their proxies
are ready and run the control plane's version.

With --metrics, check the Prometheus at --prometheus-url: it answers, holds the
proxies' metrics, and their series carry the labels mesh stat's, Linkerd's and
Flagger's queries and mesh's dashboards need (namespace, pod, the workload labels and
dst_deployment and its siblings, added by the relabelling of docs/viz.md).

With none of these, check the mesh installed in the cluster (-n): its CRDs and control-plane
objects exist and are of this CLI's version, its Deployments are available (--wait
retries), the webhook trusts the injector's certificate, the identity issuer is valid
for --min-cert-validity, and the injector really injects (a server-side dry run).

Reports name objects as Kind/namespace/name (Kind/name when there is no namespace).

Exit codes, whatever -o:
  0  every check passed (failed warnings are allowed, unless --fail-on warning)
  1  findings: a check failed (an error, or a warning with --fail-on warning)
  2  bad input or usage: bad flags, unreadable manifests, no objects in them, no kubeconfig
  3  the cluster is unreachable, or refused the kubeconfig's credentials`,
		Example: `  mesh install | mesh check -f -
  mesh check -R -f deploy/ -o junit > check-report.xml`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Inputs.Filenames = append(opts.Inputs.Filenames, args...)
			offline := len(opts.Inputs.Filenames) > 0 || opts.Inputs.Kustomize != ""
			switch {
			case offline && opts.Pre:
				return exitcode.Usage(errors.New("--pre checks a cluster; -f and -k check manifests offline: choose one"))
			case offline && opts.Proxy:
				return exitcode.Usage(errors.New("--proxy checks a cluster; -f and -k check manifests offline: choose one"))
			case opts.Pre && opts.Proxy:
				return exitcode.Usage(errors.New("--pre and --proxy are different suites: choose one"))
			case opts.Upgrade && !opts.Pre:
				return exitcode.Usage(errors.New("--upgrade goes with --pre: mesh check --pre --upgrade"))
			case (len(opts.From) > 0 || opts.Force) && !opts.Upgrade:
				return exitcode.Usage(errors.New("--from and --force go with --pre --upgrade"))
			case opts.Metrics && (offline || opts.Pre || opts.Proxy):
				return exitcode.Usage(errors.New("--metrics checks a Prometheus; -f, -k, --pre and --proxy are other suites: choose one"))
			case opts.Metrics && opts.PrometheusURL == "":
				return exitcode.Usage(errors.New("--metrics needs --prometheus-url (e.g. http://localhost:9090 after kubectl port-forward -n mesh-system svc/mesh-prometheus 9090)"))
			case !opts.Metrics && opts.PrometheusURL != "":
				return exitcode.Usage(errors.New("--prometheus-url is for --metrics"))
			}
			if opts.Proxy {
				// mesh check --proxy [-n NS]: -n selects the pods; all namespaces without it.
				opts.PodNamespace = ""
				if cmd.Flags().Changed("namespace") {
					opts.PodNamespace = opts.Namespace
				}
			}
			d, err := parseDays(minValidity)
			if err != nil {
				return exitcode.Usage(fmt.Errorf("--min-cert-validity: %w", err))
			}
			opts.MinCertValidity = d
			switch opts.Output {
			case "table", "json", "junit", "short":
			default:
				return exitcode.Usage(fmt.Errorf("--output must be table, json, junit or short, not %q", opts.Output))
			}
			if opts.FailOn != "error" && opts.FailOn != "warning" {
				return exitcode.Usage(fmt.Errorf("--fail-on must be error or warning, not %q", opts.FailOn))
			}
			if !supported(opts.KubernetesVersion) {
				return exitcode.Usage(fmt.Errorf("--kubernetes-version %s is not supported (have %s)", opts.KubernetesVersion, strings.Join(schema.Versions(), ", ")))
			}
			if runF != nil {
				return runF(opts)
			}
			return Run(cmd, io, opts)
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&opts.Inputs.Filenames, "filename", "f", nil, "file, directory, https URL or - (stdin); repeatable")
	f.BoolVarP(&opts.Inputs.Recursive, "recursive", "R", false, "read directories recursively")
	f.StringVarP(&opts.Inputs.Kustomize, "kustomize", "k", "", "build this kustomization directory first")
	f.StringVar(&opts.KubernetesVersion, "kubernetes-version", opts.KubernetesVersion, "Kubernetes version whose OpenAPI schema objects must satisfy ("+strings.Join(schema.Versions(), ", ")+")")
	f.StringVar(&minValidity, "min-cert-validity", fmt.Sprintf("%dd", checks.DefaultMinCertValidity/(24*time.Hour)), "how long trust anchors and issuer must stay valid (e.g. 60d, 720h)")
	f.StringVarP(&opts.Output, "output", "o", opts.Output, "output: table, json, junit or short")
	f.StringVar(&opts.FailOn, "fail-on", opts.FailOn, "fail (exit 1) on error, or also on warning")
	f.DurationVar(&opts.Wait, "wait", 0, "retry checks that may still become true for this long")
	f.BoolVar(&opts.Proxy, "proxy", false, "data-plane checks of the meshed pods in -n (default: all namespaces)")
	f.StringVar(&opts.ControlPlaneNamespace, "control-plane-namespace", install.DefaultNamespace, "namespace of the control plane, with --proxy")
	f.BoolVar(&opts.Metrics, "metrics", false, "check that the Prometheus at --prometheus-url has the labels the stat queries need")
	f.StringVar(&opts.PrometheusURL, "prometheus-url", "", "Prometheus to check with --metrics (http://host:port)")
	f.BoolVar(&opts.Pre, "pre", false, "pre-install checks against the cluster: API, version, permissions, conflicts, clock skew")
	f.BoolVar(&opts.Upgrade, "upgrade", false, "with --pre: checks before an upgrade (version skew, CRD stored versions, renamed values keys)")
	f.StringArrayVar(&opts.From, "from", nil, "with --pre --upgrade: values file of the new render (YAML, - for stdin); repeatable, later wins")
	f.BoolVar(&opts.Force, "force", false, "with --pre --upgrade: allow a downgrade (components newer than this CLI)")
	f.StringVar(&opts.Kubeconfig, "kubeconfig", "", "kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)")
	f.StringVar(&opts.Context, "context", "", "kubeconfig context (default: the current one)")
	f.StringVarP(&opts.Namespace, "namespace", "n", install.DefaultNamespace, "namespace of the control plane")
	return cmd
}

// Run loads the manifests or connects to the cluster, runs the suite and writes the
// report to stdout. A failed check is an error with exit code 1 (the report says
// which); input that cannot be checked is a usage error (2), and a cluster that cannot
// be reached or refuses the credentials a *checks.ClusterError (3). Neither writes a
// report.
func Run(cmd *cobra.Command, io *iostreams.IOStreams, o *Options) error {
	var suite []checks.Check
	var err error
	switch {
	case o.Metrics:
		if suite, err = metrics.Suite(metrics.Options{URL: o.PrometheusURL, Client: &http.Client{Timeout: 30 * time.Second}}); err != nil {
			return exitcode.Usage(err)
		}
	case o.Proxy:
		suite, err = proxySuite(cmd.Context(), o)
	case o.Pre && o.Upgrade:
		suite, err = upgradeSuite(cmd.Context(), io, o)
	case o.Pre:
		suite, err = clusterSuite(cmd.Context(), o, false)
	case len(o.Inputs.Filenames) > 0 || o.Inputs.Kustomize != "":
		suite, err = offlineSuite(cmd, io, o)
	default:
		suite, err = clusterSuite(cmd.Context(), o, true)
	}
	if err != nil {
		return err
	}
	r := checks.Run(cmd.Context(), suite, checks.Options{Wait: o.Wait, Now: o.Now})
	// json and junit are data, for a file or a pipe: stdout. table and short are a
	// report for people: stderr, like every other report (stdout carries only data).
	w, colour := io.ErrOut, o.Output == "table" && io.ColorEnabled()
	if o.Output == "json" || o.Output == "junit" {
		w, colour = io.Out, false
	}
	if err := report.Write(w, o.Output, r, colour); err != nil {
		return err
	}
	if code := r.ExitCode(o.FailOn == "warning"); code != 0 {
		return &failed{code: code}
	}
	return nil
}

func offlineSuite(cmd *cobra.Command, io *iostreams.IOStreams, o *Options) ([]checks.Check, error) {
	set, err := offline.Load(cmd.Context(), o.Inputs, manifest.Env{Stdin: io.In}, offline.Options{
		KubernetesVersion: o.KubernetesVersion, MinCertValidity: o.MinCertValidity, Now: o.Now, CLIVersion: o.CLIVersion,
	})
	if err != nil {
		return nil, exitcode.Usage(err) // the input cannot be read: the command could not run
	}
	if set.Count == 0 {
		// Passing on nothing would hide a wrong path or an empty render in CI.
		return nil, exitcode.Usage(o.Inputs.NoObjects("to check"))
	}
	return offline.Suite(set)
}

// cluster connects to the cluster of the kubeconfig (see kube.Flags.Connect).
func cluster(ctx context.Context, o *Options) (*preinstall.Cluster, error) {
	return kube.Flags{Kubeconfig: o.Kubeconfig, Context: o.Context}.Connect(ctx)
}

func proxySuite(ctx context.Context, o *Options) ([]checks.Check, error) {
	c, err := cluster(ctx, o)
	if err != nil {
		return nil, err
	}
	return dataplane.Suite(c.Clientset, dataplane.Options{Namespace: o.PodNamespace, ControlPlaneNamespace: o.ControlPlaneNamespace, CLIVersion: o.CLIVersion}), nil
}

// clusterSuite: the pre-install or health checks of what this CLI installs, against
// the cluster of the kubeconfig.
func clusterSuite(ctx context.Context, o *Options, health bool) ([]checks.Check, error) {
	cluster, err := cluster(ctx, o)
	if err != nil {
		return nil, err
	}
	res, err := install.Render(install.Options{Version: o.CLIVersion, Namespace: o.Namespace}, nil)
	if err != nil {
		return nil, err
	}
	if health {
		return healthSuite(cluster, o, res.Objects), nil
	}
	return preinstall.Suite(cluster, preinstall.Options{Namespace: o.Namespace, Objects: res.Objects, MaxClockSkew: 5 * time.Minute, Now: o.Now}), nil
}

// upgradeSuite: the checks of mesh upgrade (lifecycle/upgrade.NewPlan) for the render
// of this CLI with the --from values: the pre-install checks that apply to an
// installed cluster (the API, its version, the clocks), then checks/upgrade's.
func upgradeSuite(ctx context.Context, io *iostreams.IOStreams, o *Options) ([]checks.Check, error) {
	c, err := cluster(ctx, o)
	if err != nil {
		return nil, err
	}
	ns := ""
	if o.Namespace != install.DefaultNamespace {
		ns = o.Namespace // else the one the values record, as mesh install
	}
	render := install.Options{Version: o.CLIVersion, Namespace: ns, Values: values.Options{ValueFiles: o.From}}
	plan, err := lifeupgrade.NewPlan(c, render, io, lifeupgrade.CheckOptions{Force: o.Force, Now: o.Now})
	if err != nil {
		return nil, exitcode.Usage(err)
	}
	return plan.Checks, nil
}

// healthSuite checks the installed mesh. The objects compared are the API objects every
// install has (not the identity mode's own, which depend on the install's flags).
func healthSuite(c *preinstall.Cluster, o *Options, objs []manifest.Object) []checks.Check {
	return health.Suite(&health.Cluster{Clientset: c.Clientset, Dynamic: c.Dynamic}, health.Options{
		Namespace: o.Namespace, Version: o.CLIVersion, Objects: objs, MinCertValidity: o.MinCertValidity, Now: o.Now,
	})
}

// failed is a run whose checks failed: exit 1 (checks.ExitFindings), and no "Error:"
// line (the report says it).
type failed struct{ code int }

func (f *failed) Error() string { return "checks failed" }
func (f *failed) ExitCode() int { return f.code }
func (f *failed) Silent() bool  { return true }

func supported(v string) bool {
	for _, s := range schema.Versions() {
		if s == v {
			return true
		}
	}
	return false
}

// parseDays is time.ParseDuration plus a "d" (24 h) unit.
func parseDays(s string) (time.Duration, error) {
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("%q: want a number of days such as 60d, or a duration such as 720h", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%q: want a number of days such as 60d, or a duration such as 720h", s)
	}
	return d, nil
}
