package stat

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/meshplane/mesh/viz/dashboards"
)

// dashboardQuery is one PromQL query of a dashboard: a panel's target or a
// template variable's.
type dashboardQuery struct {
	where, expr string
}

// dashboardQueries reads every query of the embedded Grafana dashboards.
func dashboardQueries(t *testing.T) []dashboardQuery {
	t.Helper()
	names, err := dashboards.Names()
	if err != nil {
		t.Fatal(err)
	}
	if len(names) < 4 {
		t.Fatalf("dashboards %v: want top-line, namespace, deployment and route", names)
	}
	var out []dashboardQuery
	for _, name := range names {
		raw, err := dashboards.File(name)
		if err != nil {
			t.Fatal(err)
		}
		var d struct {
			UID        string `json:"uid"`
			Templating struct {
				List []struct {
					Name  string `json:"name"`
					Type  string `json:"type"`
					Query any    `json:"query"`
				} `json:"list"`
			} `json:"templating"`
			Panels []struct {
				Title   string `json:"title"`
				Targets []struct {
					Expr string `json:"expr"`
				} `json:"targets"`
			} `json:"panels"`
		}
		if err := json.Unmarshal(raw, &d); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if d.UID == "" || len(d.Panels) == 0 {
			t.Fatalf("%s: no uid or no panels", name)
		}
		for _, v := range d.Templating.List {
			if v.Type != "query" {
				continue
			}
			q, _ := v.Query.(map[string]any)
			expr, _ := q["query"].(string)
			out = append(out, dashboardQuery{name + " variable " + v.Name, expr})
		}
		for _, p := range d.Panels {
			if len(p.Targets) == 0 {
				t.Errorf("%s panel %q has no query", name, p.Title)
			}
			for _, tg := range p.Targets {
				out = append(out, dashboardQuery{name + " panel " + p.Title, tg.Expr})
			}
		}
	}
	return out
}

// labelValues matches Grafana's label_values(selector, label) variable query.
var labelValues = regexp.MustCompile(`^label_values\((.*), *([a-z_]+)\)$`)

// grafanaToPromQL replaces the dashboards' variables with the fake mesh's values,
// as Grafana would with namespace shop and deployment web selected, and a
// label_values variable query by the PromQL that returns the same label values.
func grafanaToPromQL(expr string) string {
	expr = strings.NewReplacer("$__rate_interval", "10s", "$namespace", "shop", "$deployment", "web").Replace(expr)
	if m := labelValues.FindStringSubmatch(expr); m != nil {
		return "count by (" + m[2] + ") (" + m[1] + ")"
	}
	return expr
}

func TestGrafanaToPromQL(t *testing.T) {
	t.Parallel()
	if got := grafanaToPromQL(`label_values(request_total{namespace="$namespace"}, deployment)`); got != `count by (deployment) (request_total{namespace="shop"})` {
		t.Errorf("label_values: %s", got)
	}
	if n := len(dashboardQueries(t)); n < 20 {
		t.Errorf("%d dashboard queries: fewer than the dashboards hold?", n)
	}
}
