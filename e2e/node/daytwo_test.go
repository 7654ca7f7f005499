package node

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// testDayTwo is issue 15's proof of mesh diff and mesh prune on the real node: the
// install applied with server-side apply as mesh, the controllers settled (the
// injector's caBundle, identity's bootstrap), then diff and prune of new renders.
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
	eventually(t, 90*time.Second, func() string {
		if code, o, e := n.meshCmd(plainRender, "diff", "-f", "-"); code != 0 {
			return fmt.Sprintf("mesh diff after the prune: exit %d, want 0 (prune deleted more than the budgets?)\n%s%s", code, o, e)
		}
		if code, o, e := n.meshCmd(nil, "check"); code != 0 {
			return fmt.Sprintf("mesh check after the prune: exit %d\n%s%s", code, o, e)
		}
		return ""
	})
}
