// Package diff is `mesh diff`: what applying manifests, or the render of `mesh install`,
// with server-side apply would change in the cluster, in the fields mesh owns.
package diff

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/meshplane/mesh/cli/exitcode"
	cliinstall "github.com/meshplane/mesh/cli/install"
	"github.com/meshplane/mesh/cli/iostreams"
	"github.com/meshplane/mesh/cli/kube"
	"github.com/meshplane/mesh/lifecycle/diff"
	"github.com/meshplane/mesh/lifecycle/prune"
	"github.com/meshplane/mesh/render/install"
	"github.com/meshplane/mesh/render/manifest"
)

// Options of `mesh diff`.
type Options struct {
	Inputs manifest.Inputs
	// Install, when set, is what `mesh diff install` renders and diffs instead of
	// Inputs: the options of `mesh install`, bound by its own flags.
	Install *install.Options
	// Namespace (-n) is given to namespaced objects of Inputs that name none; empty
	// means the kubeconfig context's.
	Namespace string
	Output    string // diff or json
	Kube      kube.Flags
}

const long = `Show what applying the manifests with server-side apply (field manager "mesh") would
change in the cluster of the kubeconfig, as unified diffs on stdout, one per object.

Each object is applied as a server-side dry run and compared with the live object,
in the fields mesh owns only: what other field managers set (an autoscaler's replicas,
a controller's annotations, the injector's caBundle), status and the server's metadata
never show as drift. A field another manager owns with another value is a conflict,
named with that manager on stderr; the diff shows what a forced apply would do.
CRDs come first; custom resources whose CRD is not installed yet are pending.
Secret values are shown as hashes, never as values. A summary goes to stderr.

'mesh diff install [flags]' diffs the render of 'mesh install' with the same flags.

Exit codes, whatever -o:
  0  no differences
  1  differences: changed, added, pending or conflicting objects
  2  bad input: bad flags, unreadable manifests, no objects, objects the server rejects
  3  the cluster is unreachable, or refused the kubeconfig's credentials`

// NewCmd builds `mesh diff` and `mesh diff install`. runF replaces the run function in
// tests.
func NewCmd(io *iostreams.IOStreams, runF func(*Options) error) *cobra.Command {
	opts := &Options{Output: diff.FormatDiff}
	run := func(cmd *cobra.Command) error {
		if opts.Output != diff.FormatDiff && opts.Output != diff.FormatJSON {
			return exitcode.Usage(fmt.Errorf("--output must be %s or %s, not %q", diff.FormatDiff, diff.FormatJSON, opts.Output))
		}
		if runF != nil {
			return runF(opts)
		}
		return Run(cmd, io, opts)
	}
	cmd := &cobra.Command{
		Use:   "diff [-f FILE|DIR|URL|-]... [-k DIR]",
		Short: "Show what applying manifests (or mesh install's render) would change in the cluster",
		Long:  long,
		Example: `  mesh diff -f mesh.yaml
  mesh install --ha | mesh diff -f -
  mesh diff install --set proxy.logLevel=debug
  mesh diff -k deploy/overlays/prod -o json`,
		// No file arguments: a word after diff is a subcommand (install), or unknown.
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(opts.Inputs.Filenames) == 0 && opts.Inputs.Kustomize == "" {
				return exitcode.Usage(errors.New("no input: pass -f FILE|DIR|URL|- or -k DIR, or use mesh diff install [install flags]"))
			}
			return run(cmd)
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&opts.Inputs.Filenames, "filename", "f", nil, "file, directory, https URL or - (stdin); repeatable")
	f.BoolVarP(&opts.Inputs.Recursive, "recursive", "R", false, "read directories recursively")
	f.StringVarP(&opts.Inputs.Kustomize, "kustomize", "k", "", "build this kustomization directory first")
	f.StringVarP(&opts.Namespace, "namespace", "n", "", "namespace of objects that name none (default: the kubeconfig context's)")
	pf := cmd.PersistentFlags()
	pf.StringVarP(&opts.Output, "output", "o", opts.Output, "output: diff (unified diffs) or json")
	opts.Kube.Bind(pf)
	cmd.AddCommand(newInstallCmd(opts, run))
	return cmd
}

// newInstallCmd is `mesh diff install [crds|control-plane]`: mesh install's flags,
// bound by cli/install onto the same render options.
func newInstallCmd(opts *Options, run func(*cobra.Command) error) *cobra.Command {
	return cliinstall.NewRenderCmd(cliinstall.RenderCmd{
		Short: "Diff the render of mesh install (same flags) against the cluster",
		Long: `Render what 'mesh install' renders with the same flags, and diff it against the
cluster as 'mesh diff -f' does. 'mesh diff install crds' and 'mesh diff install
control-plane' diff one half.`,
		Example:      `  mesh diff install --ha -f values.yaml`,
		CRDs:         "Diff only the CustomResourceDefinitions",
		ControlPlane: "Diff only the control plane",
		Run: func(cmd *cobra.Command, render *install.Options) error {
			opts.Install = render
			return run(cmd)
		},
	})
}

// Run reads or renders the objects, connects to the cluster, diffs, and writes the
// diffs (or JSON) to stdout and the summary to stderr. Differences are an error with
// exit code 1 and no message; every other error exits 2 or more.
func Run(cmd *cobra.Command, io *iostreams.IOStreams, o *Options) error {
	objs, err := objects(cmd, io, o)
	if err != nil {
		return err
	}
	c, err := o.Kube.Connect(cmd.Context())
	if err != nil {
		return err
	}
	ns := o.Namespace
	if ns == "" {
		if ns, err = o.Kube.Namespace(); err != nil {
			return err
		}
	}
	dc := diff.NewCluster(c.Dynamic, c.Clientset.Discovery(), c.Config.Host)
	rep, err := diff.Run(cmd.Context(), dc, objs, diff.Options{
		Namespace: ns,
		// One discovery for both: the prune lister uses the diff's mapper.
		Prune: pruneLister{&prune.Cluster{Dynamic: dc.Dynamic, Mapper: dc.Mapper}},
	})
	if err != nil {
		return atLeastInput(err)
	}
	if err := diff.Write(io.Out, o.Output, rep); err != nil {
		return atLeastInput(err)
	}
	if err := diff.Summary(io.ErrOut, rep); err != nil {
		return atLeastInput(err)
	}
	if rep.ExitCode() != diff.ExitSame {
		return differs{}
	}
	return nil
}

// objects renders the install or reads the inputs. Either failing is bad input (2).
func objects(cmd *cobra.Command, io *iostreams.IOStreams, o *Options) ([]diff.Object, error) {
	if o.Install != nil {
		res, err := install.Render(*o.Install, io)
		if err != nil {
			return nil, exitcode.Usage(err)
		}
		for _, w := range res.Warnings {
			fmt.Fprintf(io.ErrOut, "Warning: %s\n", w)
		}
		objs, err := diff.FromManifest(res.Objects)
		if err != nil {
			return nil, exitcode.Usage(err)
		}
		return objs, nil
	}
	objs, err := diff.Read(cmd.Context(), o.Inputs, manifest.Env{Stdin: io.In})
	if err != nil {
		return nil, exitcode.Usage(err)
	}
	if len(objs) == 0 {
		// No differences in nothing would hide a wrong path or an empty render in CI.
		return nil, exitcode.Usage(o.Inputs.NoObjects("to diff"))
	}
	return objs, nil
}

// differs is a diff that found differences: exit 1, no "Error:" line (the diff and
// the summary say it).
type differs struct{}

func (differs) Error() string { return "differences found" }
func (differs) ExitCode() int { return diff.ExitDiffers }
func (differs) Silent() bool  { return true }

// atLeastInput keeps an error's exit code when it has one (2 for input, 3 for the
// cluster), and makes any other error exit 2: 1 means differences, as for kubectl diff.
func atLeastInput(err error) error {
	if exitcode.For(err) > diff.ExitDiffers {
		return err
	}
	return inputError{err}
}

type inputError struct{ error }

func (e inputError) Unwrap() error { return e.error }
func (inputError) ExitCode() int   { return diff.ExitInput }
