package inject

import (
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/meshplane/mesh/internal/testing/golden"
	"github.com/meshplane/mesh/render/install"
	"github.com/meshplane/mesh/render/manifest"
)

func manualOptions(t testing.TB, anchorsFile string) *Manual {
	t.Helper()
	v, err := install.EffectiveValues(install.Options{Version: "v1.2.3", TrustAnchorsFile: anchorsFile}, readerFor{})
	if err != nil {
		t.Fatal(err)
	}
	m := &Manual{Version: "v1.2.3", Namespace: install.DefaultNamespace, Values: v}
	if anchorsFile != "" { // as mesh inject --identity-trust-anchors-file gives them
		b, err := os.ReadFile(anchorsFile)
		if err != nil {
			t.Fatal(err)
		}
		m.TrustAnchorsPEM = string(b)
	}
	return m
}

func TestManualGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/in/*.yaml")
	for _, variant := range []struct {
		name string
		m    *Manual
	}{
		{"manual", manualOptions(t, "")},
		{"manual-anchors", manualOptions(t, "../install/testdata/pki/ca.crt")},
	} {
		in := newInjector(t, Options{Manual: variant.m})
		for _, f := range files {
			name := variant.name + "/" + filepath.Base(f)
			t.Run(name, func(t *testing.T) {
				out, report, err := stream(t, in, manifest.Inputs{Filenames: []string{f}}, "", Auto)
				if err != nil {
					t.Fatal(err)
				}
				golden.Assert(t, "out/"+name, []byte(out))
				golden.Assert(t, "out/"+name+".report", []byte(report))
			})
		}
	}
}

// uninject(inject(x)) equals x structurally, in both modes; inject is idempotent; and
// uninject of something never injected changes nothing.
func TestRoundTrip(t *testing.T) {
	files, _ := filepath.Glob("testdata/in/*")
	modes := map[string]Options{"annotation": {}, "manual": {Manual: manualOptions(t, "")}, "manual-anchors": {Manual: manualOptions(t, "../install/testdata/pki/ca.crt")}}
	un := newInjector(t, Options{Uninject: true})
	for mode, opts := range modes {
		in := newInjector(t, opts)
		for _, f := range files {
			if f == "testdata/in/injected.yaml" {
				continue // already injected: uninject rightly removes what it holds
			}
			t.Run(mode+"/"+filepath.Base(f), func(t *testing.T) {
				src, _ := os.ReadFile(f)
				injected, _, err := stream(t, in, manifest.Inputs{Filenames: []string{f}}, "", Auto)
				if err != nil {
					t.Fatal(err)
				}
				tmp := filepath.Join(t.TempDir(), filepath.Base(f))
				_ = os.WriteFile(tmp, []byte(injected), 0o644)
				again, _, err := stream(t, in, manifest.Inputs{Filenames: []string{tmp}}, "", Auto)
				if err != nil || again != injected {
					t.Errorf("inject is not idempotent (%v)", err)
				}
				back, _, err := stream(t, un, manifest.Inputs{Filenames: []string{tmp}}, "", Auto)
				if err != nil {
					t.Fatal(err)
				}
				want, got := structure(t, string(src)), structure(t, back)
				if !reflect.DeepEqual(want, got) {
					t.Errorf("uninject(inject(x)) != x:\n%s", back)
				}
				// Never-injected input is left byte for byte.
				plain, _, err := stream(t, un, manifest.Inputs{Filenames: []string{f}}, "", Auto)
				if err != nil || plain != string(src) {
					t.Errorf("uninject changed a document that was not injected (%v):\n%s", err, plain)
				}
			})
		}
	}
}

// structure parses YAML or JSON documents into plain values.
func structure(t *testing.T, s string) []any {
	t.Helper()
	var out []any
	err := manifest.Inputs{Filenames: []string{"-"}}.Each(t.Context(), manifest.Env{Stdin: strings.NewReader(s)}, func(d manifest.Doc) error {
		var v any
		if err := yaml.Unmarshal(d.Raw, &v); err != nil {
			return err
		}
		out = append(out, dropNulls(v))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

type readerFor struct{}

func (readerFor) ReadFile(name string) ([]byte, error) { return os.ReadFile(name) }
func (readerFor) Stdin() io.Reader                     { return strings.NewReader("") }

// dropNulls removes null map values: to Kubernetes, `key:` and no key are the same.
func dropNulls(v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, x := range t {
			if x != nil {
				out[k] = dropNulls(x)
			}
		}
		return out
	case []any:
		for i := range t {
			t[i] = dropNulls(t[i])
		}
	}
	return v
}

func TestImageTag(t *testing.T) {
	for image, want := range map[string]string{
		"ghcr.io/meshplane/proxy:v1.2.3": "v1.2.3",
		"proxy:v1":                       "v1",
		"registry:5000/proxy":            "",
		"registry:5000/proxy:v2":         "v2",
		"proxy@sha256:abc":               "",
		"proxy:v3@sha256:abc":            "v3",
		"proxy":                          "",
	} {
		if got := ImageTag(image); got != want {
			t.Errorf("ImageTag(%q) = %q, want %q", image, got, want)
		}
	}
}

// config.meshplane.io/http2-ports reaches the proxy as MESH_PROXY_HTTP2_PORTS, and
// only when set (every other proxy's env stays as it was).
func TestManualHTTP2Ports(t *testing.T) {
	const dep = `apiVersion: apps/v1
kind: Deployment
metadata: {name: api}
spec:
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec:
      containers: [{name: api, image: api:1, ports: [{containerPort: 50051}]}]
`
	for _, cfg := range []string{"50051", ""} {
		opts := Options{Manual: manualOptions(t, "")}
		if cfg != "" {
			opts.Config = map[string]string{"config.meshplane.io/http2-ports": cfg}
		}
		out, _, err := stream(t, newInjector(t, opts), manifest.Inputs{Filenames: []string{"-"}}, dep, Auto)
		if err != nil {
			t.Fatal(err)
		}
		_, after, got := strings.Cut(out, "name: MESH_PROXY_HTTP2_PORTS\n")
		value, _, _ := strings.Cut(after, "\n")
		if got != (cfg != "") || got && strings.TrimSpace(value) != `value: "`+cfg+`"` {
			t.Errorf("http2-ports %q: env set %v (%q)", cfg, got, value)
		}
	}
}
