package diff_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/meshplane/mesh/internal/testing/testcluster"
	"github.com/meshplane/mesh/lifecycle/diff"
)

// The install render applied with server-side apply as mesh, then changed by the
// cluster's own controllers and by other managers in fields mesh does not set: the
// diff of the same render finds nothing.
func TestInstallAppliedIsUnchanged(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ns := testcluster.Namespace(t, e.cs)
	objs := renderInstall(t, ns)
	e.apply(t, diff.FieldManager, objs)

	// The deployment controller records a revision on each Deployment.
	waitFor(t, "the deployment controller", func() bool {
		d, err := e.cs.AppsV1().Deployments(ns).Get(context.Background(), "mesh-destination", metav1.GetOptions{})
		return err == nil && d.Annotations["deployment.kubernetes.io/revision"] != ""
	})
	// The injector fills in the webhook's caBundle.
	wh := find(t, objs, "MutatingWebhookConfiguration", "mesh-proxy-injector-"+ns)
	e.patch(t, wh, types.JSONPatchType, `[{"op":"add","path":"/webhooks/0/clientConfig/caBundle","value":"Q0EK"}]`, "mesh-controller")
	// Someone annotates the ConfigMap; an HPA-like scaler sets a field mesh does not set.
	cm := find(t, objs, "ConfigMap", "mesh-config")
	e.patch(t, cm, types.MergePatchType, `{"metadata":{"annotations":{"team":"platform"}}}`, "kubectl-annotate")
	dep := find(t, objs, "Deployment", "mesh-identity")
	e.patch(t, dep, types.ApplyPatchType, `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"mesh-identity","namespace":"`+ns+`"},"spec":{"minReadySeconds":3}}`, "hpa")

	r := run(t, e, objs, diff.Options{})
	for _, o := range r.Objects {
		if o.Status != diff.Unchanged {
			t.Errorf("%s: %s %v\n%s", o, o.Status, o.Changes, o.Diff)
		}
	}
	if len(r.Objects) != len(objs) {
		t.Errorf("%d results for %d objects", len(r.Objects), len(objs))
	}
	if got := r.ExitCode(); got != diff.ExitSame {
		t.Errorf("exit code %d, want %d", got, diff.ExitSame)
	}
	if out := output(t, r); out != "" {
		t.Errorf("output:\n%s", out)
	}
	// What is compared is only what mesh owns: not the other managers' fields, not
	// status, not the server's metadata.
	got := byName(r)
	cmLive := got["ConfigMap/"+ns+"/mesh-config"].Live
	if a, _ := cmLive["metadata"].(map[string]any)["annotations"].(map[string]any); a["team"] != nil {
		t.Errorf("the ConfigMap's view holds another manager's annotation: %v", a)
	}
	for _, side := range []map[string]any{got["Deployment/"+ns+"/mesh-identity"].Live, got["Deployment/"+ns+"/mesh-identity"].Merged} {
		md := side["metadata"].(map[string]any)
		if side["status"] != nil || md["annotations"] != nil || md["managedFields"] != nil || md["resourceVersion"] != nil || side["spec"].(map[string]any)["minReadySeconds"] != nil {
			t.Errorf("the Deployment's view holds fields mesh does not own: %v", side)
		}
	}
}

// One value changed in the render: the diff reports that field, and the pods' config
// checksum that the chart derives from the values.
func TestInstallOneValueChanged(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ns := testcluster.Namespace(t, e.cs)
	e.apply(t, diff.FieldManager, renderInstall(t, ns))

	r := run(t, e, renderInstall(t, ns, "injector.timeoutSeconds=7"), diff.Options{})
	if got := r.ExitCode(); got != diff.ExitDiffers {
		t.Errorf("exit code %d, want %d", got, diff.ExitDiffers)
	}
	// Every object that changes, and the paths of its changes.
	want := map[string][]string{
		"ConfigMap/" + ns + "/mesh-config":                       {".data.values.yaml"}, // the recorded values
		"Deployment/" + ns + "/mesh-destination":                 {checksum},
		"Deployment/" + ns + "/mesh-identity":                    {checksum},
		"Deployment/" + ns + "/mesh-injector":                    {checksum},
		"MutatingWebhookConfiguration/mesh-proxy-injector-" + ns: {timeout},
	}
	for _, o := range r.Objects {
		var paths []string
		for _, c := range o.Changes {
			paths = append(paths, c.Path)
		}
		w, changes := want[o.String()]
		switch {
		case !changes && o.Status != diff.Unchanged:
			t.Errorf("%s: %s %v, want unchanged", o, o.Status, paths)
		case changes && (o.Status != diff.Changed || !slices.Equal(paths, w)):
			t.Errorf("%s: %s %v, want changed %v", o, o.Status, paths, w)
		}
		if o.String() == "MutatingWebhookConfiguration/mesh-proxy-injector-"+ns && len(o.Changes) == 1 {
			if c := o.Changes[0]; c.Op != diff.Replace || c.Live != int64(10) || c.Merged != int64(7) {
				t.Errorf("%s: %+v, want 10 replaced by 7", o, c)
			}
		}
	}
	out := output(t, r)
	for name := range want {
		if !strings.Contains(out, "\n--- live/"+name+"\n+++ merged/"+name+"\n") {
			t.Errorf("no diff headers for %s in\n%s", name, out)
		}
	}
	if !strings.Contains(out, "-  timeoutSeconds: 10\n+  timeoutSeconds: 7\n") {
		t.Errorf("the webhook's diff does not show the timeout:\n%s", out)
	}
}

const (
	checksum = ".spec.template.metadata.annotations.checksum/config"
	timeout  = `.webhooks[name="proxy-injector.meshplane.io"].timeoutSeconds`
)
