package app

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"github.com/meshplane/mesh/proxy/iptables"
)

// runInit installs (or with --remove removes) the redirection rules.
func runInit(ctx context.Context, args []string, s Streams) int {
	o, err := iptables.ParseFlags(args, s.Err)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case err != nil:
		return exitUsage
	}
	run := iptables.Apply
	if o.Remove {
		run = iptables.Remove
	}
	if err := run(ctx, o, iptables.ExecRunner{}); err != nil {
		fmt.Fprintf(s.Err, "mesh-proxy init: %v\n", err)
		return exitError
	}
	return exitOK
}
