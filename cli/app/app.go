// Package app is the mesh CLI's root: it builds the command tree and turns a command's
// outcome into an exit code. Only main exits.
package app

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/meshplane/mesh/cli/check"
	clidashboard "github.com/meshplane/mesh/cli/dashboard"
	clidiff "github.com/meshplane/mesh/cli/diff"
	cliedges "github.com/meshplane/mesh/cli/edges"
	"github.com/meshplane/mesh/cli/exitcode"
	"github.com/meshplane/mesh/cli/identity"
	clinject "github.com/meshplane/mesh/cli/inject"
	"github.com/meshplane/mesh/cli/install"
	"github.com/meshplane/mesh/cli/iostreams"
	cliprune "github.com/meshplane/mesh/cli/prune"
	cliroutes "github.com/meshplane/mesh/cli/routes"
	clistat "github.com/meshplane/mesh/cli/stat"
	clitap "github.com/meshplane/mesh/cli/tap"
	clitop "github.com/meshplane/mesh/cli/top"
	cliuninstall "github.com/meshplane/mesh/cli/uninstall"
	cliupgrade "github.com/meshplane/mesh/cli/upgrade"
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
	// Help asked for (--help, `mesh help`), completion scripts and the version are what
	// the user asked for: stdout, so `mesh install --help | less` works. Errors go to
	// stderr; usage is never printed on an error (SilenceUsage), only a pointer to --help.
	root.SetOut(io.Out)
	root.SetErr(io.ErrOut)
	root.SetIn(io.In)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return exitcode.Usage(err) })
	root.SetHelpCommand(newHelpCmd())
	root.AddCommand(
		install.NewCmd(io, nil, time.Now),
		clinject.NewCmd(io, nil),
		clinject.NewCmdUninject(io, nil),
		identity.NewCmd(io),
		check.NewCmd(io, nil, time.Now),
		clidiff.NewCmd(io, nil),
		cliprune.NewCmd(io, nil),
		cliuninstall.NewCmd(io, nil),
		cliupgrade.NewCmd(io, nil, time.Now),
		clistat.NewCmd(io, nil),
		cliedges.NewCmd(io, nil),
		cliroutes.NewCmd(io, nil),
		clitap.NewCmd(io, nil),
		clidashboard.NewCmd(io, nil),
		clitop.NewCmd(io, nil),
		version.NewCmd(io, nil),
	)
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	requireSubcommand(root)
	wrapArgs(root)
	return root
}

// newHelpCmd is `mesh help [command]`: cobra's, except that an unknown topic is a usage
// error (exit 2) rather than the root's usage and exit 0.
func newHelpCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "help [command]",
		Short: "Help about any command",
		Long:  "Help prints the help of any command: mesh help [path to command].",
		ValidArgsFunction: func(c *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
			cmd, _, err := c.Root().Find(args)
			if err != nil {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			var out []cobra.Completion
			for _, sub := range cmd.Commands() {
				if sub.IsAvailableCommand() && strings.HasPrefix(sub.Name(), toComplete) {
					out = append(out, cobra.CompletionWithDesc(sub.Name(), sub.Short))
				}
			}
			return out, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(c *cobra.Command, args []string) error {
			cmd, rest, err := c.Root().Find(args)
			if err != nil {
				return exitcode.Usage(err)
			}
			if len(rest) > 0 {
				return exitcode.Usage(unknownCommand(cmd, rest[0]))
			}
			cmd.InitDefaultHelpFlag()
			cmd.InitDefaultVersionFlag()
			return cmd.Help()
		},
	}
}

// requireSubcommand makes every command that only groups subcommands (mesh identity,
// mesh completion) print its help when called alone, and refuse anything else as an
// unknown command (exit 2). Cobra would print the help and exit 0 for `mesh identity
// rotate`. The root's unknown commands are cobra's own error (see isCobraUsage).
func requireSubcommand(c *cobra.Command) {
	if c.HasSubCommands() && !c.Runnable() {
		c.RunE = func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return cmd.Help()
			}
			return exitcode.Usage(unknownCommand(cmd, args[0]))
		}
	}
	for _, sub := range c.Commands() {
		requireSubcommand(sub)
	}
}

// unknownCommand is cobra's message for an unknown subcommand, with its suggestions.
func unknownCommand(c *cobra.Command, name string) error {
	msg := fmt.Sprintf("unknown command %q for %q", name, c.CommandPath())
	if s := c.SuggestionsFor(name); len(s) > 0 {
		msg += "\n\nDid you mean this?\n\t" + strings.Join(s, "\n\t")
	}
	return errors.New(msg)
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
