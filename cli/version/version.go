// Package version is `mesh version`, and the CLI's version (set at build time in
// controlplane/api/version, which mesh-controller and mesh-proxy report too).
package version

import (
	"github.com/spf13/cobra"

	"github.com/meshplane/mesh/cli/exitcode"
	"github.com/meshplane/mesh/cli/iostreams"
	shared "github.com/meshplane/mesh/controlplane/api/version"
)

// Version is the CLI's version.
func Version() string { return shared.Version() }

// Info is what `mesh version` reports.
type Info = shared.Info

// Options of `mesh version`.
type Options struct {
	Output string
	Info   Info
}

// NewCmd builds `mesh version`. runF replaces the run function in tests.
func NewCmd(io *iostreams.IOStreams, runF func(*Options) error) *cobra.Command {
	opts := &Options{Info: shared.Current("client")}
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the CLI's version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := shared.CheckOutput(opts.Output); err != nil {
				return exitcode.Usage(err)
			}
			if runF != nil {
				return runF(opts)
			}
			return Run(io, opts)
		},
	}
	cmd.Flags().StringVarP(&opts.Output, "output", "o", "", "output format: json, yaml or short")
	return cmd
}

// Run prints the version.
func Run(io *iostreams.IOStreams, opts *Options) error {
	return shared.Write(io.Out, opts.Info, opts.Output)
}
