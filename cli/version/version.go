// Package version is the CLI's version, set at build time, and `mesh version`.
package version

import (
	"encoding/json"
	"fmt"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/meshplane/mesh/cli/exitcode"
	"github.com/meshplane/mesh/cli/iostreams"
)

// version is set by the linker: -X github.com/meshplane/mesh/cli/version.version=1.2.3 (goreleaser stamps {{.Version}}, without a v; images are tagged the same).
// It is the only package variable the CLI has, and nothing writes it at run time.
var version = "dev"

// Version is the CLI's version.
func Version() string { return version }

// Info is what `mesh version` reports.
type Info struct {
	ClientVersion string `json:"clientVersion"`
	GoVersion     string `json:"goVersion"`
	Platform      string `json:"platform"`
}

// Options of `mesh version`.
type Options struct {
	Output string
	Info   Info
}

// NewCmd builds `mesh version`. runF replaces the run function in tests.
func NewCmd(io *iostreams.IOStreams, runF func(*Options) error) *cobra.Command {
	opts := &Options{Info: Info{ClientVersion: version, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}}
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the CLI's version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.Output != "" && opts.Output != "json" && opts.Output != "yaml" && opts.Output != "short" {
				return exitcode.Usage(fmt.Errorf("--output must be json, yaml or short, not %q", opts.Output))
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
	switch opts.Output {
	case "json":
		b, err := json.MarshalIndent(opts.Info, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(io.Out, "%s\n", b)
		return err
	case "yaml":
		_, err := fmt.Fprintf(io.Out, "clientVersion: %s\ngoVersion: %s\nplatform: %s\n", opts.Info.ClientVersion, opts.Info.GoVersion, opts.Info.Platform)
		return err
	case "short":
		_, err := fmt.Fprintln(io.Out, opts.Info.ClientVersion)
		return err
	default:
		_, err := fmt.Fprintf(io.Out, "Client version: %s\n", opts.Info.ClientVersion)
		return err
	}
}
