package values

import (
	"strings"
	"testing"
)

// A key the defaults leave out shows the schema's default; the defaults win over it.
func TestReferenceDefaults(t *testing.T) {
	t.Parallel()
	schema := []byte(`{"type":"object","properties":{
		"a":{"type":"string","description":"A."},
		"b":{"type":"object","properties":{"c":{"type":"string","default":"6h","description":"C."}}},
		"d":{"type":"integer","default":1,"description":"D."}}}`)
	got, err := Reference(schema, map[string]any{"a": "x", "d": 2})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| `a` | string | `\"x\"` | A. |", "| `b.c` | string | `\"6h\"` | C. |", "| `d` | integer | `2` | D. |"} {
		if !strings.Contains(got, want) {
			t.Errorf("no %q in\n%s", want, got)
		}
	}
}
