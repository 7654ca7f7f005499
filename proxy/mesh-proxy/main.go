// Command mesh-proxy is the mesh's data-plane sidecar (`mesh-proxy run`) and its
// iptables init step (`mesh-proxy init`), in one lean binary.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/meshplane/mesh/controlplane/api/version"
	"github.com/meshplane/mesh/proxy/app"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := app.Run(ctx, os.Args[1:], app.Streams{Out: os.Stdout, Err: os.Stderr, LookupEnv: os.LookupEnv}, app.Version(version.Version()))
	stop()
	os.Exit(code)
}
