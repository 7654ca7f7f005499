package stat

import (
	"context"
	"net"
	"net/http"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/meshplane/mesh/internal/testing/localaddr"
	"github.com/meshplane/mesh/internal/testing/promtest"
	"github.com/meshplane/mesh/internal/testing/testcluster"
)

// meshedPod is a pod of a Deployment (app, hash) whose proxy is a fake one.
type meshedPod struct {
	name, app, hash, serviceAccount string
	proxy                           *promtest.FakeProxy
}

// servePods creates the pods in the real API server, each proxy served at ip
// (the direct source reaches it through pods/proxy at the pod's IP), and
// returns them as Prometheus's targets, as kubernetes_sd would have found them:
// each proxy's counters follow one clock, whichever listener serves them.
func servePods(t *testing.T, cs kubernetes.Interface, ns, ip string, pods []meshedPod) []promtest.Target {
	t.Helper()
	var created []*corev1.Pod
	var targets []promtest.Target
	for _, mp := range pods {
		l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: mp.proxy}
		go func() { _ = srv.Serve(l) }()
		t.Cleanup(func() { _ = srv.Close() })
		port := int32(l.Addr().(*net.TCPAddr).Port)
		created = append(created, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: mp.name, Namespace: ns, Labels: map[string]string{"app": mp.app, "pod-template-hash": mp.hash}},
			Spec: corev1.PodSpec{ServiceAccountName: mp.serviceAccount, Containers: []corev1.Container{{Name: mp.app, Image: "app"},
				{Name: "mesh-proxy", Image: "proxy", Ports: []corev1.ContainerPort{{Name: "mesh-admin", ContainerPort: port}}}}},
			Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}}},
		})
		targets = append(targets, promtest.Target{Proxy: mp.proxy, Meta: promtest.PodMeta(ns, mp.name, "ReplicaSet", mp.app+"-"+mp.hash, mp.hash)})
	}
	createPods(t, cs, created)
	return targets
}

// Two sources, same numbers (issue 14): the same two proxies, scraped through the
// real API server by the direct source and by a real Prometheus through the
// install's relabelling, give the same row for their Deployment: pod counts
// exactly, rates within the window's extrapolation, ratios and percentiles within
// rounding.
func TestSourcesAgree(t *testing.T) {
	t.Parallel()
	cs := testcluster.Clientset(t)
	ns := testcluster.Namespace(t, cs)
	ip := localaddr.IPs(t, 1)[0]
	const hash = "6b7d9c5f4"
	const window = 10 * time.Second

	ctx := context.Background()
	sel := map[string]string{"app": "web"}
	deploy := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: new(int32), Selector: &metav1.LabelSelector{MatchLabels: sel},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: sel},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "app"}}}},
		},
	}
	if _, err := cs.AppsV1().Deployments(ns).Create(ctx, deploy, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	targets := servePods(t, cs, ns, ip, []meshedPod{
		{name: "web-" + hash + "-aaaaa", app: "web", hash: hash, proxy: webProxy()},
		{name: "web-" + hash + "-bbbbb", app: "web", hash: hash, proxy: webProxy()},
	})
	rp := startPrometheus(t, targets)
	rp.waitFor(t, `min(count_over_time(response_total[20s]))`, func(v float64) bool { return v >= 15 }, 120*time.Second)

	q := Query{Resource: Resource{Kind: KindDeployment, Namespace: ns, Name: "web"}, Window: window}
	direct, err := (&Direct{Client: cs}).Stat(ctx, q) // the real clock: two scrapes a window apart
	if err != nil {
		t.Fatal(err)
	}
	prom, err := NewPrometheus(rp.URL, &http.Client{Timeout: 10 * time.Second}, KubePods{Client: cs}, nil)
	if err != nil {
		t.Fatal(err)
	}
	viaProm, err := prom.Stat(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	if len(direct) != 1 || len(viaProm) != 1 {
		t.Fatalf("rows: direct %+v, prometheus %+v; want one each", direct, viaProm)
	}
	d, p := direct[0], viaProm[0]
	t.Logf("direct:     rps %.2f success %.4f tls %.4f p50/95/99 %.2f/%.2f/%.2f meshed %d/%d", d.RPS, d.SuccessRate, d.TLSShare, d.LatencyP50, d.LatencyP95, d.LatencyP99, d.MeshedPods, d.TotalPods)
	t.Logf("prometheus: rps %.2f success %.4f tls %.4f p50/95/99 %.2f/%.2f/%.2f meshed %d/%d", p.RPS, p.SuccessRate, p.TLSShare, p.LatencyP50, p.LatencyP95, p.LatencyP99, p.MeshedPods, p.TotalPods)
	if d.Resource != p.Resource || d.MeshedPods != 2 || p.MeshedPods != 2 || d.TotalPods != 2 || p.TotalPods != 2 {
		t.Errorf("resource and pods: direct %v %d/%d, prometheus %v %d/%d; want %s/web 2/2", d.Resource, d.MeshedPods, d.TotalPods, p.Resource, p.MeshedPods, p.TotalPods, ns)
	}
	// Known traffic: 200 rps, success 0.9, mTLS 0.8, p50/p95/p99 10/75/95 ms.
	for _, r := range []struct {
		what string
		row  Row
	}{{"direct", d}, {"prometheus", p}} {
		if !within(r.row.RPS, webRPS, 0.1*webRPS) || !within(r.row.SuccessRate, 0.9, 0.005) || !within(r.row.TLSShare, 0.8, 0.005) {
			t.Errorf("%s: rps %v success %v tls %v, want %v 0.9 0.8", r.what, r.row.RPS, r.row.SuccessRate, r.row.TLSShare, webRPS)
		}
	}
	if !within(d.RPS, p.RPS, 0.1*webRPS) || !within(d.SuccessRate, p.SuccessRate, 0.005) || !within(d.TLSShare, p.TLSShare, 0.005) ||
		!within(d.LatencyP50, p.LatencyP50, 0.5) || !within(d.LatencyP95, p.LatencyP95, 0.5) || !within(d.LatencyP99, p.LatencyP99, 0.5) {
		t.Errorf("the sources disagree:\n direct     %+v\n prometheus %+v", d, p)
	}
}
