package stat

import (
	"context"
	"math"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/meshplane/mesh/internal/testing/localaddr"
	"github.com/meshplane/mesh/internal/testing/testcluster"
)

// edgeApp is client -> web (mTLS), an unmeshed caller -> web (plaintext),
// web -> api (mTLS) and web -> service db, which has no pod (plaintext). web's
// inbound traffic has ServiceProfile routes: "GET /books", "POST /books" and
// the default; "DELETE /books" has none.
type edgeApp struct{ ns string }

func (a edgeApp) id(sa string) string {
	return sa + "." + a.ns + ".serviceaccount.identity.cluster.local"
}

func (a edgeApp) samples() map[string][2]proxyCounts {
	ok := func(l map[string]string) map[string]string { return with(l, "classification", "success") }
	get := with(in("true", "client_id", a.id("client")), "route", "GET /books")
	post := with(in("true", "client_id", a.id("client")), "route", "POST /books")
	plain := with(in("false", "no_tls_reason", "not_provided_by_remote"), "route", "")
	toWeb := out(a.ns, "web", "web-1", "server_id", a.id("web"), "dst_workload_kind", "replicaset", "dst_workload_name", "web-5d8f")
	toAPI := out(a.ns, "api", "api-1", "server_id", a.id("api"))
	toDB := with(out(a.ns, "db", ""), "tls", "false", "no_tls_reason", "not_provided_by_service_discovery")
	fromWeb := in("true", "client_id", a.id("web"))
	return map[string][2]proxyCounts{
		"client-1": {
			{responses: []counted{{ok(toWeb), 10}}},
			{responses: []counted{{ok(toWeb), 40}}},
		},
		"web-1": {
			{
				responses: []counted{{ok(get), 10}, {ok(plain), 4}, {ok(toAPI), 6}, {ok(toDB), 3}},
				latency:   []observed{{get, obs(10, 15)}, {plain, obs(4, 0.5)}},
			},
			{
				responses: []counted{
					{ok(get), 30}, // +20
					{ok(post), 5}, // new: +5
					{with(post, "classification", "failure"), 5}, // new: +5
					{ok(plain), 14}, // +10
					{ok(toAPI), 16}, // +10
					{ok(toDB), 13},  // +10
				},
				latency: []observed{{get, obs(30, 15)}, {post, obs(10, 3)}, {plain, obs(14, 0.5)}},
			},
		},
		"api-1": {
			{responses: []counted{{ok(fromWeb), 6}}},
			{responses: []counted{{ok(fromWeb), 16}}},
		},
	}
}

var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// installProfiles creates the ServiceProfile CRD of templates/mesh-crds (shared
// by the cluster's tests: an existing one is kept) and waits until it is served.
func installProfiles(t *testing.T, dyn dynamic.Interface) {
	t.Helper()
	raw, err := os.ReadFile("../../templates/mesh-crds/templates/serviceprofiles.yaml")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(string(raw), "{{ .Chart.AppVersion | quote }}", `"test"`)
	var obj map[string]any
	if err := yaml.Unmarshal([]byte(text), &obj); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	_, err = dyn.Resource(crdGVR).Create(ctx, &unstructured.Unstructured{Object: obj}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := dyn.Resource(ServiceProfiles).List(ctx, metav1.ListOptions{})
		return err == nil, nil
	})
	if err != nil {
		t.Fatalf("serviceprofiles not served: %v", err)
	}
}

// Edges and Routes against the real API server, the proxies served on a veth
// address through pods/proxy.
func TestEdgesAndRoutesCluster(t *testing.T) {
	t.Parallel()
	cs, dyn, ns, ip := edgeCluster(t)
	app := edgeApp{ns: ns}
	ips := map[string]string{"client-1": ip, "web-1": ip, "api-1": ip}
	proxies := serveSamples(t, ips, app.samples())
	ctx := context.Background()

	s := newScenario(ns, ip, ip, proxies.ports)
	createApps(t, cs, ns, "client", "web", "api")
	createServices(t, cs, ns, "web", "db")
	var pods []*corev1.Pod
	for _, p := range [][2]string{{"client-1", "client"}, {"web-1", "web"}, {"api-1", "api"}, {"curl", "curl"}} {
		pod := s.pod(p[0], p[1], ip)
		pod.Spec.ServiceAccountName = p[1]
		pods = append(pods, pod)
	}
	if _, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "curl"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	createPods(t, cs, pods)

	nan := math.NaN()
	deploy := func(name string) Resource { return Resource{Kind: KindDeployment, Namespace: ns, Name: name} }
	db := Resource{Kind: KindService, Namespace: ns, Name: "db"}
	wantEdges := func(scale, rps float64) []Edge {
		r := func(v float64) float64 {
			if math.IsNaN(rps) {
				return nan
			}
			return v / 10
		}
		return []Edge{
			{Dst: deploy("web"), NoTLSReason: "not_provided_by_remote", Requests: 4 + 6*scale, RPS: r(10)},
			{Src: deploy("client"), Dst: deploy("web"), ClientID: app.id("client"), ServerID: app.id("web"), Secured: true, Requests: 10 + 20*scale, RPS: r(30)},
			{Src: deploy("web"), Dst: deploy("api"), ClientID: app.id("web"), ServerID: app.id("api"), Secured: true, Requests: 6 + 4*scale, RPS: r(10)},
			{Src: deploy("web"), Dst: db, NoTLSReason: "not_provided_by_service_discovery", Requests: 3 + 7*scale, RPS: r(10)},
		}
	}
	for _, tc := range []struct {
		window time.Duration
		want   []Edge
	}{
		{0, wantEdges(0, nan)},    // one scrape: the counts since the proxies started
		{window, wantEdges(1, 1)}, // two scrapes 10s apart: the increases
	} {
		proxies.reset()
		clock := &fakeClock{now: time.Unix(1e9, 0)}
		d := &Direct{Client: cs, Now: clock.Now, Sleep: clock.Sleep, PodTimeout: 30 * time.Second}
		got, err := d.Edges(ctx, ns, KindDeployment, tc.window)
		if err != nil {
			t.Fatal(err)
		}
		if !sameEdges(got, tc.want) {
			t.Errorf("window %s: edges\n got %+v\nwant %+v", tc.window, got, tc.want)
		}
	}

	// By pod: the same edges between pods; db has no pod, so it stays a service.
	proxies.reset()
	clock0 := &fakeClock{now: time.Unix(1e9, 0)}
	d0 := &Direct{Client: cs, Now: clock0.Now, Sleep: clock0.Sleep, PodTimeout: 30 * time.Second}
	got0, err := d0.Edges(ctx, ns, KindPod, 0)
	if err != nil {
		t.Fatal(err)
	}
	pod := func(name string) Resource { return Resource{Kind: KindPod, Namespace: ns, Name: name} }
	wantPods := wantEdges(0, nan)
	wantPods[0].Dst = pod("web-1")
	wantPods[1].Src, wantPods[1].Dst = pod("client-1"), pod("web-1")
	wantPods[2].Src, wantPods[2].Dst = pod("web-1"), pod("api-1")
	wantPods[3].Src = pod("web-1")
	if !sameEdges(got0, wantPods) {
		t.Errorf("pod edges\n got %+v\nwant %+v", got0, wantPods)
	}

	// Routes: web's ServiceProfile names three routes, one without traffic.
	booksProfile(t, dyn, ns, "GET", "POST", "DELETE")
	proxies.reset()
	clock := &fakeClock{now: time.Unix(1e9, 0)}
	d := &Direct{Client: cs, Now: clock.Now, Sleep: clock.Sleep, PodTimeout: 30 * time.Second}
	got, err := d.Routes(ctx, dyn, deploy("web"), window)
	if err != nil {
		t.Fatal(err)
	}
	row := func(route, svc string, req, ok, p50, p95, p99 float64) RouteRow {
		r := RouteRow{Route: route, Service: svc, Row: Row{Resource: deploy("web"), MeshedPods: 1, TotalPods: 1,
			Requests: req, Successes: ok, SuccessRate: ok / req, RPS: req / 10,
			LatencyP50: p50, LatencyP95: p95, LatencyP99: p99, TCPConnections: nan}}
		r.TLSRequests, r.TLSShare = req, 1
		if route == DefaultRoute {
			r.TLSRequests, r.TLSShare = 0, 0
		}
		if req == 0 {
			r.SuccessRate, r.RPS, r.TLSShare = nan, nan, nan
		}
		return r
	}
	want := []RouteRow{
		row("GET /books", "web", 20, 20, 15, 19.5, 19.9),  // 20 in (10,20]
		row("POST /books", "web", 10, 5, 2.5, 2.95, 2.99), // 10 in (2,3]
		row("DELETE /books", "web", 0, 0, nan, nan, nan),  // no traffic
		row(DefaultRoute, "", 10, 10, 0.5, 0.95, 0.99),    // 10 in (0,1]
	}
	if !sameRoutes(got, want) {
		t.Errorf("routes\n got %+v\nwant %+v", got, want)
	}
}

// edgeCluster is the real API server with the ServiceProfile CRD, a namespace
// of the test's, and an address of a veth link for its proxies.
func edgeCluster(t *testing.T) (kubernetes.Interface, dynamic.Interface, string, string) {
	t.Helper()
	cs := testcluster.Clientset(t)
	dyn, err := dynamic.NewForConfig(testcluster.RESTConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	installProfiles(t, dyn)
	return cs, dyn, testcluster.Namespace(t, cs), localaddr.IPs(t, 1)[0]
}

// createApps creates, in ns, a Deployment (no replicas) selecting app=NAME and a
// ServiceAccount NAME for each name.
func createApps(t *testing.T, cs kubernetes.Interface, ns string, names ...string) {
	t.Helper()
	ctx := context.Background()
	for _, name := range names {
		sel := map[string]string{"app": name}
		d := &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec: appsv1.DeploymentSpec{Replicas: new(int32), Selector: &metav1.LabelSelector{MatchLabels: sel},
				Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: sel},
					Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: name, Image: "app"}}}}},
		}
		if _, err := cs.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

// createServices creates, in ns, a Service NAME selecting app=NAME for each name.
func createServices(t *testing.T, cs kubernetes.Interface, ns string, names ...string) {
	t.Helper()
	for _, svc := range names {
		o := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: svc, Namespace: ns},
			Spec: corev1.ServiceSpec{Selector: map[string]string{"app": svc}, Ports: []corev1.ServicePort{{Port: 80}}}}
		if _, err := cs.CoreV1().Services(ns).Create(context.Background(), o, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

// booksProfile creates the ServiceProfile of the web service of ns, with one
// route "METHOD /books" for each method.
func booksProfile(t *testing.T, dyn dynamic.Interface, ns string, methods ...string) {
	t.Helper()
	var routes []any
	for _, m := range methods {
		routes = append(routes, map[string]any{"name": m + " /books", "condition": map[string]any{"method": m, "pathRegex": "/books"}})
	}
	sp := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "policy.meshplane.io/v1alpha1", "kind": "ServiceProfile",
		"metadata": map[string]any{"name": "web." + ns + ".svc.cluster.local", "namespace": ns},
		"spec":     map[string]any{"routes": routes},
	}}
	if _, err := dyn.Resource(ServiceProfiles).Namespace(ns).Create(context.Background(), sp, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func sameEdges(a, b []Edge) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if !sameFloat(x.Requests, y.Requests) || !sameFloat(x.RPS, y.RPS) {
			return false
		}
		x.Requests, x.RPS, y.Requests, y.RPS = 0, 0, 0, 0
		if !reflect.DeepEqual(x, y) {
			return false
		}
	}
	return true
}

func sameRoutes(a, b []RouteRow) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Route != b[i].Route || a[i].Service != b[i].Service || !sameRow(a[i].Row, b[i].Row) {
			return false
		}
	}
	return true
}

func sameFloat(a, b float64) bool {
	return math.IsNaN(a) && math.IsNaN(b) || math.Abs(a-b) < 1e-9
}
