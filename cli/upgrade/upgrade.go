// Package upgrade is `mesh upgrade`: it renders the install from the values files of
// --from (never from the cluster), runs the checks of `mesh check --pre --upgrade`,
// and applies the render with server-side apply in two phases, the CRDs then the
// control plane.
package upgrade

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/meshplane/mesh/checks"
	"github.com/meshplane/mesh/checks/report"
	"github.com/meshplane/mesh/cli/exitcode"
	cliinstall "github.com/meshplane/mesh/cli/install"
	"github.com/meshplane/mesh/cli/iostreams"
	"github.com/meshplane/mesh/cli/kube"
	"github.com/meshplane/mesh/cli/version"
	"github.com/meshplane/mesh/lifecycle/diff"
	"github.com/meshplane/mesh/lifecycle/upgrade"
	"github.com/meshplane/mesh/render/install"
	"github.com/meshplane/mesh/render/manifest"
)

// Options of `mesh upgrade`.
type Options struct {
	// Render is what is rendered: mesh install's flags, with the --from files first
	// among the values files.
	Render install.Options
	From   []string
	Apply  upgrade.Options
	Force  bool   // allow a downgrade
	Output string // "" (apply) or yaml (print the render instead)
	Kube   kube.Flags
	Now    func() time.Time
}

// OutputYAML prints the render of both phases instead of applying it.
const OutputYAML = "yaml"

const long = `Upgrade the mesh in the cluster of the kubeconfig to this CLI's version, rendered from
the values files of --from (the values the install was rendered with, from Git) and
mesh install's flags only: the cluster's state never fills in a value.

First the checks of 'mesh check --pre --upgrade' run against the cluster and the new
render (report on stderr): the versions of this CLI, the control plane and every proxy
are within the skew rules (one minor at a time; no downgrade without --force), every
version the cluster stores mesh's custom resources at is still served, and the values
set no renamed or removed key. A failed check exits 1 and applies nothing.

Then the render is applied with server-side apply (field manager mesh), in two phases:
the CRDs, waited for until Established, then the control plane, waited for until its
Deployments have rolled out and their old pods are gone (--timeout; --wait=false skips
this wait). A field another
manager owns stops the upgrade, naming the manager, unless --force-conflicts.
--dry-run=server sends every apply as a server-side dry run; --dry-run (client) sends
none and lists the objects. -o yaml prints the render of both phases (CRDs first)
instead of applying it, for GitOps repositories.

Objects that the new render no longer holds stay in the cluster: 'mesh prune install'
with the same flags deletes them (see 'mesh prune --help').

Exit codes:
  0  upgraded (or printed, or dry-run)
  1  a check failed, an apply met a conflict, or a wait timed out
  2  bad input: bad flags, unreadable values, a render that fails, objects the server rejects
  3  the cluster is unreachable, or refused the kubeconfig's credentials`

// NewCmd builds `mesh upgrade`. now is the clock; runF replaces the run function in
// tests.
func NewCmd(io *iostreams.IOStreams, runF func(*Options) error, now func() time.Time) *cobra.Command {
	opts := &Options{
		Render: install.Options{Version: version.Version(), Namespace: install.DefaultNamespace},
		Apply:  upgrade.Options{DryRun: upgrade.DryRunNone, Wait: true, Timeout: upgrade.DefaultTimeout},
		Now:    now,
	}
	var dryRun string
	cmd := &cobra.Command{
		Use:   "upgrade --from values.yaml [install flags]",
		Short: "Upgrade the mesh in the cluster to this CLI's version, from Git values",
		Long:  long,
		Example: `  mesh upgrade --from values.yaml
  mesh upgrade --from values.yaml --ha --dry-run=server
  mesh upgrade --from values.yaml -o yaml > mesh.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(opts.From) == 0 {
				return exitcode.Usage(errors.New("--from is required: the values file the install was rendered with (mesh install --print-values), from Git; mesh upgrade never reads values from the cluster"))
			}
			switch upgrade.DryRun(dryRun) {
			case upgrade.DryRunNone, upgrade.DryRunClient, upgrade.DryRunServer:
				opts.Apply.DryRun = upgrade.DryRun(dryRun)
			default:
				return exitcode.Usage(fmt.Errorf("--dry-run must be none, client or server, not %q", dryRun))
			}
			if opts.Output != "" && opts.Output != OutputYAML {
				return exitcode.Usage(fmt.Errorf("--output must be yaml, not %q", opts.Output))
			}
			if opts.Output != "" && opts.Apply.DryRun != upgrade.DryRunNone {
				return exitcode.Usage(errors.New("-o yaml applies nothing: it does not take --dry-run"))
			}
			if opts.Apply.Timeout <= 0 {
				return exitcode.Usage(fmt.Errorf("--timeout must be positive, not %s", opts.Apply.Timeout))
			}
			if !cmd.Flags().Changed("namespace") {
				opts.Render.Namespace = "" // the one the values record, else mesh-system (as mesh install)
			}
			opts.Render.Values.ValueFiles = append(append([]string{}, opts.From...), opts.Render.Values.ValueFiles...)
			if err := cliinstall.ValidateRender(opts.Render); err != nil {
				return exitcode.Usage(err)
			}
			if runF != nil {
				return runF(opts)
			}
			return Run(cmd, io, opts)
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&opts.From, "from", nil, "values file of the install (YAML, - for stdin), from Git; repeatable, later wins; before -f files")
	cliinstall.BindRenderFlags(f, &opts.Render)
	f.BoolVar(&opts.Apply.ForceConflicts, "force-conflicts", false, "take the fields other field managers own (as kubectl apply --server-side --force-conflicts)")
	f.BoolVar(&opts.Force, "force", false, "allow a downgrade: a control plane or proxies newer than this CLI")
	f.StringVar(&dryRun, "dry-run", string(upgrade.DryRunNone), "none (apply), client (list, send nothing) or server (server-side dry runs, nothing persisted); --dry-run alone is client")
	f.Lookup("dry-run").NoOptDefVal = string(upgrade.DryRunClient)
	f.BoolVar(&opts.Apply.Wait, "wait", true, "wait for the control plane's rollouts (the CRDs are always waited for)")
	f.DurationVar(&opts.Apply.Timeout, "timeout", opts.Apply.Timeout, "how long each wait may take")
	f.StringVarP(&opts.Output, "output", "o", "", "yaml: print the render of both phases instead of applying it")
	opts.Kube.Bind(f)
	return cmd
}

// Run connects, renders and checks, then prints the render (-o yaml) or applies it.
// The check report, progress and hints go to stderr; stdout has only the render.
func Run(cmd *cobra.Command, io *iostreams.IOStreams, o *Options) error {
	ctx := cmd.Context()
	c, err := o.Kube.Connect(ctx)
	if err != nil {
		return err
	}
	plan, err := upgrade.NewPlan(c, o.Render, io, upgrade.CheckOptions{Force: o.Force, Now: o.Now})
	if err != nil {
		return exitcode.Usage(err)
	}
	for _, w := range plan.Warnings {
		fmt.Fprintf(io.ErrOut, "Warning: %s\n", w)
	}
	r := checks.Run(ctx, plan.Checks, checks.Options{Now: o.Now})
	if err := report.Write(io.ErrOut, report.FormatTable, r, false); err != nil {
		return err
	}
	if r.ExitCode(false) != checks.ExitPassed {
		return failed{msg: "the upgrade checks failed: nothing was applied"}
	}
	if o.Output == OutputYAML {
		var b bytes.Buffer
		for _, ph := range plan.Phases {
			if err := manifest.WriteYAML(&b, ph.Objects); err != nil {
				return err
			}
		}
		_, err := io.Out.Write(b.Bytes())
		fmt.Fprintln(io.ErrOut, "Printed the render (CRDs, then the control plane): apply the CRDs first; nothing was applied")
		return err
	}
	dc := diff.NewCluster(c.Dynamic, c.Clientset.Discovery(), c.Config.Host)
	ao := o.Apply
	ao.Progress, ao.Now = io.ErrOut, o.Now
	if _, err := upgrade.Apply(ctx, dc, plan.Phases, ao); err != nil {
		// A conflict or a wait that timed out exits 1; an object the server rejects
		// 2 (*diff.InputError), the cluster 3 (*checks.ClusterError).
		return err
	}
	switch o.Apply.DryRun {
	case upgrade.DryRunNone:
		fmt.Fprintf(io.ErrOut, "Upgraded the mesh in %s to %s.\n", plan.Namespace, o.Render.Version)
	default:
		fmt.Fprintf(io.ErrOut, "Dry run (%s): nothing was changed.\n", o.Apply.DryRun)
	}
	fmt.Fprintln(io.ErrOut, "Objects the new render no longer holds are still in the cluster: 'mesh prune install' with the same flags deletes them (mesh prune --help).")
	return nil
}

// failed is an upgrade stopped by its checks: exit 1, the report said why.
type failed struct{ msg string }

func (f failed) Error() string { return f.msg }
func (failed) ExitCode() int   { return exitcode.Error }
