package stat

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"
)

// PodCounter lists the objects a Resource names with their pods, for the MESHED
// column and for rows of objects that had no traffic. The CLI fills it from
// Kubernetes; a nil PodCounter leaves pod counts at zero and rows to what
// Prometheus returns.
type PodCounter interface {
	// Pods returns each object r names (the one named, or every one of r.Kind in
	// r.Namespace, or in every namespace when that is empty) with its pod counts.
	Pods(ctx context.Context, r Resource) ([]PodCount, error)
}

// PodCount is one object's pods: with a proxy, and all of them.
type PodCount struct {
	Resource      Resource
	Meshed, Total int
}

// Prometheus is the Source that runs Linkerd viz's stat queries (PromQL) against a
// Prometheus server's HTTP API.
type Prometheus struct {
	base   *url.URL
	client *http.Client
	pods   PodCounter
	now    func() time.Time

	// Kube is the cluster Edges and Routes resolve their workloads, pods and
	// identities in, as Direct does (they fail without it); Warnings receives
	// their warnings (discarded when nil).
	Kube     kubernetes.Interface
	Warnings io.Writer
}

// NewPrometheus returns the Source for the Prometheus at rawURL (e.g.
// http://prometheus.mesh-system:9090). client nil means http.DefaultClient; now
// is the clock the queries are evaluated at (nil: the server's own time).
func NewPrometheus(rawURL string, client *http.Client, pods PodCounter, now func() time.Time) (*Prometheus, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("prometheus URL %q: %w", rawURL, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("prometheus URL %q: want http://host:port or https://host:port", rawURL)
	}
	if client == nil {
		client = http.DefaultClient
	}
	return &Prometheus{base: u, client: client, pods: pods, now: now}, nil
}

// Sample is one series of an instant query's result.
type Sample struct {
	Metric map[string]string
	Value  float64
}

// Query runs one instant PromQL query and returns its vector.
func (p *Prometheus) Query(ctx context.Context, query string) ([]Sample, error) {
	form := url.Values{"query": {query}}
	if p.now != nil {
		form.Set("time", strconv.FormatFloat(float64(p.now().UnixMilli())/1000, 'f', 3, 64))
	}
	u := p.base.JoinPath("api/v1/query")
	u.RawQuery = form.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("prometheus query %s: %w", query, err)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("prometheus query %s: %w", query, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("prometheus query %s: reading the response: %w", query, err)
	}
	var r struct {
		Status    string `json:"status"`
		ErrorType string `json:"errorType"`
		Error     string `json:"error"`
		Data      struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("prometheus query %s: %s from %s, not the query API's JSON: %w", query, resp.Status, p.base.Redacted(), err)
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("prometheus query %s: %s: %s (%s)", query, resp.Status, r.Error, r.ErrorType)
	}
	if r.Data.ResultType != "vector" {
		return nil, fmt.Errorf("prometheus query %s: result type %q, want vector", query, r.Data.ResultType)
	}
	out := make([]Sample, 0, len(r.Data.Result))
	for _, s := range r.Data.Result {
		str, ok := s.Value[1].(string)
		if !ok {
			return nil, fmt.Errorf("prometheus query %s: sample %v: value %v is not a string", query, s.Metric, s.Value[1])
		}
		v, err := strconv.ParseFloat(str, 64)
		if err != nil {
			return nil, fmt.Errorf("prometheus query %s: sample %v: %w", query, s.Metric, err)
		}
		out = append(out, Sample{Metric: s.Metric, Value: v})
	}
	return out, nil
}

// Stat runs q's queries (PromQL) and returns a Row per resource, sorted by
// namespace and name. Without --to or --from every object the PodCounter lists
// gets a row, traffic or not; with them only those with traffic do, as in Linkerd.
func (p *Prometheus) Stat(ctx context.Context, q Query) ([]Row, error) {
	qs, err := PromQL(q)
	if err != nil {
		return nil, err
	}
	rows := map[Resource]*Row{}
	row := func(r Resource) *Row {
		if x, ok := rows[r]; ok {
			return x
		}
		x := nanRow(r)
		rows[r] = x
		return x
	}
	key := func(m map[string]string) (Resource, bool) {
		if q.Resource.Kind == "namespace" {
			ns := m[qs.GroupBy[0]]
			return Resource{Kind: "namespace", Name: ns}, ns != ""
		}
		r := Resource{Kind: q.Resource.Kind, Namespace: m[qs.GroupBy[0]], Name: m[qs.GroupBy[1]]}
		return r, r.Name != ""
	}

	reqs, err := p.Query(ctx, qs.Requests)
	if err != nil {
		return nil, err
	}
	for _, s := range reqs {
		r, ok := key(s.Metric)
		if !ok || math.IsNaN(s.Value) {
			continue
		}
		row(r).count(s)
	}
	for i, lq := range qs.Latency {
		samples, err := p.Query(ctx, lq)
		if err != nil {
			return nil, err
		}
		for _, s := range samples {
			r, ok := key(s.Metric)
			if !ok {
				continue
			}
			row(r).setLatency(i, s.Value)
		}
	}
	if qs.TCP != "" {
		samples, err := p.Query(ctx, qs.TCP)
		if err != nil {
			return nil, err
		}
		for _, s := range samples {
			if r, ok := key(s.Metric); ok {
				row(r).TCPConnections = s.Value
			}
		}
	}
	if p.pods != nil {
		counts, err := p.pods.Pods(ctx, q.Resource)
		if err != nil {
			return nil, fmt.Errorf("counting the pods of %s: %w", describe(q.Resource), err)
		}
		filtered := q.To != nil || q.From != nil
		for _, c := range counts {
			x, ok := rows[c.Resource]
			if !ok && filtered {
				continue
			}
			if !ok {
				x = row(c.Resource)
			}
			x.MeshedPods, x.TotalPods = c.Meshed, c.Total
		}
	}
	out := make([]Row, 0, len(rows))
	for _, x := range rows {
		x.finish(q.Window)
		out = append(out, *x)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].Resource, out[j].Resource
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		return a.Name < b.Name
	})
	return out, nil
}

// nanRow is the row of r before any sample: its ratios and percentiles NaN.
func nanRow(r Resource) *Row {
	nan := math.NaN()
	return &Row{Resource: r, SuccessRate: nan, LatencyP50: nan, LatencyP95: nan, LatencyP99: nan, TLSShare: nan}
}

// count adds a sample of the requests query (by classification and tls).
func (x *Row) count(s Sample) {
	switch s.Metric["classification"] {
	case "success":
		x.Successes += s.Value
	case "failure":
	default:
		return
	}
	x.Requests += s.Value
	if s.Metric["tls"] == "true" {
		x.TLSRequests += s.Value
	}
}

// setLatency sets the percentile of latency query i (p50, p95, p99).
func (x *Row) setLatency(i int, v float64) {
	switch i {
	case 0:
		x.LatencyP50 = v
	case 1:
		x.LatencyP95 = v
	default:
		x.LatencyP99 = v
	}
}

// finish computes the ratios and the rate over window from the counts; without
// a request the percentiles are NaN.
func (x *Row) finish(window time.Duration) {
	if x.Requests > 0 {
		x.SuccessRate = x.Successes / x.Requests
		x.TLSShare = x.TLSRequests / x.Requests
	} else {
		x.LatencyP50, x.LatencyP95, x.LatencyP99 = math.NaN(), math.NaN(), math.NaN()
	}
	x.RPS = x.Requests / window.Seconds()
}

// describe writes a Resource as kind/name in namespace.
func describe(r Resource) string {
	var b strings.Builder
	b.WriteString(r.Kind)
	if r.Name != "" {
		b.WriteString("/" + r.Name)
	}
	if r.Namespace != "" {
		b.WriteString(" in " + r.Namespace)
	}
	return b.String()
}
