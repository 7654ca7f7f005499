// Package uninstall is `mesh uninstall`: it lists mesh's objects in the cluster in a
// safe deletion order, for `kubectl delete -f -`, or with --delete deletes them itself,
// phase by phase.
package uninstall

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/metadata"

	"github.com/meshplane/mesh/cli/exitcode"
	cliinstall "github.com/meshplane/mesh/cli/install"
	"github.com/meshplane/mesh/cli/iostreams"
	"github.com/meshplane/mesh/cli/kube"
	"github.com/meshplane/mesh/cli/version"
	"github.com/meshplane/mesh/lifecycle/prune"
	"github.com/meshplane/mesh/lifecycle/uninstall"
	"github.com/meshplane/mesh/render/install"
	"github.com/meshplane/mesh/render/manifest"
)

// Options of `mesh uninstall`.
type Options struct {
	Inputs manifest.Inputs
	// Install is what `mesh uninstall install` renders (mesh install's options, bound by
	// its own flags), and what `mesh uninstall` alone renders with mesh install's
	// defaults; nil with -f or -k.
	Install *install.Options
	CRDs    bool
	Force   bool
	Delete  bool
	Timeout time.Duration
	Output  string // yaml, json or name
	Kube    kube.Flags
}

const long = `Find what of mesh the cluster of the kubeconfig holds, and list it in a safe deletion
order (the default, for 'mesh uninstall | kubectl delete -f -'), or delete it (--delete).

What is deleted: the objects of the render (of 'mesh install' with the same flags, or
-f/-k manifests) that the cluster holds and that are mesh's (labelled part of one of
the render's ApplySets, or applied by the field manager mesh), every live member of
those ApplySets (what an older render created), and the ApplySet parents. An object
of the render that someone else owns is foreign: never deleted, listed on stderr.

The order: webhook configurations first (no pod creation waits on the injector), then
workloads, Services, other kinds, ConfigMaps and Secrets, RBAC, ServiceAccounts, the
ApplySet parents, the Namespace; CRDs and the CRDs' ApplySet parent last, only with
--crds (deleting a CRD deletes all its custom resources). --delete deletes one phase
at a time (foreground propagation) and waits for it to be gone before the next, then
for the namespace to be gone, within --timeout.

It refuses while meshed workloads remain (pods with the proxy outside the control
plane's namespace, namespaces annotated meshplane.io/inject=enabled), listing them,
unless --force. What it leaves behind (CRDs and custom resources without --crds,
meshed pods with --force, foreign objects, objects the control plane created at run
time) is listed on stderr.

Stdout holds only the objects (to delete, or deleted with --delete): YAML, a JSON List
(-o json) or Kind/namespace/name lines (-o name). Progress and reports go to stderr.

Exit codes, whatever -o:
  0  listed, or deleted (also when nothing of mesh was found)
  1  the uninstall failed: a list or a deletion failed, a parent in the cluster is
     another tool's, or the timeout passed
  2  bad input: bad flags, unreadable manifests, no objects, unknown context
  3  the cluster is unreachable, or refused the kubeconfig's credentials
  4  refused: meshed workloads remain (pass --force)`

// NewCmd builds `mesh uninstall` and `mesh uninstall install`. runF replaces the run
// function in tests.
func NewCmd(io *iostreams.IOStreams, runF func(*Options) error) *cobra.Command {
	opts := &Options{Timeout: uninstall.DefaultTimeout, Output: uninstall.FormatYAML}
	run := func(cmd *cobra.Command) error {
		switch opts.Output {
		case uninstall.FormatYAML, uninstall.FormatJSON, uninstall.FormatName:
		default:
			return exitcode.Usage(fmt.Errorf("--output must be yaml, json or name, not %q", opts.Output))
		}
		if opts.Timeout <= 0 {
			return exitcode.Usage(fmt.Errorf("--timeout must be positive, not %s", opts.Timeout))
		}
		if runF != nil {
			return runF(opts)
		}
		return Run(cmd, io, opts)
	}
	cmd := &cobra.Command{
		Use:   "uninstall [-f FILE|DIR|URL|-]... [-k DIR] [--crds] [--force] [--delete]",
		Short: "List (or delete) mesh's objects in the cluster, in a safe order",
		Long:  long,
		Example: `  mesh uninstall | kubectl delete -f -
  mesh uninstall --delete --crds
  mesh uninstall -f mesh.yaml -o name
  mesh uninstall install -n mesh --delete --timeout 10m`,
		Args: cobra.NoArgs, // a word after uninstall is a subcommand (install), or unknown
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(opts.Inputs.Filenames) == 0 && opts.Inputs.Kustomize == "" {
				// mesh install's defaults, as `mesh uninstall install` alone.
				opts.Install = &install.Options{Version: version.Version(), Part: install.All}
			}
			return run(cmd)
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&opts.Inputs.Filenames, "filename", "f", nil, "file, directory, https URL or - (stdin); repeatable (default: mesh install's render)")
	f.BoolVarP(&opts.Inputs.Recursive, "recursive", "R", false, "read directories recursively")
	f.StringVarP(&opts.Inputs.Kustomize, "kustomize", "k", "", "build this kustomization directory first")
	pf := cmd.PersistentFlags()
	pf.BoolVar(&opts.CRDs, "crds", false, "also delete the CRDs (and every custom resource of them) and the CRDs' ApplySet parent")
	pf.BoolVar(&opts.Force, "force", false, "go ahead while meshed workloads remain (their proxies stay until they are restarted)")
	pf.BoolVar(&opts.Delete, "delete", false, "delete the objects, phase by phase, instead of listing them")
	pf.DurationVar(&opts.Timeout, "timeout", opts.Timeout, "with --delete: how long to wait for everything, the namespace included, to be gone")
	pf.StringVarP(&opts.Output, "output", "o", opts.Output, "output: yaml (for kubectl delete -f -), json (a List) or name")
	opts.Kube.Bind(pf)
	cmd.AddCommand(newInstallCmd(opts, run))
	return cmd
}

// newInstallCmd is `mesh uninstall install [crds|control-plane]`: mesh install's flags,
// bound by cli/install onto the same render options.
func newInstallCmd(opts *Options, run func(*cobra.Command) error) *cobra.Command {
	return cliinstall.NewRenderCmd(cliinstall.RenderCmd{
		Short: "Uninstall what mesh install (same flags) installs",
		Long: `Render what 'mesh install' renders with the same flags, and uninstall it as
'mesh uninstall -f' does. 'mesh uninstall install control-plane' leaves the CRDs'
set alone; 'mesh uninstall install crds --crds' removes only the CRDs.`,
		Example:      `  mesh uninstall install -n mesh --delete`,
		CRDs:         "Uninstall only the CRDs' ApplySet (with --crds)",
		ControlPlane: "Uninstall only the control plane's ApplySet",
		Run: func(cmd *cobra.Command, render *install.Options) error {
			opts.Install = render
			return run(cmd)
		},
	})
}

// refused is an uninstall refused: exit 4; the meshed workloads are already listed.
type refused struct{ err error }

func (r refused) Error() string { return r.err.Error() }
func (r refused) Unwrap() error { return r.err }
func (refused) ExitCode() int   { return exitcode.Refused }

// Run reads or renders the objects, connects, plans, reports, and lists or deletes.
func Run(cmd *cobra.Command, io *iostreams.IOStreams, o *Options) error {
	objs, err := objects(cmd, io, o)
	if err != nil {
		return err
	}
	// The input is checked before the cluster is reached: bad input exits 2.
	if err := uninstall.CheckInput(objs); err != nil {
		return exitcode.Usage(err)
	}
	c, err := o.Kube.Connect(cmd.Context())
	if err != nil {
		return err
	}
	md, err := metadata.NewForConfig(c.Config)
	if err != nil {
		return exitcode.Usage(fmt.Errorf("kubeconfig: %w", err))
	}
	uc := uninstall.NewCluster(c.Dynamic, md, c.Clientset.Discovery(), c.Config.Host)
	lo := uninstall.Options{CRDs: o.CRDs, Force: o.Force, Timeout: o.Timeout}
	plan, err := uninstall.NewPlan(cmd.Context(), uc, objs, lo)
	var meshed *uninstall.MeshedError
	if errors.As(err, &meshed) {
		Report(io.ErrOut, plan)
		return refused{err}
	}
	if err != nil {
		return err
	}
	Report(io.ErrOut, plan)
	where := fmt.Sprintf("the cluster at %s", uc.Host)
	if name := o.Kube.ContextName(); name != "" {
		where += fmt.Sprintf(" (context %s)", name)
	}
	if len(plan.Delete) == 0 {
		fmt.Fprintf(io.ErrOut, "Nothing of mesh to delete in %s for namespace %s: the wrong context, or installed elsewhere (mesh uninstall install -n NAMESPACE, or -f the manifests applied)\n", where, strings.Join(plan.Namespaces, ", "))
		return uninstall.Write(io.Out, o.Output, plan.Delete)
	}
	if !o.Delete {
		if err := uninstall.Write(io.Out, o.Output, plan.Delete); err != nil {
			return err
		}
		fmt.Fprintf(io.ErrOut, "%d objects to delete from %s, in this order: pipe to kubectl delete -f -, or run with --delete\n", len(plan.Delete), where)
		return nil
	}
	lo.Progress = func(ev uninstall.Event) {
		if ev.Done {
			fmt.Fprintf(io.ErrOut, "Gone: %s\n", ev.Phase)
			return
		}
		fmt.Fprintf(io.ErrOut, "Deleting %s\n", ev.Ref)
	}
	res, runErr := uninstall.Delete(cmd.Context(), uc, plan, lo)
	if err := uninstall.Write(io.Out, o.Output, res.Deleted); err != nil {
		return err
	}
	if runErr != nil {
		fmt.Fprintf(io.ErrOut, "Deleted %d of %d objects from %s\n", len(res.Deleted), len(plan.Delete), where)
		return runErr
	}
	fmt.Fprintf(io.ErrOut, "Deleted %d objects from %s\n", len(res.Deleted), where)
	return nil
}

// Report writes the notes, then what the uninstall leaves: foreign objects, meshed
// workloads and everything else, each with its reason.
func Report(w io.Writer, p *uninstall.Plan) {
	for _, n := range p.Notes {
		fmt.Fprintf(w, "Note: %s\n", n)
	}
	for _, l := range p.Foreign {
		fmt.Fprintf(w, "Foreign %s (not deleted): %s\n", l.Ref, l.Reason)
	}
	for _, l := range p.Meshed {
		fmt.Fprintf(w, "Meshed %s: %s\n", l.Ref, l.Reason)
	}
	for _, l := range p.LeftBehind {
		fmt.Fprintf(w, "Left behind %s: %s\n", l.Ref, l.Reason)
	}
}

// objects renders the install or reads the inputs. Either failing is bad input (2).
func objects(cmd *cobra.Command, io *iostreams.IOStreams, o *Options) ([]manifest.Object, error) {
	return cliinstall.Objects(cmd.Context(), io, o.Install, o.Inputs, prune.Read, "to uninstall")
}
