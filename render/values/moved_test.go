package values

import (
	"errors"
	"strings"
	"testing"
)

// testMoved is a test-only table: the chart's own (MovedKeys) is empty so far.
var testMoved = []Moved{
	{Key: "proxy.image.version", Replacement: "proxy.image.tag", Since: "v0.9.0"},
	{Key: "debug", Why: "use logLevel: debug"},
}

func TestMovedKeysTable(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for _, m := range MovedKeys() {
		if m.Key == "" || seen[m.Key] {
			t.Errorf("entry %+v: empty or duplicate key", m)
		}
		seen[m.Key] = true
		if m.Replacement == "" && m.Why == "" {
			t.Errorf("%s: removed without saying why", m.Key)
		}
	}
}

func TestValidateMovedKeys(t *testing.T) {
	t.Parallel()
	s := compile(t).WithMoved(testMoved)
	for _, tc := range []struct {
		name   string
		values map[string]any
		want   string // "" passes
	}{
		{"renamed", map[string]any{"proxy": map[string]any{"image": map[string]any{"version": "v1"}}},
			"values.yaml: proxy.image.version: renamed to proxy.image.tag in v0.9.0: rename the key in your values"},
		{"removed", map[string]any{"debug": true},
			"values.yaml: debug: removed: use logLevel: debug; delete the key from your values"},
		{"both, by key", map[string]any{"debug": true, "proxy": map[string]any{"image": map[string]any{"version": "v1"}}},
			"values.yaml: debug: removed: use logLevel: debug; delete the key from your values\nvalues.yaml: proxy.image.version: renamed to proxy.image.tag in v0.9.0: rename the key in your values"},
		{"the replacement passes", map[string]any{"proxy": map[string]any{"image": map[string]any{"tag": "v1"}}}, ""},
	} {
		err := s.Validate(Source{Name: "values.yaml", Values: tc.values})
		if tc.want == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		var me *MovedError
		if !errors.As(err, &me) || err.Error() != tc.want {
			t.Errorf("%s: got %v (%T), want a *MovedError %q", tc.name, err, err, tc.want)
		}
		var ve *Error
		if !errors.As(err, &ve) || ve.Source != "values.yaml" {
			t.Errorf("%s: the error does not name its source: %v", tc.name, err)
		}
	}
	// Without the table, the old key is merely unknown.
	err := compile(t).Validate(Source{Name: "values.yaml", Values: map[string]any{"debug2": true}})
	if err == nil || !strings.Contains(err.Error(), "unknown key") {
		t.Errorf("without a table: %v", err)
	}
	if got := FindMoved(Source{Values: map[string]any{"debug": false}}, testMoved); len(got) != 1 || got[0].Key != "debug" {
		t.Errorf("FindMoved: %+v", got)
	}
}
