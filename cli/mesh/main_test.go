package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// buildWithReleaseFlags builds the CLI with the ldflags .goreleaser.yaml uses, the
// release's {{.Version}} replaced by version.
func buildWithReleaseFlags(t *testing.T, version string) string {
	t.Helper()
	cfg, err := os.ReadFile("../../.goreleaser.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*- (-s -w -X .*controlplane/api/version\.version=\{\{\s*\.Version\s*\}\})\s*$`).FindSubmatch(cfg)
	if m == nil {
		t.Fatal(".goreleaser.yaml sets no -X .../controlplane/api/version.version={{.Version}} ldflag")
	}
	ldflags := regexp.MustCompile(`\{\{\s*\.Version\s*\}\}`).ReplaceAllString(string(m[1]), version)
	bin := filepath.Join(t.TempDir(), "mesh")
	cmd := exec.Command("go", "build", "-ldflags", ldflags, "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// The release build's version reaches `mesh version`, and the binary keeps its
// promises: data on stdout, messages on stderr, exit codes.
func TestReleaseBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildWithReleaseFlags(t, "v1.2.3-test")
	run := func(args ...string) (string, string, int) {
		var out, errOut bytes.Buffer
		cmd := exec.Command(bin, args...)
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return out.String(), errOut.String(), code
	}

	out, _, code := run("version", "--client", "-o", "json")
	var info struct{ ClientVersion string }
	if err := json.Unmarshal([]byte(out), &info); err != nil || code != 0 || info.ClientVersion != "v1.2.3-test" {
		t.Fatalf("version --client -o json: %q (exit %d, %v)", out, code, err)
	}

	out, errOut, code := run("install")
	if code != 0 || errOut != "" || !strings.Contains(out, "image: ghcr.io/meshplane/controller:v1.2.3-test") {
		t.Errorf("install: exit %d, stderr %q", code, errOut)
	}

	out, errOut, code = run("install", "--set", "nope=1")
	if code != 1 || out != "" || !strings.Contains(errOut, "Error: --set nope=1: nope: unknown key") {
		t.Errorf("bad install: exit %d, stdout %q, stderr %q", code, out, errOut)
	}

	// Help and completion are data on stdout; an unknown subcommand is exit 2.
	out, errOut, code = run("install", "--help")
	if code != 0 || errOut != "" || !strings.Contains(out, "Usage:\n  mesh install") {
		t.Errorf("install --help: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	out, errOut, code = run("completion", "bash")
	if code != 0 || errOut != "" || !strings.HasPrefix(out, "# bash completion V2 for mesh") {
		t.Errorf("completion bash: exit %d, stdout %.80q, stderr %q", code, out, errOut)
	}
	out, errOut, code = run("identity", "rekey")
	if code != 2 || out != "" || !strings.Contains(errOut, `unknown command "rekey" for "mesh identity"`) {
		t.Errorf("identity rekey: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

// `mesh inject --krm` works as a kustomize exec function: kustomize's own library
// builds a kustomization whose transformer runs the real binary.
func TestInjectAsKustomizeExecFunction(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildWithReleaseFlags(t, "v1.2.3-test")
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
	write("mesh-inject.sh", "#!/bin/sh\nexec "+bin+" inject --krm\n", 0o755)
	write("app.yaml", "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers: [{name: web, image: nginx}]\n", 0o644)
	write("mesh-inject.yaml", `apiVersion: v1
kind: ConfigMap
metadata:
  name: mesh-inject
  annotations:
    config.kubernetes.io/function: |
      exec:
        path: `+filepath.Join(dir, "mesh-inject.sh")+`
data:
  manual: "true"
  proxy-log-level: debug
`, 0o644)
	write("kustomization.yaml", "resources: [app.yaml]\ntransformers: [mesh-inject.yaml]\n", 0o644)

	opts := krusty.MakeDefaultOptions()
	opts.PluginConfig = types.EnabledPluginConfig(types.BploUseStaticallyLinked)
	opts.PluginConfig.FnpLoadingOptions.EnableExec = true
	m, err := krusty.MakeKustomizer(opts).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build: %v", err)
	}
	out, err := m.AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"meshplane.io/inject: enabled", "config.meshplane.io/proxy-log-level: debug", "name: mesh-proxy", "image: ghcr.io/meshplane/proxy:v1.2.3-test"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("kustomize output lacks %q:\n%s", want, out)
		}
	}
}
