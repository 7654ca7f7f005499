package preinstall

import (
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/meshplane/mesh/checks"
	"github.com/meshplane/mesh/internal/testing/testcluster"
	"github.com/meshplane/mesh/render/install"
	"github.com/meshplane/mesh/render/manifest"
)

func options(t *testing.T, ns string) Options {
	t.Helper()
	res, err := install.Render(install.Options{Version: "v1.2.3", Namespace: ns}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return Options{Namespace: ns, Objects: res.Objects, MaxClockSkew: 5 * time.Minute, Now: time.Now}
}

func results(t *testing.T, cfg *rest.Config, o Options) map[string]checks.Result {
	t.Helper()
	c, err := NewCluster(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := checks.Run(context.Background(), Suite(c, o), checks.Options{})
	out := map[string]checks.Result{}
	for _, res := range r.Results {
		out[res.Check.ID] = res
	}
	return out
}

func TestAdminPasses(t *testing.T) {
	cfg := testcluster.RESTConfig(t)
	for id, r := range results(t, cfg, options(t, "mesh-pre-absent")) {
		if r.Status != checks.Passed {
			t.Errorf("%s: %s %s", id, r.Status, r.Message)
		}
	}
}

// A user restricted by RBAC (a ServiceAccount bound to "view" in one namespace) fails
// the permission check, and only the checks that need more than it has.
func TestRestrictedUserFailsPermissions(t *testing.T) {
	cfg := testcluster.RESTConfig(t)
	cs := testcluster.Clientset(t)
	ns := testcluster.Namespace(t, cs)
	token := testcluster.ViewerToken(t, cs, ns)
	restricted := &rest.Config{Host: cfg.Host, BearerToken: token, TLSClientConfig: rest.TLSClientConfig{CAData: cfg.CAData, CAFile: cfg.CAFile}}
	got := results(t, restricted, options(t, ns))
	for _, id := range []string{"pre.api", "pre.kubernetes-version", "pre.clock-skew"} {
		if got[id].Status != checks.Passed {
			t.Errorf("%s: %s %s", id, got[id].Status, got[id].Message)
		}
	}
	perm := got["pre.permissions"]
	if perm.Status != checks.Failed || !strings.Contains(perm.Message, "create clusterroles.rbac.authorization.k8s.io cluster-wide") ||
		!strings.Contains(perm.Message, "create deployments.apps in namespace "+ns) {
		t.Errorf("pre.permissions: %s %q", perm.Status, perm.Message)
	}
	if got["pre.no-namespace"].Status != checks.Failed {
		t.Errorf("pre.no-namespace: %s (the namespace exists)", got["pre.no-namespace"].Status)
	}
}

func TestExistingNamespaceAndForeignCRDFail(t *testing.T) {
	cfg := testcluster.RESTConfig(t)
	cs := testcluster.Clientset(t)
	ns := testcluster.Namespace(t, cs)
	o := options(t, ns)
	// A CRD the install holds exists, not installed by mesh. The name is the test's own,
	// so that other tests may install mesh's real CRDs on the same cluster meanwhile.
	group := ns + ".test.meshplane.io"
	crdYAML := "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: widgets." + group +
		"\n  labels: {app.kubernetes.io/part-of: mesh}\nspec:\n  group: " + group + "\n  names: {kind: Widget, plural: widgets}\n  scope: Namespaced\n" +
		"  versions: [{name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object}}}]\n"
	objs, err := manifest.SplitYAML("test", []byte(crdYAML))
	if err != nil {
		t.Fatal(err)
	}
	o.Objects = append(o.Objects, objs...)
	var crd map[string]any
	if err := yaml.Unmarshal(objs[0].YAML, &crd); err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{Object: crd}
	u.SetLabels(map[string]string{"owner": "someone-else"})
	c, err := NewCluster(cfg)
	if err != nil {
		t.Fatal(err)
	}
	gvr := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	if _, err := c.Dynamic.Resource(gvr).Create(context.Background(), u, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Dynamic.Resource(gvr).Delete(context.Background(), u.GetName(), metav1.DeleteOptions{}) })

	got := results(t, cfg, o)
	if r := got["pre.no-namespace"]; r.Status != checks.Failed || !strings.Contains(r.Message, ns) {
		t.Errorf("pre.no-namespace: %s %q", r.Status, r.Message)
	}
	if r := got["pre.no-conflicting-crds"]; r.Status != checks.Failed || !strings.Contains(r.Message, "widgets."+group) {
		t.Errorf("pre.no-conflicting-crds: %s %q", r.Status, r.Message)
	}
	if r := got["pre.permissions"]; r.Status != checks.Passed {
		t.Errorf("pre.permissions: %s %q", r.Status, r.Message)
	}
}
