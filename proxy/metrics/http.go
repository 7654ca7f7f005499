package metrics

import (
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// maxStatusChildren bounds the distinct (status, grpc status) children, and the
// distinct status latency children, of one HTTP series.
const maxStatusChildren = 64

type responseChild struct {
	status int
	grpc   string
	total  prometheus.Counter
}

type latencyChild struct {
	status int
	obs    prometheus.Observer
}

// HTTPSeries counts one label set's requests and responses. Safe for concurrent
// use; a nil *HTTPSeries does nothing.
type HTTPSeries struct {
	r        *Registry
	labels   HTTPLabels // the cache key, as given
	base     []string   // base label values, in httpLabelNames order
	requests prometheus.Counter

	// Copy-on-write lists, read without locks; mu serializes writers.
	responses atomic.Pointer[[]responseChild]
	latencies atomic.Pointer[[]latencyChild]

	mu sync.Mutex
	// Children past the caps, by [grpc status set][failure].
	responseOverflow [2][2]prometheus.Counter
	latencyOverflow  prometheus.Observer
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
	return &HTTPSeries{r: r, labels: l, base: base, requests: r.requests.WithLabelValues(base...)}
}

// Request counts a request received (before it is forwarded).
func (s *HTTPSeries) Request() {
	if s == nil {
		return
	}
	s.requests.Inc()
}

// Response records the response latency: the time to the response headers, in the
// response_latency_ms child of this status. grpcStatus is unused (the gRPC status
// usually comes with the trailers, see End). status 0 means no response and records
// nothing. response_total is counted by End.
func (s *HTTPSeries) Response(status int, grpcStatus string, latency time.Duration) {
	if s == nil || status == 0 {
		return
	}
	ms := float64(latency) / float64(time.Millisecond)
	if p := s.latencies.Load(); p != nil {
		for i := range *p {
			if c := &(*p)[i]; c.status == status {
				c.obs.Observe(ms)
				return
			}
		}
	}
	s.latencyChild(status).Observe(ms)
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
		for i := range *p {
			if c := &(*p)[i]; c.status == status && c.grpc == grpcStatus {
				c.total.Inc()
				return
			}
		}
	}
	s.responseChild(status, grpcStatus).Inc()
}

func (s *HTTPSeries) responseChild(status int, grpcStatus string) prometheus.Counter {
	s.mu.Lock()
	defer s.mu.Unlock()
	var cur []responseChild
	if p := s.responses.Load(); p != nil {
		cur = *p
		for _, c := range cur {
			if c.status == status && c.grpc == grpcStatus {
				return c.total
			}
		}
	}
	failure := failed(status, grpcStatus)
	if len(cur) < maxStatusChildren && s.r.admit() {
		total := s.r.responses.WithLabelValues(slices.Concat(s.base,
			[]string{statusValue(status), sanitize(grpcStatus), classification(failure)})...)
		next := append(slices.Clip(cur), responseChild{status: status, grpc: strings.Clone(grpcStatus), total: total})
		s.responses.Store(&next)
		return total
	}
	s.r.overflows.Inc()
	g, f, grpcValue := 0, 0, ""
	if grpcStatus != "" {
		g, grpcValue = 1, overflowValue
	}
	if failure {
		f = 1
	}
	if s.responseOverflow[g][f] == nil {
		s.responseOverflow[g][f] = s.r.responses.WithLabelValues(slices.Concat(s.base,
			[]string{overflowValue, grpcValue, classification(failure)})...)
	}
	return s.responseOverflow[g][f]
}

func (s *HTTPSeries) latencyChild(status int) prometheus.Observer {
	s.mu.Lock()
	defer s.mu.Unlock()
	var cur []latencyChild
	if p := s.latencies.Load(); p != nil {
		cur = *p
		for _, c := range cur {
			if c.status == status {
				return c.obs
			}
		}
	}
	if len(cur) < maxStatusChildren && s.r.admit() {
		obs := s.r.latency.WithLabelValues(slices.Concat(s.base, []string{statusValue(status)})...)
		next := append(slices.Clip(cur), latencyChild{status: status, obs: obs})
		s.latencies.Store(&next)
		return obs
	}
	s.r.overflows.Inc()
	if s.latencyOverflow == nil {
		s.latencyOverflow = s.r.latency.WithLabelValues(slices.Concat(s.base, []string{overflowValue})...)
	}
	return s.latencyOverflow
}
