package stat

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/meshplane/mesh/internal/testing/golden"
	"github.com/meshplane/mesh/render/install"
)

func res(kind, ns, name string) *Resource { return &Resource{Kind: kind, Namespace: ns, Name: name} }

// promQLCases are the golden query sets: every kind, named and not, and --to/--from.
func promQLCases() []struct {
	name string
	q    Query
} {
	m := time.Minute
	return []struct {
		name string
		q    Query
	}{
		{"deploy-all", Query{Resource: *res("deployment", "shop", ""), Window: m}},
		{"deploy-web", Query{Resource: *res("deployment", "shop", "web"), Window: m}},
		{"deploy-all-namespaces", Query{Resource: *res("deployment", "", ""), Window: m}},
		{"statefulset-db", Query{Resource: *res("statefulset", "shop", "db"), Window: 30 * time.Second}},
		{"daemonset-all", Query{Resource: *res("daemonset", "kube-system", ""), Window: m}},
		{"pod-web-1", Query{Resource: *res("pod", "shop", "web-1"), Window: 90 * time.Second}},
		{"namespace-all", Query{Resource: *res("namespace", "", ""), Window: m}},
		{"namespace-shop", Query{Resource: *res("namespace", "", "shop"), Window: time.Hour}},
		{"service-all", Query{Resource: *res("service", "shop", ""), Window: m}},
		{"service-web", Query{Resource: *res("service", "shop", "web"), Window: m}},
		{"deploy-web-to-deploy-api", Query{Resource: *res("deployment", "shop", "web"), To: res("deployment", "shop", "api"), Window: m}},
		{"deploy-all-to-svc-api", Query{Resource: *res("deployment", "shop", ""), To: res("service", "shop", "api"), Window: m}},
		{"deploy-web-to-pod", Query{Resource: *res("deployment", "shop", "web"), To: res("pod", "shop", "api-1"), Window: m}},
		{"deploy-api-from-deploy-web", Query{Resource: *res("deployment", "shop", "api"), From: res("deployment", "shop", "web"), Window: m}},
		{"deploy-all-from-namespace", Query{Resource: *res("deployment", "shop", ""), From: res("namespace", "", "front"), Window: m}},
		{"namespace-all-from-deploy", Query{Resource: *res("namespace", "", ""), From: res("deployment", "front", "web"), Window: m}},
	}
}

// TestPromQLGolden pins the PromQL of every kind and filter: the text users'
// dashboards and alerts are compared with.
func TestPromQLGolden(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	for _, tc := range promQLCases() {
		qs, err := PromQL(tc.q)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		fmt.Fprintf(&b, "# %s\nrequests: %s\n", tc.name, qs.Requests)
		for i, l := range qs.Latency {
			fmt.Fprintf(&b, "latency[%d]: %s\n", i, l)
		}
		fmt.Fprintf(&b, "tcp: %s\ngroup by: %s\n\n", qs.TCP, strings.Join(qs.GroupBy, ", "))
	}
	golden.Assert(t, "promql/stat.txt", []byte(b.String()))
}

// TestPromQLIsLinkerds checks the table's Linkerd queries against the text of
// linkerd2's stat_summary.go and Flagger's against linkerd.go, and one rendered query
// against the one Linkerd builds for `linkerd viz stat deploy/web -n shop`.
func TestPromQLIsLinkerds(t *testing.T) {
	t.Parallel()
	want := map[string]string{
		QueryRequests:       "sum(increase(response_total%s[%s])) by (%s, classification, tls)",
		QueryLatency:        "histogram_quantile(%s, sum(irate(response_latency_ms_bucket%s[%s])) by (le, %s))",
		QueryTCPConnections: "sum(tcp_open_connections%s) by (%s)",
	}
	for _, q := range PromQLQueries() {
		if w, ok := want[q.Name]; ok && q.Template != w {
			t.Errorf("%s = %q, Linkerd's is %q", q.Name, q.Template, w)
		}
		if q.Source == "" {
			t.Errorf("%s cites no source", q.Name)
		}
	}
	qs, err := PromQL(Query{Resource: *res("deployment", "shop", "web"), Window: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	const linkerd = `sum(increase(response_total{deployment="web", direction="inbound", namespace="shop"}[1m])) by (namespace, deployment, classification, tls)`
	if qs.Requests != linkerd {
		t.Errorf("requests query\n got %s\nwant %s", qs.Requests, linkerd)
	}
	got := RenderFlagger(QueryFlaggerLatency, "shop", "web", 2*time.Minute)
	if !strings.Contains(got, `namespace="shop",`) || !strings.Contains(got, `deployment=~"web",`) || !strings.Contains(got, "}[2m]") {
		t.Errorf("flagger latency query not filled in:\n%s", got)
	}
}

func TestPromQLErrors(t *testing.T) {
	t.Parallel()
	for name, q := range map[string]Query{
		"no window":         {Resource: *res("deployment", "shop", "")},
		"to and from":       {Resource: *res("deployment", "shop", ""), To: res("pod", "shop", "a"), From: res("pod", "shop", "b"), Window: time.Minute},
		"unknown kind":      {Resource: *res("cronjob", "shop", ""), Window: time.Minute},
		"unknown to kind":   {Resource: *res("deployment", "shop", ""), To: res("ingress", "shop", "a"), Window: time.Minute},
		"service with from": {Resource: *res("service", "shop", "web"), From: res("deployment", "shop", "a"), Window: time.Minute},
		"service with to":   {Resource: *res("service", "shop", "web"), To: res("deployment", "shop", "a"), Window: time.Minute},
	} {
		if _, err := PromQL(q); err == nil {
			t.Errorf("%s: no error", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}

func TestPromDuration(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]string{
		time.Minute: "1m", 90 * time.Second: "1m30s", time.Hour: "1h", 36 * time.Hour: "1d12h",
		10 * time.Second: "10s", 1500 * time.Millisecond: "1500ms", 0: "0s",
	} {
		if got := PromDuration(d); got != want {
			t.Errorf("PromDuration(%s) = %s, want %s", d, got, want)
		}
	}
}

type fakePods []PodCount

func (f fakePods) Pods(context.Context, Resource) ([]PodCount, error) { return f, nil }

// TestPrometheusStatAggregates feeds canned query results (the API's JSON) to Stat:
// classification and tls are summed into a row, percentiles and TCP land in the
// right row, objects without traffic still get a row, and NaN stays NaN.
func TestPrometheusStatAggregates(t *testing.T) {
	t.Parallel()
	q := Query{Resource: *res("deployment", "shop", ""), Window: 10 * time.Second}
	qs, err := PromQL(q)
	if err != nil {
		t.Fatal(err)
	}
	vec := func(samples ...string) string {
		return `{"status":"success","data":{"resultType":"vector","result":[` + strings.Join(samples, ",") + `]}}`
	}
	smp := func(labels, v string) string {
		return `{"metric":{"namespace":"shop",` + labels + `},"value":[1700000000.5,"` + v + `"]}`
	}
	answers := map[string]string{
		qs.Requests: vec(
			smp(`"deployment":"web","classification":"success","tls":"true"`, "90"),
			smp(`"deployment":"web","classification":"failure","tls":"true"`, "5"),
			smp(`"deployment":"web","classification":"success","tls":"false"`, "5"),
			smp(`"deployment":"","classification":"success","tls":"false"`, "7"), // no deployment label: dropped
		),
		qs.Latency[0]: vec(smp(`"deployment":"web"`, "12.5")),
		qs.Latency[1]: vec(smp(`"deployment":"web"`, "48")),
		qs.Latency[2]: vec(smp(`"deployment":"web"`, "NaN")),
		qs.TCP:        vec(smp(`"deployment":"web"`, "3")),
	}
	var gotTime string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotTime = r.URL.Query().Get("time")
		a, ok := answers[r.URL.Query().Get("query")]
		if !ok || r.URL.Path != "/prom/api/v1/query" {
			w.WriteHeader(http.StatusBadRequest)
			msg, _ := json.Marshal("unexpected query " + r.URL.Query().Get("query"))
			fmt.Fprintf(w, `{"status":"error","errorType":"bad_data","error":%s}`, msg)
			return
		}
		fmt.Fprint(w, a)
	}))
	defer srv.Close()
	now := time.Unix(1700000000, 500e6)
	pods := fakePods{{Resource: *res("deployment", "shop", "web"), Meshed: 2, Total: 3}, {Resource: *res("deployment", "shop", "idle"), Meshed: 1, Total: 1}}
	p, err := NewPrometheus(srv.URL+"/prom", srv.Client(), pods, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	rows, err := p.Stat(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	if gotTime != "1700000000.500" {
		t.Errorf("time = %q, want the injected clock", gotTime)
	}
	if len(rows) != 2 || rows[0].Resource.Name != "idle" || rows[1].Resource.Name != "web" {
		t.Fatalf("rows = %+v", rows)
	}
	idle, web := rows[0], rows[1]
	if idle.Requests != 0 || !math.IsNaN(idle.SuccessRate) || !math.IsNaN(idle.LatencyP50) || idle.MeshedPods != 1 || idle.TotalPods != 1 {
		t.Errorf("idle = %+v", idle)
	}
	if web.Requests != 100 || web.Successes != 95 || web.SuccessRate != 0.95 || web.RPS != 10 ||
		web.TLSRequests != 95 || web.TLSShare != 0.95 || web.LatencyP50 != 12.5 || web.LatencyP95 != 48 ||
		!math.IsNaN(web.LatencyP99) || web.TCPConnections != 3 || web.MeshedPods != 2 || web.TotalPods != 3 {
		t.Errorf("web = %+v", web)
	}

	// A query the server refuses is an error that names the query and the reason.
	_, err = p.Stat(context.Background(), Query{Resource: *res("pod", "shop", ""), Window: time.Minute})
	if err == nil || !strings.Contains(err.Error(), "unexpected query") || !strings.Contains(err.Error(), "response_total") {
		t.Errorf("refused query: err = %v", err)
	}
}

func TestNewPrometheusRejectsBadURLs(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"", "prometheus:9090", "ftp://x", "http://", "http://a b/"} {
		if _, err := NewPrometheus(u, nil, nil, nil); err == nil {
			t.Errorf("%q: accepted", u)
		}
	}
}

// The install's recording rules are the stat queries: for each kind, the requests and
// TCP rules are the queries mesh stat sends over every namespace with -t 1m, and
// the latency rule is what its percentiles take histogram_quantile of.
func TestRecordingRulesAreTheStatQueries(t *testing.T) {
	t.Parallel()
	raw, err := install.PrometheusRecordingRules()
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Groups []struct {
			Rules []struct{ Record, Expr string }
		}
	}
	if err := yaml.Unmarshal(raw, &file); err != nil {
		t.Fatalf("%s: %v", install.PrometheusRulesFile, err)
	}
	rules := map[string]string{}
	for _, g := range file.Groups {
		for _, r := range g.Rules {
			rules[r.Record] = r.Expr
		}
	}
	for _, kind := range []string{"namespace", "deployment", "statefulset", "daemonset", "pod"} {
		qs, err := PromQL(Query{Resource: Resource{Kind: kind}, Window: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		if got := rules[kind+":response_total:increase1m"]; got != qs.Requests {
			t.Errorf("%s requests rule\n got %s\nwant %s", kind, got, qs.Requests)
		}
		if got := rules[kind+":tcp_open_connections:sum"]; got != qs.TCP {
			t.Errorf("%s tcp rule\n got %s\nwant %s", kind, got, qs.TCP)
		}
		if got := "histogram_quantile(0.5, " + rules[kind+":response_latency_ms_bucket:irate1m"] + ")"; got != qs.Latency[0] {
			t.Errorf("%s latency rule\n got %s\nwant %s", kind, got, qs.Latency[0])
		}
	}
	if len(rules) != 15 {
		t.Errorf("%d rules, want 3 for each of 5 kinds", len(rules))
	}
}

// TestEdgesRoutesPromQLGolden pins the PromQL of mesh edges (every kind, a
// namespace or all, with a window or without) and of mesh routes (a workload,
// a pod, a service by its pods).
func TestEdgesRoutesPromQLGolden(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	for _, tc := range []struct {
		name   string
		ns     string
		kind   string
		window time.Duration
	}{
		{"edges-deploy-shop", "shop", KindDeployment, time.Minute},
		{"edges-deploy-shop-since-start", "shop", KindDeployment, 0},
		{"edges-sts-all-namespaces", "", KindStatefulSet, 10 * time.Second},
		{"edges-ds-kube-system", "kube-system", KindDaemonSet, time.Minute},
		{"edges-pod-shop", "shop", KindPod, 30 * time.Second},
	} {
		qs, err := EdgesPromQL(tc.ns, tc.kind, tc.window)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		fmt.Fprintf(&b, "# %s\noutbound: %s\ninbound: %s\nlabel: %s\n\n", tc.name, qs.Outbound, qs.Inbound, qs.Label)
	}
	for _, tc := range []struct {
		name string
		r    Resource
		pods []string
	}{
		{"routes-deploy-web", *res("deployment", "shop", "web"), []string{"web-1"}},
		{"routes-sts-db", *res("statefulset", "shop", "db"), []string{"db-0"}},
		{"routes-pod", *res("pod", "shop", "web-1"), []string{"web-1"}},
		{"routes-svc-web", *res("service", "shop", "web"), []string{"web-5d8f-a.b", "web-5d8f-c"}},
	} {
		qs, err := RoutesPromQL(tc.r, tc.pods, time.Minute)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		fmt.Fprintf(&b, "# %s\nrequests: %s\n", tc.name, qs.Requests)
		for i, l := range qs.Latency {
			fmt.Fprintf(&b, "latency[%d]: %s\n", i, l)
		}
		b.WriteString("\n")
	}
	golden.Assert(t, "promql/edges-routes.txt", []byte(b.String()))
}

// The edges queries are Linkerd's, as edges.go writes them, with sum for count
// and the labels mesh's rows need added at the end; the routes queries are
// stat's grouped by route.
func TestEdgesRoutesPromQLIsLinkerds(t *testing.T) {
	t.Parallel()
	prefix := map[string]string{
		QueryEdgesOutbound: "sum(%s) by (%s, dst_%s, server_id, namespace, dst_namespace, no_tls_reason",
		QueryEdgesInbound:  "sum(%s) by (%s, client_id, namespace, no_tls_reason",
	}
	for _, q := range PromQLQueries() {
		if p, ok := prefix[q.Name]; ok && !strings.HasPrefix(q.Template, p) {
			t.Errorf("%s = %q: want Linkerd's group-by %q first", q.Name, q.Template, p)
		}
	}
	qs, err := EdgesPromQL("shop", KindDeployment, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	const out = `sum(increase(response_total{deployment!="", direction="outbound", namespace="shop"}[1m])) by (deployment, dst_deployment, server_id, namespace, dst_namespace, no_tls_reason, dst_service, tls)`
	if qs.Outbound != out {
		t.Errorf("outbound\n got %s\nwant %s", qs.Outbound, out)
	}
	rq, err := RoutesPromQL(*res("deployment", "shop", "web"), nil, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	const req = `sum(increase(response_total{deployment="web", direction="inbound", namespace="shop"}[1m])) by (route, classification, tls)`
	if rq.Requests != req {
		t.Errorf("route requests\n got %s\nwant %s", rq.Requests, req)
	}
}

func TestEdgesRoutesPromQLErrors(t *testing.T) {
	t.Parallel()
	for name, err := range map[string]error{
		"edges of services":    second(EdgesPromQL("shop", KindService, time.Minute)),
		"edges, negative -t":   second(EdgesPromQL("shop", KindDeployment, -time.Second)),
		"routes of no name":    second(RoutesPromQL(*res("deployment", "shop", ""), nil, time.Minute)),
		"routes of namespaces": second(RoutesPromQL(*res("namespace", "", "shop"), nil, time.Minute)),
		"routes without -t":    second(RoutesPromQL(*res("deployment", "shop", "web"), nil, 0)),
	} {
		if err == nil {
			t.Errorf("%s: no error", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
	// Without a Kubernetes client, the Prometheus source cannot name sources or pods.
	p, err := NewPrometheus("http://127.0.0.1:1", nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Edges(context.Background(), "shop", KindDeployment, 0); err == nil || !strings.Contains(err.Error(), "Kubernetes client") {
		t.Errorf("edges without Kube: %v", err)
	}
	if _, err := p.Routes(context.Background(), nil, *res("deployment", "shop", "web"), time.Minute); err == nil || !strings.Contains(err.Error(), "Kubernetes client") {
		t.Errorf("routes without Kube: %v", err)
	}
}

func second[T any](_ T, err error) error { return err }
