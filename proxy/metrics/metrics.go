// Package metrics holds the proxy's Prometheus metrics, with names and labels close
// to Linkerd's (request_total, response_total, response_latency_ms, tcp_*), so
// existing dashboards and queries port easily.
//
// Every metric lives in the Registry (there is no global registry) and is served by
// Registry.Handler in the Prometheus text exposition format (text/plain;
// version=0.0.4): metric families sorted by name, series sorted by label values.
// The package has its own atomic counters, gauges and histograms and its own text
// writer; it does not link the Prometheus client library.
//
// # HTTP
//
// Base labels, the same on every HTTP metric (from HTTPLabels):
//
//	direction          inbound | outbound
//	authority          the request's :authority / Host
//	target_addr        ip:port the proxy forwarded to
//	tls                "true" | "false"
//	no_tls_reason      "" when tls="true"; else no_identity | loopback | disabled | ...
//	client_id          the peer's verified identity on inbound traffic, else ""
//	server_id          the peer's verified identity on outbound traffic, else ""
//	dst_namespace      outbound: from discovery, else ""
//	dst_service        outbound: from discovery, else ""
//	dst_pod            outbound: from discovery, else ""
//	dst_workload_kind  outbound: deployment, statefulset, ... from discovery, else ""
//	dst_workload_name  outbound: from discovery, else ""
//	route              the ServiceProfile route name, "" when none matched
//
// Metrics:
//
//	request_total                 counter:   base labels
//	response_total                counter:   base labels + status_code, grpc_status_code, classification
//	response_latency_ms           histogram: base labels + status_code; time to the response headers in ms
//
// status_code is the HTTP status, or "" when there was no response (an error);
// grpc_status_code is the final grpc-status ("" for non-gRPC responses);
// classification is "failure" when there was no response, the status is 5xx, or
// grpc_status_code is set and not "0", else "success". Latency buckets (ms): 1, 2,
// 3, 4, 5, 10, 20, 30, 40, 50, 100, 200, 300, 400, 500, 1000, 2000, 3000, 4000,
// 5000, 10000, 20000, 30000, 40000, 50000, +Inf.
//
// # TCP
//
// Labels (from TCPLabels): direction, peer (src = the accepted side, dst = the dialled
// side), target_addr, tls, no_tls_reason, client_id, server_id, as above.
//
//	tcp_open_total                counter
//	tcp_open_connections          gauge
//	tcp_read_bytes_total          counter: bytes read from the peer
//	tcp_write_bytes_total         counter: bytes written to the peer
//	tcp_close_total               counter:   + classification (success | failure)
//	tcp_connection_duration_ms    histogram: + classification; same buckets as above
//
// # Other
//
//	identity_cert_expiration_timestamp_seconds  gauge: expiry of the proxy's certificate
//	metrics_series_overflow_total              counter: label sets folded into overflow
//	process_* and go_*                          the standard collectors (see below)
//
// # Cost and cardinality
//
// Registry.HTTP and Registry.TCP cache one series per label struct, holding its
// counters and histograms, so the per-request path never hashes labels and never
// allocates: HTTPSeries.Request is one atomic add, and Response/End find their
// status child by a lock-free scan of a small per-series copy-on-write list; a
// histogram observation is two atomic adds. Label values are made valid UTF-8 and
// cut to 256 bytes. Label sets that end up equal after that (e.g. TLS with and
// without a NoTLSReason) are summed into one series when scraped.
//
// The number of label sets (HTTP and TCP label structs, and the status children of
// each HTTP series) is capped (10,000 by default, WithMaxSeries). Past the cap, a new
// HTTP label set is counted in an overflow series that keeps only direction, tls and
// no_tls_reason and has authority="overflow" (TCP: target_addr="overflow"), and a new
// status child in status_code="overflow" (with grpc_status_code="overflow" when the
// response was gRPC; the classification stays exact). A series also holds at most
// 64 status children of each kind. So a client sending random Host headers or
// statuses cannot grow the proxy's memory without bound.
//
// # Process and Go runtime
//
// Unless WithoutProcessCollectors: process_cpu_seconds_total,
// process_resident_memory_bytes, process_virtual_memory_bytes, process_open_fds,
// process_max_fds and process_start_time_seconds (read from /proc at scrape time; a
// metric that cannot be read is left out), and go_goroutines, go_threads, go_info,
// go_memstats_{alloc,heap_alloc,heap_inuse,heap_objects,next_gc,stack_inuse,sys}_bytes
// and go_memstats_alloc_bytes_total, go_gc_gogc_percent, go_gc_gomemlimit_bytes,
// go_sched_gomaxprocs_threads (from runtime/metrics, which does not stop the world).
//
// A nil *Registry hands out nil series, and the methods of nil series do nothing:
// the data path can run with metrics off.
package metrics

import (
	"math"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultMaxSeries is the default cap on distinct label sets.
const DefaultMaxSeries = 10000

// overflowValue replaces label values past the cardinality cap.
const overflowValue = "overflow"

// maxScrapes bounds the concurrent scrapes; more get 503.
const maxScrapes = 4

// HTTPLabels identify one series of HTTP traffic. The struct is the cache key, so it
// must stay comparable.
type HTTPLabels struct {
	Direction  string // inbound or outbound
	Authority  string // the request's :authority / Host
	TargetAddr string // ip:port the proxy forwarded to
	TLS        bool   // mTLS with a peer proxy
	// NoTLSReason is set when TLS is false: "no_identity" (peer not meshed), "loopback", "disabled".
	NoTLSReason string
	// PeerID is the verified peer identity: client_id inbound, server_id outbound.
	PeerID string
	// Dst labels from discovery, outbound only: namespace, service, pod, workload kind/name.
	DstNamespace, DstService, DstPod, DstWorkloadKind, DstWorkloadName string
	Route                                                              string // ServiceProfile route name, if matched
}

// TCPLabels identify one series of TCP connections. The struct is the cache key, so
// it must stay comparable.
type TCPLabels struct {
	Direction   string
	Peer        string // src (accepted) or dst (dialled)
	TargetAddr  string
	TLS         bool
	NoTLSReason string
	PeerID      string // client_id inbound, server_id outbound
}

// Option configures New.
type Option func(*options)

type options struct {
	maxSeries  int
	collectors bool
}

// WithMaxSeries caps the distinct label sets (see the package comment); n <= 0
// keeps the default.
func WithMaxSeries(n int) Option {
	return func(o *options) {
		if n > 0 {
			o.maxSeries = n
		}
	}
}

// WithoutProcessCollectors leaves out the process_* and go_* collectors.
func WithoutProcessCollectors() Option {
	return func(o *options) { o.collectors = false }
}

// families are the descriptions of the Registry's own metric families.
type families struct {
	requests, responses, latency                               family
	tcpOpen, tcpClose, tcpOpenConns, tcpRead, tcpWrite, tcpDur family
	certExpiry, overflows                                      family
}

// Registry owns the proxy's metrics. Safe for concurrent use.
type Registry struct {
	fam families
	// bounds are LatencyBuckets as durations, the histograms' upper bounds.
	bounds bucketBounds

	certExpiry atomic.Uint64 // float64 bits: seconds since the epoch
	overflows  counter

	collectors bool
	// bootTime is the system boot time (seconds since the epoch), read once.
	bootTime func() (float64, error)
	scrapes  chan struct{} // a slot per running scrape

	maxSeries int64
	series    atomic.Int64 // label sets admitted so far

	httpMu sync.RWMutex
	// http indexes the series by authority and target only: hashing two strings
	// instead of the thirteen of HTTPLabels makes a cached lookup several times
	// cheaper; the few series sharing a key are told apart with ==.
	http         map[httpKey][]*HTTPSeries
	httpOverflow map[HTTPLabels]*HTTPSeries

	tcpMu       sync.RWMutex
	tcp         map[TCPLabels]*TCPSeries
	tcpOverflow map[TCPLabels]*TCPSeries
}

// LatencyBuckets returns the histogram bounds, in milliseconds, of
// response_latency_ms and tcp_connection_duration_ms (Linkerd's).
func LatencyBuckets() []float64 {
	return []float64{
		1, 2, 3, 4, 5, 10, 20, 30, 40, 50, 100, 200, 300, 400, 500,
		1000, 2000, 3000, 4000, 5000, 10000, 20000, 30000, 40000, 50000,
	}
}

func httpLabelNames(extra ...string) []string {
	return append([]string{
		"direction", "authority", "target_addr", "tls", "no_tls_reason", "client_id", "server_id",
		"dst_namespace", "dst_service", "dst_pod", "dst_workload_kind", "dst_workload_name", "route",
	}, extra...)
}

func tcpLabelNames(extra ...string) []string {
	return append([]string{
		"direction", "peer", "target_addr", "tls", "no_tls_reason", "client_id", "server_id",
	}, extra...)
}

// New builds the registry with all metrics registered.
func New(opts ...Option) *Registry {
	o := options{maxSeries: DefaultMaxSeries, collectors: true}
	for _, opt := range opts {
		opt(&o)
	}
	r := &Registry{
		collectors:   o.collectors,
		bootTime:     sync.OnceValues(readBootTime),
		scrapes:      make(chan struct{}, maxScrapes),
		maxSeries:    int64(o.maxSeries),
		http:         map[httpKey][]*HTTPSeries{},
		httpOverflow: map[HTTPLabels]*HTTPSeries{},
		tcp:          map[TCPLabels]*TCPSeries{},
		tcpOverflow:  map[TCPLabels]*TCPSeries{},
	}
	for i, ms := range LatencyBuckets()[:numBuckets] {
		r.bounds[i] = time.Duration(ms * float64(time.Millisecond))
	}
	r.fam = families{
		requests: newFamily("request_total", "Total count of HTTP requests.",
			kindCounter, httpLabelNames()),
		responses: newFamily("response_total", "Total count of HTTP responses, counted at the end of the response stream.",
			kindCounter, httpLabelNames("status_code", "grpc_status_code", "classification")),
		latency: newFamily("response_latency_ms", "Elapsed times between a request's headers being received and its response headers being sent, in milliseconds.",
			kindHistogram, httpLabelNames("status_code")),
		tcpOpen: newFamily("tcp_open_total", "Total count of opened connections.",
			kindCounter, tcpLabelNames()),
		tcpClose: newFamily("tcp_close_total", "Total count of closed connections.",
			kindCounter, tcpLabelNames("classification")),
		tcpOpenConns: newFamily("tcp_open_connections", "Number of currently-open connections.",
			kindGauge, tcpLabelNames()),
		tcpRead: newFamily("tcp_read_bytes_total", "Total count of bytes read from peers.",
			kindCounter, tcpLabelNames()),
		tcpWrite: newFamily("tcp_write_bytes_total", "Total count of bytes written to peers.",
			kindCounter, tcpLabelNames()),
		tcpDur: newFamily("tcp_connection_duration_ms", "Connection lifetimes, in milliseconds.",
			kindHistogram, tcpLabelNames("classification")),
		certExpiry: newFamily("identity_cert_expiration_timestamp_seconds",
			"Time when this proxy's current mTLS identity certificate will expire (in seconds since the UNIX epoch).",
			kindGauge, nil),
		overflows: newFamily("metrics_series_overflow_total",
			"Label sets counted in an overflow series because the series cap was reached.",
			kindCounter, nil),
	}
	return r
}

// Handler serves the Prometheus text format (text/plain; version=0.0.4), at most
// four scrapes at a time (503 past that).
func (r *Registry) Handler() http.Handler {
	if r == nil {
		return http.NotFoundHandler()
	}
	return http.HandlerFunc(r.serveHTTP)
}

func (r *Registry) serveHTTP(w http.ResponseWriter, req *http.Request) {
	select {
	case r.scrapes <- struct{}{}:
		defer func() { <-r.scrapes }()
	default:
		http.Error(w, "Limit of concurrent requests reached (4), try again later.", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", contentType)
	if req.Method == http.MethodHead {
		return
	}
	// The status line is out: a failed write means the scraper went away, and
	// there is no one to tell.
	_ = r.writeText(w)
}

// IdentityExpiry records when the proxy's certificate expires.
func (r *Registry) IdentityExpiry(t time.Time) {
	if r == nil {
		return
	}
	r.certExpiry.Store(math.Float64bits(float64(t.UnixNano()) / 1e9))
}

// admit takes one label set from the budget; false when the cap is reached.
func (r *Registry) admit() bool {
	if r.series.Add(1) > r.maxSeries {
		r.series.Add(-1)
		return false
	}
	return true
}

// full reports whether the budget is spent (a hint: admit decides).
func (r *Registry) full() bool { return r.series.Load() >= r.maxSeries }

// HTTP returns the (cached) series for these labels.
func (r *Registry) HTTP(l HTTPLabels) *HTTPSeries {
	if r == nil {
		return nil
	}
	r.httpMu.RLock()
	s := r.cachedHTTP(l)
	r.httpMu.RUnlock()
	if s != nil {
		return s
	}
	return r.newHTTP(l)
}

// httpKey is the index key of HTTP series.
type httpKey struct{ authority, targetAddr string }

// cachedHTTP looks l up; the caller holds httpMu.
func (r *Registry) cachedHTTP(l HTTPLabels) *HTTPSeries {
	for _, s := range r.http[httpKey{l.Authority, l.TargetAddr}] {
		if s.labels == l {
			return s
		}
	}
	return nil
}

func (r *Registry) newHTTP(l HTTPLabels) *HTTPSeries {
	ok := r.httpOverflowKey(l)
	if r.full() {
		// Past the cap, skip the write lock for label sets that will overflow anyway.
		r.httpMu.RLock()
		s := r.httpOverflow[ok]
		r.httpMu.RUnlock()
		if s != nil {
			r.overflows.inc()
			return s
		}
	}
	r.httpMu.Lock()
	defer r.httpMu.Unlock()
	if s := r.cachedHTTP(l); s != nil {
		return s
	}
	if r.admit() {
		s := newHTTPSeries(r, l)
		k := httpKey{l.Authority, l.TargetAddr}
		r.http[k] = append(r.http[k], s)
		return s
	}
	r.overflows.inc()
	s := r.httpOverflow[ok]
	if s == nil {
		s = newHTTPSeries(r, ok)
		r.httpOverflow[ok] = s
	}
	return s
}

func (r *Registry) httpOverflowKey(l HTTPLabels) HTTPLabels {
	return HTTPLabels{Direction: l.Direction, TLS: l.TLS, NoTLSReason: l.NoTLSReason, Authority: overflowValue}
}

// TCP returns the (cached) series for these labels.
func (r *Registry) TCP(l TCPLabels) *TCPSeries {
	if r == nil {
		return nil
	}
	r.tcpMu.RLock()
	s := r.tcp[l]
	r.tcpMu.RUnlock()
	if s != nil {
		return s
	}
	return r.newTCP(l)
}

func (r *Registry) newTCP(l TCPLabels) *TCPSeries {
	ok := TCPLabels{Direction: l.Direction, Peer: l.Peer, TLS: l.TLS, NoTLSReason: l.NoTLSReason, TargetAddr: overflowValue}
	if r.full() {
		r.tcpMu.RLock()
		s := r.tcpOverflow[ok]
		r.tcpMu.RUnlock()
		if s != nil {
			r.overflows.inc()
			return s
		}
	}
	r.tcpMu.Lock()
	defer r.tcpMu.Unlock()
	if s := r.tcp[l]; s != nil {
		return s
	}
	if r.admit() {
		s := newTCPSeries(r, l)
		r.tcp[l] = s
		return s
	}
	r.overflows.inc()
	s := r.tcpOverflow[ok]
	if s == nil {
		s = newTCPSeries(r, ok)
		r.tcpOverflow[ok] = s
	}
	return s
}
