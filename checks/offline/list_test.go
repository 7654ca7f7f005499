package offline

import (
	"context"
	"strings"
	"testing"

	"github.com/meshplane/mesh/render/manifest"
)

// A List's null items (kubectl and other tools emit them) are skipped, as kubectl
// skips them, in YAML and JSON; the other items are read.
func TestListNullItems(t *testing.T) {
	t.Parallel()
	cm := `{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "default"}}`
	for name, in := range map[string]string{
		"yaml": "apiVersion: v1\nkind: List\nitems:\n- null\n- " + cm + "\n-\n- ~\n",
		"json": `{"apiVersion": "v1", "kind": "List", "items": [null, ` + cm + `, null]}`,
	} {
		s, err := Load(context.Background(), manifest.Inputs{Filenames: []string{"-"}}, manifest.Env{Stdin: strings.NewReader(in)}, testOptions)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if s.Count != 1 {
			t.Errorf("%s: read %d objects, want the one ConfigMap", name, s.Count)
		}
	}
}
