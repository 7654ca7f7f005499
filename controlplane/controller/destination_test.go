package controller

import (
	"bytes"
	"context"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1 "github.com/meshplane/mesh/controlplane/api/mesh/v1"
	"github.com/meshplane/mesh/render/testcluster"
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
	bin, cfg := build(t, dir), writeValues(t, dir, "mesh-system")
	addr, adminAddr := freePort(t), freePort(t)
	cmd, log := start(t, bin, "destination", "--config", cfg, "--kubeconfig", kubeconfig, "--namespace", "mesh-system", "--listen-addr", addr, "--admin-addr", adminAddr)
	waitReady(t, adminAddr, log)
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
	stopGracefully(t, cmd, log)
}
