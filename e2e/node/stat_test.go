package node

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

// statRow is what the test reads of mesh stat -o json.
type statRow struct {
	Name       string   `json:"name"`
	MeshedPods int      `json:"meshed_pods"`
	TotalPods  int      `json:"total_pods"`
	RPS        *float64 `json:"rps"`
	Success    *float64 `json:"success"`
	TLS        *float64 `json:"tls"`
}

// mesh stat, direct source, on the real node: the proxies' /metrics through the API
// server's pods/proxy while the load deployment sends its steady 40 requests per
// second to web. Every deployment of demo-auto is fully meshed, web serves traffic,
// and the load's outbound traffic to the web service shows with --to.
func (n *node) testStat(t *testing.T) {
	stat := func(busy string, args ...string) map[string]statRow {
		t.Helper()
		var rows map[string]statRow
		eventually(t, 60*time.Second, func() string {
			code, o, e := n.meshCmd(nil, append([]string{"stat"}, append(args, "-n", auto, "-t", "5s", "-o", "json")...)...)
			if code != 0 {
				return fmt.Sprintf("mesh stat %v: exit %d\n%s%s", args, code, o, e)
			}
			var list []statRow
			if err := json.Unmarshal([]byte(o), &list); err != nil {
				t.Fatalf("mesh stat %v -o json: %v\n%s", args, err, o)
			}
			rows = map[string]statRow{}
			for _, r := range list {
				rows[r.Name] = r
			}
			if r := rows[busy]; r.RPS == nil || *r.RPS <= 0 {
				return fmt.Sprintf("mesh stat %v: %s has no traffic yet: %s", args, busy, o)
			}
			return ""
		})
		return rows
	}

	rows := stat("web", "deploy")
	for _, name := range []string{"web", "client", "load"} {
		r, ok := rows[name]
		if !ok || r.TotalPods == 0 || r.MeshedPods != r.TotalPods {
			t.Errorf("mesh stat deploy: %s: %d of %d pods meshed (found %v), want all", name, r.MeshedPods, r.TotalPods, ok)
		}
	}
	// The load's 40 requests per second are mTLS and succeed; kubelet's readiness
	// probes reach web's proxy in plain text, so the mTLS share is not quite 100%.
	w := rows["web"]
	if w.Success == nil || *w.Success < 0.9 || w.TLS == nil || *w.TLS < 0.5 {
		t.Errorf("mesh stat deploy: web success %v, mTLS %v: want mostly ok, mostly mTLS", ptr(w.Success), ptr(w.TLS))
	}
	t.Logf("web: %.1f rps, success %v, mTLS %v", *w.RPS, ptr(w.Success), ptr(w.TLS))

	rows = stat("load", "deploy/load", "--to", "svc/web")
	if len(rows) != 1 {
		t.Errorf("mesh stat deploy/load --to svc/web: rows %v, want load's alone", rows)
	}
	t.Logf("load to svc/web: %.1f rps", *rows["load"].RPS)
}

func ptr(v *float64) string {
	if v == nil {
		return "null"
	}
	return fmt.Sprintf("%.4f", *v)
}
