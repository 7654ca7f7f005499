package diff

import (
	"context"
	"strings"
	"testing"

	"github.com/meshplane/mesh/render/manifest"
)

func TestRead(t *testing.T) {
	t.Parallel()
	read := func(text string) ([]Object, error) {
		return Read(context.Background(), manifest.Inputs{Filenames: []string{"-"}}, manifest.Env{Stdin: strings.NewReader(text)})
	}
	objs, err := read("# a comment\n---\napiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: a, namespace: ns1}, data: {x: '1'}}\n- null\n- {apiVersion: v1, kind: Secret, metadata: {name: b}}\n---\n{\"apiVersion\": \"v1\", \"kind\": \"Service\", \"metadata\": {\"name\": \"c\"}, \"spec\": {\"ports\": [{\"port\": 80}]}}\n")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, o := range objs {
		names = append(names, o.String()+" @ "+o.Source)
	}
	want := "ConfigMap/ns1/a @ stdin: document 1, items[0]|Secret/b @ stdin: document 1, items[2]|Service/c @ stdin: document 2"
	if got := strings.Join(names, "|"); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	// Integers decode as the API server's JSON does.
	if p := objs[2].Body["spec"].(map[string]any)["ports"].([]any)[0].(map[string]any)["port"]; p != int64(80) {
		t.Errorf("port %T %v, want int64 80", p, p)
	}
	for text, msg := range map[string]string{
		"kind: ConfigMap\nmetadata: {name: a}\n":                         "stdin: document 1: apiVersion and kind are required",
		"apiVersion: v1\nkind: ConfigMap\nmetadata: {generateName: a}\n": "stdin: document 1 (ConfigMap): metadata.name is required",
		"apiVersion: v1\nkind: List\nitems: [1]\n":                       "stdin: document 1: items[0] is not an object",
		"- a\n- b\n": "stdin: document 1: not a Kubernetes object",
	} {
		if _, err := read(text); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%q: %v, want %q", text, err, msg)
		}
	}
}
