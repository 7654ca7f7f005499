package inject_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"

	"github.com/meshplane/mesh/internal/testing/meshcheck"
	"github.com/meshplane/mesh/render/inject"
	"github.com/meshplane/mesh/render/install"
	"github.com/meshplane/mesh/render/manifest"
)

// The property: for generated manifests (gen_test.go) and generated option values,
//   - inject's output parses to exactly the expected objects, computed independently:
//     each input object decoded to its typed Kubernetes object, the change applied to
//     that object, both encoded as JSON and compared;
//   - `mesh check -f` (the offline suite) passes on the output;
//   - separators, comment-only documents and every document inject does not change
//     come out byte for byte;
//   - inject is idempotent; in annotation mode uninject gives the input back byte for
//     byte; in --manual mode re-injecting with another version gives what injecting
//     the input with that version gives.
func TestInjectProperty(t *testing.T) {
	t.Parallel()
	manual := map[string]*inject.Manual{"v1.2.3": manualFor(t, "v1.2.3"), "v1.2.4": manualFor(t, "v1.2.4")}
	for seed := range uint64(80) { // FuzzInjectProperty explores further in make test
		checkProperty(t, seed, manual)
	}
}

func FuzzInjectProperty(f *testing.F) {
	for seed := range uint64(8) {
		f.Add(seed)
	}
	manual := map[string]*inject.Manual{"v1.2.3": manualFor(f, "v1.2.3"), "v1.2.4": manualFor(f, "v1.2.4")}
	f.Fuzz(func(t *testing.T, seed uint64) { checkProperty(t, seed, manual) })
}

type files struct{}

func (files) ReadFile(name string) ([]byte, error) { return os.ReadFile(name) }
func (files) Stdin() io.Reader                     { return strings.NewReader("") }

func manualFor(t testing.TB, version string) *inject.Manual {
	t.Helper()
	v, err := install.EffectiveValues(install.Options{Version: version}, files{})
	if err != nil {
		t.Fatal(err)
	}
	return &inject.Manual{Version: version, Namespace: install.DefaultNamespace, Values: v}
}

// options are random inject options: annotation mode or --manual, and config
// annotations whose values need quoting in YAML more often than not.
func (g *gen) options(manual *inject.Manual) inject.Options {
	o := inject.Options{Config: map[string]string{}}
	if g.chance(0.5) {
		o.Manual = manual
	}
	values := map[string]func() string{
		"opaque-ports":        func() string { return g.pick("3306,5432", "25", "3306,5432-5434") },
		"skip-subnets":        func() string { return g.pick("10.0.0.0/8,192.168.0.0/16", "10.0.0.0/8") },
		"skip-outbound-ports": func() string { return g.pick("25,587", "443") },
		"http2-ports":         func() string { return "50051" },
		"proxy-log-level":     g.tricky,
		"proxy-image": func() string {
			return g.pick("registry:5000/proxy:v9", "ghcr.io/meshplane/proxy:v1.2.3", "proxy@sha256:"+strings.Repeat("ab", 32))
		},
		"proxy-cpu-request": func() string { return g.pick("100m", "0.5", "1") },
	}
	names := make([]string, 0, len(values))
	for k := range values {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if g.chance(0.3) {
			o.Config[inject.ConfigPrefix+k] = values[k]()
		}
	}
	return o
}

func checkProperty(t *testing.T, seed uint64, manual map[string]*inject.Manual) {
	t.Helper()
	g := newGen(seed)
	input := g.stream()
	opts := g.options(manual["v1.2.3"])
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("seed %d, options %s:\n%s\ninput:\n%s", seed, describe(opts), fmt.Sprintf(format, args...), input)
	}
	in, err := inject.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	out, err := runStream(in, input)
	if err != nil {
		fail("inject: %v", err)
	}
	inDocs, outDocs := layout(t, input), layout(t, out)
	if len(inDocs) != len(outDocs) {
		fail("%d documents in, %d out:\n%s", len(inDocs), len(outDocs), out)
	}
	emptyAnnotations := false
	for i, d := range inDocs {
		o := outDocs[i]
		if !bytes.Equal(d.Sep, o.Sep) || d.Blank != o.Blank {
			fail("document %d: separator %q became %q", i, d.Sep, o.Sep)
		}
		if d.Blank {
			if !bytes.Equal(d.Raw, o.Raw) {
				fail("comment-only document %d changed to %q", i, o.Raw)
			}
			continue
		}
		want, changed, empty, err := expected(d.Raw, opts)
		if err != nil {
			fail("document %d: the oracle: %v", i, err)
		}
		emptyAnnotations = emptyAnnotations || empty
		if !changed && !bytes.Equal(d.Raw, o.Raw) {
			fail("document %d needs no change but changed:\n%s", i, o.Raw)
		}
		got, err := typedJSON(o.Raw)
		if err != nil {
			fail("document %d of the output: %v\n%s", i, err, out)
		}
		if !bytes.Equal(got, want) {
			fail("document %d:\ngot  %s\nwant %s\noutput:\n%s", i, got, want, o.Raw)
		}
	}
	if err := meshcheck.Offline(context.Background(), []byte(out), "v1.2.3"); err != nil {
		fail("%v\noutput:\n%s", err, out)
	}
	again, err := runStream(in, out)
	if err != nil || again != out {
		fail("inject of the output changed it (%v):\n%s", err, again)
	}
	if opts.Manual == nil {
		if len(opts.Config) == 0 && !emptyAnnotations {
			un, _ := inject.New(inject.Options{Uninject: true})
			back, err := runStream(un, out)
			if err != nil || back != input {
				fail("uninject(inject(x)) != x (%v):\n%s", err, back)
			}
		}
		return
	}
	o2 := opts
	o2.Manual = manual["v1.2.4"]
	in2, _ := inject.New(o2)
	direct, err := runStream(in2, input)
	if err != nil {
		fail("inject v1.2.4: %v", err)
	}
	updated, err := runStream(in2, out)
	if err != nil {
		fail("re-inject v1.2.4: %v", err)
	}
	if a, b := decodeAll(t, direct), decodeAll(t, updated); a != b {
		fail("re-inject with v1.2.4 differs from inject with v1.2.4:\n%s\nvs\n%s", updated, direct)
	}
}

func describe(o inject.Options) string {
	b, _ := json.Marshal(o.Config)
	return fmt.Sprintf("manual=%v config=%s", o.Manual != nil, b)
}

func runStream(in *inject.Injector, input string) (string, error) {
	var out bytes.Buffer
	err := in.Stream(context.Background(), manifest.Inputs{Filenames: []string{"-"}}, manifest.Env{Stdin: strings.NewReader(input)}, inject.Auto, &out, nil)
	return out.String(), err
}

// layout splits a stream into its documents, separators and blank documents included.
func layout(t *testing.T, s string) []manifest.Doc {
	t.Helper()
	var docs []manifest.Doc
	err := manifest.Inputs{Filenames: []string{"-"}, Layout: true}.Each(context.Background(), manifest.Env{Stdin: strings.NewReader(s)}, func(d manifest.Doc) error {
		docs = append(docs, d)
		return nil
	})
	if err != nil {
		t.Fatalf("reading %q: %v", s, err)
	}
	return docs
}

// decodeAll is a stream's documents as JSON, one line each.
func decodeAll(t *testing.T, s string) string {
	t.Helper()
	var b strings.Builder
	for _, d := range layout(t, s) {
		if d.Blank {
			continue
		}
		j, err := typedJSON(d.Raw)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(j)
		b.WriteByte('\n')
	}
	return b.String()
}

// objects decodes a document into typed objects: itself, or a List's items.
func objects(raw []byte) (list bool, objs []runtime.Object, err error) {
	j, err := yaml.YAMLToJSON(raw)
	if err != nil {
		return false, nil, err
	}
	var head struct {
		Kind  string            `json:"kind"`
		Items []json.RawMessage `json:"items"`
	}
	if err := json.Unmarshal(j, &head); err != nil {
		return false, nil, err
	}
	parts := []json.RawMessage{j}
	if head.Kind == "List" {
		list, parts = true, head.Items
	}
	for _, p := range parts {
		if string(p) == "null" {
			objs = append(objs, nil) // a List's null item
			continue
		}
		o, _, err := clientscheme.Codecs.UniversalDeserializer().Decode(p, nil, nil)
		if err != nil {
			return false, nil, err
		}
		objs = append(objs, o)
	}
	return list, objs, nil
}

// typedJSON is a document as the JSON of its typed objects.
func typedJSON(raw []byte) ([]byte, error) {
	_, objs, err := objects(raw)
	if err != nil {
		return nil, err
	}
	return json.Marshal(objs)
}

// template is an object's pod template (metadata and spec), or nil.
func template(o runtime.Object) (*corev1.PodTemplateSpec, func()) {
	switch t := o.(type) {
	case *corev1.Pod:
		pt := &corev1.PodTemplateSpec{ObjectMeta: t.ObjectMeta, Spec: t.Spec}
		return pt, func() { t.ObjectMeta, t.Spec = pt.ObjectMeta, pt.Spec }
	}
	v, ok := templateField(o)
	if !ok {
		return nil, nil
	}
	return v, func() {}
}

// expected applies inject's change to the typed objects of a document, and returns
// their JSON, whether anything changed, and whether a changed pod template had empty
// or null annotations (uninject then cannot know they were there).
func expected(raw []byte, opts inject.Options) ([]byte, bool, bool, error) {
	_, objs, err := objects(raw)
	if err != nil {
		return nil, false, false, err
	}
	var meta map[string]any
	_ = yaml.Unmarshal(raw, &meta)
	changed, empty := false, false
	for i, o := range objs {
		pt, store := template(o)
		if pt == nil || pt.Spec.HostNetwork {
			continue
		}
		changed = true
		empty = empty || emptyAnnotations(meta, i, o)
		if pt.Annotations == nil {
			pt.Annotations = map[string]string{}
		}
		pt.Annotations[inject.InjectAnnotation] = inject.Enabled
		for k, v := range opts.Config {
			pt.Annotations[k] = v
		}
		if opts.Manual != nil {
			cfg := map[string]string{}
			for k, v := range pt.Annotations {
				if strings.HasPrefix(k, inject.ConfigPrefix) {
					cfg[k] = v
				}
			}
			sc, err := opts.Manual.Sidecar(cfg, ports(pt.Spec))
			if err != nil {
				return nil, false, false, err
			}
			pt.Annotations[inject.ProxyVersion] = opts.Manual.Version
			pt.Spec.InitContainers = append(sc.InitContainers, pt.Spec.InitContainers...)
			pt.Spec.Containers = append(sc.Containers, pt.Spec.Containers...)
			pt.Spec.Volumes = append(pt.Spec.Volumes, sc.Volumes...)
		}
		store()
	}
	j, err := json.Marshal(objs)
	return j, changed, empty, err
}

// ports are the app's TCP container ports, in increasing order.
func ports(spec corev1.PodSpec) []string {
	seen := map[int32]bool{}
	var nums []int
	for _, c := range append(append([]corev1.Container{}, spec.Containers...), spec.InitContainers...) {
		for _, p := range c.Ports {
			if p.Protocol != corev1.ProtocolUDP && !seen[p.ContainerPort] {
				seen[p.ContainerPort] = true
				nums = append(nums, int(p.ContainerPort))
			}
		}
	}
	sort.Ints(nums)
	out := make([]string, len(nums))
	for i, n := range nums {
		out[i] = strconv.Itoa(n)
	}
	return out
}

// emptyAnnotations tells whether object i of a document has its pod template's
// annotations written as {} or null.
func emptyAnnotations(doc map[string]any, i int, o runtime.Object) bool {
	obj := doc
	if items, ok := doc["items"].([]any); ok && doc["kind"] == "List" {
		obj, _ = items[i].(map[string]any)
	}
	path := map[string][]string{"Pod": {}, "CronJob": {"spec", "jobTemplate", "spec", "template"}}[o.GetObjectKind().GroupVersionKind().Kind]
	if _, ok := o.(*corev1.Pod); !ok && path == nil {
		path = []string{"spec", "template"}
	}
	cur := any(obj)
	for _, k := range append(path, "metadata") {
		m, _ := cur.(map[string]any)
		cur = m[k]
	}
	m, _ := cur.(map[string]any)
	a, has := m["annotations"]
	am, _ := a.(map[string]any)
	return has && len(am) == 0
}

// templateField is the pod template of a workload kind.
func templateField(o runtime.Object) (*corev1.PodTemplateSpec, bool) {
	switch t := o.(type) {
	case *appsv1.Deployment:
		return &t.Spec.Template, true
	case *appsv1.StatefulSet:
		return &t.Spec.Template, true
	case *appsv1.DaemonSet:
		return &t.Spec.Template, true
	case *appsv1.ReplicaSet:
		return &t.Spec.Template, true
	case *batchv1.Job:
		return &t.Spec.Template, true
	case *batchv1.CronJob:
		return &t.Spec.JobTemplate.Spec.Template, true
	}
	return nil, false
}
