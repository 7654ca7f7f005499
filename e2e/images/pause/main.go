// Command pause is the e2e cluster's pod sandbox process: it holds the pod's
// namespaces open by doing nothing until SIGINT or SIGTERM, then exits 0. It does not
// reap zombies and takes no flags.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	<-sigs
}
