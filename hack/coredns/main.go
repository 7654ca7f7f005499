// Command coredns is the cluster DNS of hack/cluster.sh's test node.
//
// It is built from CoreDNS's own module (github.com/coredns/coredns), but
// instead of CoreDNS's core/plugin package, which links every in-tree plugin,
// it imports only the plugins the test node needs: errors, log, health,
// ready, cache and kubernetes. There is deliberately no forward plugin: the
// test node has no network, so nothing outside the cluster resolves.
//
// The Corefile's plugin order is set by dnsserver.Directives, which main
// replaces with the selected plugins, in CoreDNS's canonical order (see
// core/dnsserver/zdirectives.go), before it hands over to coremain.Run.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	// The plugins, registered by their init functions.
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/ready"
)

// directives lists the plugins in the order they run for a query, the order
// CoreDNS's generated dnsserver.Directives gives them.
var directives = []string{
	"ready",
	"health",
	"errors",
	"log",
	"cache",
	"kubernetes",
}

func main() {
	if err := dnsserver.SetDirectives(directives); err != nil {
		panic(err)
	}
	coremain.Run()
}
