package main

import (
	"os/exec"
	"strings"
	"testing"
)

// The proxy binary stays lean: no Kubernetes, Helm or cobra package is linked in, no
// Prometheus client library (proxy/metrics writes the exposition itself), and of this
// module only proxy/ and the control plane's API.
func TestLeanDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list returned too little: %q", out)
	}
	for _, d := range deps {
		switch {
		case strings.HasPrefix(d, "k8s.io/"), strings.HasPrefix(d, "sigs.k8s.io/"), strings.HasPrefix(d, "helm.sh/"),
			strings.HasPrefix(d, "github.com/spf13/cobra"):
			t.Errorf("mesh-proxy links %s", d)
		case strings.HasPrefix(d, "github.com/prometheus/"), strings.HasPrefix(d, "github.com/beorn7/perks"),
			strings.HasPrefix(d, "github.com/cespare/xxhash"), strings.HasPrefix(d, "github.com/munnerz/goautoneg"):
			t.Errorf("mesh-proxy links %s (the Prometheus client library or its dependencies)", d)
		case strings.HasPrefix(d, "github.com/meshplane/mesh/") &&
			!strings.HasPrefix(d, "github.com/meshplane/mesh/proxy/") &&
			!strings.HasPrefix(d, "github.com/meshplane/mesh/controlplane/api/"):
			t.Errorf("mesh-proxy links %s, outside proxy/ and controlplane/api/", d)
		}
	}
}
