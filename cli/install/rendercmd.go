package install

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/meshplane/mesh/cli/exitcode"
	"github.com/meshplane/mesh/cli/iostreams"
	"github.com/meshplane/mesh/cli/version"
	"github.com/meshplane/mesh/render/install"
	"github.com/meshplane/mesh/render/manifest"
)

// RenderCmd describes `mesh VERB install [crds|control-plane] [install flags]`, the
// subcommand of every command that works on an install render (mesh diff, mesh prune).
type RenderCmd struct {
	Short, Long, Example string
	// CRDs and ControlPlane are the short help of the two halves' subcommands.
	CRDs, ControlPlane string
	// Run is called with the render options, validated, once the flags are parsed.
	Run func(cmd *cobra.Command, render *install.Options) error
}

// NewRenderCmd builds the `install` subcommand: mesh install's render flags
// (BindRenderFlags) on the same install.Options, `crds` and `control-plane` for one
// half, and the namespace defaulting as mesh install does.
func NewRenderCmd(rc RenderCmd) *cobra.Command {
	render := &install.Options{Version: version.Version(), Namespace: install.DefaultNamespace}
	part := func(p install.Part) func(*cobra.Command, []string) error {
		return func(cmd *cobra.Command, _ []string) error {
			render.Part = p
			if !cmd.Flags().Changed("namespace") {
				render.Namespace = "" // the one the values record, else mesh-system (as mesh install)
			}
			if err := ValidateRender(*render); err != nil {
				return exitcode.Usage(err)
			}
			return rc.Run(cmd, render)
		}
	}
	cmd := &cobra.Command{
		Use:     "install [crds|control-plane] [install flags]",
		Short:   rc.Short,
		Long:    rc.Long,
		Example: rc.Example,
		Args:    cobra.NoArgs,
		RunE:    part(install.All),
	}
	cmd.AddCommand(
		&cobra.Command{Use: "crds", Short: rc.CRDs, Args: cobra.NoArgs, RunE: part(install.CRDs)},
		&cobra.Command{Use: "control-plane", Short: rc.ControlPlane, Args: cobra.NoArgs, RunE: part(install.ControlPlane)},
	)
	BindRenderFlags(cmd.PersistentFlags(), render)
	return cmd
}

// ReadFunc reads the objects of manifest inputs (lifecycle/prune.Read, for one).
type ReadFunc func(context.Context, manifest.Inputs, manifest.Env) ([]manifest.Object, error)

// Objects is the input of a command that takes either mesh install's flags or
// manifests: the render of render when it is set (its warnings on stderr), else the
// objects read from in. A failed render or read, and an input without objects, are
// bad input (exit 2); verb completes the no-objects error ("to uninstall", or "").
func Objects(ctx context.Context, io *iostreams.IOStreams, render *install.Options, in manifest.Inputs, read ReadFunc, verb string) ([]manifest.Object, error) {
	if render != nil {
		res, err := install.Render(*render, io)
		if err != nil {
			return nil, exitcode.Usage(err)
		}
		for _, w := range res.Warnings {
			fmt.Fprintf(io.ErrOut, "Warning: %s\n", w)
		}
		return res.Objects, nil
	}
	objs, err := read(ctx, in, manifest.Env{Stdin: io.In})
	if err != nil {
		return nil, exitcode.Usage(err)
	}
	if len(objs) == 0 {
		return nil, exitcode.Usage(in.NoObjects(verb))
	}
	return objs, nil
}
