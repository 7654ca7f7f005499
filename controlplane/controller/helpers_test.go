package controller

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/meshplane/mesh/render/install"
	rendervalues "github.com/meshplane/mesh/render/values"

	"github.com/meshplane/mesh/controlplane/api/identityclient/identitytest"
)

// build compiles mesh-controller into dir.
func build(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "mesh-controller")
	if out, err := exec.Command("go", "build", "-o", bin, "../mesh-controller").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// writeValues writes the install's values for a control plane in ns, as the chart
// mounts them from mesh-config, with set as `mesh install --set` gives them.
func writeValues(t *testing.T, dir, ns string, set ...string) string {
	t.Helper()
	v, err := install.EffectiveValues(install.Options{Version: "v1.2.3", Namespace: ns, Values: rendervalues.Options{Values: set}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := rendervalues.YAML(v)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "values.yaml")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// start runs the binary with args, its log in the returned builder.
func start(t *testing.T, bin string, args ...string) (*exec.Cmd, *identitytest.LogBuffer) {
	t.Helper()
	log := &identitytest.LogBuffer{}
	cmd := exec.Command(bin, args...)
	cmd.Stderr = log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	return cmd, log
}

// waitReady waits until the admin address answers /ready with 200.
func waitReady(t *testing.T, admin string, log *identitytest.LogBuffer) {
	t.Helper()
	waitFor(t, "ready", func() error {
		resp, err := http.Get("http://" + admin + "/ready")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			body, _ := io.ReadAll(resp.Body)
			return fmt.Errorf("%s %s; log:\n%s", resp.Status, body, log)
		}
		return nil
	})
}

// stopGracefully sends SIGTERM and expects exit code 0.
func stopGracefully(t *testing.T, cmd *exec.Cmd, log *identitytest.LogBuffer) {
	t.Helper()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if errors.As(err, &ee) || err != nil {
			t.Errorf("exited with %v\nlog:\n%s", err, log)
		}
	case <-time.After(30 * time.Second):
		t.Error("did not stop on SIGTERM")
	}
}
