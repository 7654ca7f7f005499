// Command mesh-controller runs one control-plane component: mesh-controller identity,
// destination or injector.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/meshplane/mesh/controlplane/controller"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := controller.Run(ctx, os.Args[1:], os.Stdout, os.Stderr, time.Now)
	stop()
	os.Exit(code)
}
