package metrics

import (
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// maxStatusChildren bounds the distinct (status, grpc status) children, and the
// distinct status latency children, of one HTTP series.
const maxStatusChildren = 64

// responseChild is one response_total series of an HTTPSeries.
type responseChild struct {
	status int
	grpc   string
	// values are the status_code, grpc_status_code and classification labels.
	values [3]string
	total  counter
}

// latencyChild is one response_latency_ms series of an HTTPSeries.
type latencyChild struct {
	status int
	code   string // the status_code label
	hist   histogram
}

// HTTPSeries counts one label set's requests and responses. Safe for concurrent
// use; a nil *HTTPSeries does nothing.
type HTTPSeries struct {
	r        *Registry
	labels   HTTPLabels // the cache key, as given
	base     []string   // base label values, in httpLabelNames order
	requests counter

	// Copy-on-write lists, read without locks; mu serializes writers.
	responses atomic.Pointer[[]*responseChild]
	latencies atomic.Pointer[[]*latencyChild]

	mu sync.Mutex
	// Children past the caps, by [grpc status set][failure]; nil until used.
	responseOverflow [2][2]*responseChild
	latencyOverflow  *latencyChild
}

func newHTTPSeries(r *Registry, l HTTPLabels) *HTTPSeries {
	tls, reason := tlsValues(l.TLS, l.NoTLSReason)
	client, server := peerIDs(l.Direction, l.PeerID)
	base := []string{
		l.Direction, l.Authority, l.TargetAddr, tls, reason, client, server,
		l.DstNamespace, l.DstService, l.DstPod, l.DstWorkloadKind, l.DstWorkloadName, l.Route,
	}
	for i, v := range base {
		base[i] = sanitize(v)
	}
	return &HTTPSeries{r: r, labels: l, base: base}
}

// Request counts a request received (before it is forwarded).
func (s *HTTPSeries) Request() {
	if s == nil {
		return
	}
	s.requests.inc()
}

// Response records the response latency: the time to the response headers, in the
// response_latency_ms child of this status. grpcStatus is unused (the gRPC status
// usually comes with the trailers, see End). status 0 means no response and records
// nothing. response_total is counted by End.
func (s *HTTPSeries) Response(status int, grpcStatus string, latency time.Duration) {
	if s == nil || status == 0 {
		return
	}
	if p := s.latencies.Load(); p != nil {
		for _, c := range *p {
			if c.status == status {
				c.hist.observe(&s.r.bounds, latency)
				return
			}
		}
	}
	s.latencyChild(status).hist.observe(&s.r.bounds, latency)
}

// End counts the response in response_total at the end of its stream: status 0
// means no response (an error); grpcStatus is the final gRPC status (from the
// trailers when the headers had none), "" for non-gRPC. Classification: failure on
// 5xx, no response, or a gRPC status other than "0".
func (s *HTTPSeries) End(status int, grpcStatus string) {
	if s == nil {
		return
	}
	if p := s.responses.Load(); p != nil {
		for _, c := range *p {
			if c.status == status && c.grpc == grpcStatus {
				c.total.inc()
				return
			}
		}
	}
	s.responseChild(status, grpcStatus).total.inc()
}

func (s *HTTPSeries) responseChild(status int, grpcStatus string) *responseChild {
	s.mu.Lock()
	defer s.mu.Unlock()
	var cur []*responseChild
	if p := s.responses.Load(); p != nil {
		cur = *p
		for _, c := range cur {
			if c.status == status && c.grpc == grpcStatus {
				return c
			}
		}
	}
	failure := failed(status, grpcStatus)
	if len(cur) < maxStatusChildren && s.r.admit() {
		grpc := strings.Clone(grpcStatus)
		c := &responseChild{status: status, grpc: grpc,
			values: [3]string{statusValue(status), sanitize(grpc), classification(failure)}}
		next := append(slices.Clip(cur), c)
		s.responses.Store(&next)
		return c
	}
	s.r.overflows.inc()
	g, f, grpcValue := 0, 0, ""
	if grpcStatus != "" {
		g, grpcValue = 1, overflowValue
	}
	if failure {
		f = 1
	}
	if s.responseOverflow[g][f] == nil {
		s.responseOverflow[g][f] = &responseChild{values: [3]string{overflowValue, grpcValue, classification(failure)}}
	}
	return s.responseOverflow[g][f]
}

func (s *HTTPSeries) latencyChild(status int) *latencyChild {
	s.mu.Lock()
	defer s.mu.Unlock()
	var cur []*latencyChild
	if p := s.latencies.Load(); p != nil {
		cur = *p
		for _, c := range cur {
			if c.status == status {
				return c
			}
		}
	}
	if len(cur) < maxStatusChildren && s.r.admit() {
		c := &latencyChild{status: status, code: statusValue(status)}
		next := append(slices.Clip(cur), c)
		s.latencies.Store(&next)
		return c
	}
	s.r.overflows.inc()
	if s.latencyOverflow == nil {
		s.latencyOverflow = &latencyChild{code: overflowValue}
	}
	return s.latencyOverflow
}

// collect adds the series' samples to the scrape.
func (s *HTTPSeries) collect(sc *collection) {
	sc.requests.add(s.base, nil, s.requests.value())
	var responses []*responseChild
	var latencies []*latencyChild
	if p := s.responses.Load(); p != nil {
		responses = *p
	}
	if p := s.latencies.Load(); p != nil {
		latencies = *p
	}
	s.mu.Lock()
	overflow := s.responseOverflow
	latencyOverflow := s.latencyOverflow
	s.mu.Unlock()
	for _, c := range responses {
		sc.responses.add(s.base, c.values[:], c.total.value())
	}
	for _, row := range overflow {
		for _, c := range row {
			if c != nil {
				sc.responses.add(s.base, c.values[:], c.total.value())
			}
		}
	}
	for _, c := range latencies {
		sc.latency.addHist(s.base, []string{c.code}, &c.hist)
	}
	if c := latencyOverflow; c != nil {
		sc.latency.addHist(s.base, []string{c.code}, &c.hist)
	}
}

// Labels are the series' labels, as given (the zero value for a nil series).
func (s *HTTPSeries) Labels() HTTPLabels {
	if s == nil {
		return HTTPLabels{}
	}
	return s.labels
}
