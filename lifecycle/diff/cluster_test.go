package diff_test

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/meshplane/mesh/internal/testing/testcluster"
	"github.com/meshplane/mesh/lifecycle/diff"
	"github.com/meshplane/mesh/render/install"
	"github.com/meshplane/mesh/render/values"
)

func valuesOf(set []string) values.Options { return values.Options{Values: set} }

type env struct {
	c   *diff.Cluster
	dyn dynamic.Interface
	cs  kubernetes.Interface
}

func newEnv(t *testing.T) *env {
	t.Helper()
	cfg := testcluster.RESTConfig(t)
	cs := testcluster.Clientset(t)
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &env{c: diff.NewCluster(dyn, cs.Discovery(), cfg.Host), dyn: dyn, cs: cs}
}

type fileReader struct{}

func (fileReader) ReadFile(name string) ([]byte, error) { return os.ReadFile(name) }
func (fileReader) Stdin() io.Reader                     { return strings.NewReader("") }

// renderInstall renders mesh install into ns, with the webhook configuration (the one
// cluster-scoped object whose name does not carry the namespace) renamed after ns and
// limited to ns, so that tests sharing the cluster do not meet.
func renderInstall(t *testing.T, ns string, set ...string) []diff.Object {
	t.Helper()
	res, err := install.Render(install.Options{Version: "v1.2.3", Namespace: ns, Values: valuesOf(set)}, fileReader{})
	if err != nil {
		t.Fatal(err)
	}
	objs, err := diff.FromManifest(res.Objects)
	if err != nil {
		t.Fatal(err)
	}
	for i, o := range objs {
		if o.Kind != "MutatingWebhookConfiguration" {
			continue
		}
		o.Name += "-" + ns
		o.Body["metadata"].(map[string]any)["name"] = o.Name
		for _, w := range o.Body["webhooks"].([]any) {
			w.(map[string]any)["namespaceSelector"] = map[string]any{"matchExpressions": []any{map[string]any{
				"key": "kubernetes.io/metadata.name", "operator": "In", "values": []any{ns}}}}
		}
		objs[i] = o
	}
	return objs
}

// apply applies the objects for real with server-side apply as manager, forced, and
// deletes the cluster-scoped ones at the end (not CRDs, which tests share).
func (e *env) apply(t *testing.T, manager string, objs []diff.Object) {
	t.Helper()
	ctx := context.Background()
	for _, o := range objs {
		ri, m := e.resource(t, o)
		data, err := json.Marshal(o.Body)
		if err != nil {
			t.Fatal(err)
		}
		force := true
		if _, err := ri.Patch(ctx, o.Name, types.ApplyPatchType, data, metav1.PatchOptions{FieldManager: manager, Force: &force}); err != nil {
			t.Fatalf("apply %s: %v", o, err)
		}
		if o.Kind == "CustomResourceDefinition" {
			waitFor(t, "CRD "+o.Name+" established", func() bool {
				_, err := e.c.Mapper.RESTMapping(schema.GroupKind{Group: nested(o.Body, "spec", "group"), Kind: nested(o.Body, "spec", "names", "kind")})
				if meta.IsNoMatchError(err) {
					meta.MaybeResetRESTMapper(e.c.Mapper)
				}
				return err == nil
			})
			continue
		}
		if m.Scope.Name() == meta.RESTScopeNameRoot && o.Kind != "Namespace" {
			name := o.Name
			t.Cleanup(func() { _ = ri.Delete(context.Background(), name, metav1.DeleteOptions{}) })
		}
	}
}

func (e *env) resource(t *testing.T, o diff.Object) (dynamic.ResourceInterface, *meta.RESTMapping) {
	t.Helper()
	gv, err := schema.ParseGroupVersion(o.APIVersion)
	if err != nil {
		t.Fatal(err)
	}
	m, err := e.c.Mapper.RESTMapping(gv.WithKind(o.Kind).GroupKind(), gv.Version)
	if err != nil {
		t.Fatalf("%s: %v", o, err)
	}
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		return e.dyn.Resource(m.Resource).Namespace(o.Namespace), m
	}
	return e.dyn.Resource(m.Resource), m
}

func nested(m map[string]any, path ...string) string {
	for _, p := range path[:len(path)-1] {
		m, _ = m[p].(map[string]any)
	}
	s, _ := m[path[len(path)-1]].(string)
	return s
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func run(t *testing.T, e *env, objs []diff.Object, o diff.Options) *diff.Report {
	t.Helper()
	r, err := diff.Run(context.Background(), e.c, objs, o)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// byName indexes the results by Kind/namespace/name.
func byName(r *diff.Report) map[string]diff.Result {
	m := map[string]diff.Result{}
	for _, o := range r.Objects {
		m[o.String()] = o
	}
	return m
}

func output(t *testing.T, r *diff.Report) string {
	t.Helper()
	var b strings.Builder
	if err := diff.Write(&b, diff.FormatDiff, r); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// patch changes an object as another field manager would.
func (e *env) patch(t *testing.T, o diff.Object, pt types.PatchType, data, manager string, subresources ...string) {
	t.Helper()
	ri, _ := e.resource(t, o)
	opts := metav1.PatchOptions{FieldManager: manager}
	if pt == types.ApplyPatchType {
		force := true
		opts.Force = &force
	}
	if _, err := ri.Patch(context.Background(), o.Name, pt, []byte(data), opts, subresources...); err != nil {
		t.Fatalf("patch %s as %s: %v", o, manager, err)
	}
}

func find(t *testing.T, objs []diff.Object, kind, name string) diff.Object {
	t.Helper()
	for _, o := range objs {
		if o.Kind == kind && o.Name == name {
			return o
		}
	}
	t.Fatalf("no %s %s in the objects", kind, name)
	return diff.Object{}
}
