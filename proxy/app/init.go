package app

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/meshplane/mesh/proxy/iptables"
)

// runInit installs (or with --remove removes) the redirection rules. Its help (-h,
// --help) goes to stdout; a bad command line is said on stderr, exit 2.
func runInit(ctx context.Context, args []string, s Streams) int {
	var msg bytes.Buffer // what the flag parser says: help for stdout, or an error for stderr
	o, err := iptables.ParseFlags(args, &msg)
	switch {
	case errors.Is(err, flag.ErrHelp):
		_, _ = s.Out.Write(msg.Bytes())
		return exitOK
	case err != nil:
		_, _ = s.Err.Write(msg.Bytes())
		return exitUsage
	}
	o.Log = s.Err
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

// initHelp is init's help, as its flag parser prints it.
func initHelp(w io.Writer) {
	_, _ = iptables.ParseFlags([]string{"--help"}, w)
}
