package stat

import (
	"context"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/meshplane/mesh/internal/testing/localaddr"
	"github.com/meshplane/mesh/internal/testing/testcluster"
)

// fakeProxies serves each meshed pod's samples on its own port of its IP: the
// first request gets the first sample, later ones the second, until reset.
type fakeProxies struct {
	calls map[string]*atomic.Int32
	ports map[string]int
}

func serveSamples(t testing.TB, ips map[string]string, samples map[string][2]proxyCounts) *fakeProxies {
	t.Helper()
	f := &fakeProxies{calls: map[string]*atomic.Int32{}, ports: map[string]int{}}
	for name, ip := range ips {
		l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
		if err != nil {
			t.Fatal(err)
		}
		calls := &atomic.Int32{}
		f.calls[name], f.ports[name] = calls, l.Addr().(*net.TCPAddr).Port
		text := [2]string{samples[name][0].text(), samples[name][1].text()}
		srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/metrics" {
				http.NotFound(w, r)
				return
			}
			i := min(int(calls.Add(1))-1, 1)
			w.Header().Set("Content-Type", "text/plain; version=0.0.4")
			_, _ = w.Write([]byte(text[i]))
		})}
		go func() { _ = srv.Serve(l) }()
		t.Cleanup(func() { _ = srv.Close() })
	}
	return f
}

func (f *fakeProxies) reset() {
	for _, c := range f.calls {
		c.Store(0)
	}
}

// createPods creates the pods and gives them their status (no kubelet runs them):
// Running, with the IP the proxies are served on.
func createPods(t testing.TB, cs kubernetes.Interface, pods []*corev1.Pod) {
	t.Helper()
	ctx := context.Background()
	for _, p := range pods {
		status := p.Status
		created, err := cs.CoreV1().Pods(p.Namespace).Create(ctx, p, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("create pod %s: %v", p.Name, err)
		}
		created.Status = status
		if _, err := cs.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
			t.Fatalf("pod %s: status: %v", p.Name, err)
		}
	}
}

// The direct source against the real API server: pods/proxy really proxies to the
// fake proxies, and every row equals the hand-computed one.
func TestDirectCluster(t *testing.T) {
	t.Parallel()
	cs := testcluster.Clientset(t)
	ns := testcluster.Namespace(t, cs)
	addrs := localaddr.IPs(t, 2)
	base := newScenario(ns, addrs[0], addrs[1], nil)
	ips := map[string]string{"web-1": base.ipWeb, "web-2": base.ipWeb, "api-1": base.ipAPI}
	proxies := serveSamples(t, ips, base.samples())
	s := newScenario(ns, addrs[0], addrs[1], proxies.ports)

	ctx := context.Background()
	for _, o := range s.workloads() {
		var err error
		switch o := o.(type) {
		case *appsv1.Deployment:
			_, err = cs.AppsV1().Deployments(ns).Create(ctx, o, metav1.CreateOptions{})
		case *corev1.Service:
			_, err = cs.CoreV1().Services(ns).Create(ctx, o, metav1.CreateOptions{})
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	createPods(t, cs, s.pods())

	assertRows(t, s, func(q Query) ([]Row, error) {
		proxies.reset()
		clock := &fakeClock{now: time.Unix(1e9, 0)}
		d := &Direct{Client: cs, Now: clock.Now, Sleep: clock.Sleep, PodTimeout: 30 * time.Second}
		return d.Stat(ctx, q)
	})

	// Each proxy was scraped twice, through the API server, for one namespace row.
	proxies.reset()
	clock := &fakeClock{now: time.Unix(1e9, 0)}
	d := &Direct{Client: cs, Now: clock.Now, Sleep: clock.Sleep}
	if _, err := d.Stat(ctx, s.query(t, "ns/"+ns)); err != nil {
		t.Fatal(err)
	}
	for _, name := range meshedPods {
		if n := proxies.calls[name].Load(); n != 2 {
			t.Errorf("%s's proxy scraped %d times, want 2", name, n)
		}
	}
}
