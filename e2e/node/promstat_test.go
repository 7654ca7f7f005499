package node

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/meshplane/mesh/internal/testing/promtest"
)

// testStatSources is issue 14's agreement proof on the real node: a real Prometheus
// (Debian's, on this machine) scrapes the proxies of the node's meshed pods with the
// install's relabelling; then, over one window of the
// load deployment's steady traffic to web, mesh stat's direct source, its Prometheus
// source and the load generator's own count agree within 5%; and mesh edges and
// mesh routes give the same rows from both sources, their rates within 5% of each
// other.
func (n *node) testStatSources(t *testing.T) {
	if os.Getenv(promtest.RequireEnv) == "" {
		t.Setenv(promtest.RequireEnv, "1") // the real node's proof needs it: never skip
	}
	// Debian's Prometheus has no kubernetes_sd: the targets are what it would discover,
	// each meshed pod's proxy admin port with its pod metadata, listed here.
	var targets []promtest.Target
	for _, ns := range []string{auto, manual} {
		for _, p := range n.pods(ns, "app") {
			if p.Metadata.Owner.Kind != "ReplicaSet" {
				continue
			}
			targets = append(targets, promtest.Target{Addr: p.Status.PodIP + ":4191",
				Meta: promtest.PodMeta(ns, p.Metadata.Name, p.Metadata.Owner.Kind, p.Metadata.Owner.Name, p.Metadata.Labels["pod-template-hash"])})
		}
	}
	prom := promtest.Start(t, targets, promtest.Options{})
	load := n.onePod(auto, "load")
	// Prometheus has scraped load's proxy (every second) for a whole window.
	const window = 20 * time.Second
	eventually(t, 120*time.Second, func() string {
		v, err := promScalar(prom, fmt.Sprintf(`max(count_over_time(response_total{namespace=%q, deployment="load", direction="outbound", dst_service="web"}[%s]))`, auto, promDur(window)))
		if err != nil || v < window.Seconds()-2 {
			return fmt.Sprintf("Prometheus does not hold a window of load's requests to web yet: %v samples, %v", v, err)
		}
		return ""
	})

	stat := func(extra ...string) statRow {
		t.Helper()
		args := append([]string{"stat", "deploy/load", "--to", "svc/web", "-n", auto, "-t", window.String(), "-o", "json"}, extra...)
		o := n.mustMesh(nil, args...)
		var rows []statRow
		if err := json.Unmarshal([]byte(o), &rows); err != nil || len(rows) != 1 || rows[0].RPS == nil {
			t.Fatalf("mesh %v: %v\n%s", args, err, o)
		}
		return rows[0]
	}
	before, t0 := n.loadStats(load, false), time.Now()
	direct := stat()
	after, t1 := n.loadStats(load, false), time.Now()
	viaProm := stat("--prometheus-url", prom)
	counted := float64(after.Requests-before.Requests) / t1.Sub(t0).Seconds()

	t.Logf("load → svc/web: direct %.2f rps, Prometheus %.2f rps, the load generator %.2f rps", *direct.RPS, *viaProm.RPS, counted)
	for _, c := range []struct {
		what string
		got  float64
	}{{"mesh stat (direct)", *direct.RPS}, {"mesh stat --prometheus-url", *viaProm.RPS}} {
		if math.Abs(c.got-counted) > 0.05*counted {
			t.Errorf("%s: %.2f rps; the load generator sent %.2f rps (tolerance 5%%)", c.what, c.got, counted)
		}
	}
	if direct.Success == nil || viaProm.Success == nil || *direct.Success < 0.99 || *viaProm.Success < 0.99 {
		t.Errorf("success: direct %s, Prometheus %s; want both ~100%%", ptr(direct.Success), ptr(viaProm.Success))
	}
	n.edgesAgree(t, prom, window)
	n.routesAgree(t, prom, window)
}

// edgeRow is one edge of mesh edges -o json.
type edgeRow struct {
	Src, Dst *struct {
		Kind, Namespace, Name string
	}
	ClientID string   `json:"client_id"`
	ServerID string   `json:"server_id"`
	Secured  bool     `json:"secured"`
	RPS      *float64 `json:"rps"`
}

func (e edgeRow) key() string {
	name := func(r *struct{ Kind, Namespace, Name string }) string {
		if r == nil {
			return "-"
		}
		return r.Kind + "/" + r.Namespace + "/" + r.Name
	}
	return fmt.Sprintf("%s -> %s (secured %v, client %q, server %q)", name(e.Src), name(e.Dst), e.Secured, e.ClientID, e.ServerID)
}

// rateAgrees: two rates over window agree within 5%, or within 2 requests in the
// window for a slow one (kubelet's probes, 0.5 rps: 10 requests in 20 s). The two
// sources read windows a few seconds apart (direct samples after its call,
// Prometheus the window before its own), so a slow edge differs by a request or two.
func rateAgrees(a, b float64, window time.Duration) bool {
	return math.Abs(a-b) <= math.Max(0.05*math.Max(a, b), 2/window.Seconds())
}

// edgesAgree: mesh edges deploy over window, direct and --prometheus-url, give
// the same edges (those with traffic: 0.5 rps or more in either), each one's rate
// agreeing with the other's (rateAgrees), and the load -> web edge over mTLS at the load's rate.
func (n *node) edgesAgree(t *testing.T, prom string, window time.Duration) {
	edges := func(extra ...string) map[string]float64 {
		t.Helper()
		args := append([]string{"edges", "deploy", "-n", auto, "-t", window.String(), "-o", "json"}, extra...)
		o := n.mustMesh(nil, args...)
		var rows []edgeRow
		if err := json.Unmarshal([]byte(o), &rows); err != nil {
			t.Fatalf("mesh %v: %v\n%s", args, err, o)
		}
		out := map[string]float64{}
		for _, e := range rows {
			if e.RPS != nil {
				out[e.key()] = *e.RPS
			}
		}
		return out
	}
	direct, viaProm := edges(), edges("--prometheus-url", prom)
	t.Logf("edges: direct %v, Prometheus %v", direct, viaProm)
	for k, d := range direct {
		p, ok := viaProm[k]
		if (d >= 0.5 || p >= 0.5) && (!ok || !rateAgrees(d, p, window)) {
			t.Errorf("edge %s: direct %.2f rps, Prometheus %.2f (present %v); want the same within 5%% or 2 requests", k, d, p, ok)
		}
	}
	for k, p := range viaProm {
		if _, ok := direct[k]; !ok && p >= 0.5 {
			t.Errorf("edge %s: Prometheus %.2f rps, not in the direct source's edges", k, p)
		}
	}
	found := false
	for k, d := range direct {
		if strings.HasPrefix(k, "deployment/"+auto+"/load -> deployment/"+auto+"/web (secured true") {
			found = d > 30
		}
	}
	if !found {
		t.Errorf("no secured load -> web edge at the load's ~40 rps in %v", direct)
	}
}

// routesAgree: mesh routes deploy/web over window, direct and --prometheus-url,
// give the same routes, each one's rate agreeing with the other's (rateAgrees).
func (n *node) routesAgree(t *testing.T, prom string, window time.Duration) {
	routes := func(extra ...string) map[string]float64 {
		t.Helper()
		args := append([]string{"routes", "deploy/web", "-n", auto, "-t", window.String(), "-o", "json"}, extra...)
		o := n.mustMesh(nil, args...)
		var rows []struct {
			Route string   `json:"route"`
			RPS   *float64 `json:"rps"`
		}
		if err := json.Unmarshal([]byte(o), &rows); err != nil || len(rows) == 0 {
			t.Fatalf("mesh %v: %v\n%s", args, err, o)
		}
		out := map[string]float64{}
		for _, r := range rows {
			out[r.Route] = math.NaN()
			if r.RPS != nil {
				out[r.Route] = *r.RPS
			}
		}
		return out
	}
	direct, viaProm := routes(), routes("--prometheus-url", prom)
	t.Logf("routes of deploy/web: direct %v, Prometheus %v", direct, viaProm)
	if len(direct) != len(viaProm) {
		t.Errorf("routes: direct %v, Prometheus %v; want the same routes", direct, viaProm)
	}
	for r, d := range direct {
		p, ok := viaProm[r]
		if !ok || math.IsNaN(d) != math.IsNaN(p) || !math.IsNaN(d) && !rateAgrees(d, p, window) {
			t.Errorf("route %s: direct %.2f rps, Prometheus %.2f (present %v); want the same within 5%% or 2 requests", r, d, p, ok)
		}
	}
	if d := direct["[DEFAULT]"]; !(d > 30) {
		t.Errorf("route [DEFAULT] of web: %.2f rps, want the load's ~40", d)
	}
}

// promScalar runs an instant query that gives one sample.
func promScalar(base, query string) (float64, error) {
	resp, err := http.Get(base + "/api/v1/query?query=" + url.QueryEscape(query))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var r struct {
		Data struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return 0, err
	}
	if len(r.Data.Result) != 1 {
		return 0, fmt.Errorf("%d series", len(r.Data.Result))
	}
	s, _ := r.Data.Result[0].Value[1].(string)
	var v float64
	_, err = fmt.Sscan(s, &v)
	return v, err
}

func promDur(d time.Duration) string { return fmt.Sprintf("%ds", int(d.Seconds())) }
