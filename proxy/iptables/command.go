package iptables

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
)

// Command runs the init subcommand: it parses args (see ParseFlags), then
// runs Apply, or Remove with --remove, with an ExecRunner, logging to
// stderr. It returns the exit status: 0, 1 on failure, 2 on a usage error.
func Command(ctx context.Context, args []string, stderr io.Writer) int {
	o, err := ParseFlags(args, stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case err != nil:
		return 2
	}
	run, what := Apply, "installed"
	if o.Remove {
		run, what = Remove, "removed"
	}
	if err := run(ctx, o, ExecRunner{}); err != nil {
		fmt.Fprintf(stderr, "init: %v\n", err)
		return 1
	}
	if !o.DryRun {
		fmt.Fprintf(stderr, "init: iptables rules %s\n", what)
	}
	return 0
}
