package uninstall_test

import (
	"bytes"
	"testing"

	"github.com/meshplane/mesh/internal/testing/golden"
	"github.com/meshplane/mesh/lifecycle/uninstall"
	"github.com/meshplane/mesh/render/install"
)

// The printed order of a whole render (--ha and cert-manager, so that every kind the
// charts render is there) is exactly the documented one: webhook configurations,
// workloads and their PodDisruptionBudgets, Services, other kinds (cert-manager's),
// ConfigMaps and Secrets, RBAC, ServiceAccounts, the control plane's ApplySet parent,
// the Namespace, the CRDs and the CRDs' parent; as YAML for kubectl delete -f -, as a
// JSON List, and as names.
func TestOrder(t *testing.T) {
	t.Parallel()
	res, err := install.Render(install.Options{Version: "v1.2.3", Namespace: "mesh-system", HA: true, IssuerMode: "cert-manager"}, fileReader{})
	if err != nil {
		t.Fatal(err)
	}
	refs, err := uninstall.Order(res.Objects)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{uninstall.FormatYAML, uninstall.FormatJSON, uninstall.FormatName} {
		var b bytes.Buffer
		if err := uninstall.Write(&b, f, refs); err != nil {
			t.Fatal(err)
		}
		golden.Assert(t, "order."+f, b.Bytes())
	}
	if err := uninstall.Write(&bytes.Buffer{}, "table", refs); err == nil {
		t.Error("an unknown format is no error")
	}
}
