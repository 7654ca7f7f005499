package controller

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1 "github.com/meshplane/mesh/controlplane/api/mesh/v1"
	"github.com/meshplane/mesh/render/install"
	"github.com/meshplane/mesh/render/testcluster"
	rendervalues "github.com/meshplane/mesh/render/values"
)

func TestRunUsage(t *testing.T) {
	for _, args := range [][]string{nil, {"router"}, {"identity", "--bogus"}, {"destination", "--log-level", "loud"}} {
		var stderr bytes.Buffer
		if code := Run(context.Background(), args, &stderr, time.Now); code != 2 {
			t.Errorf("%v: exit %d, want 2 (%s)", args, code, stderr.String())
		}
	}
}

// mesh-controller destination as a real process: ready once its informers synced, it
// answers Get for a real Service, and stops on SIGTERM with exit code 0.
func TestDestinationController(t *testing.T) {
	kubeconfig := testcluster.Kubeconfig(t)
	cs := testcluster.Clientset(t)
	ctx := context.Background()
	ns := testcluster.Namespace(t, cs)
	if _, err := cs.CoreV1().Services(ns).Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"}, Ports: []corev1.ServicePort{{Port: 80}}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "mesh-controller")
	if out, err := exec.Command("go", "build", "-o", bin, "../mesh-controller").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	v, err := install.EffectiveValues(install.Options{Version: "v1.2.3"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := rendervalues.YAML(v)
	cfg := filepath.Join(dir, "values.yaml")
	_ = os.WriteFile(cfg, b, 0o644)
	addr, adminAddr := freePort(t), freePort(t)
	log := &strings.Builder{}
	cmd := exec.Command(bin, "destination", "--config", cfg, "--kubeconfig", kubeconfig, "--namespace", "mesh-system", "--listen-addr", addr, "--admin-addr", adminAddr)
	cmd.Stderr = log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	waitFor(t, "destination ready", func() error {
		resp, err := http.Get("http://" + adminAddr + "/ready")
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
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for path, exists := range map[string]bool{"web." + ns + ".svc.cluster.local:80": true, "gone." + ns + ".svc.cluster.local:80": false} {
		stream, err := meshv1.NewDestinationClient(conn).Get(sctx, &meshv1.GetDestination{Path: path})
		if err != nil {
			t.Fatal(err)
		}
		u, err := stream.Recv()
		if err != nil || u.GetNoEndpoints() == nil || u.GetNoEndpoints().Exists != exists {
			t.Errorf("%s: %v %v, want no endpoints, exists=%v", path, u, err, exists)
		}
	}
	cancel() // close the streams: GracefulStop waits for open ones (up to its bound)
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
