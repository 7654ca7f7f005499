package manifest

import (
	"bytes"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

func mk(apiVersion, kind, namespace, name string) Object {
	y := "apiVersion: " + apiVersion + "\nkind: " + kind + "\nmetadata:\n  name: " + name + "\n"
	if namespace != "" {
		y += "  namespace: " + namespace + "\n"
	}
	return Object{APIVersion: apiVersion, Kind: kind, Namespace: namespace, Name: name, YAML: []byte(y)}
}

type kustomization struct {
	APIVersion  string   `json:"apiVersion"`
	Kind        string   `json:"kind"`
	Resources   []string `json:"resources"`
	SortOptions struct {
		Order string `json:"order"`
	} `json:"sortOptions"`
}

func readKustomization(t *testing.T, data []byte) kustomization {
	t.Helper()
	if !bytes.HasPrefix(data, []byte(DirMarker+"\n")) {
		t.Errorf("kustomization.yaml does not start with the marker line:\n%s", data)
	}
	var k kustomization
	if err := yaml.UnmarshalStrict(data, &k); err != nil {
		t.Fatalf("kustomization.yaml: %v\n%s", err, data)
	}
	return k
}

func TestDirFiles(t *testing.T) {
	tests := []struct {
		name  string
		objs  []Object
		files []string // in order, kustomization.yaml last
	}{
		{
			name:  "no objects",
			files: []string{"kustomization.yaml"},
		},
		{
			name: "kind-name, lower case, in the order given",
			objs: []Object{
				mk("apps/v1", "Deployment", "mesh", "Destination"),
				mk("v1", "Namespace", "", "mesh"),
				mk("v1", "ConfigMap", "mesh", "config"),
			},
			files: []string{"deployment-destination.yaml", "namespace-mesh.yaml", "configmap-config.yaml", "kustomization.yaml"},
		},
		{
			name: "same kind and name in two namespaces",
			objs: []Object{
				mk("v1", "ServiceAccount", "mesh", "identity"),
				mk("v1", "ServiceAccount", "other", "identity"),
				mk("v1", "ServiceAccount", "mesh", "proxy"),
			},
			files: []string{"serviceaccount-mesh-identity.yaml", "serviceaccount-other-identity.yaml", "serviceaccount-proxy.yaml", "kustomization.yaml"},
		},
		{
			name: "same name, different kinds",
			objs: []Object{
				mk("rbac.authorization.k8s.io/v1", "Role", "mesh", "identity"),
				mk("rbac.authorization.k8s.io/v1", "RoleBinding", "mesh", "identity"),
			},
			files: []string{"role-identity.yaml", "rolebinding-identity.yaml", "kustomization.yaml"},
		},
		{
			name: "characters outside [a-z0-9._-] become _",
			objs: []Object{
				mk("rbac.authorization.k8s.io/v1", "ClusterRole", "", "system:mesh/identity"),
				mk("v1", "ConfigMap", "mesh", "a.b_c-d"),
			},
			files: []string{"clusterrole-system_mesh_identity.yaml", "configmap-a.b_c-d.yaml", "kustomization.yaml"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files, order, err := DirFiles(tt.objs)
			if err != nil {
				t.Fatalf("DirFiles: %v", err)
			}
			if !slices.Equal(order, tt.files) {
				t.Errorf("order = %q, want %q", order, tt.files)
			}
			if got := slices.Sorted(maps.Keys(files)); !slices.Equal(got, slices.Sorted(slices.Values(tt.files))) {
				t.Errorf("files = %q, want %q", got, tt.files)
			}
			for i, o := range tt.objs {
				if !bytes.Equal(files[order[i]], o.YAML) {
					t.Errorf("%s holds %q, want %q", order[i], files[order[i]], o.YAML)
				}
			}
			k := readKustomization(t, files["kustomization.yaml"])
			if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" {
				t.Errorf("kustomization is %s %s", k.APIVersion, k.Kind)
			}
			if !slices.Equal(k.Resources, order[:len(order)-1]) {
				t.Errorf("resources = %q, want %q", k.Resources, order[:len(order)-1])
			}
			if k.SortOptions.Order != "fifo" {
				t.Errorf("sortOptions.order = %q, want fifo", k.SortOptions.Order)
			}
		})
	}
}

func TestDirFilesCollisions(t *testing.T) {
	tests := []struct {
		name string
		objs []Object
	}{
		{"the same object twice", []Object{mk("v1", "ConfigMap", "ns", "a"), mk("v1", "ConfigMap", "ns", "a")}},
		{"names equal once sanitized", []Object{mk("v1", "ConfigMap", "ns", "a:b"), mk("v1", "ConfigMap", "ns", "a_b")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := DirFiles(tt.objs)
			if err == nil || !strings.Contains(err.Error(), "two objects would be written to configmap-") {
				t.Errorf("DirFiles error = %v, want a collision naming the file", err)
			}
		})
	}
}

// Whatever the names, no object's file is silently overwritten by another's: either
// every object gets its own file or DirFiles fails.
func TestDirFilesNeverOverwrites(t *testing.T) {
	sets := [][]Object{
		// the kind-namespace-name fallback of two objects equals another's kind-name
		{mk("v1", "ConfigMap", "x", "ns-a"), mk("v1", "ConfigMap", "ns", "a"), mk("v1", "ConfigMap", "y", "a")},
		// same kind, namespace and name in two API groups
		{mk("v1", "Service", "mesh", "web"), mk("serving.knative.dev/v1", "Service", "mesh", "web")},
		// case differences only
		{mk("v1", "ConfigMap", "ns", "A"), mk("v1", "ConfigMap", "ns", "a")},
	}
	for i, objs := range sets {
		files, order, err := DirFiles(objs)
		if err != nil {
			continue
		}
		if len(files) != len(objs)+1 || len(order) != len(objs)+1 {
			t.Errorf("set %d: %d files for %d objects: %q", i, len(files), len(objs), order)
		}
	}
}

func listDir(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func checkDir(t *testing.T, dir string, objs []Object) {
	t.Helper()
	files, _, err := DirFiles(objs)
	if err != nil {
		t.Fatal(err)
	}
	got := listDir(t, dir)
	if want := slices.Sorted(maps.Keys(files)); !slices.Equal(got, want) {
		t.Fatalf("%s holds %q, want %q", dir, got, want)
	}
	for name, want := range files {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(data, want) {
			t.Errorf("%s = %q, want %q", name, data, want)
		}
	}
}

// checkNoLeftovers checks that the parent holds only the names given: no temporary or
// old directory stays behind.
func checkNoLeftovers(t *testing.T, parent string, want ...string) {
	t.Helper()
	if got := listDir(t, parent); !slices.Equal(got, want) {
		t.Errorf("%s holds %q, want only %q", parent, got, want)
	}
}

func TestWriteDirNew(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "a", "b", "out")
	objs := []Object{mk("v1", "Namespace", "", "mesh"), mk("v1", "ConfigMap", "mesh", "config")}
	if err := WriteDir(dir, objs); err != nil {
		t.Fatalf("WriteDir: %v", err)
	}
	checkDir(t, dir, objs)
	checkNoLeftovers(t, filepath.Join(root, "a", "b"), "out")
	st, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o755 {
		t.Errorf("directory mode = %v, want 0755", st.Mode().Perm())
	}
	fst, err := os.Stat(filepath.Join(dir, "namespace-mesh.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if want := 0o644 &^ currentUmask(); fst.Mode().Perm() != want {
		t.Errorf("file mode = %v, want 0644 (less umask)", fst.Mode().Perm())
	}
}

func currentUmask() os.FileMode {
	dir, err := os.MkdirTemp("", "umask")
	if err != nil {
		return 0o022
	}
	defer os.RemoveAll(dir)
	p := filepath.Join(dir, "f")
	if err := os.WriteFile(p, nil, 0o777); err != nil {
		return 0o022
	}
	st, err := os.Stat(p)
	if err != nil {
		return 0o022
	}
	return 0o777 &^ st.Mode().Perm()
}

func TestWriteDirIntoEmptyDir(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "out")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	objs := []Object{mk("v1", "ConfigMap", "mesh", "config")}
	if err := WriteDir(dir+string(filepath.Separator), objs); err != nil { // a trailing slash too
		t.Fatalf("WriteDir into an empty directory: %v", err)
	}
	checkDir(t, dir, objs)
	checkNoLeftovers(t, root, "out")
}

func TestWriteDirReplacesItsOwn(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "out")
	first := []Object{mk("v1", "Namespace", "", "mesh"), mk("v1", "ConfigMap", "mesh", "old")}
	if err := WriteDir(dir, first); err != nil {
		t.Fatal(err)
	}
	// A file added by hand is part of the directory that gets replaced.
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	second := []Object{mk("v1", "Namespace", "", "mesh"), mk("v1", "Secret", "mesh", "new")}
	second[0].YAML = append(second[0].YAML, "  labels:\n    v: \"2\"\n"...)
	if err := WriteDir(dir, second); err != nil {
		t.Fatalf("WriteDir over its own output: %v", err)
	}
	checkDir(t, dir, second) // configmap-old.yaml and notes.txt are gone
	checkNoLeftovers(t, root, "out")

	// And again, with nothing: the directory holds only the kustomization.
	if err := WriteDir(dir, nil); err != nil {
		t.Fatal(err)
	}
	checkDir(t, dir, nil)
	checkNoLeftovers(t, root, "out")
}

func TestWriteDirRefusesForeign(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
	}{
		{"unrelated file", map[string]string{"README.md": "mine"}},
		{"hand-written kustomization", map[string]string{"kustomization.yaml": "resources:\n- a.yaml\n", "a.yaml": cm("a")}},
		{"marker not on the first line", map[string]string{"kustomization.yaml": "# mine\n" + DirMarker + "\nresources: []\n"}},
		{"only a subdirectory", map[string]string{"sub/x.yaml": "x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			dir := filepath.Join(root, "out")
			for name, data := range tt.files {
				p := filepath.Join(dir, name)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			err := WriteDir(dir, []Object{mk("v1", "ConfigMap", "mesh", "config")})
			if err == nil {
				t.Fatal("WriteDir replaced a directory it did not write")
			}
			if !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "not written by mesh") {
				t.Errorf("error %q does not name the directory and the reason", err)
			}
			for name, data := range tt.files {
				got, err := os.ReadFile(filepath.Join(dir, name))
				if err != nil || string(got) != data {
					t.Errorf("%s changed: %q, %v", name, got, err)
				}
			}
			checkNoLeftovers(t, root, "out")
		})
	}
}

func TestWriteDirOverFile(t *testing.T) {
	root := t.TempDir()
	path := filepath.Join(root, "out")
	if err := os.WriteFile(path, []byte("a file"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteDir(path, []Object{mk("v1", "ConfigMap", "mesh", "config")}); err == nil {
		t.Fatal("WriteDir replaced a regular file")
	}
	if got, err := os.ReadFile(path); err != nil || string(got) != "a file" {
		t.Errorf("file changed: %q, %v", got, err)
	}
	checkNoLeftovers(t, root, "out")
}

func TestWriteDirCollisionWritesNothing(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "out")
	err := WriteDir(dir, []Object{mk("v1", "ConfigMap", "ns", "a"), mk("v1", "ConfigMap", "ns", "a")})
	if err == nil {
		t.Fatal("WriteDir of colliding objects succeeded")
	}
	checkNoLeftovers(t, root)
}

// The directory builds with kustomize, and the resources come out in the order they
// were given (sortOptions fifo), not kustomize's legacy order.
func TestWriteDirKustomizeBuild(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	// Deliberately not in kustomize's legacy order (which would put the Namespace first).
	objs := []Object{
		mk("apps/v1", "Deployment", "mesh", "web"),
		mk("v1", "ConfigMap", "mesh", "config"),
		mk("v1", "Namespace", "", "mesh"),
		mk("v1", "ServiceAccount", "mesh", "web"),
		mk("v1", "ServiceAccount", "other", "web"),
		mk("rbac.authorization.k8s.io/v1", "ClusterRole", "", "system:web"),
	}
	objs[1].YAML = append(objs[1].YAML, "data:\n  key: |\n    line\n    ---\n    more\n"...)
	if err := WriteDir(dir, objs); err != nil {
		t.Fatal(err)
	}
	// With the reorder option unspecified (kustomize build's default), kustomize falls
	// back to its legacy order unless the kustomization sets sortOptions.
	opts := krusty.MakeDefaultOptions()
	opts.Reorder = krusty.ReorderOptionUnspecified
	k := krusty.MakeKustomizer(opts)
	rm, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build: %v", err)
	}
	res := rm.Resources()
	if len(res) != len(objs) {
		t.Fatalf("kustomize built %d resources, want %d", len(res), len(objs))
	}
	for i, r := range res {
		got := Object{APIVersion: r.GetApiVersion(), Kind: r.GetKind(), Namespace: r.GetNamespace(), Name: r.GetName()}
		if got.String() != objs[i].String() || got.APIVersion != objs[i].APIVersion {
			t.Errorf("resource %d = %s (%s), want %s (%s)", i, got, got.APIVersion, objs[i], objs[i].APIVersion)
		}
	}
	data, err := res[1].GetFieldValue("data.key")
	if err != nil || data != "line\n---\nmore\n" {
		t.Errorf("ConfigMap data.key = %q, %v", data, err)
	}
}
