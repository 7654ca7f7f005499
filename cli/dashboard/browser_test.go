package dashboard

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/meshplane/mesh/cli/iostreams"
	api "github.com/meshplane/mesh/controlplane/api/tap"
	"github.com/meshplane/mesh/internal/testing/browser"
	"github.com/meshplane/mesh/internal/testing/localaddr"
	"github.com/meshplane/mesh/internal/testing/testcluster"
	"github.com/meshplane/mesh/proxy/metrics"
	ptap "github.com/meshplane/mesh/proxy/tap"
	"github.com/meshplane/mesh/render/inject"
	vdash "github.com/meshplane/mesh/viz/dashboard"
	"github.com/meshplane/mesh/viz/stat"
	vtap "github.com/meshplane/mesh/viz/tap"
)

// proxyPod is a meshed pod whose proxy's /metrics is a real proxy/metrics Registry
// served on a local non-loopback address (the API server proxies to it).
type proxyPod struct {
	name, app string
	reg       *metrics.Registry
	port      int
}

func serveProxy(t *testing.T, ip, name, app string) *proxyPod {
	t.Helper()
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
	return &proxyPod{name: name, app: app, reg: reg, port: l.Addr().(*net.TCPAddr).Port}
}

// hubDialer reaches one real proxy tap hub (proxy/tap) for every pod: the test
// cluster has no kubelet to port-forward to.
type hubDialer struct{ addr string }

func (d hubDialer) DialTap(ctx context.Context, _ vtap.Pod) (net.Conn, error) {
	var nd net.Dialer
	return nd.DialContext(ctx, "tcp", d.addr)
}

// The dashboard in a real headless Chromium, against the real API server and real
// proxy metrics: client -> web and web -> api over mTLS, an unmeshed caller -> web,
// and client's requests to a service without endpoints (no destination). The
// workload table shows RPS for web and api (client receives nothing), the topology
// graph has exactly those four edges (the unmeshed callers and the unknown
// destination two nodes apart), and web's page shows its route and
// the requests its proxy's tap hub streams. With -update it writes the screenshots
// docs/img/dashboard-*.png.
func TestBrowser(t *testing.T) {
	t.Parallel()
	browser.Exec(t) // skips before any setup when chromium is missing
	cs := testcluster.Clientset(t)
	ns := testcluster.Namespace(t, cs)
	ip := localaddr.IPs(t, 1)[0]
	ctx := context.Background()

	pods := []*proxyPod{serveProxy(t, ip, "client-1", "client"), serveProxy(t, ip, "web-1", "web"), serveProxy(t, ip, "api-1", "api")}
	for _, p := range pods {
		createMeshed(t, cs, ns, ip, p)
	}
	id := func(sa string) string { return sa + "." + ns + ".serviceaccount.identity.cluster.local" }
	webAddr, apiAddr := ip+":8080", ip+":8081"
	series := []struct {
		s        *metrics.HTTPSeries
		n        int
		status   int
		latency  time.Duration
		inbound  bool
		describe string
	}{
		{pods[0].reg.HTTP(metrics.HTTPLabels{Direction: "outbound", Authority: "web." + ns + ".svc.cluster.local:80", TargetAddr: webAddr, TLS: true, PeerID: id("web"),
			DstNamespace: ns, DstService: "web", DstPod: "web-1", DstWorkloadKind: "replicaset", DstWorkloadName: "web-5d8f"}), 20, 200, 12 * time.Millisecond, false, "client -> web"},
		{pods[1].reg.HTTP(metrics.HTTPLabels{Direction: "inbound", Authority: "web." + ns + ".svc.cluster.local:80", TargetAddr: webAddr, TLS: true, PeerID: id("client"), Route: "GET /books"}), 20, 200, 10 * time.Millisecond, true, "web <- client"},
		{pods[1].reg.HTTP(metrics.HTTPLabels{Direction: "inbound", Authority: "web:80", TargetAddr: webAddr, NoTLSReason: "no_identity"}), 5, 503, 3 * time.Millisecond, true, "web <- unmeshed"},
		{pods[1].reg.HTTP(metrics.HTTPLabels{Direction: "outbound", Authority: "api." + ns + ".svc.cluster.local:80", TargetAddr: apiAddr, TLS: true, PeerID: id("api"),
			DstNamespace: ns, DstService: "api", DstPod: "api-1", DstWorkloadKind: "replicaset", DstWorkloadName: "api-7c4b"}), 10, 200, 4 * time.Millisecond, false, "web -> api"},
		{pods[2].reg.HTTP(metrics.HTTPLabels{Direction: "inbound", Authority: "api." + ns + ".svc.cluster.local:80", TargetAddr: apiAddr, TLS: true, PeerID: id("web")}), 10, 200, 2 * time.Millisecond, true, "api <- web"},
		// A service without endpoints: the proxy answers 503 itself and names no destination.
		{pods[0].reg.HTTP(metrics.HTTPLabels{Direction: "outbound", Authority: "gone." + ns + ".svc.cluster.local:80", TargetAddr: ip + ":8082", NoTLSReason: "no_endpoints"}), 5, 503, time.Millisecond, false, "client -> nowhere"},
	}
	traffic := func() {
		for _, s := range series {
			for range s.n {
				s.s.Request()
				s.s.Response(s.status, "", s.latency)
				s.s.End(s.status, "")
			}
		}
	}
	traffic() // before any window

	// The wait between two samples records one window's traffic and moves the
	// clock by the window: the rates are exactly the traffic over the window.
	var mu sync.Mutex
	now := time.Unix(1e9, 0)
	direct := &stat.Direct{Client: cs, PodTimeout: 30 * time.Second,
		Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return now },
		Sleep: func(_ context.Context, d time.Duration) error {
			mu.Lock()
			defer mu.Unlock()
			traffic()
			now = now.Add(d)
			return nil
		}}

	// web's proxy tap hub, the real proxy/tap handler.
	hub := ptap.New(ptap.Options{})
	tl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tmux := http.NewServeMux()
	tmux.Handle(api.Path, hub.Handler(0))
	tsrv := &http.Server{Handler: tmux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = tsrv.Serve(tl) }()
	t.Cleanup(func() { _ = tsrv.Close() })

	sctx, stop := context.WithCancel(ctx)
	ios, _, _, _ := iostreams.Test()
	lines := make(lineWriter, 16)
	ios.ErrOut = lines
	served := make(chan error, 1)
	go func() {
		served <- Serve(sctx, ios, &Options{Namespace: ns, Address: "127.0.0.1", Window: 10 * time.Second}, vdash.Config{
			Metrics: &serial{m: direct}, Refresh: 200 * time.Millisecond,
			TapPods:   func(ctx context.Context, ns, res string) ([]vtap.Pod, error) { return vtap.Resolve(ctx, cs, ns, res) },
			TapDialer: hubDialer{tl.Addr().String()},
		})
	}()
	t.Cleanup(func() {
		stop()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	var url string
	select {
	case line := <-lines:
		_, rest, _ := strings.Cut(line, " on ")
		url, _, _ = strings.Cut(rest, " ")
	case err := <-served:
		t.Fatal(err)
	}
	go func() { // the rest of stderr: the test's log
		for l := range lines {
			t.Log(strings.TrimSpace(l))
		}
	}()

	bctx := browser.New(t, 2*time.Minute)

	// The namespace page: the workloads' golden metrics and the topology.
	var rps map[string]string
	var edges []string
	var shot []byte
	err = chromedp.Do(bctx,
		chromedp.Navigate(url+"#/ns/"+ns),
		browser.Into(new(bool), chromedp.Poll[bool](`(() => { const c = document.querySelector('#workloads-table tr[data-name="web"] td.rps');
			return !!c && c.textContent !== "-" && document.querySelectorAll("#topology path.edge").length > 0; })()`,
			chromedp.WithPollingTimeout(time.Minute))),
		browser.Into(&rps, chromedp.Evaluate[map[string]string](`Object.fromEntries([...document.querySelectorAll("#workloads-table tbody tr[data-name]")]
			.map((r) => [r.dataset.name, r.querySelector("td.rps").textContent]))`)),
		browser.Into(&edges, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#topology path.edge")].map((e) => e.dataset.src + " -> " + e.dataset.dst)`)),
		browser.Into(&shot, chromedp.FullScreenshot(100)),
	)
	if err != nil {
		t.Fatalf("the namespace page: %v", err)
	}
	// 25 requests to web and 10 to api per 10 s window.
	want := map[string]string{"client": "-", "web": "2.5rps", "api": "1.0rps"}
	if fmt.Sprint(rps) != fmt.Sprint(want) {
		t.Errorf("the workload table's RPS: %v, want %v", rps, want)
	}
	d := func(name string) string { return ns + "/deployment/" + name }
	wantEdges := []string{d("client") + " -> " + d("web"), d("web") + " -> " + d("api"), "unmeshed -> " + d("web"), d("client") + " -> unknown"}
	slices.Sort(edges)
	slices.Sort(wantEdges)
	if !slices.Equal(edges, wantEdges) {
		t.Errorf("the topology's edges:\n got %q\nwant %q", edges, wantEdges)
	}
	browser.Screenshot(t, filepath.Join("..", "..", "docs", "img", "dashboard-namespace.png"), shot)

	// web's page: its route and its live tap. The hub publishes once the page
	// has subscribed.
	published := make(chan struct{})
	go func() {
		defer close(published)
		for !hub.Active() {
			select {
			case <-bctx.Done():
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
		for i, p := range []string{"/books", "/books?page=2", "/books/42"} {
			status := 200
			if i == 2 {
				status = 404
			}
			hub.Publish(&api.Event{Type: api.TypeHTTP, Time: time.Now(), Direction: api.Inbound, Method: "GET", Scheme: "http",
				Authority: "web." + ns + ".svc.cluster.local", Path: p, Status: status, LatencyToHeadersNs: 9e6, LatencyToEndNs: 10e6,
				SrcAddr: ip + ":51000", DstAddr: webAddr, ClientID: id("client"), TLS: true, ResponseBytes: 120})
		}
	}()
	var paths []string
	var route string
	err = chromedp.Do(bctx,
		chromedp.Navigate(url+"#/ns/"+ns+"/deployment/web"),
		browser.Into(new(bool), chromedp.Poll[bool](`document.querySelectorAll("#tap tr.tap-event").length >= 3 &&
			!!document.querySelector('#routes-table tr[data-route="GET /books"]') &&
			document.querySelectorAll("#topology path.edge").length > 0`, chromedp.WithPollingTimeout(time.Minute))),
		browser.Into(&paths, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#tap tr.tap-event")].map((r) => [r.dataset.path, r.dataset.status, r.dataset.direction, r.dataset.tls, r.dataset.peer, r.dataset.src, r.dataset.proxy].join(" "))`)),
		browser.Into(&route, chromedp.Evaluate[string](`document.querySelector('#routes-table tr[data-route="GET /books"]').textContent`)),
		browser.Into(&shot, chromedp.FullScreenshot(100)),
	)
	<-published
	if err != nil {
		t.Fatalf("web's page: %v", err)
	}
	from := " inbound true " + id("client") + " " + ip + ":51000 " + ns + "/web-1"
	if want := []string{"/books/42 404" + from, "/books?page=2 200" + from, "/books 200" + from}; !slices.Equal(paths, want) {
		t.Errorf("the tap view: %q, want %q (newest first)", paths, want)
	}
	if !strings.Contains(route, "2.0rps") || !strings.Contains(route, "100.00%") {
		t.Errorf("web's route GET /books: %q, want 2.0rps and 100.00%%", route)
	}
	browser.Screenshot(t, filepath.Join("..", "..", "docs", "img", "dashboard-workload.png"), shot)
}

// serial runs one query at a time: each query's two samples then bracket exactly
// the traffic of its own wait, so the rates are exact.
type serial struct {
	mu sync.Mutex
	m  vdash.Metrics
}

func (s *serial) Stat(ctx context.Context, q stat.Query) ([]stat.Row, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m.Stat(ctx, q)
}

func (s *serial) Edges(ctx context.Context, ns, kind string, w time.Duration) ([]stat.Edge, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m.Edges(ctx, ns, kind, w)
}

func (s *serial) Routes(ctx context.Context, dyn dynamic.Interface, r stat.Resource, w time.Duration) ([]stat.RouteRow, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m.Routes(ctx, dyn, r, w)
}

// createMeshed creates p's Deployment (no replicas: no controller runs here), its
// ServiceAccount and the pod, Running with its proxy container running on ip.
func createMeshed(t *testing.T, cs kubernetes.Interface, ns, ip string, p *proxyPod) {
	t.Helper()
	ctx := context.Background()
	sel := map[string]string{"app": p.app}
	zero := int32(0)
	if _, err := cs.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: p.app},
		Spec: appsv1.DeploymentSpec{Replicas: &zero, Selector: &metav1.LabelSelector{MatchLabels: sel},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: sel},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: p.app, Image: p.app}}}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: p.app}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod, err := cs.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: p.name, Labels: sel},
		Spec: corev1.PodSpec{ServiceAccountName: p.app, Containers: []corev1.Container{
			{Name: p.app, Image: p.app},
			{Name: inject.ProxyContainer, Image: "proxy", Ports: []corev1.ContainerPort{{Name: inject.AdminPortName, ContainerPort: int32(p.port)}}},
		}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	running := corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}}
	pod.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}},
		ContainerStatuses: []corev1.ContainerStatus{{Name: p.app, Ready: true, State: running}, {Name: inject.ProxyContainer, Ready: true, State: running}}}
	if _, err := cs.CoreV1().Pods(ns).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}
