package upgrade

import (
	"context"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/meshplane/mesh/checks"
	"github.com/meshplane/mesh/internal/testing/testcluster"
	"github.com/meshplane/mesh/render/inject"
	"github.com/meshplane/mesh/render/install"
	"github.com/meshplane/mesh/render/manifest"
	"github.com/meshplane/mesh/render/values"
)

func newCluster(t *testing.T) *Cluster {
	t.Helper()
	dyn, err := dynamic.NewForConfig(testcluster.RESTConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	return &Cluster{Clientset: testcluster.Clientset(t), Dynamic: dyn}
}

func run(t *testing.T, c *Cluster, o Options) map[string]checks.Result {
	t.Helper()
	suite := Suite(c, o)
	if err := checks.Validate(suite); err != nil {
		t.Fatal(err)
	}
	out := map[string]checks.Result{}
	for _, r := range checks.Run(context.Background(), suite, checks.Options{}).Results {
		out[r.Check.ID] = r
	}
	return out
}

// poll retries f until it succeeds (a Pod whose namespace's ServiceAccount the
// controller-manager has not made yet) or the bound passes.
func poll(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// controlPlane creates the control plane's Deployment at version (its pods never run:
// there is no kubelet).
func controlPlane(t *testing.T, cs kubernetes.Interface, ns, version string) {
	t.Helper()
	labels := map[string]string{"app": "identity"}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: ControlPlaneDeployment, Labels: map[string]string{VersionLabel: version}},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "identity", Image: "ghcr.io/meshplane/controller:" + version}}},
			},
		},
	}
	if _, err := cs.AppsV1().Deployments(ns).Create(context.Background(), d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// meshedPod creates a pod with a proxy at version: by annotation, or by image tag
// alone when byTag.
func meshedPod(t *testing.T, cs kubernetes.Interface, ns, name, version string, byTag bool) {
	t.Helper()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{
			InitContainers: []corev1.Container{{Name: inject.ProxyContainer, Image: "ghcr.io/meshplane/proxy:" + version, RestartPolicy: ptr(corev1.ContainerRestartPolicyAlways)}},
			Containers:     []corev1.Container{{Name: "app", Image: "app:1"}},
		},
	}
	if !byTag {
		pod.Annotations = map[string]string{inject.ProxyVersion: version}
		pod.Spec.InitContainers[0].Image = "ghcr.io/meshplane/proxy:other"
	}
	poll(t, "creating Pod "+name, func() error {
		_, err := cs.CoreV1().Pods(ns).Create(context.Background(), pod, metav1.CreateOptions{})
		return err
	})
}

func ptr[T any](v T) *T { return &v }

// The skew rules against a real API server: a control plane and proxies at given
// versions, each case in its own namespace.
func TestVersionSkew(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	type want map[string]checks.Status
	for _, tc := range []struct {
		name    string
		cli, cp string // cp "" is no control plane
		proxies []string
		force   bool
		want    want
		message map[string]string // check ID → a part of its message
	}{
		{name: "one minor up, proxies one behind", cli: "1.4.0", cp: "1.3.2", proxies: []string{"1.3.0", "1.4.0"},
			want: want{IDControlPlane: checks.Passed, IDControlSkew: checks.Passed, IDProxySkew: checks.Passed, IDDevVersions: checks.Passed}},
		{name: "two minors up", cli: "1.5.0", cp: "1.3.0", proxies: []string{"1.4.0"},
			want:    want{IDControlSkew: checks.Failed, IDProxySkew: checks.Passed},
			message: map[string]string{IDControlSkew: "runs 1.3.0, more than one minor behind this CLI (1.5.0): upgrade one minor at a time"}},
		{name: "downgrade", cli: "1.3.0", cp: "1.4.0", proxies: []string{"1.4.0"},
			want:    want{IDControlSkew: checks.Failed, IDProxySkew: checks.Failed},
			message: map[string]string{IDControlSkew: "newer than this CLI (1.3.0): a downgrade", IDProxySkew: "proxies newer than this CLI (1.3.0)"}},
		{name: "downgrade forced", cli: "1.3.0", cp: "1.4.0", proxies: []string{"1.4.0"}, force: true,
			want: want{IDControlSkew: checks.Passed, IDProxySkew: checks.Passed}},
		{name: "proxy two minors behind", cli: "1.4.0", cp: "1.3.0", proxies: []string{"1.2.5", "1.3.0"},
			want:    want{IDControlSkew: checks.Passed, IDProxySkew: checks.Failed},
			message: map[string]string{IDProxySkew: "/p0 runs 1.2.5; restart their workloads"}},
		{name: "dev builds warn", cli: "dev", cp: "1.3.0", proxies: []string{"dev"},
			want:    want{IDControlSkew: checks.Skipped, IDProxySkew: checks.Passed, IDDevVersions: checks.Failed},
			message: map[string]string{IDDevVersions: "this CLI runs dev, "}},
		{name: "no control plane", cli: "1.4.0", cp: "",
			want:    want{IDControlPlane: checks.Failed, IDControlSkew: checks.Skipped, IDProxySkew: checks.Skipped},
			message: map[string]string{IDControlPlane: "nothing to upgrade"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ns := testcluster.Namespace(t, c.Clientset)
			if tc.cp != "" {
				controlPlane(t, c.Clientset, ns, tc.cp)
			}
			for i, v := range tc.proxies {
				meshedPod(t, c.Clientset, ns, "p"+string(rune('0'+i)), v, i%2 == 1)
			}
			got := run(t, c, Options{Namespace: ns, PodNamespace: ns, CLIVersion: tc.cli, Force: tc.force})
			for id, st := range tc.want {
				if got[id].Status != st {
					t.Errorf("%s: %s %q, want %s", id, got[id].Status, got[id].Message, st)
				}
			}
			for id, part := range tc.message {
				if !strings.Contains(got[id].Message, part) {
					t.Errorf("%s: message %q lacks %q", id, got[id].Message, part)
				}
			}
			if got[IDDevVersions].Check.Severity != checks.Warning {
				t.Errorf("%s is not a warning", IDDevVersions)
			}
		})
	}
}

// crdYAML is a CRD of the test's own group with the given versions (name:served),
// the first listed being the storage version.
func crdYAML(group string, versions ...string) string {
	var b strings.Builder
	b.WriteString("apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: widgets." + group +
		"\nspec:\n  group: " + group + "\n  names: {kind: Widget, plural: widgets}\n  scope: Namespaced\n  versions:\n")
	for i, v := range versions {
		name, served, _ := strings.Cut(v, ":")
		b.WriteString("  - {name: " + name + ", served: " + served + ", storage: " + map[bool]string{true: "true", false: "false"}[i == 0] +
			", schema: {openAPIV3Schema: {type: object}}}\n")
	}
	return b.String()
}

func objects(t *testing.T, y string) []manifest.Object {
	t.Helper()
	objs, err := manifest.SplitYAML("new-render.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

// A CRD in the cluster with objects stored at v1alpha1 and v1 (status.storedVersions,
// written through the status subresource): a new render that serves both passes; one
// that drops v1alpha1, or keeps it unserved, fails naming the CRD and the version.
func TestCRDStoredVersions(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	ns := testcluster.Namespace(t, c.Clientset) // for a unique group name
	group := ns + ".test.meshplane.io"
	ctx := context.Background()
	var live map[string]any
	if err := yaml.Unmarshal([]byte(crdYAML(group, "v1:true", "v1alpha1:true")), &live); err != nil {
		t.Fatal(err)
	}
	created, err := c.Dynamic.Resource(crdResource).Create(ctx, &unstructured.Unstructured{Object: live}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = c.Dynamic.Resource(crdResource).Delete(context.Background(), created.GetName(), metav1.DeleteOptions{})
	})
	poll(t, "storedVersions", func() error {
		cur, err := c.Dynamic.Resource(crdResource).Get(ctx, created.GetName(), metav1.GetOptions{})
		if err != nil {
			return err
		}
		if err := unstructured.SetNestedStringSlice(cur.Object, []string{"v1alpha1", "v1"}, "status", "storedVersions"); err != nil {
			return err
		}
		_, err = c.Dynamic.Resource(crdResource).UpdateStatus(ctx, cur, metav1.UpdateOptions{})
		return err
	})
	for _, tc := range []struct {
		name   string
		render string
		want   checks.Status
		msg    string
	}{
		{"both served", crdYAML(group, "v1:true", "v1alpha1:true"), checks.Passed, ""},
		{"v1alpha1 dropped", crdYAML(group, "v1:true"), checks.Failed, "CustomResourceDefinition/widgets." + group + " has objects stored at v1alpha1, which the new render does not serve (it serves v1): migrate the stored objects"},
		{"v1alpha1 not served", crdYAML(group, "v1:true", "v1alpha1:false"), checks.Failed, "stored at v1alpha1"},
		{"a new CRD", crdYAML("new."+group, "v1:true"), checks.Passed, ""},
	} {
		got := run(t, c, Options{Namespace: ns, PodNamespace: ns, CLIVersion: "1.0.0", Objects: objects(t, tc.render)})[IDStoredVersions]
		if got.Status != tc.want || !strings.Contains(got.Message, tc.msg) {
			t.Errorf("%s: %s %q, want %s %q", tc.name, got.Status, got.Message, tc.want, tc.msg)
		}
	}
}

// Values that set a renamed or removed key fail the values check with the source, the
// key and its replacement, and skip the CRD check (there is no render).
func TestValuesKeys(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	moved := []values.Moved{{Key: "proxy.oldKey", Replacement: "proxy.newKey", Since: "v2.0.0"}, {Key: "gone", Why: "the proxy does it"}}
	o := Options{Namespace: "absent", PodNamespace: "absent", CLIVersion: "2.0.0", Moved: moved,
		Sources: []values.Source{{Name: "values.yaml", Values: map[string]any{"proxy": map[string]any{"oldKey": 1}, "gone": true}}}}
	got := run(t, c, o)
	want := "values.yaml: gone: removed: the proxy does it; delete the key from your values; values.yaml: proxy.oldKey: renamed to proxy.newKey in v2.0.0"
	if r := got[IDValuesKeys]; r.Status != checks.Failed || !strings.Contains(r.Message, want) {
		t.Errorf("%s: %s %q", IDValuesKeys, r.Status, r.Message)
	}
	if r := got[IDStoredVersions]; r.Status != checks.Skipped {
		t.Errorf("%s: %s %q, want skipped", IDStoredVersions, r.Status, r.Message)
	}
	o.Sources = []values.Source{{Name: "values.yaml", Values: map[string]any{"proxy": map[string]any{"newKey": 1}}}}
	if r := run(t, c, o)[IDValuesKeys]; r.Status != checks.Passed {
		t.Errorf("%s with the new key: %s %q", IDValuesKeys, r.Status, r.Message)
	}
}

type mapReader map[string]string

func (m mapReader) ReadFile(name string) ([]byte, error) {
	if s, ok := m[name]; ok {
		return []byte(s), nil
	}
	return nil, os.ErrNotExist
}
func (m mapReader) Stdin() io.Reader { return strings.NewReader(m["-"]) }

// Render reads standard input once for both the sources and the render, and a values
// file with a moved key gives the sources and no render, not an error.
func TestRender(t *testing.T) {
	t.Parallel()
	r := mapReader{"-": "controller:\n  logLevel: debug\n"}
	res, sources, err := Render(install.Options{Version: "v1.2.3", Values: values.Options{ValueFiles: []string{"-"}}}, r)
	if err != nil || res == nil || len(sources) != 1 || sources[0].Name != "-" {
		t.Fatalf("got %v %v %v", res, sources, err)
	}
	if v, _ := values.Lookup(res.Values, "controller.logLevel"); v != "debug" {
		t.Errorf("the render did not read stdin's values: %v", v)
	}
	r = mapReader{"values.yaml": "controller:\n  logLevel: debug\n"}
	moved := []values.Moved{{Key: "controller.logLevel", Replacement: "controller.log.level"}}
	res, sources, err = Render(install.Options{Version: "v1.2.3", Values: values.Options{ValueFiles: []string{"values.yaml"}}, Moved: moved}, r)
	if err != nil || res != nil || len(sources) != 1 {
		t.Fatalf("moved key: got %v %v %v", res, sources, err)
	}
	if _, _, err := Render(install.Options{Version: "v1.2.3", Values: values.Options{Values: []string{"controller.replicas=0"}}}, r); err == nil {
		t.Error("an invalid value renders")
	}
}
