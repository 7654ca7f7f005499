package inject_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/meshplane/mesh/render/inject"
	"github.com/meshplane/mesh/render/manifest"
)

// Mesh annotations x already had come back: the marker's record says what inject
// added and the original text of what it changed, through re-injects with other flags.
func TestUninjectKeepsConfigAnnotations(t *testing.T) {
	t.Parallel()
	pod := func(ann string) string {
		return "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  annotations:\n" + ann + "spec: {containers: [{name: a, image: b}]}\n"
	}
	const ports = "config.meshplane.io/opaque-ports"
	const level = "config.meshplane.io/proxy-log-level"
	in := pod("    " + ports + ": '25' # mine\n    team: web\n")
	steps := []struct {
		config map[string]string
		marker string
	}{
		{nil, `{"added":["meshplane.io/inject"]}`},
		{map[string]string{level: "warn"}, `{"added":["config.meshplane.io/proxy-log-level","meshplane.io/inject"]}`},
		{map[string]string{ports: "3306"}, `{"added":["config.meshplane.io/proxy-log-level","meshplane.io/inject"],"changed":{"config.meshplane.io/opaque-ports":"'25'"}}`},
		{map[string]string{ports: "4444", level: "debug"}, `{"added":["config.meshplane.io/proxy-log-level","meshplane.io/inject"],"changed":{"config.meshplane.io/opaque-ports":"'25'"}}`},
	}
	cur := in
	for i, s := range steps {
		opts := inject.Options{Config: s.config}
		out, _ := streamReport(t, newInj(t, opts), cur)
		if m := markerIn(t, out); m != s.marker {
			t.Fatalf("step %d: marker %s, want %s:\n%s", i, m, s.marker, out)
		}
		if again, _ := streamReport(t, newInj(t, opts), out); again != out {
			t.Fatalf("step %d: inject is not idempotent:\n%s", i, again)
		}
		back, report := streamReport(t, newInj(t, inject.Options{Uninject: true}), out)
		if back != in {
			t.Fatalf("step %d: uninject:\n%s\nwant\n%s\ninjected:\n%s", i, back, in, out)
		}
		if strings.Contains(report, "Warning") {
			t.Errorf("step %d: %s", i, report)
		}
		cur = out
	}
	// Inject straight away with an override: the same record, x back.
	out, _ := streamReport(t, newInj(t, inject.Options{Config: map[string]string{ports: "3306"}}), in)
	if back, _ := streamReport(t, newInj(t, inject.Options{Uninject: true}), out); back != in {
		t.Errorf("override: uninject:\n%s\nwant\n%s", back, in)
	}
}

// A record that is edited or not a record is never written into the document: an
// unparsable one, or a changed text that is not one string scalar, gives a warning,
// and what it would have restored goes as without a record.
func TestUninjectEditedRecord(t *testing.T) {
	t.Parallel()
	pod := func(marker string) string {
		return "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  annotations:\n    meshplane.io/inject: enabled\n    config.meshplane.io/opaque-ports: \"3306\"\n" +
			"    meshplane.io/original-annotations: '" + marker + "'\nspec: {containers: [{name: a, image: b}]}\n"
	}
	bare := "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec: {containers: [{name: a, image: b}]}\n"
	for _, c := range []struct{ name, marker, want, warning string }{
		{"not json", `{"added": [`, bare, "is not a record inject writes"},
		{"unknown field", `{"removed":["x"]}`, bare, "is not a record inject writes"},
		{"injection in changed", `{"added":["meshplane.io/inject"],"changed":{"config.meshplane.io/opaque-ports":"1\nkind: Secret"}}`, bare, "is not a string scalar"},
		{"a mapping in changed", `{"added":["meshplane.io/inject"],"changed":{"config.meshplane.io/opaque-ports":"{a: b}"}}`, bare, "is not a string scalar"},
		{"kept", `{"added":["meshplane.io/inject"]}`, strings.Replace(bare, "  name: p\n", "  name: p\n  annotations:\n    config.meshplane.io/opaque-ports: \"3306\"\n", 1), ""},
	} {
		var out bytes.Buffer
		var report strings.Builder
		err := newInj(t, inject.Options{Uninject: true}).Stream(context.Background(), manifest.Inputs{Filenames: []string{"-"}},
			manifest.Env{Stdin: strings.NewReader(pod(c.marker))}, inject.Auto, &out, func(r inject.Result) {
				for _, w := range r.Warnings {
					report.WriteString("Warning: " + w + "\n")
				}
			})
		if back := out.String(); err != nil || back != c.want {
			t.Errorf("%s: %v, got\n%s\nwant\n%s", c.name, err, out.String(), c.want)
		}
		if w := report.String(); c.warning != "" && !strings.Contains(w, c.warning) || c.warning == "" && w != "" {
			t.Errorf("%s: report %q", c.name, report.String())
		}
	}
}
