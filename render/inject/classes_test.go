package inject_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/meshplane/mesh/internal/testing/golden"
	"github.com/meshplane/mesh/internal/testing/meshcheck"
	"github.com/meshplane/mesh/render/inject"
	"github.com/meshplane/mesh/render/manifest"
)

// Table tests of the classes of issue 13, each with the example reported.

func newInj(t *testing.T, o inject.Options) *inject.Injector {
	t.Helper()
	in, err := inject.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// streamReport runs Stream and returns stdout and the report lines.
func streamReport(t *testing.T, in *inject.Injector, input string) (string, string) {
	t.Helper()
	var out bytes.Buffer
	var report strings.Builder
	err := in.Stream(context.Background(), manifest.Inputs{Filenames: []string{"-"}}, manifest.Env{Stdin: strings.NewReader(input)}, inject.Auto, &out,
		func(r inject.Result) { report.WriteString(r.String() + "\n") })
	if err != nil {
		t.Fatalf("%v\ninput:\n%s", err, input)
	}
	return out.String(), report.String()
}

// checkExpected compares every document of out with the oracle's objects for input.
func checkExpected(t *testing.T, input, out string, opts inject.Options) {
	t.Helper()
	ins, outs := layout(t, input), layout(t, out)
	if len(ins) != len(outs) {
		t.Fatalf("%d documents in, %d out", len(ins), len(outs))
	}
	for i, d := range ins {
		if d.Blank {
			continue
		}
		want, _, err := expected(d.Raw, opts)
		if err != nil {
			t.Fatal(err)
		}
		got, err := typedJSON(outs[i].Raw)
		if err != nil {
			t.Fatalf("document %d does not decode: %v\n%s", i, err, outs[i].Raw)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("document %d:\ngot  %s\nwant %s\noutput:\n%s", i, got, want, outs[i].Raw)
		}
	}
}

// --manual on pod specs with any key last, any list style: the proxy's volumes end
// up in volumes, its containers in initContainers, and mesh check takes the output.
func TestManualWhateverComesLast(t *testing.T) {
	t.Parallel()
	src, err := os.ReadFile("testdata/in/volumes-last.yaml")
	if err != nil {
		t.Fatal(err)
	}
	docs := strings.Split(string(src), "\n---\n")
	docs = append(docs,
		// The whole spec in flow style, volumes last.
		"apiVersion: v1\nkind: Pod\nmetadata: {name: flow}\nspec: {containers: [{name: app, image: app:1}], volumes: [{name: data, emptyDir: {}}]}",
		// Four-space indentation, no final newline.
		"apiVersion: v1\nkind: Pod\nmetadata:\n    name: four\nspec:\n    containers:\n        -   name: app\n            image: app:1\n    volumes:\n        -   name: data\n            emptyDir: {}",
		// CRLF.
		strings.ReplaceAll("apiVersion: v1\nkind: Pod\nmetadata:\n  name: crlf\nspec:\n  containers:\n  - name: app\n    image: app:1\n  volumes:\n  - name: data\n    emptyDir: {}\n", "\n", "\r\n"),
		// A Deployment whose template is its last key and spec its template's last.
		"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  selector: {matchLabels: {app: d}}\n  template:\n    metadata: {labels: {app: d}}\n    spec:\n      containers:\n      - name: app\n        image: app:1\n      volumes:\n      - name: data\n        emptyDir: {}\n",
	)
	for _, native := range []bool{true, false} {
		m := manualFor(t, "v1.2.3")
		if !native {
			m.Values["proxy"].(map[string]any)["nativeSidecar"] = false
		}
		opts := inject.Options{Manual: m}
		in := newInj(t, opts)
		for _, doc := range docs {
			out, _ := streamReport(t, in, doc)
			checkExpected(t, doc, out, opts)
			if err := meshcheck.Offline(context.Background(), []byte(out), "v1.2.3"); err != nil {
				t.Errorf("native %v: %v\n%s", native, err, out)
			}
		}
	}
}

// Values with commas and every other character that matters to YAML read back as
// exactly themselves: in block and flow annotations, in JSON, in the proxy's env.
func TestValuesReadBack(t *testing.T) {
	t.Parallel()
	docs := map[string]string{
		"block":         "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  annotations:\n    a: b\nspec:\n  containers:\n  - name: app\n    image: app:1\n",
		"flow":          "apiVersion: v1\nkind: Pod\nmetadata: {name: p, annotations: {a: b}}\nspec: {containers: [{name: app, image: app:1}]}\n",
		"flow, no keys": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec: {selector: {matchLabels: {app: d}}, template: {spec: {containers: [{name: app, image: app:1}]}}}\n",
		"null":          "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  annotations:\nspec: {containers: [{name: app, image: app:1}]}\n",
		"json":          `{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "annotations": {"a": "b"}}, "spec": {"containers": [{"name": "app", "image": "app:1"}]}}`,
	}
	values := append([]string{"3306,5432", "a,b", "warn,mesh=debug"}, trickyStrings...)
	values = append(values, "", `"`, `'`, `\`, "\x7f", "\u2028", "\ufeff", "x\r\ny")
	m := manualFor(t, "v1.2.3")
	for name, doc := range docs {
		for _, manual := range []bool{false, true} {
			for _, v := range values {
				opts := inject.Options{Config: map[string]string{
					"config.meshplane.io/opaque-ports":    "3306,5432",
					"config.meshplane.io/skip-subnets":    "a,b",
					"config.meshplane.io/proxy-log-level": v,
				}}
				if manual {
					opts.Manual = m
					opts.Config["config.meshplane.io/skip-subnets"] = "10.0.0.0/8,192.168.0.0/16"
				}
				out, _ := streamReport(t, newInj(t, opts), doc)
				checkExpected(t, doc, out, opts)
				if manual {
					_, objs, err := objects([]byte(out))
					if err != nil {
						t.Fatal(err)
					}
					pt, _ := template(objs[0])
					if env := proxyEnv(pt.Spec, "MESH_PROXY_LOG"); env != v {
						t.Errorf("%s: MESH_PROXY_LOG %q, want %q", name, env, v)
					}
				}
			}
		}
	}
}

func proxyEnv(spec corev1.PodSpec, name string) string {
	for _, c := range append(spec.InitContainers, spec.Containers...) {
		if c.Name == inject.ProxyContainer {
			for _, e := range c.Env {
				if e.Name == name {
					return e.Value
				}
			}
		}
	}
	return "(none)"
}

// Separators, licence headers and comment-only documents stay; a file with nothing
// to change comes out unchanged (uninject of an untouched file too); uninject after
// inject gives the input back byte for byte.
func TestLayoutStays(t *testing.T) {
	t.Parallel()
	deploy := "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata:\n      labels: {app: web}\n    spec:\n      containers: [{name: web, image: web:1}]\n"
	svc := "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {ports: [{port: 80}]}\n"
	src, err := os.ReadFile("testdata/in/layout.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for name, input := range map[string]string{
		"fixture":           string(src),
		"licence header":    "# Licence: Apache-2.0\n---\n" + deploy,
		"leading separator": "---\n" + deploy,
		"comment-only":      deploy + "---\n# just a comment\n---\n" + svc,
		"comment separator": "--- # first\n" + deploy + "--- # second\n" + svc,
		"trailing empty":    deploy + "---\n",
		"no final newline":  svc + "---\n" + strings.TrimSuffix(deploy, "\n"),
		"crlf separators":   strings.ReplaceAll("# header\n---\n"+deploy+"---\n"+svc, "\n", "\r\n"),
		"byte-order mark":   "\ufeff# header\n" + deploy,
		"blank lines first": "\n\n" + deploy,
		"flow on separator": "--- {apiVersion: v1, kind: Pod, metadata: {name: p}, spec: {containers: [{name: a, image: b}]}}\n",
	} {
		un := newInj(t, inject.Options{Uninject: true})
		if out, _ := streamReport(t, un, input); out != input {
			t.Errorf("%s: uninject of an untouched stream changed it:\n%q\nwant\n%q", name, out, input)
		}
		others := strings.NewReplacer("kind: Deployment", "kind: Widget", "kind: Pod", "kind: Widget").Replace(input)
		if out, _ := streamReport(t, newInj(t, inject.Options{}), others); out != others {
			t.Errorf("%s: inject of a stream with nothing to change changed it:\n%q", name, out)
		}
		injected, _ := streamReport(t, newInj(t, inject.Options{}), input)
		if !strings.Contains(injected, "meshplane.io/inject") {
			t.Errorf("%s: nothing injected:\n%s", name, injected)
		}
		checkExpected(t, input, injected, inject.Options{})
		if back, _ := streamReport(t, un, injected); back != input {
			t.Errorf("%s: uninject(inject(x)) != x:\n%q\nwant\n%q", name, back, input)
		}
	}
}

// --manual of an injected workload brings its proxy to the current version and
// settings, says what changed, and is idempotent when nothing differs.
func TestReinject(t *testing.T) {
	t.Parallel()
	const app = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata:\n      labels: {app: web}\n    spec:\n      containers:\n      - name: web\n        image: web:1\n        ports:\n        - containerPort: 8080\n      volumes:\n      - name: data\n        emptyDir: {}\n"
	old, _ := streamReport(t, newInj(t, inject.Options{Manual: manualFor(t, "v1.2.2")}), app)
	values := func(version string, set func(v map[string]any)) *inject.Manual {
		m := manualFor(t, version)
		if set != nil {
			set(m.Values)
		}
		return m
	}
	proxy := func(v map[string]any) map[string]any { return v["proxy"].(map[string]any) }
	for _, tc := range []struct {
		name   string
		opts   inject.Options
		report string
	}{
		{"same", inject.Options{Manual: manualFor(t, "v1.2.2")}, "deployment/web unchanged (already injected)\n"},
		{"new version", inject.Options{Manual: manualFor(t, "v1.2.3")},
			"deployment/web updated (proxy version v1.2.2 → v1.2.3; mesh-init: image; mesh-proxy: image)\n"},
		{"new config", inject.Options{Manual: manualFor(t, "v1.2.2"), Config: map[string]string{"config.meshplane.io/opaque-ports": "3306,5432"}},
			"deployment/web updated (mesh-proxy: env)\n"},
		{"not native", inject.Options{Manual: values("v1.2.2", func(v map[string]any) { proxy(v)["nativeSidecar"] = false })},
			"deployment/web updated (moved mesh-proxy from initContainers to containers)\n"},
		{"cni", inject.Options{Manual: values("v1.2.2", func(v map[string]any) { v["proxyInit"].(map[string]any)["mode"] = "cni" })},
			"deployment/web updated (removed mesh-init; removed mesh-init-xtables)\n"},
		{"version annotation only", inject.Options{Manual: values("v1.2.3", func(v map[string]any) { v["image"].(map[string]any)["tag"] = "v1.2.2" })},
			"deployment/web updated (proxy version v1.2.2 → v1.2.3)\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := newInj(t, tc.opts)
			out, report := streamReport(t, in, old)
			if report != tc.report {
				t.Errorf("report %q, want %q", report, tc.report)
			}
			direct, _ := streamReport(t, in, app)
			if a, b := decodeAll(t, out), decodeAll(t, direct); a != b {
				t.Errorf("re-inject differs from inject:\n%s\nvs\n%s", out, direct)
			}
			again, report := streamReport(t, in, out)
			if again != out || !strings.HasSuffix(report, "unchanged (already injected)\n") {
				t.Errorf("not idempotent (%q):\n%s", report, again)
			}
			golden.Assert(t, "out/reinject/"+strings.ReplaceAll(tc.name, " ", "-")+".yaml", []byte(out))
		})
	}
}

// null items of a List pass through, in YAML and JSON, in every mode.
func TestListNullItems(t *testing.T) {
	t.Parallel()
	pod := `{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{"name": "a", "image": "a:1"}]}}`
	for name, input := range map[string]string{
		"yaml": "apiVersion: v1\nkind: List\nitems:\n- null\n- " + pod + "\n- ~\n",
		"json": `{"apiVersion": "v1", "kind": "List", "items": [null, ` + pod + `, null]}`,
	} {
		for mode, opts := range map[string]inject.Options{"annotation": {}, "manual": {Manual: manualFor(t, "v1.2.3")}} {
			out, report := streamReport(t, newInj(t, opts), input)
			if report != "pod/p injected\n" {
				t.Errorf("%s %s: report %q", name, mode, report)
			}
			var list struct{ Items []json.RawMessage }
			j, _ := typedJSONList(out)
			_ = json.Unmarshal(j, &list)
			if len(list.Items) != 3 || string(list.Items[0]) != "null" || string(list.Items[2]) != "null" {
				t.Errorf("%s %s: items %s", name, mode, j)
			}
			back, _ := streamReport(t, newInj(t, inject.Options{Uninject: true}), out)
			if a, b := decodeAll(t, back), decodeAll(t, input); a != b {
				t.Errorf("%s %s: uninject(inject(x)) != x:\n%s", name, mode, back)
			}
		}
	}
}

// typedJSONList is a document as JSON, for Lists whose items may be null.
func typedJSONList(s string) ([]byte, error) {
	var v any
	if err := yaml.Unmarshal([]byte(s), &v); err != nil {
		return nil, err
	}
	return json.Marshal(v)
}
