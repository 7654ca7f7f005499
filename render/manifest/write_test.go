package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

const stream = `# Source: chart/templates/ns.yaml
apiVersion: v1
kind: Namespace
metadata:
  name: mesh
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: mesh
spec:
  replicas: 2
  template:
    spec:
      containers:
      - name: web
        args: ["--level", "debug"]
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: script
  namespace: mesh
data:
  run.sh: |
    echo start
    ---
    echo end
  number: "10"
`

func splitT(t *testing.T, data string) []Object {
	t.Helper()
	objs, err := SplitYAML("test", []byte(data))
	if err != nil {
		t.Fatalf("SplitYAML: %v", err)
	}
	return objs
}

func TestWriteYAML(t *testing.T) {
	objs := splitT(t, stream)
	var b bytes.Buffer
	if err := WriteYAML(&b, objs); err != nil {
		t.Fatal(err)
	}
	want := "---\n" + stream // each document behind its own separator, text unchanged
	if b.String() != want {
		t.Errorf("WriteYAML =\n%s\nwant\n%s", b.String(), want)
	}

	// Reading the output back gives the same objects, in the same order.
	back := splitT(t, b.String())
	if len(back) != len(objs) {
		t.Fatalf("read back %d objects, want %d", len(back), len(objs))
	}
	for i := range objs {
		if back[i].String() != objs[i].String() || !bytes.Equal(back[i].YAML, objs[i].YAML) {
			t.Errorf("object %d read back as %s %q, want %s %q", i, back[i], back[i].YAML, objs[i], objs[i].YAML)
		}
	}
}

func TestWriteYAMLEmpty(t *testing.T) {
	var b bytes.Buffer
	if err := WriteYAML(&b, nil); err != nil {
		t.Fatal(err)
	}
	if b.Len() != 0 {
		t.Errorf("WriteYAML(nil) wrote %q", b.String())
	}
}

type failingWriter struct{}

var errWrite = errors.New("disk full")

func (failingWriter) Write([]byte) (int, error) { return 0, errWrite }

func TestWriteErrors(t *testing.T) {
	objs := splitT(t, stream)
	if err := WriteYAML(failingWriter{}, objs); !errors.Is(err, errWrite) {
		t.Errorf("WriteYAML to a failing writer = %v", err)
	}
	if err := WriteJSONList(failingWriter{}, objs); !errors.Is(err, errWrite) {
		t.Errorf("WriteJSONList to a failing writer = %v", err)
	}
}

type list struct {
	APIVersion string           `json:"apiVersion"`
	Kind       string           `json:"kind"`
	Items      []map[string]any `json:"items"`
}

func TestWriteJSONList(t *testing.T) {
	objs := splitT(t, stream)
	// Reverse, to see the order is the given one and not a sorted one.
	objs[0], objs[2] = objs[2], objs[0]
	var b bytes.Buffer
	if err := WriteJSONList(&b, objs); err != nil {
		t.Fatal(err)
	}
	out := b.Bytes()
	if !json.Valid(out) {
		t.Fatalf("output is not valid JSON:\n%s", out)
	}
	// One document: nothing follows the list but its newline.
	dec := json.NewDecoder(bytes.NewReader(out))
	var l list
	if err := dec.Decode(&l); err != nil {
		t.Fatal(err)
	}
	if dec.More() {
		t.Error("more than one JSON value in the output")
	}
	if !bytes.HasSuffix(out, []byte("}\n")) || bytes.HasSuffix(out, []byte("\n\n")) {
		t.Errorf("output does not end in one newline: %q", out[len(out)-3:])
	}
	if !bytes.HasPrefix(out, []byte("{\n  \"apiVersion\": \"v1\",\n  \"kind\": \"List\",\n  \"items\": [\n    {")) {
		t.Errorf("output is not an indented v1 List:\n%s", out)
	}
	if l.APIVersion != "v1" || l.Kind != "List" {
		t.Errorf("list is %s %s", l.APIVersion, l.Kind)
	}
	var got []string
	for _, it := range l.Items {
		md, _ := it["metadata"].(map[string]any)
		got = append(got, it["kind"].(string)+"/"+md["name"].(string))
	}
	want := []string{"ConfigMap/script", "Deployment/web", "Namespace/mesh"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("items = %v, want %v", got, want)
	}
	// Values survive the conversion with their YAML types.
	data := l.Items[0]["data"].(map[string]any)
	if data["number"] != "10" || data["run.sh"] != "echo start\n---\necho end\n" {
		t.Errorf("ConfigMap data = %#v", data)
	}
	spec := l.Items[1]["spec"].(map[string]any)
	if spec["replicas"] != float64(2) {
		t.Errorf("replicas = %#v, want the number 2", spec["replicas"])
	}
}

func TestWriteJSONListEmpty(t *testing.T) {
	var b bytes.Buffer
	if err := WriteJSONList(&b, nil); err != nil {
		t.Fatal(err)
	}
	want := "{\n  \"apiVersion\": \"v1\",\n  \"kind\": \"List\",\n  \"items\": []\n}\n"
	if b.String() != want {
		t.Errorf("WriteJSONList(nil) = %q, want %q", b.String(), want)
	}
}

func TestWriteJSONListBadDocument(t *testing.T) {
	objs := []Object{
		{APIVersion: "v1", Kind: "ConfigMap", Name: "ok", YAML: []byte(cm("ok")), Source: "a.yaml (document 1)"},
		{APIVersion: "v1", Kind: "ConfigMap", Name: "bad", YAML: []byte("kind: [unclosed\n"), Source: "b.yaml (document 7)"},
	}
	var b bytes.Buffer
	err := WriteJSONList(&b, objs)
	if err == nil || !strings.Contains(err.Error(), "b.yaml (document 7)") {
		t.Errorf("WriteJSONList error = %v, want it to name the object's source", err)
	}
	if b.Len() != 0 {
		t.Errorf("partial output written on error: %q", b.String())
	}
}

func TestObjectJSON(t *testing.T) {
	o := splitT(t, "# leading comment\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  k: 'v'\n")[0]
	j, err := o.JSON()
	if err != nil {
		t.Fatal(err)
	}
	if string(j) != `{"apiVersion":"v1","data":{"k":"v"},"kind":"ConfigMap","metadata":{"name":"a"}}` {
		t.Errorf("JSON = %s", j)
	}
}
