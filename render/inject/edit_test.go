package inject

import (
	"testing"

	yaml "go.yaml.in/yaml/v3"
)

func TestRemoveKeysFromFlowMapping(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"m: {a: 1m, b: x, c: \"y\"}\n", "m: {a: 1m, c: \"y\"}\n"},
		{"m: {b: x, a: [1, 2], c: {d: e}}\n", "m: {a: [1, 2], c: {d: e}}\n"},
		{"m: {a: 'it''s', b: x}\n", "m: {a: 'it''s'}\n"},
	} {
		d, err := parseYAMLDoc([]byte(tc.src))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := d.removeKeys(at(d.root, "m"), map[string]bool{"b": true}); err != nil {
			t.Fatal(err)
		}
		out, err := d.bytes()
		if err != nil {
			t.Fatal(err)
		}
		if got := string(out); got != tc.want {
			t.Errorf("%q: got %q, want %q", tc.src, got, tc.want)
		}
		var v any
		if err := yaml.Unmarshal(out, &v); err != nil {
			t.Errorf("%q: output does not parse: %v", tc.src, err)
		}
	}
}

func TestReplaceScalarInFlowMapping(t *testing.T) {
	d, _ := parseYAMLDoc([]byte("metadata: {annotations: {meshplane.io/inject: disabled, other: x}}\n"))
	if _, err := d.setStrings(d.root, []string{"metadata", "annotations"}, []kv{{"meshplane.io/inject", "enabled"}}); err != nil {
		t.Fatal(err)
	}
	out, err := d.bytes()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(out), "metadata: {annotations: {meshplane.io/inject: enabled, other: x}}\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
