package diff

import (
	"reflect"
	"strings"
	"testing"

	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"
)

func set(t *testing.T, fieldsV1 string) *fieldpath.Set {
	t.Helper()
	s := fieldpath.NewSet()
	if err := s.FromJSON(strings.NewReader(fieldsV1)); err != nil {
		t.Fatal(err)
	}
	return s
}

// The set alone says how lists are keyed: by key fields, by value, or by index.
func TestFilterAndCompare(t *testing.T) {
	t.Parallel()
	owned := set(t, `{"f:metadata":{"f:labels":{"f:app":{}}},"f:spec":{"f:replicas":{},"f:args":{},
		"f:containers":{"k:{\"name\":\"web\"}":{".":{},"f:name":{},"f:image":{}}},
		"f:finalizers":{"v:\"a\"":{}},"f:ports":{"i:0":{"f:port":{}}}}}`)
	live := map[string]any{
		"metadata": map[string]any{"labels": map[string]any{"app": "web", "other": "x"}, "uid": "u"},
		"spec": map[string]any{
			"replicas": int64(1), "args": []any{"a", "b"}, "paused": true,
			"containers": []any{
				map[string]any{"name": "web", "image": "nginx:1", "imagePullPolicy": "Always"},
				map[string]any{"name": "sidecar", "image": "s:1"},
			},
			"finalizers": []any{"b", "a"},
			"ports":      []any{map[string]any{"port": int64(80), "name": "http"}},
		},
	}
	wantLive := map[string]any{
		"metadata": map[string]any{"labels": map[string]any{"app": "web"}},
		"spec": map[string]any{
			"replicas": int64(1), "args": []any{"a", "b"},
			"containers": []any{map[string]any{"name": "web", "image": "nginx:1"}},
			"finalizers": []any{"a"},
			"ports":      []any{map[string]any{"port": int64(80)}},
		},
	}
	gotLive := filter(live, owned)
	if !reflect.DeepEqual(gotLive, wantLive) {
		t.Fatalf("filter:\n got %v\nwant %v", gotLive, wantLive)
	}
	merged := map[string]any{
		"metadata": map[string]any{"labels": map[string]any{"app": "web"}},
		"spec": map[string]any{
			"args":       []any{"a", "c"},
			"containers": []any{map[string]any{"name": "web", "image": "nginx:2"}},
			"finalizers": []any{"a"},
			"ports":      []any{map[string]any{"port": int64(80)}},
		},
	}
	var changes []Change
	compare(gotLive, filter(merged, owned), owned, nil, &changes)
	want := []Change{
		{Path: ".spec.args", Op: Replace, Live: []any{"a", "b"}, Merged: []any{"a", "c"}},
		{Path: `.spec.containers[name="web"].image`, Op: Replace, Live: "nginx:1", Merged: "nginx:2"},
		{Path: ".spec.replicas", Op: Remove, Live: int64(1)},
	}
	if !reflect.DeepEqual(changes, want) {
		t.Errorf("compare:\n got %+v\nwant %+v", changes, want)
	}
}

func TestHashSecret(t *testing.T) {
	t.Parallel()
	obj := map[string]any{"apiVersion": "v1", "kind": "Secret",
		"data": map[string]any{"k": "c2VjcmV0"}, "stringData": map[string]any{"s": "secret"}}
	v := view(obj, nil)
	if d := v["data"].(map[string]any)["k"]; d != Hash([]byte("secret")) || v["stringData"].(map[string]any)["s"] != d {
		t.Errorf("data %v, stringData %v: want both %s", d, v["stringData"], Hash([]byte("secret")))
	}
	if obj["data"].(map[string]any)["k"] != "c2VjcmV0" {
		t.Error("view changed the object it was given")
	}
}
