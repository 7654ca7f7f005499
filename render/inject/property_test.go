package inject_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"

	yamlv3 "go.yaml.in/yaml/v3"
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
//   - inject is idempotent;
//   - in annotation mode uninject(inject(x)) is x byte for byte: config annotations x
//     already had (left alone or overridden by the flags), null annotations of every
//     spelling, {} in flow mappings and JSON, and a pod template's metadata written
//     as a null or {} included (the marker inject.OriginalAnnotations records them);
//     documents inject refuses included; the one document it cannot be is one that
//     already says it is injected (meshplane.io/inject: enabled with no record, as
//     inject's own output does), where it is uninject(x) (checkUninject);
//   - an anchored null is never filled: annotation mode leaves the object, --manual
//     fails the input;
//   - in --manual mode re-injecting with another version gives what injecting the
//     input with that version gives.
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
	if opts.Manual != nil && anchoredNull(t, input) {
		// --manual fails on an object it cannot inject, naming it, and writes nothing.
		if err == nil || !strings.Contains(err.Error(), "cannot fill a null written with an anchor") || out != "" {
			fail("inject --manual of an anchored null: %v, wrote %q", err, out)
		}
		return
	}
	if err != nil {
		fail("inject: %v", err)
	}
	inDocs, outDocs := layout(t, input), layout(t, out)
	if len(inDocs) != len(outDocs) {
		fail("%d documents in, %d out:\n%s", len(inDocs), len(outDocs), out)
	}
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
		want, changed, err := expected(d.Raw, opts)
		if err != nil {
			fail("document %d: the oracle: %v", i, err)
		}
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
		checkUninject(t, fail, input, out)
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

// checkUninject: uninject(inject(x)) is x byte for byte, document by document, config
// annotations x already had included (the marker records what inject added and
// changed), refused documents included (hostNetwork, an anchored null: inject leaves
// them as they are and uninject keeps the config annotations of a template that shows
// no injection), except in a document that says it is injected already
// (meshplane.io/inject: enabled, or proxy-version, with no record): there
// uninject(inject(x)) is uninject(x), byte for byte (uninject cannot give two answers
// for one input), which is x's document without mesh's annotations.
func checkUninject(t *testing.T, fail func(string, ...any), input, out string) {
	t.Helper()
	un, _ := inject.New(inject.Options{Uninject: true})
	back, err := runStream(un, out)
	if err != nil {
		fail("uninject(inject(x)): %v", err)
	}
	if back == input {
		return
	}
	direct, err := runStream(un, input)
	if err != nil {
		fail("uninject(x): %v", err)
	}
	inDocs, backDocs, directDocs, outDocs := layout(t, input), layout(t, back), layout(t, direct), layout(t, out)
	if len(backDocs) != len(inDocs) || len(directDocs) != len(inDocs) || len(outDocs) != len(inDocs) {
		fail("uninject(inject(x)) has %d documents, uninject(x) %d, not %d:\n%s", len(backDocs), len(directDocs), len(inDocs), back)
	}
	for i, d := range inDocs {
		b := backDocs[i]
		if !bytes.Equal(d.Sep, b.Sep) || d.Blank != b.Blank {
			fail("uninject(inject(x)): document %d: separator %q became %q", i, d.Sep, b.Sep)
		}
		if bytes.Equal(d.Raw, b.Raw) {
			continue
		}
		if !injectedAlready(t, d.Raw) {
			fail("uninject(inject(x)) != x: document %d:\n%s\nwant\n%s\ninjected:\n%s", i, b.Raw, d.Raw, out)
		}
		if !bytes.Equal(b.Raw, directDocs[i].Raw) {
			fail("uninject(inject(x)) != uninject(x): document %d, injected already:\n%s\nwant\n%s", i, b.Raw, directDocs[i].Raw)
		}
		want, err := withoutMeshAnnotations(d.Raw)
		if err != nil {
			fail("document %d: %v", i, err)
		}
		if got, err := typedJSON(b.Raw); err != nil || !bytes.Equal(got, want) {
			fail("uninject(x): document %d (%v) is not x without mesh's annotations:\n%s\ngot  %s\nwant %s", i, err, b.Raw, got, want)
		}
	}
}

// anchoredNull tells whether the stream holds a pod template whose annotations are a
// null with an anchor.
func anchoredNull(t *testing.T, input string) bool {
	t.Helper()
	for _, d := range layout(t, input) {
		if d.Blank {
			continue
		}
		marks, err := markers(d.Raw)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range marks {
			if m != nil && m.Refused {
				return true
			}
		}
	}
	return false
}

// injectedAlready tells whether a pod template of the document says it is injected:
// meshplane.io/inject with any value but the opt-out, meshplane.io/proxy-version or
// the marker (config annotations alone do not).
func injectedAlready(t *testing.T, raw []byte) bool {
	t.Helper()
	_, objs, err := objects(raw)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		pt, _ := template(o)
		if pt == nil {
			continue
		}
		for _, k := range meshAnnotations(pt.Annotations) {
			if !strings.HasPrefix(k, inject.ConfigPrefix) {
				return true
			}
		}
	}
	return false
}

// hasMeshAnnotations tells whether a pod template of the document holds an annotation
// uninject removes.
func hasMeshAnnotations(t *testing.T, raw []byte) bool {
	t.Helper()
	_, objs, err := objects(raw)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if pt, _ := template(o); pt != nil && len(meshAnnotations(pt.Annotations)) > 0 {
			return true
		}
	}
	return false
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
	canonMarkers(objs)
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
// their JSON and whether anything changed.
func expected(raw []byte, opts inject.Options) ([]byte, bool, error) {
	_, objs, err := objects(raw)
	if err != nil {
		return nil, false, err
	}
	marks, err := markers(raw)
	if err != nil {
		return nil, false, err
	}
	changed := false
	for i, o := range objs {
		pt, store := template(o)
		if pt == nil || pt.Spec.HostNetwork || marks[i] != nil && marks[i].Refused {
			continue
		}
		changed = true
		pre := maps.Clone(pt.Annotations)
		if pt.Annotations == nil {
			pt.Annotations = map[string]string{}
		}
		pt.Annotations[inject.InjectAnnotation] = inject.Enabled
		for k, v := range opts.Config {
			pt.Annotations[k] = v
		}
		if opts.Manual != nil {
			pt.Annotations[inject.ProxyVersion] = opts.Manual.Version
		}
		r := marks[i]
		if r == nil {
			r = &oracleRecord{}
		}
		tracking(r, pre, pt.Annotations)
		if r.Annotations != nil || r.Metadata != nil || r.Added != nil || r.Changed != nil {
			pt.Annotations[inject.OriginalAnnotations] = r.value()
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
				return nil, false, err
			}
			pt.Spec.InitContainers = append(sc.InitContainers, pt.Spec.InitContainers...)
			pt.Spec.Containers = append(sc.Containers, pt.Spec.Containers...)
			pt.Spec.Volumes = append(pt.Spec.Volumes, sc.Volumes...)
		}
		store()
	}
	j, err := json.Marshal(objs)
	return j, changed, err
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

// markers are, for each object of a document (as objects lists them), the value inject
// gives the marker inject.OriginalAnnotations on its pod template, if it adds one:
// the original token of annotations written as a null (in a block mapping, what
// follows the colon and one space), and "{}" for an empty mapping inside a flow mapping (or
// a JSON document), which uninject would otherwise delete. The rule is the documented
// one, read from the input's YAML tree, not from inject's code.
func markers(raw []byte) ([]*oracleRecord, error) {
	var doc yamlv3.Node
	if err := yamlv3.Unmarshal(raw, &doc); err != nil {
		return nil, err
	}
	root := doc.Content[0]
	objs := []*yamlv3.Node{root}
	if scalarAt(root, "kind") == "List" {
		objs = nodeAt(root, "items").Content
	}
	paths := map[string][]string{"Pod": {}, "CronJob": {"spec", "jobTemplate", "spec", "template"},
		"Deployment": {"spec", "template"}, "StatefulSet": {"spec", "template"}, "DaemonSet": {"spec", "template"},
		"ReplicaSet": {"spec", "template"}, "ReplicationController": {"spec", "template"}, "Job": {"spec", "template"}}
	out := make([]*oracleRecord, len(objs))
	// token is the marker's token for v, the value of key k in a mapping in flow
	// context or not, which inject fills: nil when it needs none.
	token := func(k, v *yamlv3.Node, flow bool) *string {
		switch {
		case v == nil:
		case v.Tag == "!!null" && !flow:
			tok := nullText(raw, k)
			return &tok
		case v.Tag == "!!null" && v.Style&yamlv3.TaggedStyle == 0:
			if v.Value == "" && keyAlone(raw, k) {
				tok := "key-only"
				return &tok
			}
			return &v.Value
		case v.Kind == yamlv3.MappingNode && len(v.Content) == 0 && flow:
			empty := "{}"
			return &empty
		}
		return nil
	}
	for i, o := range objs {
		path, ok := paths[scalarAt(o, "kind")]
		if o.Kind != yamlv3.MappingNode || !ok {
			continue
		}
		flow := root.Style&yamlv3.FlowStyle != 0 || o.Style&yamlv3.FlowStyle != 0
		tmpl := o
		for _, k := range path {
			if tmpl = nodeAt(tmpl, k); tmpl == nil {
				break
			}
			flow = flow || tmpl.Style&yamlv3.FlowStyle != 0
		}
		if tmpl == nil || scalarAt(tmpl, "spec", "hostNetwork") == "true" {
			continue
		}
		mk, meta := keyAt(tmpl, "metadata")
		if tok := token(mk, meta, flow); tok != nil {
			out[i] = &oracleRecord{Metadata: tok}
			continue
		}
		if meta == nil {
			continue
		}
		flow = flow || meta.Style&yamlv3.FlowStyle != 0
		ak, ann := keyAt(meta, "annotations")
		if ann != nil && ann.Tag == "!!null" && ann.Anchor != "" {
			out[i] = &oracleRecord{Refused: true}
			continue
		}
		if tok := token(ak, ann, flow); tok != nil {
			out[i] = &oracleRecord{Annotations: tok}
		}
	}
	return out, nil
}

// meshAnnotations are the annotations uninject removes whoever wrote them: mesh's
// inject annotation (unless "disabled"), proxy version, config.meshplane.io/* and
// the marker.
func meshAnnotations(ann map[string]string) []string {
	var keys []string
	for k, v := range ann {
		switch {
		case k == inject.InjectAnnotation && v != inject.Disabled, k == inject.ProxyVersion, k == inject.OriginalAnnotations,
			strings.HasPrefix(k, inject.ConfigPrefix):
			keys = append(keys, k)
		}
	}
	return keys
}

// withoutMeshAnnotations is a document's typed JSON with the annotations uninject
// removes gone from its pod templates (and a map left empty, nil).
func withoutMeshAnnotations(raw []byte) ([]byte, error) {
	_, objs, err := objects(raw)
	if err != nil {
		return nil, err
	}
	for _, o := range objs {
		pt, store := template(o)
		if pt == nil {
			continue
		}
		for _, k := range meshAnnotations(pt.Annotations) {
			delete(pt.Annotations, k)
		}
		if len(pt.Annotations) == 0 {
			pt.Annotations = nil
		}
		store()
	}
	return json.Marshal(objs)
}

// nullText is what a block mapping's key k is followed by on its line, after its colon
// and the space after that, up to a comment: the text of a null value.
func nullText(raw []byte, k *yamlv3.Node) string {
	line := strings.TrimRight(strings.Split(string(raw), "\n")[k.Line-1], "\r")
	width := len(k.Value)
	if k.Style&(yamlv3.DoubleQuotedStyle|yamlv3.SingleQuotedStyle) != 0 {
		width += 2
	}
	rest := line[k.Column-1+width:]
	rest = rest[strings.Index(rest, ":")+1:]
	if c := strings.Index(rest, " #"); c >= 0 {
		rest = rest[:c]
	}
	return strings.TrimPrefix(strings.TrimRight(rest, " "), " ")
}

// keyAlone tells whether the key k of a flow mapping in raw has no colon after it
// (`{annotations, name: p}`): the first character after the key, spaces and line
// breaks skipped, is not ':'.
func keyAlone(raw []byte, k *yamlv3.Node) bool {
	lines := strings.SplitAfter(string(raw), "\n")
	off := 0
	for _, l := range lines[:k.Line-1] {
		off += len(l)
	}
	off += k.Column - 1 + len(k.Value)
	if k.Style&(yamlv3.DoubleQuotedStyle|yamlv3.SingleQuotedStyle) != 0 {
		off += 2
	}
	rest := strings.TrimLeft(string(raw[off:]), " \t\r\n")
	return !strings.HasPrefix(rest, ":")
}

func keyAt(m *yamlv3.Node, key string) (k, v *yamlv3.Node) {
	for i := 0; m != nil && i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i], m.Content[i+1]
		}
	}
	return nil, nil
}

func nodeAt(n *yamlv3.Node, path ...string) *yamlv3.Node {
	for _, k := range path {
		if n == nil || n.Kind != yamlv3.MappingNode {
			return nil
		}
		var next *yamlv3.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == k {
				next = n.Content[i+1]
			}
		}
		n = next
	}
	return n
}

func scalarAt(n *yamlv3.Node, path ...string) string {
	if v := nodeAt(n, path...); v != nil && v.Kind == yamlv3.ScalarNode {
		return v.Value
	}
	return ""
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

// The 80 seeds of TestInjectProperty write every case the round trip has to bring
// back: each null spelling and {} (marker values), in YAML and in JSON inputs, and
// mesh annotations already there.
func TestInjectPropertyCovers(t *testing.T) {
	t.Parallel()
	seen := map[string]int{}
	for seed := range uint64(80) {
		input := newGen(seed).stream()
		format := "yaml"
		if strings.HasPrefix(input, "{") {
			format = "json"
		}
		for _, d := range layout(t, input) {
			if d.Blank {
				continue
			}
			marks, err := markers(d.Raw)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range marks {
				switch {
				case m == nil:
				case m.Refused:
					seen[format+" anchored null"]++
				case m.Metadata != nil:
					seen[format+" metadata "+strconv.Quote(*m.Metadata)]++
				default:
					seen[format+" "+strconv.Quote(m.value())]++
				}
			}
			if hasMeshAnnotations(t, d.Raw) && !injectedAlready(t, d.Raw) {
				seen[format+" mesh annotations, not injected"]++
			}
			if hasMeshAnnotations(t, d.Raw) {
				seen[format+" mesh annotations"]++
			}
		}
	}
	for _, want := range []string{`yaml ""`, `yaml "~"`, `yaml "null"`, `yaml "Null"`, `yaml "NULL"`, `yaml " ~"`,
		`yaml "!!null null"`, `yaml "{}"`, `json "null"`, `json "{}"`, "yaml mesh annotations", "json mesh annotations",
		"yaml mesh annotations, not injected", "json mesh annotations, not injected", "yaml anchored null",
		`yaml metadata "~"`, `yaml metadata "{}"`, `json metadata "null"`, `json metadata "{}"`} {
		if seen[want] == 0 {
			t.Errorf("no input with %s (seen %v)", want, seen)
		}
	}
	t.Logf("seen %v", seen)
}
