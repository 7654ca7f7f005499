package stat

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/meshplane/mesh/internal/testing/localaddr"
	"github.com/meshplane/mesh/internal/testing/testcluster"
)

// benchProxy is a busy proxy's families: per peer an inbound and an outbound
// series of each status (with their latency histograms) and connections, plus
// process metrics, so parsing costs what a real scrape costs.
func benchProxy(ip string, scale float64) proxyCounts {
	var p proxyCounts
	for peer := range 4 {
		for _, st := range []struct{ code, class string }{{"200", "success"}, {"503", "failure"}} {
			for _, l := range []map[string]string{
				in("true", "client_id", fmt.Sprintf("client-%d.shop.serviceaccount.identity.cluster.local", peer)),
				out("shop", "api", fmt.Sprintf("api-%d", peer)),
			} {
				p.responses = append(p.responses, counted{with(l, "classification", st.class, "status_code", st.code), 100 * scale})
				p.latency = append(p.latency, observed{with(l, "status_code", st.code), obs(int(10*scale), float64(3*peer+1))})
			}
		}
		p.tcpOpen = append(p.tcpOpen, counted{in("true", "peer", "src", "target_addr", ip+":8080", "client_id", strconv.Itoa(peer)), 2})
	}
	return p
}

// BenchmarkStatDirect100Pods is one `mesh stat deploy/bench` over 100 meshed pods
// through the test cluster's API server (pods/proxy), with the window at 0 (the
// injected sleeper returns at once): resolving, 200 scrapes, parsing and the rows.
// Each iteration builds its client as the CLI does (cli/kube's rate limits: 50 per
// second, bursts of 300), as one invocation would. The goal (issue 14) is < 2 s;
// the figure is in docs/benchmarks.md.
func BenchmarkStatDirect100Pods(b *testing.B) {
	const pods = 100
	cs := testcluster.Clientset(b)
	ns := testcluster.Namespace(b, cs)
	ip := localaddr.IPs(b, 1)[0]

	text := [2]string{benchProxy(ip, 1).text(), benchProxy(ip, 2).text()}
	// Each pod's scrapes alternate between the two samples: every Stat sees +100%.
	var mu sync.Mutex
	calls := map[string]int{}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		port := r.Context().Value(http.LocalAddrContextKey).(net.Addr).String()
		mu.Lock()
		i := calls[port] % 2
		calls[port]++
		mu.Unlock()
		_, _ = w.Write([]byte(text[i]))
	})}
	b.Cleanup(func() { _ = srv.Close() })
	ports := make([]int, pods)
	for i := range ports {
		l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
		if err != nil {
			b.Fatal(err)
		}
		ports[i] = l.Addr().(*net.TCPAddr).Port
		go func() { _ = srv.Serve(l) }()
	}

	ctx := context.Background()
	sel := map[string]string{"app": "bench"}
	zero := int32(0)
	if _, err := cs.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "bench"},
		Spec: appsv1.DeploymentSpec{Replicas: &zero, Selector: &metav1.LabelSelector{MatchLabels: sel},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: sel},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app"}}}}},
	}, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	s := scenario{ns: ns, ports: map[string]int{}}
	var list []*corev1.Pod
	for i, port := range ports {
		name := fmt.Sprintf("bench-%03d", i)
		s.ports[name] = port
		p := s.pod(name, "bench", ip)
		list = append(list, p)
	}
	createPods(b, cs, list)

	cfg := testcluster.RESTConfig(b)
	cfg.QPS, cfg.Burst = 50, 300 // cli/kube.QPS, cli/kube.Burst
	q := Query{Resource: Resource{Kind: KindDeployment, Namespace: ns, Name: "bench"}}
	b.ResetTimer()
	for b.Loop() {
		c, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			b.Fatal(err)
		}
		d := &Direct{Client: c, Sleep: func(context.Context, time.Duration) error { return nil }}
		rows, err := d.Stat(ctx, q)
		if err != nil {
			b.Fatal(err)
		}
		if len(rows) != 1 || rows[0].MeshedPods != pods || rows[0].Requests != 800*pods || rows[0].TCPConnections != 8*pods {
			b.Fatalf("rows %+v", rows)
		}
	}
}
