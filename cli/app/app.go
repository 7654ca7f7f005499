// Package app is the mesh CLI's root: it builds the command tree and turns a command's
// outcome into an exit code. Only main exits.
package app

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/meshplane/mesh/cli/check"
	"github.com/meshplane/mesh/cli/exitcode"
	"github.com/meshplane/mesh/cli/identity"
	clinject "github.com/meshplane/mesh/cli/inject"
	"github.com/meshplane/mesh/cli/install"
	"github.com/meshplane/mesh/cli/iostreams"
	"github.com/meshplane/mesh/cli/version"
)

// NewRootCmd builds the command tree.
func NewRootCmd(io *iostreams.IOStreams) *cobra.Command {
	root := &cobra.Command{
		Use:           "mesh",
		Short:         "mesh: an ultralight service mesh for Kubernetes",
		Long:          "mesh gives every meshed workload mutual TLS, golden metrics, retries, timeouts and\nlatency-aware load balancing, with no code change.",
		SilenceErrors: true,
		SilenceUsage:  true,
		Version:       version.Version(),
	}
	root.SetOut(io.ErrOut) // help and usage are messages, not data
	root.SetErr(io.ErrOut)
	root.SetIn(io.In)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return exitcode.Usage(err) })
	root.CompletionOptions.HiddenDefaultCmd = true
	root.AddCommand(
		install.NewCmd(io, nil),
		clinject.NewCmd(io, nil),
		clinject.NewCmdUninject(io, nil),
		identity.NewCmd(io),
		check.NewCmd(io, nil, time.Now),
		version.NewCmd(io, nil),
	)
	wrapArgs(root)
	return root
}

// wrapArgs makes argument-validation failures usage errors, on every command.
func wrapArgs(c *cobra.Command) {
	if c.Args != nil {
		validate := c.Args
		c.Args = func(cmd *cobra.Command, args []string) error {
			if err := validate(cmd, args); err != nil {
				return exitcode.Usage(err)
			}
			return nil
		}
	}
	for _, sub := range c.Commands() {
		wrapArgs(sub)
	}
}

// Run runs the CLI with args and returns the exit code.
func Run(ctx context.Context, args []string, io *iostreams.IOStreams) int {
	root := NewRootCmd(io)
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitcode.OK
	}
	if !exitcode.Silent(err) {
		fmt.Fprintf(io.ErrOut, "Error: %v\n", err)
	}
	if isCobraUsage(err) {
		err = exitcode.Usage(err)
	}
	code := exitcode.For(err)
	if code == exitcode.UsageCode && cmd != nil {
		fmt.Fprintf(io.ErrOut, "Run '%s --help' for usage.\n", cmd.CommandPath())
	}
	return code
}

// isCobraUsage catches cobra's own unknown-command error, which bypasses the hooks.
func isCobraUsage(err error) bool {
	return strings.HasPrefix(err.Error(), "unknown command ")
}
