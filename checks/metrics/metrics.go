// Package metrics is `mesh check --metrics --prometheus-url URL`: a Prometheus holds
// the proxies' series with the labels that mesh stat's, Linkerd's and Flagger's
// queries and mesh's dashboards group and filter by: the proxy's own (direction,
// classification, tls, le) and those the scrape config's relabelling adds
// (namespace, pod, the workload labels, and dst_deployment and its siblings). Each
// check is one PromQL query over the Prometheus HTTP API.
package metrics

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/meshplane/mesh/checks"
)

const hint = "https://meshplane.io/docs/checks#"

// Options say which Prometheus to check.
type Options struct {
	URL    string       // e.g. http://mesh-prometheus.mesh-system:9090
	Client *http.Client // nil: http.DefaultClient
}

func check(id, desc string, sev checks.Severity, run func(context.Context) error, deps ...string) checks.Check {
	return checks.Check{ID: id, Category: "metrics", Description: desc, Hint: hint + id, Severity: sev, DependsOn: deps, Run: run, Retry: true}
}

// Suite is the metrics checks. A URL that does not parse is an error here, not a
// failed check: the command could not run.
func Suite(o Options) ([]checks.Check, error) {
	u, err := url.Parse(o.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--prometheus-url %q: want http://host:port or https://host:port", o.URL)
	}
	c := o.Client
	if c == nil {
		c = http.DefaultClient
	}
	p := &prom{base: u, client: c}
	// none fails when the query returns a series: it counts series lacking something.
	none := func(query, what string) func(context.Context) error {
		return func(ctx context.Context) error {
			n, err := p.count(ctx, query)
			if err != nil {
				return err
			}
			if n > 0 {
				return fmt.Errorf("%v series %s (%s): add the relabelling of docs/viz.md to the scrape config", n, what, query)
			}
			return nil
		}
	}
	return []checks.Check{
		check("metrics.prometheus", "Prometheus answers queries at "+u.Redacted(), checks.Error, func(ctx context.Context) error {
			_, err := p.count(ctx, "vector(1)")
			return err
		}),
		check("metrics.proxies", "Prometheus has the proxies' HTTP metrics (response_total, response_latency_ms)", checks.Error, func(ctx context.Context) error {
			for _, q := range []string{`count(response_total)`, `count(response_latency_ms_bucket{le!=""})`} {
				n, err := p.count(ctx, q)
				if err != nil {
					return err
				}
				if n == 0 {
					return fmt.Errorf("no series for %s: no proxy is scraped (scrape the mesh-admin port of meshed pods, see docs/viz.md), or no request went through one yet", q)
				}
			}
			return nil
		}, "metrics.prometheus"),
		check("metrics.proxy-labels", "the proxies' series carry direction, classification and tls", checks.Error,
			none(`count(response_total{direction=""} or response_total{classification=""} or response_total{tls=""})`, "lack direction, classification or tls"), "metrics.proxies"),
		check("metrics.namespace-pod", "every proxy series has the namespace and pod labels the queries group by", checks.Error,
			none(`count(response_total{namespace=""} or response_total{pod=""})`, "lack namespace or pod"), "metrics.proxies"),
		check("metrics.workload", "every proxy series names its workload (deployment, statefulset, daemonset, replicaset or k8s_job)", checks.Warning,
			none(`count(response_total{deployment="", statefulset="", daemonset="", replicaset="", k8s_job=""})`, "name no workload (pods without a controller, or no workload relabelling)"), "metrics.namespace-pod"),
		check("metrics.dst-workload", "outbound series to a workload carry Linkerd's dst_<kind> label", checks.Warning, func(ctx context.Context) error {
			n, err := p.count(ctx, `count(response_total{direction="outbound", dst_workload_kind!=""})`)
			if err != nil {
				return err
			}
			if n == 0 {
				return checks.Skip("no outbound traffic to a meshed workload yet")
			}
			return none(`count(response_total{direction="outbound", dst_workload_kind=~"replicaset|deployment", dst_deployment=""}`+
				` or response_total{direction="outbound", dst_workload_kind="statefulset", dst_statefulset=""}`+
				` or response_total{direction="outbound", dst_workload_kind="daemonset", dst_daemonset=""})`,
				"lack dst_deployment, dst_statefulset or dst_daemonset (metric_relabel_configs)")(ctx)
		}, "metrics.proxies"),
	}, nil
}

// prom runs instant queries.
type prom struct {
	base   *url.URL
	client *http.Client
}

// count runs query (a count(...) or vector) and returns its value: 0 for no result.
func (p *prom) count(ctx context.Context, query string) (float64, error) {
	u := p.base.JoinPath("api/v1/query")
	u.RawQuery = url.Values{"query": {query}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return 0, fmt.Errorf("prometheus query %s: %w", query, err)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("prometheus query %s: %w", query, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return 0, fmt.Errorf("prometheus query %s: %w", query, err)
	}
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return 0, fmt.Errorf("prometheus query %s: %s from %s is not the query API's JSON: %w", query, resp.Status, p.base.Redacted(), err)
	}
	if r.Status != "success" {
		return 0, fmt.Errorf("prometheus query %s: %s: %s", query, resp.Status, strings.TrimSpace(r.Error))
	}
	if len(r.Data.Result) == 0 {
		return 0, nil
	}
	s, _ := r.Data.Result[0].Value[1].(string)
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("prometheus query %s: value %q: %w", query, s, err)
	}
	return v, nil
}
