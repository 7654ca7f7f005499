package prune_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshplane/mesh/lifecycle/prune"
	"github.com/meshplane/mesh/render/install"
	"github.com/meshplane/mesh/render/manifest"
)

func render(t *testing.T, o install.Options) []manifest.Object {
	t.Helper()
	o.Version = "v1.2.3"
	res, err := install.Render(o, fileReader{})
	if err != nil {
		t.Fatal(err)
	}
	return res.Objects
}

// mesh install holds two sets (CRDs, control plane); each half holds its own.
func TestSets(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		part install.Part
		want []string
	}{
		{install.All, []string{"ConfigMap/kube-system/mesh-crds-applyset", "ConfigMap/mesh-system/mesh-control-plane-applyset"}},
		{install.CRDs, []string{"ConfigMap/kube-system/mesh-crds-applyset"}},
		{install.ControlPlane, []string{"ConfigMap/mesh-system/mesh-control-plane-applyset"}},
	} {
		objs := render(t, install.Options{Part: tc.part})
		sets, err := prune.Sets(objs)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		members := 0
		for _, s := range sets {
			got = append(got, s.Parent.String())
			members += len(s.Members)
		}
		if strings.Join(got, " ") != strings.Join(tc.want, " ") || members != len(objs)-len(sets) {
			t.Errorf("%s: sets %v with %d members, want %v and %d", tc.part, got, members, tc.want, len(objs)-len(sets))
		}
	}
}

func TestSetsErrors(t *testing.T) {
	t.Parallel()
	cp := render(t, install.Options{Part: install.ControlPlane})
	edit := func(name, old, new string) []manifest.Object {
		out := make([]manifest.Object, len(cp))
		copy(out, cp)
		for i, o := range out {
			if o.Name == name {
				edited, err := manifest.SplitYAML(o.Source, bytes.Replace(o.YAML, []byte(old), []byte(new), 1))
				if err != nil {
					t.Fatal(err)
				}
				out[i] = edited[0]
			}
		}
		return out
	}
	for _, tc := range []struct {
		name string
		objs []manifest.Object
		want string
	}{
		{"no parent", without(cp, "ConfigMap/mesh-system/"+install.ControlPlaneApplySetName), "whose parent is not in the input"},
		{"another tool", edit(install.ControlPlaneApplySetName, `tooling: "mesh/`, `tooling: "kubectl/`), `managed by "kubectl"`},
		{"forged ID", edit(install.ControlPlaneApplySetName, "id: applyset-", "id: applyset-x"), "but the ID of this parent is"},
		{"kind not listed", edit(install.ControlPlaneApplySetName, "Deployment.apps,", ""), "is not in the applyset.kubernetes.io/contains-group-kinds annotation"},
		{"outside the namespaces", edit("mesh-identity", "namespace: mesh-system", "namespace: elsewhere"), "namespace elsewhere is outside its ApplySet"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := prune.Sets(tc.objs)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
	// Nothing to go by: no parent at all is its own error, before the cluster.
	unlabelled := render(t, install.Options{WithoutApplySet: true})
	if _, err := prune.Candidates(context.Background(), nil, unlabelled); !errors.Is(err, prune.ErrNoApplySet) {
		t.Errorf("without an ApplySet: %v", err)
	}
}

// mesh install -o json (a v1 List) reads as the YAML render does: the same sets.
func TestReadList(t *testing.T) {
	t.Parallel()
	objs := render(t, install.Options{})
	var list bytes.Buffer
	if err := manifest.WriteJSONList(&list, objs); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "mesh.json")
	if err := os.WriteFile(path, list.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	read, err := prune.Read(context.Background(), manifest.Inputs{Filenames: []string{path}}, manifest.Env{})
	if err != nil {
		t.Fatal(err)
	}
	if len(read) != len(objs) {
		t.Fatalf("read %d objects, rendered %d", len(read), len(objs))
	}
	sets, err := prune.Sets(read)
	if err != nil {
		t.Fatal(err)
	}
	if len(sets) != 2 || len(sets[0].Members)+len(sets[1].Members) != len(objs)-2 {
		t.Errorf("%d sets", len(sets))
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := prune.Read(context.Background(), manifest.Inputs{Filenames: []string{bad}}, manifest.Env{}); err == nil || !strings.Contains(err.Error(), bad+": document 1 (ConfigMap): metadata.name is required") {
		t.Errorf("error %v", err)
	}
}
