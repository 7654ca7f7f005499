package install

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/meshplane/mesh/render/manifest"
	"github.com/meshplane/mesh/render/values"
	"github.com/meshplane/mesh/templates"
)

// `helm template` of the same chart directory with the same values gives the same
// objects as `mesh install`. Helm is the real CLI, pinned in go.mod as a tool.
func TestHelmTemplateParity(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the helm CLI (go tool helm)")
	}
	for _, tc := range renderCases {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.opts
			o.Version = testVersion
			ns := o.Namespace
			if ns == "" {
				ns = DefaultNamespace
			}
			ours := render(t, o).Objects

			var theirs []manifest.Object
			for _, chart := range []string{templates.CRDs, templates.ControlPlane} {
				if (chart == templates.CRDs && o.Part == ControlPlane) || (chart == templates.ControlPlane && o.Part == CRDs) {
					continue
				}
				args := []string{"tool", "helm", "template", ReleaseName, stampedChart(t, chart, testVersion), "--namespace", ns}
				if chart == templates.ControlPlane {
					// The user's values as mesh merged them, before chart defaults: what a
					// user would pass to helm with -f.
					_, merged, _, err := controlPlaneValues(&o, fileReader{})
					if err != nil {
						t.Fatal(err)
					}
					b, err := values.YAML(merged)
					if err != nil {
						t.Fatal(err)
					}
					vf := filepath.Join(t.TempDir(), "values.yaml")
					if err := os.WriteFile(vf, b, 0o644); err != nil {
						t.Fatal(err)
					}
					args = append(args, "-f", vf)
				}
				cmd := exec.Command("go", args...)
				var stderr bytes.Buffer
				cmd.Stderr = &stderr
				out, err := cmd.Output()
				if err != nil {
					t.Fatalf("helm template %s: %v\n%s", chart, err, stderr.String())
				}
				objs, err := manifest.SplitYAML("helm template "+chart, out)
				if err != nil {
					t.Fatal(err)
				}
				// The charts leave the ApplySet to the CLI (Helm tracks its releases
				// itself): mesh's post-render on Helm's output gives mesh's render.
				o := Options{Version: testVersion}
				if chart == templates.CRDs {
					objs, err = withApplySet(o, CRDsApplySet(), crdKinds, objs)
				} else {
					objs, err = withApplySet(o, ControlPlaneApplySet(ns), controlPlaneKinds, objs)
				}
				if err != nil {
					t.Fatal(err)
				}
				theirs = append(theirs, objs...)
			}
			if len(ours) != len(theirs) {
				t.Fatalf("mesh rendered %d objects, helm %d", len(ours), len(theirs))
			}
			byID := map[string]manifest.Object{}
			for _, h := range theirs {
				byID[h.String()] = h
			}
			for _, m := range ours {
				h, ok := byID[m.String()]
				if !ok {
					t.Errorf("helm did not render %s", m)
					continue
				}
				if a, b := canonical(t, m), canonical(t, h); a != b {
					t.Errorf("%s differs:\nmesh: %s\nhelm: %s", m, a, b)
				}
			}
		})
	}
}

// stampedChart copies an embedded chart to a directory with appVersion set to version,
// as the release stamps the chart it publishes.
func stampedChart(t *testing.T, name, version string) string {
	t.Helper()
	ch, err := templates.Chart(name)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), name)
	if err := os.CopyFS(dir, ch); err != nil {
		t.Fatal(err)
	}
	meta, err := os.ReadFile(filepath.Join(dir, "Chart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	meta = regexp.MustCompile(`(?m)^appVersion: .*$`).ReplaceAll(meta, []byte("appVersion: "+version))
	if err := os.WriteFile(filepath.Join(dir, "Chart.yaml"), meta, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// canonical is the object as compact JSON with sorted keys.
func canonical(t *testing.T, o manifest.Object) string {
	t.Helper()
	j, err := o.JSON()
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(j, &v); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(v)
	return string(b)
}
