package stat

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshplane/mesh/cli/exitcode"
	"github.com/meshplane/mesh/cli/iostreams"
	"github.com/meshplane/mesh/internal/testing/localaddr"
	"github.com/meshplane/mesh/internal/testing/testcluster"
	"github.com/meshplane/mesh/proxy/metrics"
	"github.com/meshplane/mesh/render/inject"
)

// mesh stat against the real API server and the real proxy's metrics: a
// proxy/metrics Registry (the proxy's own exposition) serves a meshed pod's
// /metrics; the fake sleeper between the two samples records the window's traffic
// and advances the clock by -t. The command's table and JSON carry exactly that
// traffic.
func TestStatCluster(t *testing.T) {
	t.Parallel()
	cs := testcluster.Clientset(t)
	kc := testcluster.Kubeconfig(t)
	ns := testcluster.Namespace(t, cs)
	ip := localaddr.IPs(t, 1)[0]

	reg := metrics.New(metrics.WithoutProcessCollectors())
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", reg.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	port := l.Addr().(*net.TCPAddr).Port

	in := reg.HTTP(metrics.HTTPLabels{Direction: "inbound", Authority: "web." + ns + ".svc.cluster.local:80", TargetAddr: ip + ":8080", TLS: true, PeerID: "client"})
	serve := func(n, status int, latency time.Duration) {
		for range n {
			in.Request()
			in.Response(status, "", latency)
			in.End(status, "")
		}
	}
	serve(10, 200, 7*time.Millisecond) // before the window: not counted
	conns := reg.TCP(metrics.TCPLabels{Direction: "inbound", Peer: "src", TargetAddr: ip + ":8080", TLS: true})
	conns.Open()

	ctx := context.Background()
	sel := map[string]string{"app": "web"}
	zero := int32(0)
	if _, err := cs.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{Replicas: &zero, Selector: &metav1.LabelSelector{MatchLabels: sel},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: sel},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "web"}}}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod, err := cs.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web-1", Labels: sel},
		Spec: corev1.PodSpec{Containers: []corev1.Container{
			{Name: "web", Image: "web"},
			{Name: inject.ProxyContainer, Image: "proxy", Ports: []corev1.ContainerPort{{Name: inject.AdminPortName, ContainerPort: int32(port)}}},
		}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pod.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}}}
	if _, err := cs.CoreV1().Pods(ns).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}

	run := func(args ...string) (int, string, string) {
		var mu sync.Mutex
		now := time.Unix(1e9, 0)
		io, _, out, errOut := iostreams.Test()
		cmd := NewCmd(io, func(o *Options) error {
			o.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
			o.Sleep = func(_ context.Context, d time.Duration) error {
				// The window's traffic: 30 ok and 10 failed, all 5-10 ms; one more connection.
				serve(30, 200, 7*time.Millisecond)
				serve(10, 503, 9*time.Millisecond)
				conns.Open()
				mu.Lock()
				defer mu.Unlock()
				now = now.Add(d)
				return nil
			}
			return Run(ctx, io, o)
		})
		cmd.SetArgs(append(args, "-n", ns, "--kubeconfig", kc, "-t", "10s"))
		cmd.SilenceErrors, cmd.SilenceUsage = true, true
		err := cmd.ExecuteContext(ctx)
		return exitcode.For(err), out.String(), errOut.String()
	}

	// 40 requests in 10 s, 30 ok, all mTLS; 40 latencies in (5,10] ms: p50 = 5 + 5*20/40.
	// Open connections: 1 before, +1 per run (a gauge: the value at the second sample).
	code, out, stderr := run("deploy/web", "-o", "wide")
	want := "NAME   MESHED   SUCCESS   RPS      LATENCY_P50   LATENCY_P95   LATENCY_P99   TCP_CONN   TLS\n" +
		"web    1/1      75.00%    4.0rps   8ms           10ms          10ms          2          100%\n"
	if code != 0 || out != want || stderr != "" {
		t.Errorf("mesh stat deploy/web -o wide: exit %d, stderr %q\n got %q\nwant %q", code, stderr, out, want)
	}

	code, out, stderr = run("po", "-o", "json")
	var got []map[string]any
	if err := json.Unmarshal([]byte(out), &got); code != 0 || err != nil || len(got) != 1 {
		t.Fatalf("mesh stat po -o json: exit %d, %v, stderr %q, stdout %s", code, err, stderr, out)
	}
	for k, v := range map[string]any{"name": "web-1", "kind": "pod", "namespace": ns, "requests": 40.0, "success": 0.75, "rps": 4.0,
		"latency_ms_p50": 7.5, "latency_ms_p95": 9.75, "latency_ms_p99": 9.95, "tcp_open_connections": 3.0, "tls": 1.0, "meshed_pods": 1.0, "total_pods": 1.0} {
		if got[0][k] != v {
			t.Errorf("mesh stat po -o json: %s = %v, want %v", k, got[0][k], v)
		}
	}

	// A name that does not exist: exit 1, nothing on stdout.
	if code, out, _ := run("deploy/nope"); code != 1 || out != "" {
		t.Errorf("deploy/nope: exit %d, stdout %q", code, out)
	}
}
