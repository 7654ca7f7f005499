package stat

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/meshplane/mesh/internal/testing/golden"
)

// The scenario's rows in each format (testdata/*.golden, -update rewrites them).
func TestWrite(t *testing.T) {
	t.Parallel()
	w := newScenario("shop", "10.1.0.1", "10.1.0.2", fakePorts).want()
	rows := []Row{w["deploy/api"], w["deploy/web"], w["svc/api"], w["po/web-3"]}
	for _, tc := range []struct {
		name, format string
		namespaces   bool
		rows         []Row
	}{
		{"table", FormatTable, false, rows},
		{"wide", FormatWide, false, rows},
		{"table-namespaces", FormatTable, true, append(rows, w["ns/shop"])},
		{"json", FormatJSON, false, rows},
		{"table-empty", FormatTable, false, nil},
		{"json-empty", FormatJSON, false, nil},
	} {
		var b bytes.Buffer
		if err := Write(&b, tc.format, tc.namespaces, tc.rows); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		golden.Assert(t, "write-"+tc.name+".golden", b.Bytes())
		if tc.format == FormatJSON {
			var back []map[string]any
			if err := json.Unmarshal(b.Bytes(), &back); err != nil || len(back) != len(tc.rows) {
				t.Errorf("%s: %v, %d rows", tc.name, err, len(back))
			}
		}
	}
	if err := Write(&bytes.Buffer{}, "yaml", false, rows); err == nil {
		t.Error("yaml: no error")
	}
}
