package prune_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/meshplane/mesh/internal/testing/testcluster"
	"github.com/meshplane/mesh/lifecycle/prune"
	"github.com/meshplane/mesh/render/applyset"
	"github.com/meshplane/mesh/render/install"
	"github.com/meshplane/mesh/render/manifest"
	"github.com/meshplane/mesh/render/values"
)

type fileReader struct{}

func (fileReader) ReadFile(name string) ([]byte, error) { return os.ReadFile(name) }
func (fileReader) Stdin() io.Reader                     { return strings.NewReader("") }

type env struct {
	c   *prune.Cluster
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
	return &env{c: prune.NewCluster(dyn, cs.Discovery()), dyn: dyn, cs: cs}
}

// renderInstall renders mesh install into ns, with the webhook configuration (the one
// cluster-scoped object whose name does not carry the namespace) renamed after ns, so
// that tests sharing the cluster do not meet.
func renderInstall(t *testing.T, o install.Options) []manifest.Object {
	t.Helper()
	if o.Version == "" {
		o.Version = "v1.2.3"
	}
	res, err := install.Render(o, fileReader{})
	if err != nil {
		t.Fatal(err)
	}
	for i, obj := range res.Objects {
		if obj.Kind == "MutatingWebhookConfiguration" {
			obj.Name += "-" + o.Namespace
			obj.YAML = bytes.Replace(obj.YAML, []byte("name: mesh-proxy-injector\n"), []byte("name: "+obj.Name+"\n"), 1)
			res.Objects[i] = obj
		}
	}
	return res.Objects
}

func without(objs []manifest.Object, drop ...string) []manifest.Object {
	return slices.DeleteFunc(slices.Clone(objs), func(o manifest.Object) bool { return slices.Contains(drop, o.String()) })
}

func (e *env) resource(t *testing.T, apiVersion, kind string) schema.GroupVersionResource {
	t.Helper()
	gv, err := schema.ParseGroupVersion(apiVersion)
	if err != nil {
		t.Fatal(err)
	}
	m, err := e.c.Mapper.RESTMapping(gv.WithKind(kind).GroupKind(), gv.Version)
	if err != nil {
		t.Fatal(err)
	}
	return m.Resource
}

// apply applies the objects with server-side apply as kubectl would (manager
// "kubectl"), and deletes the cluster-scoped ones at the end (not the CRDs and their
// parent, which tests share).
func (e *env) apply(t *testing.T, objs []manifest.Object) {
	t.Helper()
	ctx := context.Background()
	force := true
	for _, o := range objs {
		j, err := o.JSON()
		if err != nil {
			t.Fatal(err)
		}
		res := e.resource(t, o.APIVersion, o.Kind)
		if _, err := e.dyn.Resource(res).Namespace(o.Namespace).Patch(ctx, o.Name, types.ApplyPatchType, j, metav1.PatchOptions{FieldManager: "kubectl", Force: &force}); err != nil {
			t.Fatalf("applying %s: %v", o, err)
		}
		if o.Namespace == "" && o.Kind != "CustomResourceDefinition" && o.Kind != "Namespace" {
			t.Cleanup(func() {
				err := e.dyn.Resource(res).Delete(context.Background(), o.Name, metav1.DeleteOptions{})
				if err != nil && !apierrors.IsNotFound(err) {
					t.Errorf("cleanup %s: %v", o, err)
				}
			})
		}
	}
}

func (e *env) exists(t *testing.T, apiVersion, kind, ns, name string) bool {
	t.Helper()
	_, err := e.dyn.Resource(e.resource(t, apiVersion, kind)).Namespace(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	return err == nil
}

func (e *env) create(t *testing.T, doc string) {
	t.Helper()
	var u unstructured.Unstructured
	if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
		t.Fatal(err)
	}
	res := e.resource(t, u.GetAPIVersion(), u.GetKind())
	if _, err := e.dyn.Resource(res).Namespace(u.GetNamespace()).Create(context.Background(), &u, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating %s %s: %v", u.GetKind(), u.GetName(), err)
	}
	if u.GetNamespace() == "" {
		t.Cleanup(func() { _ = e.dyn.Resource(res).Delete(context.Background(), u.GetName(), metav1.DeleteOptions{}) })
	}
}

func names(refs []prune.Ref) []string {
	var s []string
	for _, r := range refs {
		s = append(s, r.String())
	}
	return s
}

type scenario struct {
	e         *env
	ns        string
	next      []manifest.Object
	want      []string // what the prune deletes, in order
	role      string
	parentRes schema.GroupVersionResource
}

// setup applies a render with PodDisruptionBudgets, marks the live parent as listing a
// kind (Lease) that only an older set had, with one such object labelled, creates
// unlabelled objects of the same kinds (at runtime), and renders the next install:
// without PodDisruptionBudgets, and without the injector's ClusterRole and binding (as
// a later chart that drops them).
func setup(t *testing.T) *scenario {
	e := newEnv(t)
	ns := testcluster.Namespace(t, e.cs)
	ctx := context.Background()
	old := renderInstall(t, install.Options{Namespace: ns, Values: values.Options{Values: []string{"controller.podDisruptionBudget=true"}}})
	role, binding := "ClusterRole/mesh-"+ns+"-injector", "ClusterRoleBinding/mesh-"+ns+"-injector"
	next := without(renderInstall(t, install.Options{Namespace: ns}), role, binding)
	e.apply(t, old)

	id := install.ControlPlaneApplySet(ns).ID()
	parentRes := schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
	patch := `{"metadata":{"annotations":{"` + applyset.GroupKindsAnnotation + `":"Lease.coordination.k8s.io,PodDisruptionBudget.policy"}}}`
	if _, err := e.dyn.Resource(parentRes).Namespace(ns).Patch(ctx, install.ControlPlaneApplySetName, types.MergePatchType, []byte(patch), metav1.PatchOptions{FieldManager: "old-mesh"}); err != nil {
		t.Fatal(err)
	}
	e.create(t, "apiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata: {name: old-lease, namespace: "+ns+", labels: {"+applyset.PartOfLabel+": "+id+"}}\n")
	// Created at runtime, without the label: never pruned.
	e.create(t, "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: mesh-"+ns+"-runtime}\nrules: []\n")
	e.create(t, "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: runtime, namespace: "+ns+"}\nspec: {maxUnavailable: 1, selector: {matchLabels: {app: x}}}\n")
	e.create(t, "apiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata: {name: runtime, namespace: "+ns+"}\n")
	// Reverse apply order: other kinds (rank 9), PodDisruptionBudgets (7), RBAC (3);
	// within a rank, the reverse of group, kind, namespace and name.
	want := []string{
		"Lease/" + ns + "/old-lease",
		"PodDisruptionBudget/" + ns + "/mesh-injector", "PodDisruptionBudget/" + ns + "/mesh-identity", "PodDisruptionBudget/" + ns + "/mesh-destination",
		binding, role,
	}
	return &scenario{e: e, ns: ns, next: next, want: want, role: role, parentRes: parentRes}
}

// check asserts that the prune deleted exactly the scenario's objects (wanted), that
// the render and the runtime objects are left, and that the parent is the render's.
func (sc *scenario) check(t *testing.T, res *prune.Result, progress, wanted []string) {
	t.Helper()
	e, ns := sc.e, sc.ns
	if got := names(res.Deleted); !slices.Equal(got, wanted) || !slices.Equal(progress, wanted) {
		t.Fatalf("deleted %v (progress %v), want %v", got, progress, wanted)
	}
	for _, r := range res.Deleted {
		if err := waitFor(func() bool { return !e.exists(t, r.APIVersion, r.Kind, r.Namespace, r.Name) }); err != nil {
			t.Errorf("%s still exists", r)
		}
	}
	for _, o := range sc.next {
		if !e.exists(t, o.APIVersion, o.Kind, o.Namespace, o.Name) {
			t.Errorf("%s of the new render is gone", o)
		}
	}
	for _, kept := range [][4]string{
		{"rbac.authorization.k8s.io/v1", "ClusterRole", "", "mesh-" + ns + "-runtime"},
		{"policy/v1", "PodDisruptionBudget", ns, "runtime"},
		{"coordination.k8s.io/v1", "Lease", ns, "runtime"},
	} {
		if !e.exists(t, kept[0], kept[1], kept[2], kept[3]) {
			t.Errorf("%s %s/%s, created at runtime, was deleted", kept[1], kept[2], kept[3])
		}
	}
	live, err := e.dyn.Resource(sc.parentRes).Namespace(ns).Get(context.Background(), install.ControlPlaneApplySetName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var parent manifest.Object
	for _, o := range sc.next {
		if o.Name == install.ControlPlaneApplySetName {
			parent = o
		}
	}
	_, ann, _ := applyset.Labels(parent)
	if got := live.GetAnnotations()[applyset.GroupKindsAnnotation]; got != ann[applyset.GroupKindsAnnotation] {
		t.Errorf("parent after prune lists %s, want the render's %s", got, ann[applyset.GroupKindsAnnotation])
	}
	// Idempotent: nothing left to delete.
	again, err := prune.Run(context.Background(), e.c, sc.next, prune.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(again.Candidates) != 0 || len(again.Deleted) != 0 {
		t.Errorf("second prune: candidates %v, deleted %v", names(again.Candidates), names(again.Deleted))
	}
}

// The proof, in the usual order: the new render is applied, then pruned. Dry runs
// (client and server) list the same objects and delete none; the prune deletes the
// dropped objects, a cluster-scoped one included, in reverse apply order, and leaves
// objects of the same kinds created at runtime; a second prune deletes nothing.
func TestPrune(t *testing.T) {
	sc := setup(t)
	e, ns, next, want := sc.e, sc.ns, sc.next, sc.want
	ctx := context.Background()

	plan, err := prune.Candidates(ctx, e.c, next)
	if err != nil {
		t.Fatal(err)
	}
	if got := names(plan.Candidates); !slices.Equal(got, want) {
		t.Fatalf("candidates:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, mode := range []prune.DryRun{prune.DryRunClient, prune.DryRunServer} {
		res, err := prune.Run(ctx, e.c, next, prune.Options{DryRun: mode})
		if err != nil {
			t.Fatalf("%s dry run: %v", mode, err)
		}
		if got := names(res.Candidates); !slices.Equal(got, want) {
			t.Errorf("%s dry run lists %v", mode, got)
		}
		if !e.exists(t, "rbac.authorization.k8s.io/v1", "ClusterRole", "", "mesh-"+ns+"-injector") || !e.exists(t, "coordination.k8s.io/v1", "Lease", ns, "old-lease") {
			t.Fatalf("%s dry run deleted something", mode)
		}
	}

	// Applying the new render first (what a GitOps sync or kubectl apply --server-side
	// does) replaces the parent's annotation with the render's: from then on a kind
	// only the old annotation listed (Lease) is listed nowhere, and its object stays.
	// mesh's kinds lists only grow (render/install), so its own renders never drop one.
	e.apply(t, next)
	var progress []string
	res, err := prune.Run(ctx, e.c, next, prune.Options{Progress: func(r prune.Ref) { progress = append(progress, r.String()) }})
	if err != nil {
		t.Fatal(err)
	}
	sc.check(t, res, progress, want[1:])

	// The CRDs' render alone is its own set: it prunes nothing of the control plane.
	plan, err = prune.Candidates(ctx, e.c, renderInstall(t, install.Options{Namespace: ns, Part: install.CRDs}))
	if err != nil || len(plan.Candidates) != 0 || len(plan.Sets) != 1 {
		t.Errorf("the CRDs alone: %v, candidates %v", err, names(plan.Candidates))
	}

	// A render without the Namespace (installNamespace: false) does not prune the
	// namespace that holds the parent: it is kept, with the reason.
	plan, err = prune.Candidates(ctx, e.c, without(next, "Namespace/"+ns))
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Candidates) != 0 || len(plan.Kept) != 1 || plan.Kept[0].Kind != "Namespace" || !strings.Contains(plan.Kept[0].Reason, "holds the ApplySet parent") {
		t.Errorf("without the Namespace: candidates %v, kept %v", names(plan.Candidates), plan.Kept)
	}
}

// Pruned before the new render is applied, the old set (the live parent's kinds) and
// the new are both searched: the object of a kind only the old parent lists is
// deleted too, and the prune applies the render's parent.
func TestPruneBeforeApply(t *testing.T) {
	sc := setup(t)
	var progress []string
	res, err := prune.Run(context.Background(), sc.e.c, sc.next, prune.Options{Progress: func(r prune.Ref) { progress = append(progress, r.String()) }})
	if err != nil {
		t.Fatal(err)
	}
	sc.check(t, res, progress, sc.want)
}

func waitFor(cond func() bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}

// A parent in the cluster that another tool manages, or whose ID is not its own, is
// refused before anything is deleted.
func TestForeignParent(t *testing.T) {
	e := newEnv(t)
	ns := testcluster.Namespace(t, e.cs)
	ctx := context.Background()
	objs := renderInstall(t, install.Options{Namespace: ns, Part: install.ControlPlane})
	parent := install.ControlPlaneApplySet(ns)
	for _, tc := range []struct{ name, labels, annotations, want string }{
		{"kubectl's", applyset.IDLabel + ": " + parent.ID(), applyset.ToolingAnnotation + ": kubectl/v1.36.3", `managed by "kubectl"`},
		{"no tooling", applyset.IDLabel + ": " + parent.ID(), "x: z", "has no " + applyset.ToolingAnnotation},
		{"another ID", applyset.IDLabel + ": applyset-other-v1", applyset.ToolingAnnotation + ": mesh/v1.2.3", "label " + applyset.IDLabel + ` is "applyset-other-v1"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.create(t, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: "+parent.Name+"\n  namespace: "+ns+"\n  labels: {"+tc.labels+"}\n  annotations: {"+tc.annotations+"}\n")
			t.Cleanup(func() {
				_ = e.cs.CoreV1().ConfigMaps(ns).Delete(context.Background(), parent.Name, metav1.DeleteOptions{})
			})
			_, err := prune.Run(ctx, e.c, objs, prune.Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}
