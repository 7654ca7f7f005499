// Package stat computes the golden metrics of `mesh stat`: per resource (deployment,
// statefulset, daemonset, pod, namespace, service), success rate, requests per second,
// latency percentiles, TCP connections, meshed pods and the share of mTLS requests.
//
// Two sources produce the same Rows: Direct scrapes each proxy's /metrics through the
// Kubernetes API (pods/proxy, as the user) twice and computes rates in the CLI;
// Prometheus runs Linkerd viz's PromQL against a Prometheus server. Both read the
// proxies' Linkerd-named metrics (proxy/metrics) and compute percentiles the way
// Prometheus's histogram_quantile does, so the two agree.
//
// Both also give `mesh edges` (Edges: which workloads talk to which, with their
// identities and whether every request was mTLS) and `mesh routes` (Routes: the
// rows per ServiceProfile route of a resource's inbound traffic), the Prometheus
// source from Linkerd viz's edges queries and from stat's queries by route.
package stat

import (
	"context"
	"time"

	vresolve "github.com/meshplane/mesh/viz/resolve"
)

// Resource names one Kubernetes object or all of a kind, e.g. deploy/web in shop:
// viz/resolve's, which mesh tap and top resolve through too.
type Resource = vresolve.Resource

// Query is one `mesh stat` request.
type Query struct {
	Resource Resource
	To       *Resource     // --to: only outbound traffic of Resource to this
	From     *Resource     // --from: only inbound traffic of Resource from this
	Window   time.Duration // -t: the window rates and percentiles are computed over
}

// Row is one resource's golden metrics over the window. Counts are per window;
// ratios and percentiles are NaN when there was no request in the window.
type Row struct {
	Resource Resource

	MeshedPods int // pods of the resource with a proxy
	TotalPods  int // all its pods

	Requests    float64 // responses (success + failure) in the window
	Successes   float64 // responses classified success
	SuccessRate float64 // Successes / Requests
	RPS         float64 // Requests / window seconds

	LatencyP50 float64 // milliseconds
	LatencyP95 float64
	LatencyP99 float64

	TCPConnections float64 // open TCP connections at the end of the window
	TLSRequests    float64 // requests with tls="true"
	TLSShare       float64 // TLSRequests / Requests
}

// Source produces Rows for a Query. Direct and Prometheus implement it.
type Source interface {
	Stat(ctx context.Context, q Query) ([]Row, error)
}
