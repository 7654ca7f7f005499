package install

import (
	"github.com/spf13/cobra"

	"github.com/meshplane/mesh/cli/exitcode"
	"github.com/meshplane/mesh/cli/version"
	"github.com/meshplane/mesh/render/install"
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
