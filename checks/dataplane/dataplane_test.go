package dataplane

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/meshplane/mesh/checks"
	"github.com/meshplane/mesh/internal/testing/testcluster"
	"github.com/meshplane/mesh/render/inject"
	"github.com/meshplane/mesh/render/install"
)

// meshedPod creates a pod injected by `mesh inject --manual` at version, and gives it the
// status a kubelet would report (there is no kubelet in the test cluster).
func meshedPod(t *testing.T, ns, name, version string, ready bool, edit ...func(*corev1.Pod)) {
	t.Helper()
	ctx := context.Background()
	vals, err := install.EffectiveValues(install.Options{Version: version}, nil)
	if err != nil {
		t.Fatal(err)
	}
	in, err := inject.New(inject.Options{Manual: &inject.Manual{Version: version, Namespace: "mesh-system", Values: vals}})
	if err != nil {
		t.Fatal(err)
	}
	out, _, err := in.YAML([]byte("apiVersion: v1\nkind: Pod\nmetadata:\n  name: " + name + "\nspec:\n  containers:\n  - name: app\n    image: app:1\n"))
	if err != nil {
		t.Fatal(err)
	}
	var pod corev1.Pod
	if err := yaml.Unmarshal(out, &pod); err != nil {
		t.Fatal(err)
	}
	for _, f := range edit {
		f(&pod)
	}
	cs := testcluster.Clientset(t)
	created, err := cs.CoreV1().Pods(ns).Create(ctx, &pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	running := corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}}
	status := func(c corev1.Container, ready bool) corev1.ContainerStatus {
		return corev1.ContainerStatus{Name: c.Name, Image: c.Image, ImageID: "sha256:0", Ready: ready, Started: &ready, State: running}
	}
	created.Status.Phase = corev1.PodRunning
	for _, f := range edit {
		f(created) // status fields, e.g. the pod IP
	}
	for _, c := range created.Spec.InitContainers {
		r := ready || c.Name != inject.ProxyContainer
		if c.Name == inject.InitContainer {
			s := corev1.ContainerStatus{Name: c.Name, Image: c.Image, ImageID: "sha256:0",
				State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed"}}}
			created.Status.InitContainerStatuses = append(created.Status.InitContainerStatuses, s)
			continue
		}
		created.Status.InitContainerStatuses = append(created.Status.InitContainerStatuses, status(c, r))
	}
	for _, c := range created.Spec.Containers {
		created.Status.ContainerStatuses = append(created.Status.ContainerStatuses, status(c, true))
	}
	if _, err := cs.CoreV1().Pods(ns).UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		zero := int64(0)
		_ = cs.CoreV1().Pods(ns).Delete(context.Background(), name, metav1.DeleteOptions{GracePeriodSeconds: &zero})
	})
}

func run(t *testing.T, o Options) map[string]checks.Result {
	t.Helper()
	r := checks.Run(context.Background(), Suite(testcluster.Clientset(t), o), checks.Options{})
	out := map[string]checks.Result{}
	for _, res := range r.Results {
		out[res.Check.ID] = res
	}
	return out
}

func TestProxies(t *testing.T) {
	cs := testcluster.Clientset(t)
	ns := testcluster.Namespace(t, cs)
	o := Options{Namespace: ns, ControlPlaneNamespace: "mesh-absent", CLIVersion: "v1.2.3"}

	for id, r := range run(t, o) {
		if r.Status != checks.Skipped {
			t.Errorf("no meshed pods: %s: %s %q", id, r.Status, r.Message)
		}
	}
	meshedPod(t, ns, "good", "v1.2.3", true)
	for id, r := range run(t, o) {
		if id == "proxy.certificates" {
			if r.Status != checks.Failed || !strings.Contains(r.Message, "Secret/mesh-absent/mesh-identity-issuer does not exist") {
				t.Errorf("%s without a control plane: %s %q", id, r.Status, r.Message)
			}
			continue
		}
		if r.Status != checks.Passed {
			t.Errorf("%s: %s %q", id, r.Status, r.Message)
		}
	}
	meshedPod(t, ns, "old", "v1.0.0", false)
	got := run(t, o)
	if r := got["proxy.ready"]; r.Status != checks.Failed || !strings.Contains(r.Message, "Pod/"+ns+"/old") || strings.Contains(r.Message, "good") {
		t.Errorf("proxy.ready: %s %q", r.Status, r.Message)
	}
	if r := got["proxy.version"]; r.Status != checks.Failed || !strings.Contains(r.Message, "Pod/"+ns+"/old runs v1.0.0") || !strings.Contains(r.Message, "this CLI is v1.2.3") {
		t.Errorf("proxy.version: %s %q", r.Status, r.Message)
	}
	if r := got["proxy.injected"]; r.Status != checks.Passed {
		t.Errorf("proxy.injected, every pod with a proxy: %s %q", r.Status, r.Message)
	}

	// A pod the injector let through without a proxy (failurePolicy: Ignore while it was
	// down), in a namespace annotated for injection; one that opted out is fine.
	ctx := context.Background()
	nsObj, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	nsObj.Annotations = map[string]string{inject.InjectAnnotation: inject.Enabled}
	if _, err := cs.CoreV1().Namespaces().Update(ctx, nsObj, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	for name, ann := range map[string]string{"plain": "", "optout": inject.Disabled} {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{}}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app:1"}}}}
		if ann != "" {
			pod.Annotations[inject.InjectAnnotation] = ann
		}
		if _, err := cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if r := run(t, o)["proxy.injected"]; r.Status != checks.Failed || !strings.Contains(r.Message, "Pod/"+ns+"/plain") || strings.Contains(r.Message, "optout") {
		t.Errorf("proxy.injected with an unmeshed pod: %s %q", r.Status, r.Message)
	}
}
