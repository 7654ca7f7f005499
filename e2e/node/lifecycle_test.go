package node

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// testVersion is the proxy-status view of `mesh version` on the real node: the
// control plane's version and every meshed workload's proxies at the images'
// version (issue 15).
func (n *node) testVersion(t *testing.T) {
	var v struct {
		ClientVersion string `json:"clientVersion"`
		ControlPlane  struct {
			Installed bool   `json:"installed"`
			Version   string `json:"version"`
		} `json:"controlPlane"`
		Proxies []struct {
			Namespace, Kind, Name string
			Pods                  int
			Versions              []struct {
				Version string
				Pods    int
			}
		} `json:"proxies"`
	}
	out := n.mustMesh(nil, "version", "-o", "json")
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("mesh version -o json: %v\n%s", err, out)
	}
	if !v.ControlPlane.Installed || v.ControlPlane.Version != n.version {
		t.Errorf("control plane %+v, want installed at %s", v.ControlPlane, n.version)
	}
	seen := map[string]bool{}
	for _, w := range v.Proxies {
		key := w.Namespace + "/" + strings.ToLower(w.Kind) + "/" + w.Name
		seen[key] = true
		if len(w.Versions) != 1 || w.Versions[0].Version != n.version || w.Versions[0].Pods != w.Pods {
			t.Errorf("%s: proxies %+v, want all %d at %s", key, w.Versions, w.Pods, n.version)
		}
	}
	for _, ns := range []string{auto, manual} {
		for _, d := range []string{"web", "client"} {
			if !seen[ns+"/deployment/"+d] {
				t.Errorf("mesh version does not list %s/deployment/%s; it lists %v", ns, d, seen)
			}
		}
	}
	if seen[plain+"/deployment/client"] {
		t.Errorf("mesh version lists the unmeshed %s/client", plain)
	}
}

// testUninstallRefused: `mesh uninstall` removes the mesh as a user leaving it would
// (issue 15), and refuses while meshed pods remain, deleting nothing.
func (n *node) testUninstallRefused(t *testing.T) {
	code, o, e := n.meshCmd(nil, "uninstall", "--delete")
	if code != 4 || !strings.Contains(o+e, auto+"/") {
		t.Fatalf("mesh uninstall --delete with meshed pods: exit %d, want 4 naming them\n%s%s", code, o, e)
	}
	// Nothing was deleted: the install is healthy (eventually: the injector-down
	// subtest before has just brought the injector back).
	eventually(t, 90*time.Second, func() string {
		if code, o, e := n.meshCmd(nil, "check"); code != 0 {
			return fmt.Sprintf("mesh check after the refused uninstall: exit %d\n%s%s", code, o, e)
		}
		return ""
	})
}

// testUninstall, after uninjecting: --force only because pods of the old meshed
// ReplicaSets may still be terminating.
func (n *node) testUninstall(t *testing.T) {
	n.mustMesh(nil, "uninstall", "--delete", "--force", "--crds", "--timeout", "5m")
	eventually(t, 60*time.Second, func() string {
		left := strings.TrimSpace(n.kc("get", "namespaces", "-o", "jsonpath={range .items[*]}{.metadata.name}={.status.phase}{\"\\n\"}{end}"))
		if strings.Contains(left, "mesh-system=") || strings.Contains(left, "=Terminating") {
			return "namespaces after the uninstall:\n" + left
		}
		return ""
	})
	for _, kind := range []string{"customresourcedefinitions", "clusterroles", "clusterrolebindings", "mutatingwebhookconfigurations", "configmaps"} {
		if got := strings.TrimSpace(n.kc("get", kind, "-A", "-l", "applyset.kubernetes.io/part-of", "-o", "name")); got != "" {
			t.Errorf("mesh objects left after the uninstall (%s): %s", kind, got)
		}
	}
	if got := strings.TrimSpace(n.kc("get", "configmaps", "-n", "kube-system", "--ignore-not-found", "-o", "name", "mesh-crds-applyset")); got != "" {
		t.Errorf("the CRDs' ApplySet parent is left: %s", got)
	}
}
