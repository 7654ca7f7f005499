package node

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/meshplane/mesh/internal/testing/promtest"
)

// testStatSources is issue 14's agreement proof on the real node: a real Prometheus
// (Debian's, on this machine) scrapes the proxies of the node's meshed pods with the
// install's relabelling; then, over one window of the
// load deployment's steady traffic to web, mesh stat's direct source, its Prometheus
// source and the load generator's own count agree within 5%.
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
