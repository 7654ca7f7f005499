// Package prune is `mesh prune`: it deletes the objects of mesh's ApplySets that are in
// the cluster but no longer in the manifests (or the render of `mesh install`).
package prune

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/meshplane/mesh/cli/exitcode"
	cliinstall "github.com/meshplane/mesh/cli/install"
	"github.com/meshplane/mesh/cli/iostreams"
	"github.com/meshplane/mesh/cli/kube"
	"github.com/meshplane/mesh/lifecycle/prune"
	"github.com/meshplane/mesh/render/install"
	"github.com/meshplane/mesh/render/manifest"
)

// Options of `mesh prune`.
type Options struct {
	Inputs manifest.Inputs
	// Install, when set, is what `mesh prune install` renders and prunes to instead of
	// Inputs: the options of `mesh install`, bound by its own flags.
	Install *install.Options
	DryRun  prune.DryRun
	Output  string // name or json
	Kube    kube.Flags
}

// Output formats.
const (
	OutputName = "name"
	OutputJSON = "json"
)

const long = `Delete the objects of mesh's ApplySets that are in the cluster of the kubeconfig but
no longer in the manifests: what a new render dropped (a component turned off, RBAC a
new version no longer needs), cluster-scoped objects included.

'mesh install' labels every object applyset.kubernetes.io/part-of its set and renders
the sets' parents: ConfigMap kube-system/mesh-crds-applyset for the CRDs and
mesh-control-plane-applyset in the control plane's namespace. mesh prune reads the
parents in the manifests, lists the objects labelled part-of each set in every kind
the live parent or the new one names, and deletes those the manifests lack, in the
reverse of the apply order (webhook configurations first, CRDs last). It never
deletes an object without the label (created at runtime), nor the namespace that holds
a parent. Afterwards it applies the new parents (server-side, field manager mesh).
Apply the manifests first; prune after.

The objects deleted (or, with --dry-run, that would be) go to stdout, one per line as
Kind/namespace/name, or as JSON with -o json; notes and a summary go to stderr.
--dry-run (or --dry-run=client) only lists; --dry-run=server also asks the API server
to check each deletion, deleting nothing.

'mesh prune install [flags]' prunes to the render of 'mesh install' with the same flags.

Exit codes, whatever -o:
  0  pruned (or nothing to prune)
  1  the prune failed: a deletion failed, or a parent in the cluster is another tool's
  2  bad input: bad flags, unreadable manifests, no objects or no ApplySet parent in them
  3  the cluster is unreachable, or refused the kubeconfig's credentials`

// NewCmd builds `mesh prune` and `mesh prune install`. runF replaces the run function
// in tests.
func NewCmd(io *iostreams.IOStreams, runF func(*Options) error) *cobra.Command {
	opts := &Options{DryRun: prune.DryRunNone, Output: OutputName}
	var dryRun string
	run := func(cmd *cobra.Command) error {
		switch prune.DryRun(dryRun) {
		case prune.DryRunNone, prune.DryRunClient, prune.DryRunServer:
			opts.DryRun = prune.DryRun(dryRun)
		default:
			return exitcode.Usage(fmt.Errorf("--dry-run must be none, client or server, not %q", dryRun))
		}
		if opts.Output != OutputName && opts.Output != OutputJSON {
			return exitcode.Usage(fmt.Errorf("--output must be %s or %s, not %q", OutputName, OutputJSON, opts.Output))
		}
		if runF != nil {
			return runF(opts)
		}
		return Run(cmd, io, opts)
	}
	cmd := &cobra.Command{
		Use:   "prune [-f FILE|DIR|URL|-]... [-k DIR]",
		Short: "Delete the objects of mesh's ApplySets that the manifests (or mesh install's render) dropped",
		Long:  long,
		Example: `  kubectl apply --server-side -f mesh.yaml && mesh prune -f mesh.yaml
  mesh install --ha | mesh prune --dry-run -f -
  mesh prune install -f values.yaml --dry-run=server`,
		Args: cobra.NoArgs, // a word after prune is a subcommand (install), or unknown
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(opts.Inputs.Filenames) == 0 && opts.Inputs.Kustomize == "" {
				return exitcode.Usage(errors.New("no input: pass -f FILE|DIR|URL|- or -k DIR, or use mesh prune install [install flags]"))
			}
			return run(cmd)
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&opts.Inputs.Filenames, "filename", "f", nil, "file, directory, https URL or - (stdin); repeatable")
	f.BoolVarP(&opts.Inputs.Recursive, "recursive", "R", false, "read directories recursively")
	f.StringVarP(&opts.Inputs.Kustomize, "kustomize", "k", "", "build this kustomization directory first")
	pf := cmd.PersistentFlags()
	pf.StringVar(&dryRun, "dry-run", string(prune.DryRunNone), "none (delete), client (only list) or server (the API server checks each deletion, nothing is deleted); --dry-run alone is client")
	pf.Lookup("dry-run").NoOptDefVal = string(prune.DryRunClient)
	pf.StringVarP(&opts.Output, "output", "o", opts.Output, "output: name (Kind/namespace/name lines) or json")
	opts.Kube.Bind(pf)
	cmd.AddCommand(newInstallCmd(opts, run))
	return cmd
}

// newInstallCmd is `mesh prune install [crds|control-plane]`: mesh install's flags,
// bound by cli/install onto the same render options.
func newInstallCmd(opts *Options, run func(*cobra.Command) error) *cobra.Command {
	return cliinstall.NewRenderCmd(cliinstall.RenderCmd{
		Short: "Prune to the render of mesh install (same flags)",
		Long: `Render what 'mesh install' renders with the same flags, and prune the cluster to it
as 'mesh prune -f' does. 'mesh prune install crds' and 'mesh prune install
control-plane' prune one half (one ApplySet).`,
		Example:      `  mesh prune install --ha -f values.yaml`,
		CRDs:         "Prune only the CRDs' ApplySet",
		ControlPlane: "Prune only the control plane's ApplySet",
		Run: func(cmd *cobra.Command, render *install.Options) error {
			opts.Install = render
			return run(cmd)
		},
	})
}

// Run reads or renders the objects, checks their ApplySets, connects to the cluster
// and prunes. The objects deleted (or that would be) go to stdout, also when the prune
// stops on an error; notes and the summary go to stderr.
func Run(cmd *cobra.Command, io *iostreams.IOStreams, o *Options) error {
	objs, err := objects(cmd, io, o)
	if err != nil {
		return err
	}
	// The input is checked before the cluster is reached: bad input exits 2.
	sets, err := prune.Sets(objs)
	if err != nil {
		return exitcode.Usage(err)
	}
	if len(sets) == 0 {
		return exitcode.Usage(prune.ErrNoApplySet)
	}
	c, err := o.Kube.Connect(cmd.Context())
	if err != nil {
		return err
	}
	res, runErr := prune.Run(cmd.Context(), prune.NewCluster(c.Dynamic, c.Clientset.Discovery()), objs, prune.Options{DryRun: o.DryRun})
	if res == nil {
		return runErr
	}
	if err := Write(io.Out, o.Output, o.DryRun, res); err != nil {
		return err
	}
	Summary(io.ErrOut, o.DryRun, res)
	return runErr
}

// Write writes what was deleted, or with a dry run what would be: one Kind/ns/name line
// each, or JSON.
func Write(w io.Writer, format string, dryRun prune.DryRun, res *prune.Result) error {
	objs := res.Deleted
	if dryRun == prune.DryRunClient {
		objs = res.Candidates
	}
	if format == OutputJSON {
		out := struct {
			DryRun  prune.DryRun `json:"dryRun"`
			Objects []prune.Ref  `json:"objects"`
			Kept    []prune.Kept `json:"kept"`
		}{dryRun, nonNil(objs), res.Kept}
		if out.Kept == nil {
			out.Kept = []prune.Kept{}
		}
		b, err := json.MarshalIndent(out, "", "  ")
		if err != nil {
			return err
		}
		_, err = w.Write(append(b, '\n'))
		return err
	}
	var b strings.Builder
	for _, r := range objs {
		b.WriteString(r.String() + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func nonNil(refs []prune.Ref) []prune.Ref {
	if refs == nil {
		return []prune.Ref{}
	}
	return refs
}

// Summary writes the notes, the objects kept and why, and one line of counts.
func Summary(w io.Writer, dryRun prune.DryRun, res *prune.Result) {
	for _, n := range res.Notes {
		fmt.Fprintf(w, "Note: %s\n", n)
	}
	for _, k := range res.Kept {
		fmt.Fprintf(w, "Kept %s: %s\n", k.Ref, k.Reason)
	}
	sets := make([]string, 0, len(res.Sets))
	for _, s := range res.Sets {
		sets = append(sets, s.Parent.String())
	}
	what := fmt.Sprintf("ApplySets %s", strings.Join(sets, ", "))
	switch {
	case dryRun == prune.DryRunClient:
		fmt.Fprintf(w, "%d objects would be pruned (dry run) from %s\n", len(res.Candidates), what)
	case dryRun == prune.DryRunServer:
		fmt.Fprintf(w, "%d objects would be pruned (server dry run) from %s\n", len(res.Deleted), what)
	case len(res.Deleted) < len(res.Candidates):
		fmt.Fprintf(w, "Pruned %d of %d objects from %s\n", len(res.Deleted), len(res.Candidates), what)
	default:
		fmt.Fprintf(w, "Pruned %d objects from %s\n", len(res.Deleted), what)
	}
}

// objects renders the install or reads the inputs. Either failing is bad input (2).
func objects(cmd *cobra.Command, io *iostreams.IOStreams, o *Options) ([]manifest.Object, error) {
	// Pruning to nothing would delete the whole install: an empty input is refused.
	return cliinstall.Objects(cmd.Context(), io, o.Install, o.Inputs, prune.Read, "")
}
