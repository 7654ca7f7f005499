package node

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// testDayTwo is issue 15's proof of mesh diff and mesh prune on the real node: the
// install applied with server-side apply as mesh, the controllers settled (the
// injector's caBundle, identity's bootstrap), then diff and prune of new renders,
// namespaced (PodDisruptionBudgets) and cluster-scoped (Prometheus's RBAC) objects.
func (n *node) testDayTwo(t *testing.T) {
	plainRender := []byte(n.mustMesh(nil, "install"))
	ssa := func(manifests []byte) {
		n.must(manifests, n.kubectl, "apply", "--server-side", "--field-manager=mesh", "--force-conflicts", "-f", "-")
	}
	ssa(plainRender)
	n.waitAvailable("mesh-system")

	// The same render: no differences once the controllers have settled.
	eventually(t, 90*time.Second, func() string {
		if code, o, e := n.meshCmd(plainRender, "diff", "-f", "-"); code != 0 {
			return fmt.Sprintf("mesh diff of the applied render: exit %d, want 0\n%s%s", code, o, e)
		}
		return ""
	})

	// One value changed: exit 1, and the webhook's timeout is the changed field.
	code, o, e := n.meshCmd(nil, "diff", "install", "--set", "injector.timeoutSeconds=7")
	if code != 1 {
		t.Fatalf("mesh diff install --set injector.timeoutSeconds=7: exit %d, want 1\n%s%s", code, o, e)
	}
	if !strings.Contains(o, "MutatingWebhookConfiguration/") || !strings.Contains(o, "timeoutSeconds") {
		t.Errorf("mesh diff does not show the webhook's timeoutSeconds:\n%s", o)
	}

	// Prune: an install with --ha (PodDisruptionBudgets), then the render without it.
	// mesh prune deletes the budgets, and nothing else: the plain render's diff is
	// still empty and mesh check passes.
	ssa([]byte(n.mustMesh(nil, "install", "--ha")))
	if pdbs := strings.Fields(n.kc("get", "poddisruptionbudgets", "-n", "mesh-system", "-o", "name")); len(pdbs) == 0 {
		t.Fatal("mesh install --ha applied no PodDisruptionBudget")
	}
	ssa(plainRender)
	n.mustMesh(nil, "prune", "install")
	if pdbs := strings.TrimSpace(n.kc("get", "poddisruptionbudgets", "-n", "mesh-system", "-o", "name")); pdbs != "" {
		t.Errorf("PodDisruptionBudgets left after mesh prune: %s", pdbs)
	}
	n.waitAvailable("mesh-system")

	// Prune of cluster-scoped objects: the optional Prometheus brings a ClusterRole and
	// a ClusterRoleBinding (and namespaced objects). Its image is not on the node, so
	// its pod never starts: nothing waits for it. The render without it, then mesh
	// prune: Prometheus's objects go, cluster-scoped ones included, and nothing else.
	const prom = "mesh-mesh-system-prometheus"
	ssa([]byte(n.mustMesh(nil, "install", "--set", "prometheus.enabled=true")))
	for _, kind := range []string{"clusterrole", "clusterrolebinding"} {
		if got := strings.TrimSpace(n.kc("get", kind, prom, "--ignore-not-found", "-o", "name")); got == "" {
			t.Fatalf("mesh install --set prometheus.enabled=true applied no %s %s", kind, prom)
		}
	}
	ssa(plainRender)
	code, o, e = n.meshCmd(nil, "prune", "install")
	if code != 0 {
		t.Fatalf("mesh prune install after dropping Prometheus: exit %d\n%s%s", code, o, e)
	}
	for _, kind := range []string{"ClusterRole", "ClusterRoleBinding"} {
		if !slices.ContainsFunc(strings.Split(o, "\n"), func(l string) bool { return strings.HasPrefix(l, kind+"/") && strings.HasSuffix(l, "/"+prom) }) {
			t.Errorf("mesh prune's stdout does not list the %s it deleted:\n%s", kind, o)
		}
	}
	for _, kind := range []string{"clusterrole", "clusterrolebinding"} {
		if got := strings.TrimSpace(n.kc("get", kind, prom, "--ignore-not-found", "-o", "name")); got != "" {
			t.Errorf("%s left after mesh prune: %s", kind, got)
		}
	}
	for _, kind := range []string{"clusterrole", "clusterrolebinding"} {
		for _, c := range []string{"destination", "identity", "injector"} {
			if got := strings.TrimSpace(n.kc("get", kind, "mesh-mesh-system-"+c, "--ignore-not-found", "-o", "name")); got == "" {
				t.Errorf("mesh prune deleted %s mesh-mesh-system-%s, which the render still holds", kind, c)
			}
		}
	}
	if got := strings.TrimSpace(n.kc("get", "deploy,svc,configmap,serviceaccount", "-n", "mesh-system", "-l", "app.kubernetes.io/name=mesh-prometheus", "-o", "name")); got != "" {
		t.Errorf("Prometheus objects left after mesh prune: %s", got)
	}
	n.waitAvailable("mesh-system")
	eventually(t, 90*time.Second, func() string {
		if code, o, e := n.meshCmd(plainRender, "diff", "-f", "-"); code != 0 {
			return fmt.Sprintf("mesh diff after the prune: exit %d, want 0 (prune deleted more than it should?)\n%s%s", code, o, e)
		}
		if code, o, e := n.meshCmd(nil, "check"); code != 0 {
			return fmt.Sprintf("mesh check after the prune: exit %d\n%s%s", code, o, e)
		}
		return ""
	})
}
