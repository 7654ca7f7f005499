package dataplane

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The smuggling cases are seeds of FuzzH1Server (proxy/h1/testdata/fuzz/FuzzH1Server, made
// by this test with MESH_WRITE_FUZZ_SEEDS=1): the committed corpus stays in step
// with the table.
func TestFuzzSeedsCurrent(t *testing.T) {
	t.Parallel()
	for _, tc := range smuggleCases() {
		name := "../h1/testdata/fuzz/FuzzH1Server/" + seedName(tc.name)
		want := "go test fuzz v1\n[]byte(" + fmt.Sprintf("%q", tc.raw+probe) + ")\n"
		if os.Getenv("MESH_WRITE_FUZZ_SEEDS") == "1" {
			if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(name, []byte(want), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(name)
		if err != nil || string(got) != want {
			t.Errorf("%s is missing or stale (MESH_WRITE_FUZZ_SEEDS=1 go test -run TestFuzzSeedsCurrent ./proxy/dataplane): %v", name, err)
		}
	}
}

func seedName(s string) string {
	return strings.Map(func(r rune) rune {
		if 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-' {
			return r
		}
		return '_'
	}, s)
}
