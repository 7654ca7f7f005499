package upgrade_test

import (
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/meshplane/mesh/render/manifest"
)

func mustYAML(t *testing.T, v any) string {
	t.Helper()
	b, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func objects(t *testing.T, y string) []manifest.Object {
	t.Helper()
	objs, err := manifest.SplitYAML("test.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	return objs
}
