package inject

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/meshplane/mesh/internal/testing/golden"
	"github.com/meshplane/mesh/render/manifest"
)

func newInjector(t testing.TB, opts Options) *Injector {
	t.Helper()
	in, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

func stream(t testing.TB, in *Injector, inputs manifest.Inputs, stdin string, output string) (string, string, error) {
	t.Helper()
	var out bytes.Buffer
	var results []Result
	err := in.Stream(context.Background(), inputs, manifest.Env{Stdin: strings.NewReader(stdin)}, output, &out, func(r Result) { results = append(results, r) })
	sort.SliceStable(results, func(i, j int) bool { return results[i].Doc < results[j].Doc })
	var report strings.Builder
	for _, r := range results {
		for _, w := range r.Warnings {
			fmt.Fprintf(&report, "Warning: %s\n", w)
		}
	}
	for _, r := range results {
		fmt.Fprintln(&report, r)
	}
	return out.String(), report.String(), err
}

// Golden output and report for every fixture in testdata/in, default options plus one
// run with --namespaces and config annotations; each output injected again is unchanged.
func TestInjectGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/in/*")
	if len(files) == 0 {
		t.Fatal("no fixtures")
	}
	for _, variant := range []struct {
		name string
		opts Options
	}{
		{"default", Options{}},
		{"config", Options{Namespaces: true, Config: map[string]string{"config.meshplane.io/proxy-log-level": "warn,mesh=debug", "config.meshplane.io/opaque-ports": "3306,5432", "config.meshplane.io/skip-subnets": "10.0.0.0/8,192.168.0.0/16", "config.meshplane.io/http2-ports": "50051"}}},
	} {
		in := newInjector(t, variant.opts)
		for _, f := range files {
			name := variant.name + "/" + filepath.Base(f)
			t.Run(name, func(t *testing.T) {
				out, report, err := stream(t, in, manifest.Inputs{Filenames: []string{f}}, "", Auto)
				if err != nil {
					t.Fatal(err)
				}
				golden.Assert(t, "out/"+name, []byte(out))
				golden.Assert(t, "out/"+name+".report", []byte(report))
				// Idempotent: injecting the output changes nothing.
				tmp := filepath.Join(t.TempDir(), filepath.Base(f))
				if err := os.WriteFile(tmp, []byte(out), 0o644); err != nil {
					t.Fatal(err)
				}
				again, _, err := stream(t, in, manifest.Inputs{Filenames: []string{tmp}}, "", Auto)
				if err != nil || again != out {
					t.Errorf("second inject changed the output (err %v):\n%s", err, again)
				}
			})
		}
	}
}

// Documents inject does not change come out byte for byte: unknown kinds, CRDs,
// Services, refused workloads.
func TestUntouchedDocumentsAreByteIdentical(t *testing.T) {
	in := newInjector(t, Options{})
	for _, f := range []string{"testdata/in/refused.yaml", "testdata/in/injected.yaml"} {
		src, _ := os.ReadFile(f)
		out, _, err := stream(t, in, manifest.Inputs{Filenames: []string{f}}, "", Auto)
		if err != nil {
			t.Fatal(err)
		}
		// refused.yaml ends with a Deployment that is injected (with warnings).
		keep := len(src)
		if i := bytes.Index(src, []byte("  name: udp")); i > 0 {
			keep = i
		}
		if !strings.HasPrefix(out, string(src[:keep])) {
			t.Errorf("%s changed:\n%s", f, out)
		}
	}
	src, _ := os.ReadFile("testdata/in/kinds.yaml")
	widget := string(src[bytes.Index(src, []byte("apiVersion: example.com/v1")):])
	out, _, _ := stream(t, in, manifest.Inputs{Filenames: []string{"testdata/in/kinds.yaml"}}, "", Auto)
	if !strings.HasSuffix(out, widget) {
		t.Errorf("the custom resource changed")
	}
}

// Any invalid document fails the whole run: an error naming file, document and field,
// and nothing written.
func TestAllOrNothing(t *testing.T) {
	valid := "apiVersion: v1\nkind: Pod\nmetadata: {name: ok}\nspec: {containers: [{name: a, image: b}]}\n"
	for _, tc := range []struct {
		name, doc string
		want      []string
	}{
		{"bad YAML", "apiVersion: v1\nkind: Pod\nmetadata: {name: [\n", []string{"stdin: document 2"}},
		{"unknown field", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  replicaz: 2\n  selector: {}\n  template: {spec: {containers: []}}\n",
			[]string{"stdin: document 2", "Deployment/d", "replicaz"}},
		{"mistyped field", "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: a, image: b, ports: [{containerPort: eighty}]}]}\n",
			[]string{"stdin: document 2", "Pod/p", "containerPort"}},
		{"no kind", "apiVersion: v1\nmetadata: {name: x}\n", []string{"stdin: document 2", "kind"}},
		{"not an object", "- a\n- b\n", []string{"stdin: document 2", "not a Kubernetes object"}},
		{"template not a mapping", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec: {template: 3}\n", []string{"stdin: document 2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, _, err := stream(t, newInjector(t, Options{}), manifest.Inputs{Filenames: []string{"-"}}, valid+"---\n"+tc.doc, Auto)
			if err == nil {
				t.Fatalf("no error; output:\n%s", out)
			}
			if out != "" {
				t.Errorf("wrote %d bytes despite the error", len(out))
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestOutputFormats(t *testing.T) {
	in := newInjector(t, Options{})
	out, _, err := stream(t, in, manifest.Inputs{Filenames: []string{"testdata/in/comments.yaml"}}, "", JSON)
	if err != nil || !strings.HasPrefix(out, "{\n  \"apiVersion\": \"v1\",\n  \"kind\": \"List\"") || !strings.Contains(out, `"meshplane.io/inject": "enabled"`) {
		t.Errorf("-o json: %v\n%s", err, out)
	}
	out, _, err = stream(t, in, manifest.Inputs{Filenames: []string{"testdata/in/concatenated.json"}}, "", YAML)
	if err != nil || !strings.Contains(out, "meshplane.io/inject: enabled") || !strings.Contains(out, "\n---\n") {
		t.Errorf("-o yaml: %v\n%s", err, out)
	}
	out, _, err = stream(t, in, manifest.Inputs{Filenames: []string{"-"}}, `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"a","image":"b"}]}}`, JSON)
	if err != nil || !strings.HasPrefix(out, "{\n  \"apiVersion\": \"v1\",\n  \"kind\": \"Pod\"") {
		t.Errorf("-o json, one document: %v\n%s", err, out)
	}
}

func TestNewRejectsForeignConfigKeys(t *testing.T) {
	if _, err := New(Options{Config: map[string]string{"linkerd.io/inject": "enabled"}}); err == nil {
		t.Fatal("accepted a key outside config.meshplane.io/")
	}
}

// Fuzz the reader and inject together: any input gives output or an error, never a panic.
func FuzzInject(f *testing.F) {
	files, _ := filepath.Glob("testdata/in/*")
	for _, p := range files {
		b, _ := os.ReadFile(p)
		f.Add(b)
	}
	f.Add([]byte("apiVersion: v1\nkind: Pod\nmetadata:\n  annotations: null\n  name: x\n"))
	f.Add([]byte("apiVersion: v1\nkind: List\nitems: [{apiVersion: v1, kind: Pod, metadata: {name: p}}]\n"))
	f.Add([]byte("--- {apiVersion: v1, kind: Pod, metadata: {name: p, annotations: {}}}\n"))
	f.Add([]byte(`{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "annotations": null}}` + "\n"))
	f.Add([]byte("apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  annotations:\n    meshplane.io/original-annotations: \"!!null ~\" # c\n    meshplane.io/inject: enabled\n"))
	f.Add([]byte("apiVersion: v1\nkind: Pod\nmetadata: {name: p, annotations: {meshplane.io/original-annotations: \"x}, kind: Secret, y: {\"}}\n"))
	in := newInjector(f, Options{Config: map[string]string{"config.meshplane.io/proxy-log-level": "debug"}})
	un := newInjector(f, Options{Uninject: true})
	manual := newInjector(f, Options{Manual: manualOptions(f, "")})
	run := func(in *Injector, data []byte) ([]byte, error) {
		var out bytes.Buffer
		err := in.Stream(context.Background(), manifest.Inputs{Filenames: []string{"-"}}, manifest.Env{Stdin: bytes.NewReader(data)}, Auto, &out, nil)
		if err != nil && out.Len() > 0 {
			return nil, fmt.Errorf("wrote output despite error %w", err)
		}
		return out.Bytes(), err
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		done := make(chan struct{})
		go func() {
			defer close(done)
			for _, inj := range []*Injector{in, manual} {
				out, err := run(inj, data)
				if err != nil {
					continue
				}
				// What inject wrote must read back, and uninject must take it.
				if _, err := run(un, out); err != nil {
					t.Errorf("uninject of inject's output failed: %v\ninput %q\noutput %q", err, data, out)
				}
			}
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("no result after 5 s for input %q", data)
		}
	})
}
