package uninstall_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	"sigs.k8s.io/yaml"

	"github.com/meshplane/mesh/internal/testing/testcluster"
	"github.com/meshplane/mesh/lifecycle/uninstall"
	"github.com/meshplane/mesh/render/applyset"
	"github.com/meshplane/mesh/render/install"
	"github.com/meshplane/mesh/render/manifest"
	"github.com/meshplane/mesh/render/values"
)

type fileReader struct{}

func (fileReader) ReadFile(name string) ([]byte, error) { return os.ReadFile(name) }
func (fileReader) Stdin() io.Reader                     { return strings.NewReader("") }

type env struct {
	c   *uninstall.Cluster
	dyn dynamic.Interface
	cs  kubernetes.Interface
}

func newEnv(t *testing.T) *env {
	t.Helper()
	cfg := rest.CopyConfig(testcluster.RESTConfig(t))
	cfg.WarningHandler = rest.NoWarnings{} // remaining lists deprecated kinds too
	cs := testcluster.Clientset(t)
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	md, err := metadata.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &env{c: uninstall.NewCluster(dyn, md, cs.Discovery(), cfg.Host), dyn: dyn, cs: cs}
}

// renderInstall renders mesh install into ns, the webhook configuration (the one
// cluster-scoped name without the namespace) renamed after ns so that tests sharing
// the cluster do not meet.
func renderInstall(t *testing.T, o install.Options) []manifest.Object {
	t.Helper()
	o.Version = "v1.2.3"
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

func (e *env) mapping(t *testing.T, apiVersion, kind string) *meta.RESTMapping {
	t.Helper()
	gv, err := schema.ParseGroupVersion(apiVersion)
	if err != nil {
		t.Fatal(err)
	}
	m, err := e.c.Mapper.RESTMapping(gv.WithKind(kind).GroupKind(), gv.Version)
	if meta.IsNoMatchError(err) {
		meta.MaybeResetRESTMapper(e.c.Mapper)
		m, err = e.c.Mapper.RESTMapping(gv.WithKind(kind).GroupKind(), gv.Version)
	}
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// apply applies the objects with server-side apply as kubectl does (manager
// "kubectl"), and deletes what is left of the cluster-scoped ones at the end (not the
// CRDs nor the CRDs' parent, which tests share).
func (e *env) apply(t *testing.T, objs []manifest.Object) {
	t.Helper()
	force := true
	for _, o := range objs {
		j, err := o.JSON()
		if err != nil {
			t.Fatal(err)
		}
		m := e.mapping(t, o.APIVersion, o.Kind)
		if _, err := e.dyn.Resource(m.Resource).Namespace(o.Namespace).Patch(context.Background(), o.Name, types.ApplyPatchType, j, metav1.PatchOptions{FieldManager: "kubectl", Force: &force}); err != nil {
			t.Fatalf("applying %s: %v", o, err)
		}
		if o.Kind == "CustomResourceDefinition" {
			waitFor(t, "CRD "+o.Name+" served", func() bool {
				crd, err := e.dyn.Resource(m.Resource).Get(context.Background(), o.Name, metav1.GetOptions{})
				if err != nil {
					return false
				}
				group, _, _ := unstructured.NestedString(crd.Object, "spec", "group")
				kind, _, _ := unstructured.NestedString(crd.Object, "spec", "names", "kind")
				meta.MaybeResetRESTMapper(e.c.Mapper)
				_, err = e.c.Mapper.RESTMapping(schema.GroupKind{Group: group, Kind: kind})
				return err == nil
			})
			continue
		}
		if m.Scope.Name() == meta.RESTScopeNameRoot && o.Kind != "Namespace" {
			t.Cleanup(func() { _ = e.dyn.Resource(m.Resource).Delete(context.Background(), o.Name, metav1.DeleteOptions{}) })
		}
	}
}

// create creates the object as manager other-tool (no mesh label), deleted at the end.
func (e *env) create(t *testing.T, doc string) {
	t.Helper()
	var u unstructured.Unstructured
	if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
		t.Fatal(err)
	}
	m := e.mapping(t, u.GetAPIVersion(), u.GetKind())
	ri := e.dyn.Resource(m.Resource).Namespace(u.GetNamespace())
	if _, err := ri.Create(context.Background(), &u, metav1.CreateOptions{FieldManager: "other-tool"}); err != nil {
		t.Fatalf("creating %s %s: %v", u.GetKind(), u.GetName(), err)
	}
	t.Cleanup(func() {
		grace := int64(0)
		_ = ri.Delete(context.Background(), u.GetName(), metav1.DeleteOptions{GracePeriodSeconds: &grace})
	})
}

func (e *env) exists(t *testing.T, apiVersion, kind, ns, name string) bool {
	t.Helper()
	_, err := e.dyn.Resource(e.mapping(t, apiVersion, kind).Resource).Namespace(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	return err == nil
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func names[T interface{ String() string }](items []T) []string {
	s := []string{}
	for _, it := range items {
		s = append(s, it.String())
	}
	return s
}

func leftNames(l []uninstall.Left) []string {
	s := []string{}
	for _, it := range l {
		s = append(s, it.String())
	}
	return s
}

// remaining lists every object, of every kind the cluster serves and can list, that
// carries the part-of label of one of ids: what an uninstall must leave none of.
func (e *env) remaining(t *testing.T, ids ...string) []string {
	t.Helper()
	// Other tests add and remove CRDs meanwhile: a group that fails discovery, or a
	// resource gone by the time it is listed, holds nothing of this test's.
	lists, err := e.cs.Discovery().ServerPreferredResources()
	if err != nil && !discovery.IsGroupDiscoveryFailedError(err) {
		t.Fatal(err)
	}
	sel := applyset.PartOfLabel + " in (" + strings.Join(ids, ",") + ")"
	var left []string
	for _, l := range lists {
		gv, _ := schema.ParseGroupVersion(l.GroupVersion)
		for _, r := range l.APIResources {
			if strings.Contains(r.Name, "/") || !slices.Contains(r.Verbs, "list") {
				continue
			}
			items, err := e.dyn.Resource(gv.WithResource(r.Name)).List(context.Background(), metav1.ListOptions{LabelSelector: sel})
			if apierrors.IsNotFound(err) {
				continue
			}
			if err != nil {
				t.Fatalf("listing %s: %v", r.Name, err)
			}
			for _, it := range items.Items {
				left = append(left, r.Kind+"/"+it.GetNamespace()+"/"+it.GetName())
			}
		}
	}
	return left
}

// The proof: a control plane applied with server-side apply (with PodDisruptionBudgets,
// which the uninstall's render no longer holds), a ClusterRoleBinding of the render
// created by another tool, a ClusterRole created at run time, and a meshed pod in
// another namespace. The uninstall refuses while the pod (and its namespace, marked for
// injection) remain; with Force it deletes, phase by phase, every object of the
// control plane's ApplySet and the parent, the namespace is gone (not Terminating), and
// no object of any served kind carries the set's label. The foreign binding, the
// runtime ClusterRole, the meshed pod and the CRDs (no --crds) stay, each reported.
func TestUninstall(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ns := testcluster.Namespace(t, e.cs)
	app := testcluster.Namespace(t, e.cs)
	ctx := context.Background()
	binding := "ClusterRoleBinding/mesh-" + ns + "-injector"
	old := renderInstall(t, install.Options{Namespace: ns, Values: values.Options{Values: []string{"controller.podDisruptionBudget=true"}}})
	e.apply(t, slices.DeleteFunc(slices.Clone(old), func(o manifest.Object) bool { return o.String() == binding }))
	e.create(t, "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: mesh-"+ns+"-injector}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}\nsubjects: []\n")
	e.create(t, "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: mesh-"+ns+"-runtime}\nrules: []\n")
	e.create(t, "apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: "+app+", annotations: {meshplane.io/inject: enabled, meshplane.io/proxy-version: v1.2.3}}\nspec: {containers: [{name: web, image: web}, {name: mesh-proxy, image: proxy}]}\n")
	if _, err := e.cs.CoreV1().Namespaces().Patch(ctx, app, types.MergePatchType, []byte(`{"metadata":{"annotations":{"meshplane.io/inject":"enabled"}}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	objs := renderInstall(t, install.Options{Namespace: ns})
	cpID := install.ControlPlaneApplySet(ns).ID()

	// Refused: the meshed pod and the namespace marked for injection.
	plan, err := uninstall.NewPlan(ctx, e.c, objs, uninstall.Options{})
	var meshed *uninstall.MeshedError
	if !errors.As(err, &meshed) || !errors.Is(err, uninstall.ErrMeshed) || plan == nil || len(plan.Meshed) != len(meshed.Meshed) {
		t.Fatalf("with a meshed pod: %v, want a refusal with its plan", err)
	}
	// Other tests' meshed pods may be listed too: only this test's count.
	mine := func(l []uninstall.Left) []string {
		return slices.DeleteFunc(leftNames(l), func(s string) bool { return !strings.Contains(s, app) })
	}
	if got, want := mine(meshed.Meshed), []string{"Pod/" + app + "/web", "Namespace/" + app}; !slices.Equal(got, want) {
		t.Errorf("meshed %v, want %v", got, want)
	}
	if !strings.Contains(err.Error(), "Pod/"+app+"/web") || !strings.Contains(err.Error(), "--force") {
		t.Errorf("refusal %q names neither the pod nor --force", err)
	}

	plan, err = uninstall.NewPlan(ctx, e.c, objs, uninstall.Options{Force: true})
	if err != nil {
		t.Fatal(err)
	}
	del := names(plan.Delete)
	for _, want := range []string{"MutatingWebhookConfiguration/mesh-proxy-injector-" + ns, "PodDisruptionBudget/" + ns + "/mesh-identity", "ConfigMap/" + ns + "/mesh-control-plane-applyset", "Namespace/" + ns} {
		if !slices.Contains(del, want) {
			t.Errorf("delete set lacks %s:\n%s", want, strings.Join(del, "\n"))
		}
	}
	for _, never := range []string{binding, "ClusterRole/mesh-" + ns + "-runtime", "CustomResourceDefinition/serviceprofiles.policy.meshplane.io", "ConfigMap/kube-system/mesh-crds-applyset"} {
		if slices.Contains(del, never) {
			t.Errorf("delete set holds %s", never)
		}
	}
	if del[0] != "MutatingWebhookConfiguration/mesh-proxy-injector-"+ns || del[len(del)-1] != "Namespace/"+ns {
		t.Errorf("delete order: first %s, last %s", del[0], del[len(del)-1])
	}
	if !slices.IsSortedFunc(plan.Delete, func(a, b uninstall.Ref) int { return int(a.Phase()) - int(b.Phase()) }) {
		t.Errorf("delete set not in phase order:\n%s", strings.Join(del, "\n"))
	}
	if got := leftNames(plan.Foreign); !slices.Equal(got, []string{binding}) || !strings.Contains(plan.Foreign[0].Reason, "other-tool") {
		t.Errorf("foreign %v (%v), want the binding, managed by other-tool", got, plan.Foreign)
	}
	left := leftNames(plan.LeftBehind)
	for _, want := range []string{"CustomResourceDefinition/serviceprofiles.policy.meshplane.io", "ConfigMap/kube-system/mesh-crds-applyset"} {
		if !slices.Contains(left, want) {
			t.Errorf("left behind %v lacks %s", left, want)
		}
	}
	if len(mine(plan.Meshed)) != 2 || !strings.Contains(plan.Meshed[0].Reason, "--force") {
		t.Errorf("meshed with --force: %v", plan.Meshed)
	}

	// The deployment controller has made the control plane's pods (Pending: no
	// kubelet); the workloads phase is over only once they are gone too (foreground).
	pods := func() int {
		l, err := e.cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return len(l.Items)
	}
	waitFor(t, "the control plane's pods", func() bool { return pods() > 0 })
	var events []string
	res, err := uninstall.Delete(ctx, e.c, plan, uninstall.Options{Force: true, Progress: func(ev uninstall.Event) {
		if ev.Ref != nil {
			events = append(events, ev.Ref.String())
		}
		if ev.Ref != nil && ev.Ref.Kind == "Service" {
			rs, err := e.cs.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if n := pods(); n > 0 || len(rs.Items) > 0 {
				t.Errorf("deleting %s with %d pods and %d ReplicaSets of the workloads left", ev.Ref, n, len(rs.Items))
			}
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	if got := names(res.Deleted); !slices.Equal(got, del) || !slices.Equal(events, del) {
		t.Errorf("deleted %v (progress %v), want %v", got, events, del)
	}
	if _, err := e.cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("namespace %s after the uninstall: %v, want gone", ns, err)
	}
	if left := e.remaining(t, cpID); len(left) > 0 {
		t.Errorf("left with the control plane's label:\n%s", strings.Join(left, "\n"))
	}
	for _, kept := range [][4]string{
		{"rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "", "mesh-" + ns + "-injector"},
		{"rbac.authorization.k8s.io/v1", "ClusterRole", "", "mesh-" + ns + "-runtime"},
		{"v1", "Pod", app, "web"},
		{"apiextensions.k8s.io/v1", "CustomResourceDefinition", "", "serviceprofiles.policy.meshplane.io"},
	} {
		if !e.exists(t, kept[0], kept[1], kept[2], kept[3]) {
			t.Errorf("%s %s/%s was deleted", kept[1], kept[2], kept[3])
		}
	}

	// Again: nothing of the control plane is left to delete.
	plan, err = uninstall.NewPlan(ctx, e.c, objs, uninstall.Options{Force: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Delete) != 0 {
		t.Errorf("second uninstall deletes %v", names(plan.Delete))
	}
}

// uniqueCRDs is the CRDs' render made the test's own: the CRD's group carries ns, and
// the set's parent is kube-system/mesh-crds-applyset-NS, so that deleting them does
// not touch the CRDs other tests share.
func uniqueCRDs(t *testing.T, ns string) (crd manifest.Object, parent manifest.Object, group string) {
	t.Helper()
	group = ns + ".test.meshplane.io"
	objs := renderInstall(t, install.Options{Namespace: ns, Part: install.CRDs})
	for _, o := range objs {
		if o.Kind != "CustomResourceDefinition" {
			continue
		}
		text := strings.ReplaceAll(string(o.YAML), "policy.meshplane.io", group)
		text = strings.Replace(text, "    "+applyset.PartOfLabel+": "+install.CRDsApplySet().ID()+"\n", "", 1)
		o.YAML, o.Name = []byte(text), strings.Replace(o.Name, "policy.meshplane.io", group, 1)
		set := applyset.Set{Parent: applyset.ConfigMap("kube-system", "mesh-crds-applyset-"+ns), Version: "v1.2.3"}
		out, err := applyset.Apply([]manifest.Object{o}, set)
		if err != nil {
			t.Fatal(err)
		}
		return out[0], out[1], group
	}
	t.Fatal("no CRD in the render")
	return
}

// --crds: the CRD goes after everything, its custom resources with it, and its set's
// parent last. Without --crds, the CRD, its parent and its custom resource are left
// behind and listed.
func TestUninstallCRDs(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ns := testcluster.Namespace(t, e.cs)
	ctx := context.Background()
	crd, parent, group := uniqueCRDs(t, ns)
	objs := []manifest.Object{crd, parent}
	e.apply(t, objs)
	t.Cleanup(func() {
		_ = e.dyn.Resource(e.mapping(t, crd.APIVersion, crd.Kind).Resource).Delete(context.Background(), crd.Name, metav1.DeleteOptions{})
		_ = e.cs.CoreV1().ConfigMaps("kube-system").Delete(context.Background(), parent.Name, metav1.DeleteOptions{})
	})
	e.create(t, "apiVersion: "+group+"/v1alpha1\nkind: ServiceProfile\nmetadata: {name: web, namespace: "+ns+"}\nspec: {}\n")

	// Force: meshed pods of other tests are not this test's subject.
	plan, err := uninstall.NewPlan(ctx, e.c, objs, uninstall.Options{Force: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Delete) != 0 {
		t.Errorf("without --crds: deletes %v", names(plan.Delete))
	}
	wantLeft := []string{parent.String(), crd.String(), "ServiceProfile/" + ns + "/web"}
	// Other tests' objects may be left behind too: only this test's count.
	got := slices.DeleteFunc(leftNames(plan.LeftBehind), func(s string) bool { return !strings.Contains(s, ns) })
	if !slices.Equal(got, wantLeft) {
		t.Errorf("without --crds: left behind %v, want %v", got, wantLeft)
	}

	plan, err = uninstall.NewPlan(ctx, e.c, objs, uninstall.Options{CRDs: true, Force: true})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := names(plan.Delete), []string{crd.String(), parent.String()}; !slices.Equal(got, want) {
		t.Fatalf("with --crds: deletes %v, want %v", got, want)
	}
	if _, err := uninstall.Delete(ctx, e.c, plan, uninstall.Options{CRDs: true}); err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if e.exists(t, o.APIVersion, o.Kind, o.Namespace, o.Name) {
			t.Errorf("%s is left", o)
		}
	}
}

// offsetClock is the real clock whose Now can be moved forward: the test makes the
// deadline pass once the namespace is known to be stuck, without waiting minutes.
type offsetClock struct {
	clock.RealClock
	offset atomic.Int64
}

func (c *offsetClock) Now() time.Time { return time.Now().Add(time.Duration(c.offset.Load())) }

// A namespace held by a finalizer on an object in it is still Terminating at the
// timeout: the error names the namespace and what blocks it, from its status.
func TestNamespaceStuck(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ns := testcluster.Namespace(t, e.cs)
	ctx := context.Background()
	objs := renderInstall(t, install.Options{Namespace: ns, Part: install.ControlPlane})
	e.apply(t, objs)
	e.create(t, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: held, namespace: "+ns+", finalizers: [test.meshplane.io/hold]}\n")
	t.Cleanup(func() {
		_, _ = e.cs.CoreV1().ConfigMaps(ns).Patch(context.Background(), "held", types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{})
	})
	plan, err := uninstall.NewPlan(ctx, e.c, objs, uninstall.Options{Force: true})
	if err != nil {
		t.Fatal(err)
	}
	clk := &offsetClock{}
	_, err = uninstall.Delete(ctx, e.c, plan, uninstall.Options{Timeout: time.Minute, Clock: clk, Progress: func(ev uninstall.Event) {
		if ev.Ref == nil || ev.Phase != uninstall.PhaseNamespace {
			return
		}
		waitFor(t, "the namespace controller to report the finalizer", func() bool {
			n, err := e.cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
			if err != nil {
				return false
			}
			for _, c := range n.Status.Conditions {
				if c.Type == "NamespaceFinalizersRemaining" && c.Status == "True" {
					return true
				}
			}
			return false
		})
		clk.offset.Store(int64(2 * time.Minute))
	}})
	t.Log(err)
	var te *uninstall.TimeoutError
	if !errors.As(err, &te) || te.Phase != uninstall.PhaseNamespace {
		t.Fatalf("error %v, want a timeout of the namespace phase", err)
	}
	for _, want := range []string{"Namespace/" + ns, "phase Terminating", "NamespaceFinalizersRemaining", "test.meshplane.io/hold", "timed out after 1m0s"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

// A parent of the render's set that another tool manages in the cluster is refused
// before anything is listed for deletion, as mesh prune refuses it.
func TestForeignParent(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ns := testcluster.Namespace(t, e.cs)
	parent := install.ControlPlaneApplySet(ns)
	e.create(t, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: "+parent.Name+"\n  namespace: "+ns+"\n  labels: {"+applyset.IDLabel+": "+parent.ID()+"}\n  annotations: {"+applyset.ToolingAnnotation+": kubectl/v1.36.3}\n")
	_, err := uninstall.NewPlan(context.Background(), e.c, renderInstall(t, install.Options{Namespace: ns, Part: install.ControlPlane}), uninstall.Options{Force: true})
	if err == nil || !strings.Contains(err.Error(), `managed by "kubectl"`) {
		t.Errorf("error %v, want the parent refused as kubectl's", err)
	}
}
