// Command genschemas writes the Kubernetes OpenAPI v3 documents that checks/schema
// embeds, from the k8s.io/kubernetes module in the Go module cache:
//
//	go run ./hack/genschemas -kubernetes-version v1.36.3
//
// It keeps only the group-versions mesh needs (see checks/schema/gen),
// reduces each document to components.schemas without descriptions, and writes
// checks/schema/data/v<major>.<minor>/*.json.gz (gzip without name or time) and
// index.json. The output is deterministic; commit it.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/meshplane/mesh/checks/schema/gen"
)

func main() {
	version := flag.String("kubernetes-version", "v1.36.3", "k8s.io/kubernetes module version to read")
	moduleDir := flag.String("kubernetes-dir", "", "k8s.io/kubernetes module directory (default: found through the Go module cache)")
	out := flag.String("out", filepath.Join("checks", "schema", "data"), "output directory")
	flag.Parse()
	if err := run(*version, *moduleDir, *out); err != nil {
		fmt.Fprintln(os.Stderr, "genschemas:", err)
		os.Exit(1)
	}
}

func run(version, moduleDir, out string) error {
	if moduleDir == "" {
		var err error
		if moduleDir, err = findModule(version); err != nil {
			return err
		}
	}
	return gen.Generate(gen.SpecDir(moduleDir), out, version)
}

// findModule looks for k8s.io/kubernetes@version in the module cache and otherwise
// downloads it with `go mod download`, run outside any module so that no go.mod or
// go.sum changes.
func findModule(version string) (string, error) {
	if b, err := exec.Command("go", "env", "GOMODCACHE").Output(); err == nil {
		dir := filepath.Join(strings.TrimSpace(string(b)), "k8s.io", "kubernetes@"+version)
		if _, err := os.Stat(gen.SpecDir(dir)); err == nil {
			return dir, nil
		}
	}
	cmd := exec.Command("go", "mod", "download", "-json", "k8s.io/kubernetes@"+version)
	cmd.Dir = os.TempDir()
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=")
	cmd.Stderr = os.Stderr
	b, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go mod download k8s.io/kubernetes@%s: %w", version, err)
	}
	var m struct{ Dir, Error string }
	if err := json.Unmarshal(b, &m); err != nil {
		return "", err
	}
	if m.Error != "" || m.Dir == "" {
		return "", fmt.Errorf("go mod download k8s.io/kubernetes@%s: %s", version, m.Error)
	}
	return m.Dir, nil
}
