package stat

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// PromQLQuery is one query of the table below: its name, its template and where it
// comes from. The templates take their parts with fmt verbs, in the order the
// original uses them; Flagger's take Flagger's own {{ namespace }}, {{ target }} and
// {{ interval }} placeholders (see RenderFlagger).
type PromQLQuery struct {
	Name     string
	Template string
	Source   string
}

// The names of PromQLQueries' entries.
const (
	QueryRequests       = "requests"
	QueryLatency        = "latency"
	QueryTCPConnections = "tcp-connections"
	QueryEdgesOutbound  = "edges-outbound"
	QueryEdgesInbound   = "edges-inbound"
	QueryFlaggerSuccess = "flagger-request-success-rate"
	QueryFlaggerLatency = "flagger-request-duration"
)

// linkerdStatSummary and linkerdEdges are where Linkerd viz keeps its stat and
// edges queries.
const (
	linkerdStatSummary = "linkerd/linkerd2 viz/metrics-api/stat_summary.go"
	linkerdEdges       = "linkerd/linkerd2 viz/metrics-api/edges.go"
)

// PromQLQueries is the table of every PromQL query the Prometheus source runs, and of
// Flagger's built-in Linkerd queries the proxies' metrics must keep answering. The
// templates are copied from the sources cited, character for character, so that
// users' queries, alerts, dashboards and canary analyses written for Linkerd read
// the same series.
func PromQLQueries() []PromQLQuery {
	return []PromQLQuery{
		{
			Name: QueryRequests,
			// labels, window, group-by labels
			Template: "sum(increase(response_total%s[%s])) by (%s, classification, tls)",
			Source:   linkerdStatSummary + ": reqQuery",
		},
		{
			Name: QueryLatency,
			// quantile, labels, window, group-by labels
			Template: "histogram_quantile(%s, sum(irate(response_latency_ms_bucket%s[%s])) by (le, %s))",
			Source:   linkerdStatSummary + ": latencyQuantileQuery",
		},
		{
			Name: QueryTCPConnections,
			// labels, group-by labels. Linkerd passes the request labels here and adds
			// peer only to its byte queries (buildTCPStatsRequestLabels); mesh adds
			// peer here too, because its proxy counts both sides of an inbound
			// connection under direction="inbound" (peer="src" the accepted side,
			// peer="dst" the side dialled to the application).
			Template: "sum(tcp_open_connections%s) by (%s)",
			Source:   linkerdStatSummary + ": tcpConnectionsQuery (+ peer, as its tcp byte queries)",
		},
		{
			Name: QueryEdgesOutbound,
			// series, kind label, kind label. Linkerd counts the series (count);
			// mesh sums them, over the window with increase (or, without one, the
			// counters as they are), for the edge's requests, and groups by
			// dst_service (the destination without a workload) and tls too.
			Template: "sum(%s) by (%s, dst_%s, server_id, namespace, dst_namespace, no_tls_reason, dst_service, tls)",
			Source:   linkerdEdges + ": outboundIdentityQuery (sum for count, + dst_service, tls)",
		},
		{
			Name: QueryEdgesInbound,
			// series, kind label; as the outbound query.
			Template: "sum(%s) by (%s, client_id, namespace, no_tls_reason, tls)",
			Source:   linkerdEdges + ": inboundIdentityQuery (sum for count, + tls)",
		},
		{
			Name: QueryFlaggerSuccess,
			Template: `
	sum(
		rate(
			response_total{
				namespace="{{ namespace }}",
				deployment=~"{{ target }}",
				classification!="failure",
				direction="inbound"
			}[{{ interval }}]
		)
	) 
	/ 
	sum(
		rate(
			response_total{
				namespace="{{ namespace }}",
				deployment=~"{{ target }}",
				direction="inbound"
			}[{{ interval }}]
		)
	) 
	* 100`,
			Source: "fluxcd/flagger pkg/metrics/observers/linkerd.go: linkerdQueries[\"request-success-rate\"]",
		},
		{
			Name: QueryFlaggerLatency,
			Template: `
	histogram_quantile(
		0.99,
		sum(
			rate(
				response_latency_ms_bucket{
					namespace="{{ namespace }}",
					deployment=~"{{ target }}",
					direction="inbound"
				}[{{ interval }}]
			)
		) by (le)
	)`,
			Source: "fluxcd/flagger pkg/metrics/observers/linkerd.go: linkerdQueries[\"request-duration\"]",
		},
	}
}

// promTemplate returns the template of the named query.
func promTemplate(name string) string {
	for _, q := range PromQLQueries() {
		if q.Name == name {
			return q.Template
		}
	}
	panic("stat: no PromQL query " + name) // a programming error: the names are constants
}

// RenderFlagger fills one of Flagger's templates the way Flagger does
// (pkg/metrics/observers RenderQuery): every {{ namespace }}, {{ target }} and
// {{ interval }} replaced.
func RenderFlagger(name, namespace, target string, interval time.Duration) string {
	return strings.NewReplacer(
		"{{ namespace }}", namespace,
		"{{ target }}", target,
		"{{ interval }}", PromDuration(interval),
	).Replace(promTemplate(name))
}

// StatQueries are the PromQL queries of one Query.
type StatQueries struct {
	Requests string
	Latency  [3]string // p50, p95, p99
	// TCP is empty with --to and --from: mesh's proxy labels TCP series with no
	// destination workload, so Linkerd's query would match nothing.
	TCP string
	// GroupBy are the labels a result's series are told apart by: the namespace
	// label, then (except for namespaces) the resource's name label.
	GroupBy []string
}

// kindLabel maps a Resource Kind to its Prometheus label, as Linkerd's
// k8s.KindToL5DLabel does (a Job's label is k8s_job, as Prometheus keeps job).
func kindLabel(kind string) (string, error) {
	switch kind {
	case "deployment", "statefulset", "daemonset", "pod", "replicaset":
		return kind, nil
	case "job":
		return "k8s_job", nil
	case "namespace":
		return "namespace", nil
	case "service":
		return "service", nil
	}
	return "", fmt.Errorf("resource kind %q has no Prometheus label (want deployment, statefulset, daemonset, replicaset, job, pod, namespace or service)", kind)
}

// promLabels is a label matcher set, printed as Linkerd's model.LabelSet.String does:
// sorted by name, `name="value"`, joined by ", ". The value notEmpty prints
// `name!=""` (Linkerd's generateLabelStringWithExclusion).
type promLabels map[string]string

// notEmpty is the value of a label that must be set to anything: no Kubernetes name
// can hold a NUL. A value that starts with matchRegex is a regular expression
// (`name=~"..."`).
const (
	notEmpty   = "\x00"
	matchRegex = "\x01"
)

func (l promLabels) merge(o promLabels) promLabels {
	for k, v := range o {
		l[k] = v
	}
	return l
}

func (l promLabels) String() string {
	parts := make([]string, 0, len(l))
	for k, v := range l {
		if v == notEmpty {
			parts = append(parts, k+`!=""`)
			continue
		}
		if re, ok := strings.CutPrefix(v, matchRegex); ok {
			parts = append(parts, k+"=~"+strconv.Quote(re))
			continue
		}
		parts = append(parts, k+"="+strconv.Quote(v))
	}
	sort.Strings(parts)
	return "{" + strings.Join(parts, ", ") + "}"
}

// queryLabels selects a resource's own series (Linkerd's promQueryLabels).
func queryLabels(r Resource) (promLabels, error) {
	l := promLabels{}
	name, err := kindLabel(r.Kind)
	if err != nil {
		return nil, err
	}
	if r.Name != "" {
		l[name] = r.Name
	}
	if r.Kind != "namespace" && r.Namespace != "" {
		l["namespace"] = r.Namespace
	}
	return l, nil
}

// dstQueryLabels selects series of traffic to a resource (Linkerd's
// promDstQueryLabels): dst_<label>, and dst_namespace. The dst_deployment,
// dst_statefulset, ... labels come from the scrape config's metric relabelling
// (render/install's Prometheus scrape config), which derives them from the
// proxy's dst_workload_kind and dst_workload_name.
func dstQueryLabels(r Resource) (promLabels, error) {
	l := promLabels{}
	name, err := kindLabel(r.Kind)
	if err != nil {
		return nil, err
	}
	if r.Name != "" {
		l["dst_"+name] = r.Name
	}
	// Linkerd adds dst_namespace only with a name, so `stat deploy -n shop --from
	// ns/front` would count deployments of every namespace; mesh keeps -n.
	if r.Kind != "namespace" && r.Namespace != "" {
		l["dst_namespace"] = r.Namespace
	}
	return l, nil
}

// groupBy is Linkerd's promGroupByLabelNames, with a dst_ prefix for
// promDstGroupByLabelNames.
func groupBy(r Resource, prefix string) []string {
	names := []string{prefix + "namespace"}
	if r.Kind != "namespace" {
		label, _ := kindLabel(r.Kind)
		names = append(names, prefix+label)
	}
	return names
}

// PromQL returns the queries the Prometheus source runs for q: Linkerd viz's
// (buildRequestLabels, getStatMetrics), with the labels mesh's scrape config gives
// the proxies' series. A service is seen from its clients: outbound traffic with
// dst_service (mesh's proxy sets it from discovery; Linkerd matches the authority).
func PromQL(q Query) (StatQueries, error) {
	if q.Window <= 0 {
		return StatQueries{}, fmt.Errorf("window %s: want a positive duration", q.Window)
	}
	if q.To != nil && q.From != nil {
		return StatQueries{}, fmt.Errorf("--to and --from together: give one")
	}
	sel := q.Resource
	var labels promLabels
	var by []string
	peer := "src"
	var err error
	switch {
	case sel.Kind == "service":
		if q.From != nil {
			return StatQueries{}, fmt.Errorf("service %s with --from: a service has no outbound traffic of its own; stat the --from resource with --to svc/%s instead", sel.Name, sel.Name)
		}
		if q.To != nil {
			return StatQueries{}, fmt.Errorf("service %s with --to: a service has no outbound traffic of its own", sel.Name)
		}
		labels = promLabels{"direction": "outbound"}
		if sel.Namespace != "" {
			labels["dst_namespace"] = sel.Namespace
		}
		if sel.Name != "" {
			labels["dst_service"] = sel.Name
		} else {
			labels["dst_service"] = notEmpty
		}
		by = []string{"dst_namespace", "dst_service"}
	case q.To != nil:
		by = groupBy(sel, "")
		if labels, err = dstQueryLabels(*q.To); err != nil {
			return StatQueries{}, fmt.Errorf("--to: %w", err)
		}
		own, err := queryLabels(sel)
		if err != nil {
			return StatQueries{}, err
		}
		labels.merge(own).merge(promLabels{"direction": "outbound"})
		peer = ""
	case q.From != nil:
		by = groupBy(sel, "dst_")
		if labels, err = queryLabels(*q.From); err != nil {
			return StatQueries{}, fmt.Errorf("--from: %w", err)
		}
		dst, err := dstQueryLabels(sel)
		if err != nil {
			return StatQueries{}, err
		}
		labels.merge(dst).merge(promLabels{"direction": "outbound"})
		peer = ""
	default:
		by = groupBy(sel, "")
		if labels, err = queryLabels(sel); err != nil {
			return StatQueries{}, err
		}
		labels["direction"] = "inbound"
	}
	window := PromDuration(q.Window)
	group := strings.Join(by, ", ")
	out := StatQueries{
		Requests: fmt.Sprintf(promTemplate(QueryRequests), labels, window, group),
		GroupBy:  by,
	}
	out.Latency = latencyQueries(labels, window, group)
	if peer != "" && sel.Kind != "service" {
		tcp := promLabels{}.merge(labels).merge(promLabels{"peer": peer})
		out.TCP = fmt.Sprintf(promTemplate(QueryTCPConnections), tcp, group)
	}
	return out, nil
}

// EdgeQueries are the PromQL queries of `mesh edges KIND`: the sources' outbound
// requests by destination, and the inbound requests of the same workloads by
// client identity (the callers without a proxy, or of another namespace).
type EdgeQueries struct {
	Outbound, Inbound string
	// Label is KIND's label: the source's (or, inbound, the destination's)
	// name; dst_ and it names an outbound series' destination.
	Label string
}

// EdgesPromQL returns the queries of the edges between the workloads of kind in
// namespace ns ("" for all): Linkerd viz's edges queries, with the requests
// over the window (window 0: the counters since the proxies started).
func EdgesPromQL(ns, kind string, window time.Duration) (EdgeQueries, error) {
	if err := checkEdges(kind, window); err != nil {
		return EdgeQueries{}, err
	}
	label, err := kindLabel(kind)
	if err != nil {
		return EdgeQueries{}, err
	}
	series := func(direction string) string {
		l := promLabels{"direction": direction, label: notEmpty}
		if ns != "" {
			l["namespace"] = ns
		}
		if window == 0 {
			return "response_total" + l.String()
		}
		return "increase(response_total" + l.String() + "[" + PromDuration(window) + "])"
	}
	return EdgeQueries{
		Outbound: fmt.Sprintf(promTemplate(QueryEdgesOutbound), series("outbound"), label, label),
		Inbound:  fmt.Sprintf(promTemplate(QueryEdgesInbound), series("inbound"), label),
		Label:    label,
	}, nil
}

// RouteQueries are the PromQL queries of `mesh routes`: the requests query and
// the latency quantiles of stat, grouped by route.
type RouteQueries struct {
	Requests string
	Latency  [3]string // p50, p95, p99
}

// RoutesPromQL returns the queries of the inbound traffic of r per route, over
// window. Linkerd's routes queries (viz/metrics-api/top_routes.go) read
// route_response_total by rt_route; mesh's proxy has no route_* families but
// labels response_total and response_latency_ms with route, so these are the
// stat queries of r grouped by route. A service's traffic is its pods' (given by
// name: no series has a service label inbound).
func RoutesPromQL(r Resource, pods []string, window time.Duration) (RouteQueries, error) {
	if err := checkRoutes(r, window); err != nil {
		return RouteQueries{}, err
	}
	if window == 0 {
		return RouteQueries{}, fmt.Errorf("window %s: want a positive duration", window)
	}
	var labels promLabels
	if r.Kind == KindService {
		quoted := make([]string, len(pods))
		for i, p := range pods {
			quoted[i] = regexp.QuoteMeta(p)
		}
		labels = promLabels{"namespace": r.Namespace, "pod": matchRegex + strings.Join(quoted, "|")}
	} else {
		var err error
		if labels, err = queryLabels(r); err != nil {
			return RouteQueries{}, err
		}
	}
	labels["direction"] = "inbound"
	w := PromDuration(window)
	return RouteQueries{
		Requests: fmt.Sprintf(promTemplate(QueryRequests), labels, w, "route"),
		Latency:  latencyQueries(labels, w, "route"),
	}, nil
}

// latencyQueries are the p50, p95 and p99 latency queries of the series labels
// select, over window, grouped by group.
func latencyQueries(labels promLabels, window, group string) [3]string {
	var out [3]string
	for i, qt := range [3]string{"0.5", "0.95", "0.99"} { // as Linkerd writes them
		out[i] = fmt.Sprintf(promTemplate(QueryLatency), qt, labels, window, group)
	}
	return out
}

// PromDuration writes d as a Prometheus duration: 1h30m, 45s, 1500ms.
func PromDuration(d time.Duration) string {
	if d%time.Second != 0 {
		return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
	}
	var b strings.Builder
	s := int64(d / time.Second)
	for _, u := range []struct {
		n    int64
		unit string
	}{{86400, "d"}, {3600, "h"}, {60, "m"}, {1, "s"}} {
		if s >= u.n {
			fmt.Fprintf(&b, "%d%s", s/u.n, u.unit)
			s %= u.n
		}
	}
	if b.Len() == 0 {
		return "0s"
	}
	return b.String()
}
