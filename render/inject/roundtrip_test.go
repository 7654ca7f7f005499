package inject_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/meshplane/mesh/render/inject"
	"github.com/meshplane/mesh/render/manifest"
)

// uninject(inject(x)) in annotation mode and with --manual, for every state a pod
// template's annotations can be in: x byte for byte. Where inject fills a null or a {}
// that uninject would otherwise delete, the marker meshplane.io/original-annotations
// (marker) holds the original token, and uninject writes it back.
func TestUninjectRoundTrip(t *testing.T) {
	t.Parallel()
	pod := func(meta string) string {
		return "apiVersion: v1\nkind: Pod\nmetadata:" + meta + "\nspec:\n  containers: [{name: a, image: b}]\n"
	}
	deploy := func(tmplMeta string) string {
		return "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  selector: {matchLabels: {app: d}}\n  template:\n" +
			tmplMeta + "    spec: {containers: [{name: a, image: b}]}\n"
	}
	jsonPod := func(ann string) string {
		return `{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"` + ann + `}, "spec": {"containers": [{"name": "a", "image": "b"}]}}` + "\n"
	}
	config := map[string]string{"config.meshplane.io/opaque-ports": "3306,5432"}
	const none = "-" // no marker
	for _, c := range []struct {
		name, in, marker string
		config           map[string]string
	}{
		{"absent, block metadata", pod("\n  name: p"), none, nil},
		{"absent, flow metadata", pod(" {name: p}"), none, nil},
		{"absent, flow metadata, config", pod(" {name: p}"), none, map[string]string{"config.meshplane.io/proxy-log-level": "warn,mesh=debug"}},
		{"absent, block metadata, config", pod("\n  name: p"), none, config},
		{"{} in block metadata", pod("\n  name: p\n  annotations: {}"), none, nil},
		{"{ } in block metadata", pod("\n  annotations: { } # none yet\n  name: p"), none, nil},
		{"multi-line {} in block metadata", pod("\n  name: p\n  annotations: {\n  }"), none, nil},
		{"{} in block metadata, config", pod("\n  name: p\n  annotations: {}"), none, config},
		{"metadata: {} in a block template", deploy("    metadata: {}\n"), none, nil},
		{"no metadata in a block template", deploy(""), none, nil},
		{"user annotations, flow", pod("\n  name: p\n  annotations: {team: web}"), none, nil},
		{"user annotations, block", pod("\n  name: p\n  annotations:\n    team: web"), none, nil},
		{"user annotations, json", jsonPod(`, "annotations": {"team": "web"}`), none, nil},
		{"metadata last, no final newline", "apiVersion: v1\nkind: Pod\nspec: {containers: [{name: a, image: b}]}\nmetadata:\n  name: p", none, nil},
		{"annotations last, no final newline, crlf", "apiVersion: v1\r\nkind: Pod\r\nspec: {containers: [{name: a, image: b}]}\r\nmetadata:\r\n  name: p\r\n  annotations:\r\n    team: web", none, config},
		// The marker's cases: a null in any spelling, {} where uninject would delete it.
		{"{} in flow metadata", pod(" {name: p, annotations: {}}"), "{}", nil},
		{"{ } in flow metadata", pod(" {name: p, annotations: { } }"), "{}", nil},
		{"multi-line {} in flow metadata", pod(" {name: p, annotations: {\n  }}"), "{}", config},
		{"{} in a flow template", deploy("    metadata: {labels: {app: d}, annotations: {}}\n"), "{}", nil},
		{"{} in json", jsonPod(`, "annotations": {}`), "{}", nil},
		{"{} in json, config", jsonPod(`, "annotations": {}`), "{}", config},
		{"null in json", jsonPod(`, "annotations": null`), "null", config},
		{"bare", pod("\n  name: p\n  annotations:"), "", nil},
		{"bare, comment", pod("\n  annotations: # none yet\n  name: p"), "", config},
		{"bare, last, no final newline", "apiVersion: v1\nkind: Pod\nspec: {containers: [{name: a, image: b}]}\nmetadata:\n  name: p\n  annotations:", "", nil},
		{"bare, crlf", "apiVersion: v1\r\nkind: Pod\r\nmetadata:\r\n  annotations:\r\n  name: p\r\nspec: {containers: [{name: a, image: b}]}\r\n", "", config},
		{"~", pod("\n  annotations: ~\n  name: p"), "~", nil},
		{"~, comment", pod("\n  annotations: ~ # none\n  name: p"), "~", config},
		{"null", pod("\n  name: p\n  annotations: null"), "null", nil},
		{"Null", pod("\n  name: p\n  annotations: Null"), "Null", nil},
		{"NULL", pod("\n  name: p\n  annotations: NULL"), "NULL", config},
		{"NULL after spaces", pod("\n  name: p\n  annotations:   NULL"), "  NULL", nil},
		{"!!null", pod("\n  name: p\n  annotations: !!null"), "!!null", nil},
		{"!!null ~", pod("\n  name: p\n  annotations: !!null ~"), "!!null ~", nil},
		{"!!null, comment", pod("\n  name: p\n  annotations: !!null # c"), "!!null", config},
		{"!!null ~, comment", pod("\n  annotations: !!null ~  # c\n  name: p"), "!!null ~", nil},
		{"null in a block template", deploy("    metadata:\n      labels: {app: d}\n      annotations: ~\n"), "~", config},
		{"null in flow", pod(" {name: p, annotations: null}"), "null", nil},
		{"~ in flow", pod(" {annotations: ~, name: p}"), "~", nil},
		{"NULL in flow", pod(" {name: p, annotations: NULL }"), "NULL", config},
		{"bare in flow", pod(" {name: p, annotations: }"), "", nil},
		{"bare in flow, first", pod(" {annotations: , name: p}"), "", config},
		{"key alone in flow", pod(" {annotations, name: p}"), "key-only", nil},
		{"key alone in flow, last", pod(" {name: p, annotations }"), "key-only", config},
		{"metadata alone in a flow template", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec: {selector: {matchLabels: {a: b}}, template: {metadata, spec: {containers: [{name: a, image: b}]}}}\n", `{"metadata":"key-only"}`, nil},
		// A List's items are decoded on their own (yaml.v3 would encode this null as a string).
		{"bare in flow, a List's item", "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Pod\n  metadata: {name: p, annotations: }\n  spec: {containers: [{name: a, image: b}]}\n", "", nil},
		{"null in a List's block item", "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Pod\n  metadata:\n    annotations: Null\n    name: p\n  spec: {containers: [{name: a, image: b}]}\n", "Null", config},
	} {
		for _, manual := range []bool{false, true} {
			opts := inject.Options{Config: c.config}
			if manual {
				opts.Manual = manualFor(t, "v1.2.3")
			}
			name := fmt.Sprintf("%s (manual %v)", c.name, manual)
			out, _ := streamReport(t, newInj(t, opts), c.in)
			if !strings.Contains(out, inject.InjectAnnotation) {
				t.Errorf("%s: nothing injected:\n%s", name, out)
			}
			checkExpected(t, c.in, out, opts)
			if got := markerIn(t, out); got != c.marker {
				t.Errorf("%s: marker %q, want %q:\n%s", name, got, c.marker, out)
			}
			if again, _ := streamReport(t, newInj(t, opts), out); again != out {
				t.Errorf("%s: inject again changed it:\n%s\nwas\n%s", name, again, out)
			}
			back, report := streamReport(t, newInj(t, inject.Options{Uninject: true}), out)
			if back != c.in {
				t.Errorf("%s: uninject(inject(x)):\n%s\nwant\n%s\ninjected:\n%s", name, back, c.in, out)
			}
			if !strings.HasSuffix(report, " uninjected\n") {
				t.Errorf("%s: report %q", name, report)
			}
		}
	}
}

// markerIn is the value of the marker on the (only) pod template of a document, or
// "-" when it has none.
func markerIn(t *testing.T, doc string) string {
	t.Helper()
	_, objs, err := objects([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	pt, _ := template(objs[0])
	if v, ok := pt.Annotations[inject.OriginalAnnotations]; ok {
		return v
	}
	return "-"
}

// Without the marker (a file injected by an older version, or annotated by hand)
// uninject does what it always did: a null or flow-in-flow {} it cannot tell from no
// annotations key loses its key. A marker edited to anything that is not one of the
// tokens inject writes is never written into the document: uninject warns and removes
// the key as without a marker. A marker with other annotations left just goes.
func TestUninjectMarker(t *testing.T) {
	t.Parallel()
	pod := func(meta string) string {
		return "apiVersion: v1\nkind: Pod\nmetadata:" + meta + "\nspec:\n  containers: [{name: a, image: b}]\n"
	}
	jsonPod := func(ann string) string {
		return `{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "annotations": {` + ann + `}}, "spec": {"containers": [{"name": "a", "image": "b"}]}}` + "\n"
	}
	warn := func(v string) string {
		return "Warning: pod/p: meshplane.io/original-annotations " + v + " is not a form uninject writes back; the annotations key was removed instead\n"
	}
	for _, c := range []struct{ name, in, want, warnings string }{
		{"no marker, block", pod("\n  name: p\n  annotations:\n    meshplane.io/inject: enabled"), pod("\n  name: p"), ""},
		{"no marker, flow", pod(" {name: p, annotations: {meshplane.io/inject: enabled}}"), pod(" {name: p}"), ""},
		{"no marker, json", jsonPod(`"meshplane.io/inject": "enabled"`), strings.Replace(jsonPod(""), `, "annotations": {}`, "", 1), ""},
		{"marker alone", pod("\n  name: p\n  annotations:\n    meshplane.io/original-annotations: \"~\""), pod("\n  name: p\n  annotations: ~"), ""},
		{"marker, single-quoted", pod("\n  name: p\n  annotations:\n    meshplane.io/inject: enabled\n    meshplane.io/original-annotations: 'NULL'"), pod("\n  name: p\n  annotations: NULL"), ""},
		{"marker with a user annotation", pod("\n  name: p\n  annotations:\n    meshplane.io/original-annotations: \"~\"\n    team: web"), pod("\n  name: p\n  annotations:\n    team: web"), ""},
		{"marker {} on a block mapping", pod("\n  name: p\n  annotations:\n    meshplane.io/inject: enabled\n    meshplane.io/original-annotations: \"{}\""), pod("\n  name: p\n  annotations: {}"), ""},
		{"injection attempt, block", pod("\n  name: p\n  annotations:\n    meshplane.io/inject: enabled\n    meshplane.io/original-annotations: \"{a: b}\\nkind: Secret\""), pod("\n  name: p"), warn(`"{a: b}\nkind: Secret"`)},
		{"a word", pod(" {name: p, annotations: {meshplane.io/inject: enabled, meshplane.io/original-annotations: hello}}"), pod(" {name: p}"), warn(`"hello"`)},
		{"a null scalar", pod("\n  name: p\n  annotations:\n    meshplane.io/original-annotations: ~"), pod("\n  name: p"), warn(`"~"`)},
		{"~ in json", jsonPod(`"meshplane.io/inject": "enabled", "meshplane.io/original-annotations": "~"`), strings.Replace(jsonPod(""), `, "annotations": {}`, "", 1), warn(`"~"`)},
		{"bare in json", jsonPod(`"meshplane.io/original-annotations": ""`), strings.Replace(jsonPod(""), `, "annotations": {}`, "", 1), warn(`""`)},
		{"block form in flow", pod(" {name: p, annotations: {meshplane.io/original-annotations: \"!!null\"}}"), pod(" {name: p}"), warn(`"!!null"`)},
	} {
		var out bytes.Buffer
		var warnings strings.Builder
		err := newInj(t, inject.Options{Uninject: true}).Stream(context.Background(), manifest.Inputs{Filenames: []string{"-"}},
			manifest.Env{Stdin: strings.NewReader(c.in)}, inject.Auto, &out, func(r inject.Result) {
				for _, w := range r.Warnings {
					warnings.WriteString("Warning: " + w + "\n")
				}
			})
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if out.String() != c.want || warnings.String() != c.warnings {
			t.Errorf("%s: got\n%s%s\nwant\n%s%s", c.name, warnings.String(), out.String(), c.warnings, c.want)
		}
	}
}

// uninject removes meshplane.io/inject, proxy-version and config.meshplane.io/*
// annotations, as Linkerd's uninject removes linkerd.io/* ones, but keeps the user's
// opt-out, meshplane.io/inject: disabled. A flow mapping in a block one is emptied
// in place.
func TestUninjectAnnotations(t *testing.T) {
	t.Parallel()
	pod := func(ann string) string {
		return "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  annotations:" + ann + "\nspec:\n  containers: [{name: a, image: b}]\n"
	}
	for _, c := range []struct{ name, in, want, report string }{
		{"disabled: not injected, config stays", pod("\n    meshplane.io/inject: disabled\n    config.meshplane.io/proxy-log-level: debug"),
			pod("\n    meshplane.io/inject: disabled\n    config.meshplane.io/proxy-log-level: debug"), "pod/p unchanged (not injected)\n"},
		{"enabled: config goes, disabled stays", pod("\n    meshplane.io/proxy-version: v1\n    config.meshplane.io/proxy-log-level: debug\n    team: web"),
			pod("\n    team: web"), "pod/p uninjected\n"},
		{"only disabled", pod(" {meshplane.io/inject: disabled}"), pod(" {meshplane.io/inject: disabled}"), "pod/p unchanged (not injected)\n"},
		{"flow emptied in place", pod(" {meshplane.io/inject: enabled, config.meshplane.io/opaque-ports: \"25\", }"), pod(" { }"), "pod/p uninjected\n"},
		{"flow, config alone is the user's", pod(" {config.meshplane.io/opaque-ports: \"25\", team: web}"), pod(" {config.meshplane.io/opaque-ports: \"25\", team: web}"), "pod/p unchanged (not injected)\n"},
		{"flow, user key stays", pod(" {meshplane.io/inject: enabled, config.meshplane.io/opaque-ports: \"25\", team: web}"), pod(" {team: web}"), "pod/p uninjected\n"},
		{"block emptied: the key goes", pod("\n    meshplane.io/proxy-version: v1\n    meshplane.io/inject: enabled"),
			strings.Replace(pod(""), "  annotations:\n", "", 1), "pod/p uninjected\n"},
	} {
		out, report := streamReport(t, newInj(t, inject.Options{Uninject: true}), c.in)
		if out != c.want || report != c.report {
			t.Errorf("%s: got %q\n%s\nwant %q\n%s", c.name, report, out, c.report, c.want)
		}
	}
}

// Injecting an injected workload again never touches the marker: --manual with a new
// version (mesh's containers rewritten) or new config, --manual over annotation mode,
// annotation mode with more config. Uninject of the result still gives x.
func TestReinjectKeepsMarker(t *testing.T) {
	t.Parallel()
	pod := func(meta string) string {
		return "apiVersion: v1\nkind: Pod\nmetadata:" + meta + "\nspec:\n  containers: [{name: a, image: b, ports: [{containerPort: 8080}]}]\n"
	}
	v3, v4 := manualFor(t, "v1.2.3"), manualFor(t, "v1.2.4")
	more := map[string]string{"config.meshplane.io/opaque-ports": "25", "config.meshplane.io/proxy-log-level": "debug"}
	for _, c := range []struct{ name, in, marker string }{
		{"bare", pod("\n  name: p\n  annotations:"), ""},
		{"NULL, comment", pod("\n  annotations: NULL # none\n  name: p"), "NULL"},
		{"{} in flow", pod(" {name: p, annotations: {}}"), "{}"},
		{"null in json", `{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "annotations": null}, "spec": {"containers": [{"name": "a", "image": "b"}]}}` + "\n", "null"},
	} {
		for _, step := range []struct {
			name        string
			first, then inject.Options
			action      string
		}{
			{"manual, new version", inject.Options{Manual: v3}, inject.Options{Manual: v4}, "updated"},
			{"manual, new config", inject.Options{Manual: v3}, inject.Options{Manual: v3, Config: more}, "updated"},
			{"annotation, then manual", inject.Options{}, inject.Options{Manual: v4, Config: more}, "injected"},
			{"annotation, more config", inject.Options{}, inject.Options{Config: more}, "injected"},
		} {
			name := c.name + ", " + step.name
			first, _ := streamReport(t, newInj(t, step.first), c.in)
			again, report := streamReport(t, newInj(t, step.then), first)
			if !strings.Contains(report, " "+step.action) {
				t.Errorf("%s: report %q", name, report)
			}
			checkExpected(t, c.in, again, step.then)
			if got := markerIn(t, again); got != c.marker {
				t.Errorf("%s: marker %q, want %q:\n%s", name, got, c.marker, again)
			}
			if n := strings.Count(again, inject.OriginalAnnotations); n != 1 {
				t.Errorf("%s: %d markers:\n%s", name, n, again)
			}
			if back, _ := streamReport(t, newInj(t, inject.Options{Uninject: true}), again); back != c.in {
				t.Errorf("%s: uninject:\n%s\nwant\n%s", name, back, c.in)
			}
		}
	}
}

// What is left of the exception: a pod template's metadata itself written as a null,
// or as {} inside a flow mapping (JSON included). Inject writes the annotations into
// it, and uninject, having no marker for metadata, removes the metadata key, which
// Kubernetes reads the same. (metadata: {} in a block mapping comes back as written.)
// A pod template's metadata written as a null, or as {} where uninject would delete
// it (in a flow mapping, in JSON), comes back as it was written: the marker's record
// says {"metadata": token}.
func TestUninjectNullMetadata(t *testing.T) {
	t.Parallel()
	deploy := func(tmpl string) string {
		return "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  selector: {matchLabels: {app: d}}\n  template:" + tmpl + "\n"
	}
	spec := "spec: {containers: [{name: a, image: b}]}"
	jsonDeploy := func(meta string) string {
		return `{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "spec": {"selector": {"matchLabels": {"app": "d"}}, "template": {` +
			meta + `"spec": {"containers": [{"name": "a", "image": "b"}]}}}}` + "\n"
	}
	for _, c := range []struct{ name, in, marker string }{
		{"bare, block", deploy("\n    metadata:\n    " + spec), `{"metadata":""}`},
		{"~, block", deploy("\n    metadata: ~\n    " + spec), `{"metadata":"~"}`},
		{"~, block, comment", deploy("\n    metadata: ~ # none\n    " + spec), `{"metadata":"~"}`},
		{"!!null, block", deploy("\n    " + spec + "\n    metadata: !!null"), `{"metadata":"!!null"}`},
		{"{} in flow", deploy(" {metadata: {}, " + spec + "}"), `{"metadata":"{}"}`},
		{"null in flow", deploy(" {metadata: null, " + spec + "}"), `{"metadata":"null"}`},
		{"bare in flow", deploy(" {metadata: , " + spec + "}"), `{"metadata":""}`},
		{"{} in json", jsonDeploy(`"metadata": {}, `), `{"metadata":"{}"}`},
		{"null in json", jsonDeploy(`"metadata": null, `), `{"metadata":"null"}`},
	} {
		for _, manual := range []bool{false, true} {
			opts := inject.Options{Config: map[string]string{"config.meshplane.io/proxy-log-level": "warn"}}
			if manual {
				opts.Manual = manualFor(t, "v1.2.3")
			}
			out, _ := streamReport(t, newInj(t, opts), c.in)
			checkExpected(t, c.in, out, opts)
			if m := markerIn(t, out); m != c.marker {
				t.Errorf("%s: marker %s, want %s:\n%s", c.name, m, c.marker, out)
			}
			if again, _ := streamReport(t, newInj(t, opts), out); again != out {
				t.Errorf("%s: re-inject changed it:\n%s", c.name, again)
			}
			if back, _ := streamReport(t, newInj(t, inject.Options{Uninject: true}), out); back != c.in {
				t.Errorf("%s (manual %v): uninject(inject(x)):\n%s\nwant\n%s\ninjected:\n%s", c.name, manual, back, c.in, out)
			}
		}
	}
}

// An anchored null is not filled, aliased or not: filling it would change what its
// aliases mean, or drop the anchor so uninject could not write it back. Annotation
// mode leaves the object as it is and warns, as it does for any node an alias refers
// to (so the round trip holds trivially); --manual, which fails on any object it
// cannot inject, fails naming the input, document, object and path, writing nothing.
func TestInjectRefusesAnchoredNull(t *testing.T) {
	t.Parallel()
	pod := func(meta string) string {
		return "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n" + meta + "spec: {containers: [{name: a, image: b}]}\n"
	}
	const msg = "cannot fill a null written with an anchor"
	for _, in := range []string{
		pod("  annotations: &a ~\n"),
		pod("  annotations: &a\n  labels: {x: *a}\n"),
		pod("  annotations: &a !!null null # c\n"),
		"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  selector: {matchLabels: {app: d}}\n  template:\n    metadata: &m\n    spec: {containers: [{name: a, image: b}]}\n",
	} {
		opts := inject.Options{Config: map[string]string{"config.meshplane.io/proxy-log-level": "warn"}}
		out, report := streamReport(t, newInj(t, opts), in)
		if out != in {
			t.Errorf("an anchored null was edited:\n%s", out)
		}
		if !strings.Contains(report, "skipped") || !strings.Contains(report, msg) {
			t.Errorf("report %q", report)
		}
		opts.Manual = manualFor(t, "v1.2.3")
		var buf bytes.Buffer
		err := newInj(t, opts).Stream(context.Background(), manifest.Inputs{Filenames: []string{"-"}}, manifest.Env{Stdin: strings.NewReader(in)}, inject.Auto, &buf, func(inject.Result) {})
		if err == nil || !strings.Contains(err.Error(), msg) || !strings.Contains(err.Error(), "stdin: document 1:") || buf.Len() != 0 {
			t.Errorf("--manual: %v, wrote %q", err, buf.String())
		}
	}
}
