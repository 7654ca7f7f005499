package health

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/meshplane/mesh/checks"
	"github.com/meshplane/mesh/internal/testing/testcluster"
	"github.com/meshplane/mesh/render/identity"
	"github.com/meshplane/mesh/render/install"
	rendervalues "github.com/meshplane/mesh/render/values"
)

// `mesh install` output applied to the real test cluster, with the real mesh-controller
// identity and injector processes running against it (on 127.0.0.1, the webhook's url
// pointing there) and the control-plane pods made Running and Ready as a kubelet would:
// the health suite passes. It then fails on health.injector alone when the injector
// stops (failurePolicy Ignore admits the pod unchanged), passes again once it is back,
// and fails on health.identity-issuer alone when the issuer Secret is replaced by an
// expired one.
func TestHealthOfRunningControlPlane(t *testing.T) {
	kubeconfig := testcluster.Kubeconfig(t)
	cs := testcluster.Clientset(t)
	dyn, err := dynamic.NewForConfig(testcluster.RESTConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c := &Cluster{Clientset: cs, Dynamic: dyn}
	ns := fmt.Sprintf("mesh-health-run-%d", time.Now().UnixNano()%100000)
	app := testcluster.Namespace(t, cs) // the only namespace the webhook selects

	dir := t.TempDir()
	bin := filepath.Join(dir, "mesh-controller")
	if out, err := exec.Command("go", "build", "-o", bin, "../../controlplane/mesh-controller").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	// The default install (bootstrap issuer), its webhook calling the local injector.
	const version = "v1.2.3"
	injAddr, injAdmin, idAddr, idAdmin := freePort(t), freePort(t), freePort(t), freePort(t)
	res, err := install.Render(install.Options{Version: version, Namespace: ns}, nil)
	if err != nil {
		t.Fatal(err)
	}
	objs, checked := scopeWebhook(t, res.Objects, ns, "https://"+injAddr+"/inject", app)
	apply(t, c, objs)
	webhookName := webhookName(Options{Objects: checked})
	fakeKubelet(t, cs, ns)

	// The values file the chart mounts from mesh-config.
	vals, err := rendervalues.YAML(res.Values)
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "values.yaml")
	if err := os.WriteFile(cfg, vals, 0o600); err != nil {
		t.Fatal(err)
	}
	common := []string{"--config", cfg, "--kubeconfig", kubeconfig, "--namespace", ns}
	identityProc := startProcess(t, bin, append([]string{"identity", "--listen-addr", idAddr, "--admin-addr", idAdmin}, common...)...)
	injectorArgs := append([]string{"injector", "--listen-addr", injAddr, "--admin-addr", injAdmin, "--webhook", webhookName,
		"--serving-names", "127.0.0.1", "--mesh-version", version}, common...)
	injector := startProcess(t, bin, injectorArgs...)
	identityProc.waitReady(t, idAdmin)
	injector.waitReady(t, injAdmin)

	o := Options{Namespace: ns, Version: version, Objects: checked, MinCertValidity: 60 * 24 * time.Hour, Now: time.Now}
	expect := func(step string, failing map[string]string) {
		t.Helper()
		// Retry like `mesh check --wait` when all should pass (the injector may have just
		// started); an expected failure is not waited out.
		wait := 30 * time.Second
		if failing != nil {
			wait = 0
		}
		r := checks.Run(ctx, Suite(c, o), checks.Options{Wait: wait, Interval: 250 * time.Millisecond})
		for _, res := range r.Results {
			want, fails := failing[res.Check.ID]
			switch {
			case fails && (res.Status != checks.Failed || !strings.Contains(res.Message, want)):
				t.Errorf("%s: %s: %s %q, want failed %q", step, res.Check.ID, res.Status, res.Message, want)
			case !fails && res.Status != checks.Passed:
				t.Errorf("%s: %s: %s %q, want passed\ninjector log:\n%s\nidentity log:\n%s", step, res.Check.ID, res.Status, res.Message, injector.log, identityProc.log)
			}
		}
		if len(r.Results) != 5 {
			t.Errorf("%s: %d results, want 5", step, len(r.Results))
		}
	}
	expect("running", nil)
	if t.Failed() {
		return
	}

	// The injector stops: the webhook's failurePolicy is Ignore, so the dry-run pod is
	// admitted, without the proxy.
	injector.stop(t)
	expect("injector stopped", map[string]string{"health.injector": "without the mesh-proxy container"})

	// Back again (it reuses its serving Secret), then an issuer that has expired.
	injector = startProcess(t, bin, injectorArgs...)
	injector.waitReady(t, injAdmin)
	expect("injector restarted", nil)
	old := time.Now().Add(-2 * 365 * 24 * time.Hour)
	expired, err := identity.Create(identity.CreateOptions{TrustDomain: "cluster.local", Namespace: ns, IssuerLifetime: 365 * 24 * time.Hour, Now: old})
	if err != nil {
		t.Fatal(err)
	}
	sec, err := cs.CoreV1().Secrets(ns).Get(ctx, "mesh-identity-issuer", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sec.Data = map[string][]byte{corev1.TLSCertKey: expired.IssuerCert, corev1.TLSPrivateKeyKey: expired.IssuerKey, "ca.crt": expired.AnchorCert}
	if _, err := cs.CoreV1().Secrets(ns).Update(ctx, sec, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	expect("issuer expired", map[string]string{"health.identity-issuer": "expired on"})

	injector.stop(t)
	identityProc.stop(t)
}

// fakeKubelet does for the control plane's pods what a kubelet would: a Node, each pod
// bound to it and reported Running and Ready (the status subresource), until the
// Deployments report their replicas available. Cleanup removes the pods (bound pods
// need a forced delete without a kubelet) and the Node.
func fakeKubelet(t *testing.T, cs kubernetes.Interface, ns string) {
	t.Helper()
	ctx := context.Background()
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "fake-" + ns, Labels: map[string]string{"kubernetes.io/os": "linux"}}}
	if _, err := cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		deps, _ := cs.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{})
		for _, d := range deps.Items {
			_ = cs.AppsV1().Deployments(ns).Delete(ctx, d.Name, metav1.DeleteOptions{})
		}
		zero := int64(0)
		_ = cs.CoreV1().Pods(ns).DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: &zero}, metav1.ListOptions{})
		_ = cs.CoreV1().Nodes().Delete(ctx, node.Name, metav1.DeleteOptions{})
	})
	waitFor(t, "the control-plane Deployments available", func() error {
		pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		for i := range pods.Items {
			p := &pods.Items[i]
			if p.DeletionTimestamp != nil || p.Status.Phase == corev1.PodRunning {
				continue
			}
			if p.Spec.NodeName == "" {
				err := cs.CoreV1().Pods(ns).Bind(ctx, &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: ns},
					Target: corev1.ObjectReference{Kind: "Node", Name: node.Name}}, metav1.CreateOptions{})
				if err != nil {
					return err
				}
				if p, err = cs.CoreV1().Pods(ns).Get(ctx, p.Name, metav1.GetOptions{}); err != nil {
					return err
				}
			}
			now := metav1.Now()
			p.Status.Phase, p.Status.PodIP, p.Status.HostIP, p.Status.StartTime = corev1.PodRunning, "10.99.0.1", "10.99.0.254", &now
			p.Status.PodIPs = []corev1.PodIP{{IP: p.Status.PodIP}}
			p.Status.Conditions = nil
			for _, ct := range []corev1.PodConditionType{corev1.PodScheduled, corev1.PodInitialized, corev1.ContainersReady, corev1.PodReady} {
				p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: ct, Status: corev1.ConditionTrue, LastTransitionTime: now})
			}
			p.Status.ContainerStatuses = nil
			for _, ctr := range p.Spec.Containers {
				p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, corev1.ContainerStatus{Name: ctr.Name, Image: ctr.Image, Ready: true,
					State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}}})
			}
			if _, err := cs.CoreV1().Pods(ns).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
				return err
			}
		}
		deps, err := cs.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		if len(deps.Items) != 3 {
			return fmt.Errorf("%d Deployments, want 3", len(deps.Items))
		}
		for _, d := range deps.Items {
			if d.Status.AvailableReplicas < *d.Spec.Replicas {
				return fmt.Errorf("%s: %d of %d available", d.Name, d.Status.AvailableReplicas, *d.Spec.Replicas)
			}
		}
		return nil
	})
}

// process is a running mesh-controller component.
type process struct {
	cmd *exec.Cmd
	log *strings.Builder
}

func startProcess(t *testing.T, bin string, args ...string) *process {
	t.Helper()
	p := &process{log: &strings.Builder{}}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stderr = p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.cmd.Process.Kill() })
	return p
}

func (p *process) waitReady(t *testing.T, admin string) {
	t.Helper()
	waitFor(t, p.cmd.Args[1]+" ready", func() error {
		resp, err := http.Get("http://" + admin + "/ready")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			body, _ := io.ReadAll(resp.Body)
			return fmt.Errorf("%s %s; log:\n%s", resp.Status, body, p.log)
		}
		return nil
	})
}

// stop sends SIGTERM and expects a graceful exit.
func (p *process) stop(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if errors.As(err, &ee) || err != nil {
			t.Errorf("%s exited with %v\nlog:\n%s", p.cmd.Args[1], err, p.log)
		}
	case <-time.After(30 * time.Second):
		t.Errorf("%s did not stop on SIGTERM", p.cmd.Args[1])
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// waitFor polls cond until it holds or the bound passes (a bound on a wait, not a speed
// assertion).
func waitFor(t *testing.T, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	var err error
	for time.Now().Before(deadline) {
		if err = cond(); err == nil {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s: %v", what, err)
}
