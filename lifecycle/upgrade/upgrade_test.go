package upgrade_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/meshplane/mesh/checks"
	"github.com/meshplane/mesh/checks/preinstall"
	"github.com/meshplane/mesh/internal/testing/testcluster"
	"github.com/meshplane/mesh/lifecycle/diff"
	"github.com/meshplane/mesh/lifecycle/upgrade"
	"github.com/meshplane/mesh/render/install"
	"github.com/meshplane/mesh/render/values"
)

var crdResource = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

type env struct {
	pc *preinstall.Cluster
	dc *diff.Cluster
}

func newEnv(t *testing.T) *env {
	t.Helper()
	pc, err := preinstall.NewCluster(testcluster.RESTConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	return &env{pc: pc, dc: diff.NewCluster(pc.Dynamic, pc.Clientset.Discovery(), pc.Config.Host)}
}

// plan renders the upgrade at version into ns. The cluster-wide objects whose names do
// not carry the namespace are made the test's own, so that tests sharing the cluster
// (and applying mesh's real CRD with other managers) do not meet: the webhook
// configuration is renamed after ns and limited to it, the CRD's group and its
// ApplySet parent are renamed after ns.
func (e *env) plan(t *testing.T, ns, version string, set ...string) *upgrade.Plan {
	t.Helper()
	p, err := upgrade.NewPlan(e.pc, install.Options{Version: version, Namespace: ns, Values: values.Options{Values: set}}, nil,
		upgrade.CheckOptions{Now: time.Now, PodNamespace: ns})
	if err != nil {
		t.Fatal(err)
	}
	group := ns + ".test.meshplane.io"
	for _, ph := range p.Phases {
		for i, o := range ph.Objects {
			switch {
			case o.Kind == "CustomResourceDefinition":
				o.Name = strings.Replace(o.Name, "policy.meshplane.io", group, 1)
				o.YAML = bytes.ReplaceAll(o.YAML, []byte("policy.meshplane.io"), []byte(group))
				ph.Objects[i] = o
				name := o.Name
				t.Cleanup(func() {
					_ = e.pc.Dynamic.Resource(crdResource).Delete(context.Background(), name, metav1.DeleteOptions{})
				})
				continue
			case o.Kind == "ConfigMap" && o.Name == "mesh-crds-applyset":
				o.Name += "-" + ns
				o.YAML = bytes.Replace(o.YAML, []byte("name: mesh-crds-applyset\n"), []byte("name: "+o.Name+"\n"), 1)
				ph.Objects[i] = o
				name := o.Name
				t.Cleanup(func() {
					_ = e.pc.Clientset.CoreV1().ConfigMaps(o.Namespace).Delete(context.Background(), name, metav1.DeleteOptions{})
				})
				continue
			case o.Kind != "MutatingWebhookConfiguration":
				continue
			}
			o.Name += "-" + ns
			o.YAML = bytes.Replace(o.YAML, []byte("name: mesh-proxy-injector\n"), []byte("name: "+o.Name+"\n"), 1)
			o.YAML = bytes.Replace(o.YAML, []byte("operator: NotIn\n          values:\n            - "+ns+"\n"), []byte("operator: In\n          values:\n            - "+ns+"\n"), 1)
			ph.Objects[i] = o
			name := o.Name
			t.Cleanup(func() {
				_ = e.pc.Clientset.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(context.Background(), name, metav1.DeleteOptions{})
			})
		}
	}
	return p
}

func (e *env) apply(t *testing.T, p *upgrade.Plan, o upgrade.Options) *upgrade.Report {
	t.Helper()
	var progress bytes.Buffer
	o.Progress = &progress
	rep, err := upgrade.Apply(context.Background(), e.dc, p.Phases, o)
	if err != nil {
		t.Fatalf("%v\n%s", err, progress.String())
	}
	return rep
}

func configValues(t *testing.T, e *env, ns string) string {
	t.Helper()
	cm, err := e.pc.Clientset.CoreV1().ConfigMaps(ns).Get(context.Background(), "mesh-config", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return cm.Data["values.yaml"]
}

// An older render (another version, other values) applied, then the upgrade: its
// checks pass, the CRDs are applied and Established before any object of the control
// plane, the objects are updated to the new render, and mesh owns their fields.
func TestUpgradeFromOlderRender(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ns := testcluster.Namespace(t, e.pc.Clientset)
	ctx := context.Background()
	e.apply(t, e.plan(t, ns, "1.3.0", "controller.logLevel=debug"), upgrade.Options{})
	if v := configValues(t, e, ns); !strings.Contains(v, "logLevel: debug") {
		t.Fatalf("the older render is not applied: %s", v)
	}

	p := e.plan(t, ns, "1.4.0")
	r := checks.Run(ctx, p.Checks, checks.Options{})
	for _, res := range r.Results {
		if res.Status == checks.Failed && res.Check.Severity == checks.Error {
			t.Errorf("%s: %s", res.Check.ID, res.Message)
		}
	}
	rep := e.apply(t, p, upgrade.Options{})

	// Phase 1 (the CRDs and their ApplySet parent) entirely before phase 2.
	phase2 := false
	crds := 0
	for _, a := range rep.Applied {
		switch a.Phase {
		case "CRDs":
			if phase2 {
				t.Errorf("%s applied in phase 1 after the control plane", a.Ref)
			}
			if a.Ref.Kind == "CustomResourceDefinition" {
				crds++
			}
		case "control plane":
			phase2 = true
			if a.Ref.Kind == "CustomResourceDefinition" {
				t.Errorf("a CRD in phase 2: %s", a.Ref)
			}
		default:
			t.Errorf("%s: phase %q", a.Ref, a.Phase)
		}
	}
	if crds == 0 || !phase2 {
		t.Fatalf("applied: %+v", rep.Applied)
	}
	crd, err := e.pc.Dynamic.Resource(crdResource).Get(ctx, "serviceprofiles."+ns+".test.meshplane.io", metav1.GetOptions{})
	if err != nil || !strings.Contains(fmt.Sprint(crd.Object["status"]), "Established") {
		t.Errorf("the CRD is not Established: %v %v", err, crd)
	}
	actions := map[string]upgrade.Action{}
	for _, a := range rep.Applied {
		actions[a.Ref.String()] = a.Action
	}
	for _, name := range []string{"ConfigMap/" + ns + "/mesh-config", "Deployment/" + ns + "/mesh-identity"} {
		if actions[name] != upgrade.Configured {
			t.Errorf("%s: %q, want configured", name, actions[name])
		}
	}
	if v := configValues(t, e, ns); strings.Contains(v, "logLevel: debug") {
		t.Errorf("the new render's values are not applied: %s", v)
	}
	d, err := e.pc.Clientset.AppsV1().Deployments(ns).Get(ctx, "mesh-identity", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Labels["app.kubernetes.io/version"] != "1.4.0" {
		t.Errorf("mesh-identity labels: %v", d.Labels)
	}
	owned := false
	for _, m := range d.ManagedFields {
		owned = owned || m.Manager == diff.FieldManager && m.Operation == metav1.ManagedFieldsOperationApply
	}
	if !owned {
		t.Errorf("mesh does not own mesh-identity's fields: %+v", d.ManagedFields)
	}
}

// A field another manager took: the upgrade stops with a conflict naming it, and
// --force-conflicts takes it back. A server dry run changes nothing.
func TestUpgradeConflictsAndDryRun(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ns := testcluster.Namespace(t, e.pc.Clientset)
	ctx := context.Background()
	e.apply(t, e.plan(t, ns, "1.3.0"), upgrade.Options{})
	force := true
	if _, err := e.pc.Clientset.CoreV1().ConfigMaps(ns).Patch(ctx, "mesh-config", types.ApplyPatchType,
		[]byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"mesh-config"},"data":{"values.yaml":"edited"}}`),
		metav1.PatchOptions{FieldManager: "kubectl-edit", Force: &force}); err != nil {
		t.Fatal(err)
	}
	p := e.plan(t, ns, "1.4.0")

	rep, err := upgrade.Apply(ctx, e.dc, p.Phases, upgrade.Options{DryRun: upgrade.DryRunServer, ForceConflicts: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Applied) == 0 || !strings.Contains(string(rep.Applied[0].Action), "server dry run") {
		t.Errorf("dry run: %+v", rep.Applied)
	}
	if v := configValues(t, e, ns); v != "edited" {
		t.Errorf("the server dry run changed the ConfigMap: %q", v)
	}
	if rep, err := upgrade.Apply(ctx, e.dc, p.Phases, upgrade.Options{DryRun: upgrade.DryRunClient}); err != nil || rep.Applied[0].Action != upgrade.Listed {
		t.Errorf("client dry run: %v %+v", err, rep)
	}

	_, err = upgrade.Apply(ctx, e.dc, p.Phases, upgrade.Options{})
	var conflict *upgrade.ConflictError
	if !errors.As(err, &conflict) || conflict.Object.String() != "ConfigMap/"+ns+"/mesh-config" || !strings.Contains(err.Error(), "kubectl-edit") {
		t.Fatalf("got %v, want a conflict on mesh-config with kubectl-edit", err)
	}
	e.apply(t, p, upgrade.Options{ForceConflicts: true})
	if v := configValues(t, e, ns); v == "edited" {
		t.Error("--force-conflicts did not take the field back")
	}
}

// The rollout wait: a Deployment of no replicas is rolled out once the controller has
// seen it; one whose pod never becomes available (no kubelet) times out, named, on the
// injected clock.
func TestWaitForRollouts(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ns := testcluster.Namespace(t, e.pc.Clientset)
	deployment := func(name string, replicas int32) string {
		labels := map[string]string{"app": name}
		d := appsv1.Deployment{
			TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec: appsv1.DeploymentSpec{Replicas: &replicas, Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app:1"}}}}},
		}
		return mustYAML(t, d)
	}
	now := time.Unix(0, 0)
	// The injected clock advances by the interval at each poll, which takes 20 ms of
	// real time: the bound on the controller is 1500 polls (30 s); the pod that never
	// runs times out after 3 polls.
	clock := upgrade.Options{Wait: true, Timeout: 25 * time.Minute, Interval: time.Second,
		Now: func() time.Time { return now },
		Sleep: func(ctx context.Context, d time.Duration) error {
			now = now.Add(d)
			time.Sleep(20 * time.Millisecond)
			return ctx.Err()
		}}
	phases := []upgrade.Phase{{Name: "control plane", Objects: objects(t, deployment("none", 0))}}
	if _, err := upgrade.Apply(context.Background(), e.dc, phases, clock); err != nil {
		t.Fatalf("zero replicas: %v", err)
	}
	phases = []upgrade.Phase{{Name: "control plane", Objects: objects(t, deployment("never", 1))}}
	clock.Timeout = 3 * time.Second
	_, err := upgrade.Apply(context.Background(), e.dc, phases, clock)
	var we *upgrade.WaitError
	if !errors.As(err, &we) || !strings.Contains(err.Error(), "Deployment/"+ns+"/never (") {
		t.Fatalf("got %v, want a wait timeout naming the Deployment", err)
	}
	// Without --wait it returns at once.
	clock.Wait = false
	if _, err := upgrade.Apply(context.Background(), e.dc, phases, clock); err != nil {
		t.Fatal(err)
	}
}
