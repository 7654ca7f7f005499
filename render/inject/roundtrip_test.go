package inject_test

import (
	"strings"
	"testing"

	"github.com/meshplane/mesh/render/inject"
)

// uninject(inject(x)) in annotation mode, for every state a pod template's
// annotations can be in: x byte for byte wherever YAML keeps a trace of the state,
// and the documented result where it does not (null annotations, {} in a flow
// mapping: the key goes).
func TestUninjectRoundTrip(t *testing.T) {
	t.Parallel()
	pod := func(meta string) string {
		return "apiVersion: v1\nkind: Pod\nmetadata:" + meta + "\nspec:\n  containers: [{name: a, image: b}]\n"
	}
	deploy := func(tmplMeta string) string {
		return "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  selector: {matchLabels: {app: d}}\n  template:\n" +
			tmplMeta + "    spec: {containers: [{name: a, image: b}]}\n"
	}
	same := ""
	for _, c := range []struct {
		name, in, want string
		opts           inject.Options
	}{
		{"absent, block metadata", pod("\n  name: p"), same, inject.Options{}},
		{"absent, flow metadata", pod(" {name: p}"), same, inject.Options{}},
		{"absent, flow metadata, config", pod(" {name: p}"), same, inject.Options{Config: map[string]string{"config.meshplane.io/proxy-log-level": "warn,mesh=debug"}}},
		{"absent, block metadata, config", pod("\n  name: p"), same, inject.Options{Config: map[string]string{"config.meshplane.io/opaque-ports": "3306,5432"}}},
		{"{} in block metadata", pod("\n  name: p\n  annotations: {}"), same, inject.Options{}},
		{"{ } in block metadata", pod("\n  annotations: { } # none yet\n  name: p"), same, inject.Options{}},
		{"multi-line {} in block metadata", pod("\n  name: p\n  annotations: {\n  }"), same, inject.Options{}},
		{"{} in block metadata, config", pod("\n  name: p\n  annotations: {}"), same, inject.Options{Config: map[string]string{"config.meshplane.io/opaque-ports": "3306,5432"}}},
		{"metadata: {} in a block template", deploy("    metadata: {}\n"), same, inject.Options{}},
		{"no metadata in a block template", deploy(""), same, inject.Options{}},
		{"user annotations, flow", pod("\n  name: p\n  annotations: {team: web}"), same, inject.Options{}},
		{"user annotations, block", pod("\n  name: p\n  annotations:\n    team: web"), same, inject.Options{}},
		{"metadata last, no final newline", "apiVersion: v1\nkind: Pod\nspec: {containers: [{name: a, image: b}]}\nmetadata:\n  name: p", same, inject.Options{}},
		{"annotations last, no final newline, crlf", "apiVersion: v1\r\nkind: Pod\r\nspec: {containers: [{name: a, image: b}]}\r\nmetadata:\r\n  name: p\r\n  annotations:\r\n    team: web",
			same, inject.Options{Config: map[string]string{"config.meshplane.io/opaque-ports": "3306,5432"}}},
		// YAML keeps no trace of these once filled: the key goes.
		{"{} in flow metadata", pod(" {name: p, annotations: {}}"), pod(" {name: p}"), inject.Options{}},
		{"null", pod("\n  name: p\n  annotations:"), pod("\n  name: p"), inject.Options{}},
		{"~", pod("\n  annotations: ~\n  name: p"), pod("\n  name: p"), inject.Options{}},
		{"null in flow", pod(" {name: p, annotations: null}"), pod(" {name: p}"), inject.Options{}},
		// A config annotation the input already had is removed with the others.
		{"config already there", pod("\n  name: p\n  annotations:\n    config.meshplane.io/proxy-log-level: debug\n    team: web"),
			pod("\n  name: p\n  annotations:\n    team: web"), inject.Options{}},
	} {
		want := c.want
		if want == same {
			want = c.in
		}
		out, _ := streamReport(t, newInj(t, c.opts), c.in)
		if !strings.Contains(out, inject.InjectAnnotation) {
			t.Errorf("%s: nothing injected:\n%s", c.name, out)
		}
		checkExpected(t, c.in, out, c.opts)
		back, report := streamReport(t, newInj(t, inject.Options{Uninject: true}), out)
		if back != want {
			t.Errorf("%s: uninject(inject(x)):\n%s\nwant\n%s\ninjected:\n%s", c.name, back, want, out)
		}
		if !strings.HasSuffix(report, " uninjected\n") {
			t.Errorf("%s: report %q", c.name, report)
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
		{"disabled stays", pod("\n    meshplane.io/inject: disabled\n    config.meshplane.io/proxy-log-level: debug"),
			pod("\n    meshplane.io/inject: disabled"), "pod/p uninjected\n"},
		{"only disabled", pod(" {meshplane.io/inject: disabled}"), pod(" {meshplane.io/inject: disabled}"), "pod/p unchanged (not injected)\n"},
		{"flow emptied in place", pod(" {meshplane.io/inject: enabled, config.meshplane.io/opaque-ports: \"25\", }"), pod(" { }"), "pod/p uninjected\n"},
		{"flow, user key stays", pod(" {config.meshplane.io/opaque-ports: \"25\", team: web}"), pod(" {team: web}"), "pod/p uninjected\n"},
		{"block emptied: the key goes", pod("\n    meshplane.io/proxy-version: v1\n    meshplane.io/inject: enabled"),
			strings.Replace(pod(""), "  annotations:\n", "", 1), "pod/p uninjected\n"},
	} {
		out, report := streamReport(t, newInj(t, inject.Options{Uninject: true}), c.in)
		if out != c.want || report != c.report {
			t.Errorf("%s: got %q\n%s\nwant %q\n%s", c.name, report, out, c.report, c.want)
		}
	}
}
