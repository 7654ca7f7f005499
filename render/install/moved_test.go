package install

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshplane/mesh/render/values"
)

// A values file that sets a renamed key fails the render with the file, the key and
// its replacement; the table is a test-only one (the chart's is empty so far).
func TestRenderRenamedValuesKey(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(file, []byte("proxy:\n  logLevel: debug\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	o := Options{Version: "v1.2.3", Values: values.Options{ValueFiles: []string{file}},
		Moved: []values.Moved{{Key: "proxy.logLevel", Replacement: "proxy.log.level", Since: "v9.0.0"}}}
	_, err := Render(o, fileReader{strings.NewReader("")})
	var me *values.MovedError
	want := file + ": proxy.logLevel: renamed to proxy.log.level in v9.0.0"
	if !errors.As(err, &me) || !strings.Contains(err.Error(), want) {
		t.Fatalf("got %v, want a *values.MovedError with %q", err, want)
	}
	// The chart's own table: the same file renders.
	o.Moved = nil
	if _, err := Render(o, fileReader{strings.NewReader("")}); err != nil {
		t.Fatal(err)
	}
}
