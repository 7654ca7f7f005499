package prune_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshplane/mesh/internal/testing/testcluster"
	"github.com/meshplane/mesh/lifecycle/prune"
	"github.com/meshplane/mesh/render/applyset"
	"github.com/meshplane/mesh/render/install"
	"github.com/meshplane/mesh/render/manifest"
)

// kubectlApplySet runs kubectl apply --server-side --prune --applyset (alpha: behind
// KUBECTL_APPLYSET=true) with objs on stdin.
func kubectlApplySet(t *testing.T, kubectl, ns string, objs []manifest.Object) (string, error) {
	t.Helper()
	var in bytes.Buffer
	if err := manifest.WriteYAML(&in, objs); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(kubectl, "--kubeconfig", testcluster.Kubeconfig(t), "apply", "--server-side", "--prune",
		"--applyset=configmaps/"+install.ControlPlaneApplySetName, "-n", ns, "-f", "-")
	cmd.Env = append(os.Environ(), "KUBECTL_APPLYSET=true")
	cmd.Stdin = &in
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// What kubectl's own ApplySet support (v1.36, alpha) does with mesh's, proven with the
// kubectl built with the test cluster:
//   - kubectl computes the same ID and writes the same group-kinds format for the same
//     parent, and labels the same members: the two agree on the specification;
//   - kubectl refuses input that already carries part-of labels, so it cannot apply
//     mesh's render with --applyset, and it refuses a parent whose tooling is not
//     kubectl (mesh's); mesh prune refuses kubectl's parent in turn. Each tool prunes
//     its own sets.
func TestKubectlApplySet(t *testing.T) {
	e := newEnv(t)
	kubectl := os.Getenv(testcluster.EnvKubectl)
	if kubectl == "" {
		kubectl = filepath.Join(filepath.Dir(testcluster.Kubeconfig(t)), "kubectl")
	}
	if _, err := os.Stat(kubectl); err != nil {
		t.Skipf("no kubectl binary of the test cluster (%s): %v; hack/testenv.sh install builds it", testcluster.EnvKubectl, err)
	}
	ctx := context.Background()
	// The webhook configuration and Deployments are left out: kubectl's set is in
	// the same cluster as other tests' (the webhook's name is not per namespace).
	light := func(objs []manifest.Object) []manifest.Object {
		return slices.DeleteFunc(objs, func(o manifest.Object) bool {
			return o.Kind == "MutatingWebhookConfiguration" || o.Kind == "Deployment"
		})
	}

	t.Run("same ID, group-kinds and members", func(t *testing.T) {
		ns := testcluster.Namespace(t, e.cs)
		objs := light(renderInstall(t, install.Options{Namespace: ns, Part: install.ControlPlane, WithoutApplySet: true}))
		if out, err := kubectlApplySet(t, kubectl, ns, objs); err != nil {
			t.Fatalf("kubectl apply --applyset: %v\n%s", err, out)
		}
		t.Cleanup(func() {
			for _, o := range objs {
				if o.Namespace == "" && o.Kind != "Namespace" {
					_ = e.dyn.Resource(e.resource(t, o.APIVersion, o.Kind)).Delete(context.Background(), o.Name, metav1.DeleteOptions{})
				}
			}
		})
		parent, err := e.cs.CoreV1().ConfigMaps(ns).Get(ctx, install.ControlPlaneApplySetName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		id := install.ControlPlaneApplySet(ns).ID()
		if got := parent.Labels[applyset.IDLabel]; got != id {
			t.Errorf("kubectl's ID %s, mesh's %s", got, id)
		}
		var kinds []applyset.GroupKind
		for _, o := range objs {
			kinds = append(kinds, applyset.Of(o))
			live, err := e.dyn.Resource(e.resource(t, o.APIVersion, o.Kind)).Namespace(o.Namespace).Get(ctx, o.Name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if got := live.GetLabels()[applyset.PartOfLabel]; got != id {
				t.Errorf("%s: kubectl labelled it part of %q, want %s", o, got, id)
			}
		}
		if got, want := parent.Annotations[applyset.GroupKindsAnnotation], applyset.FormatGroupKinds(kinds); got != want {
			t.Errorf("kubectl's group-kinds:\n%s\nmesh's format of the same kinds:\n%s", got, want)
		}
		tooling := parent.Annotations[applyset.ToolingAnnotation]
		if !strings.HasPrefix(tooling, "kubectl/") {
			t.Errorf("kubectl's tooling %q", tooling)
		}
		// mesh prune leaves kubectl's set to kubectl.
		meshObjs := renderInstall(t, install.Options{Namespace: ns, Part: install.ControlPlane})
		if _, err := prune.Run(ctx, e.c, meshObjs, prune.Options{}); err == nil || !strings.Contains(err.Error(), `managed by "kubectl"`) {
			t.Errorf("mesh prune of kubectl's set: %v", err)
		}
	})

	t.Run("kubectl refuses mesh's render", func(t *testing.T) {
		ns := testcluster.Namespace(t, e.cs)
		objs := light(renderInstall(t, install.Options{Namespace: ns, Part: install.ControlPlane}))
		out, err := kubectlApplySet(t, kubectl, ns, objs)
		if err == nil || !strings.Contains(out, `ApplySet label "applyset.kubernetes.io/part-of" already set in input data`) {
			t.Errorf("kubectl apply --applyset of mesh's render: %v\n%s", err, out)
		}
		// Applied by mesh's render, the parent is mesh's: kubectl will not take it.
		e.apply(t, objs)
		out, err = kubectlApplySet(t, kubectl, ns, light(renderInstall(t, install.Options{Namespace: ns, Part: install.ControlPlane, WithoutApplySet: true})))
		if err == nil || !strings.Contains(out, `is managed by tooling "mesh" instead of "kubectl"`) {
			t.Errorf("kubectl apply --applyset over mesh's parent: %v\n%s", err, out)
		}
	})
}
