// Command mesh is the mesh CLI: install the control plane, add workloads to the mesh,
// and check both.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/meshplane/mesh/cli/app"
	"github.com/meshplane/mesh/cli/iostreams"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := app.Run(ctx, os.Args[1:], iostreams.System())
	stop()
	os.Exit(code)
}
