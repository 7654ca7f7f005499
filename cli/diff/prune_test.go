package diff

import (
	"strings"
	"testing"

	"github.com/meshplane/mesh/cli/version"
	"github.com/meshplane/mesh/internal/testing/testcluster"
	"github.com/meshplane/mesh/render/install"
	"github.com/meshplane/mesh/render/manifest"
	"github.com/meshplane/mesh/render/values"
)

// The objects `mesh prune` would delete show in mesh diff as prune candidates (exit 1):
// a control plane applied with PodDisruptionBudgets, diffed against the render
// without them. Input without an ApplySet parent lists none.
func TestDiffPruneCandidates(t *testing.T) {
	t.Parallel()
	kc := testcluster.Kubeconfig(t)
	ns := testcluster.Namespace(t, testcluster.Clientset(t))
	render := func(o install.Options) []manifest.Object {
		t.Helper()
		o.Version, o.Namespace, o.Part = version.Version(), ns, install.ControlPlane
		res, err := install.Render(o, nil)
		if err != nil {
			t.Fatal(err)
		}
		var objs []manifest.Object
		for _, obj := range res.Objects {
			// Cluster-wide objects would reach other tests: leave them out of both.
			if obj.Namespace != "" || obj.Kind == "Namespace" {
				objs = append(objs, obj)
			}
		}
		return objs
	}
	write := func(objs []manifest.Object) string {
		t.Helper()
		var b strings.Builder
		if err := manifest.WriteYAML(&b, objs); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	kubectlApply(t, kc, write(render(install.Options{Values: values.Options{Values: []string{"controller.podDisruptionBudget=true"}}})))

	next := write(render(install.Options{}))
	code, out, stderr, msg := execute(t, next, "-f", "-", "--kubeconfig", kc, "-n", ns)
	for _, name := range []string{"mesh-identity", "mesh-destination", "mesh-injector"} {
		want := "Prune candidate: PodDisruptionBudget/" + ns + "/" + name + ": in the cluster, not in the input\n"
		if !strings.Contains(out+stderr, want) {
			t.Errorf("want %q in the output:\n%s\nstderr:\n%s", want, out, stderr)
		}
	}
	if code != 1 || !strings.Contains(stderr, "3 prune candidates") {
		t.Errorf("exit %d (%s), stderr %q: want 1 and 3 prune candidates", code, msg, stderr)
	}

	bare := write(render(install.Options{WithoutApplySet: true}))
	_, out, stderr, _ = execute(t, bare, "-f", "-", "--kubeconfig", kc, "-n", ns)
	if strings.Contains(out+stderr, "Prune candidate") {
		t.Errorf("input without an ApplySet listed prune candidates:\n%s\n%s", out, stderr)
	}
}
