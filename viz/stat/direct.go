package stat

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"
	"time"

	"github.com/meshplane/mesh/render/inject"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/kubernetes"
)

// Direct defaults.
const (
	DefaultConcurrency = 16
	DefaultPodTimeout  = 5 * time.Second
)

// Direct is the source that needs nothing installed: it scrapes each meshed pod's
// proxy /metrics through the API server (GET
// /api/v1/namespaces/NS/pods/NAME:PORT/proxy/metrics, as the user of the kubeconfig),
// twice, Window apart, and computes the rows from what the proxies counted in between.
//
// Which proxies and which of their series make a row follows Linkerd viz's stat:
//
//   - a workload, pod or namespace: the inbound traffic of its own pods
//     (direction="inbound"), and their inbound open TCP connections;
//   - with To: the outbound traffic of its pods to To (direction="outbound" and the
//     destination labels of To, see below), and their outbound connections to To's pods;
//   - with From: the outbound traffic of From's pods to the row's object, and their
//     outbound connections to its pods; only rows with traffic are shown, as with To;
//   - a service: the outbound traffic to it (dst_service, dst_namespace) of every
//     meshed pod of the cluster (of From's pods with From); like Linkerd, no TCP
//     figure. When listing pods in all namespaces is forbidden, the service's own
//     namespace is used, with a warning.
//
// A destination matches by the labels discovery gave the request: dst_namespace
// for a namespace, dst_namespace and dst_service for a service, dst_namespace and
// dst_pod among the object's current pods for a workload or a pod. TCP series have
// no destination labels; they match when target_addr is one of those pods' IPs.
type Direct struct {
	Client kubernetes.Interface
	// Now is the clock (time.Now when nil); Sleep waits between the samples
	// (a timer when nil). Tests give a fake pair so no test waits.
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
	// Concurrency bounds the scrapes in flight (DefaultConcurrency when <= 0);
	// PodTimeout bounds each one (DefaultPodTimeout when <= 0).
	Concurrency int
	PodTimeout  time.Duration
	// Warnings receives one line per pod that could not be scraped, and a count
	// (discarded when nil).
	Warnings io.Writer
}

// rowSpec is how one row is computed: from which pods, and which of their series.
type rowSpec struct {
	target   target
	sources  []*corev1.Pod
	inbound  bool
	http     func(labelSet) bool
	tcp      func(labelSet) bool // nil: no TCP figure
	filtered bool                // --to or --from: drop the row without traffic
}

// Stat implements Source.
func (d *Direct) Stat(ctx context.Context, q Query) ([]Row, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	specs, err := d.plan(ctx, q)
	if err != nil {
		return nil, err
	}
	var scrape []*corev1.Pod
	seen := map[string]bool{}
	for _, s := range specs {
		for _, p := range s.sources {
			if k := p.Namespace + "/" + p.Name; !seen[k] {
				seen[k] = true
				scrape = append(scrape, p)
			}
		}
	}
	got, err := d.sampleTwice(ctx, scrape, q.Window)
	if err != nil {
		return nil, err
	}
	rows := make([]Row, 0, len(specs))
	for _, s := range specs {
		row, traffic := compute(s, got)
		if s.filtered && !traffic {
			continue
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// plan resolves the query's objects and decides each row's sources and series.
func (d *Direct) plan(ctx context.Context, q Query) ([]rowSpec, error) {
	targets, err := resolve(ctx, d.Client, q.Resource)
	if err != nil {
		return nil, err
	}
	var other *target
	if r := q.To; r != nil || q.From != nil {
		if r == nil {
			r = q.From
		}
		ts, err := resolve(ctx, d.Client, *r)
		if err != nil {
			return nil, err
		}
		if len(ts) != 1 {
			return nil, fmt.Errorf("%s: want one object, found %d", r, len(ts))
		}
		other = &ts[0]
	}
	var everyone []*corev1.Pod
	if q.Resource.Kind == KindService && q.From == nil {
		if everyone, err = d.allMeshedPods(ctx, q.Resource.Namespace); err != nil {
			return nil, err
		}
	}
	specs := make([]rowSpec, 0, len(targets))
	for _, t := range targets {
		s := rowSpec{target: t}
		switch {
		case t.res.Kind == KindService:
			s.sources = everyone
			if q.From != nil {
				s.sources = meshed(other.pods)
			}
			s.http = outbound(matchHTTP(t))
			if q.To != nil {
				s.http = both(s.http, matchHTTP(*other))
			}
		case q.To != nil:
			s.sources = meshed(t.pods)
			s.http, s.tcp, s.filtered = outbound(matchHTTP(*other)), outbound(matchTCP(*other)), true
		case q.From != nil:
			s.sources = meshed(other.pods)
			s.http, s.tcp, s.filtered = outbound(matchHTTP(t)), outbound(matchTCP(t)), true
		default:
			s.sources, s.inbound = meshed(t.pods), true
			s.http, s.tcp = inbound, inbound
		}
		specs = append(specs, s)
	}
	return specs, nil
}

// allMeshedPods is every meshed pod of the cluster, or of ns when listing all
// namespaces is forbidden.
func (d *Direct) allMeshedPods(ctx context.Context, ns string) ([]*corev1.Pod, error) {
	pods, err := livePods(ctx, d.Client, "")
	if apierrors.IsForbidden(err) && ns != "" {
		d.warnf("listing pods in all namespaces is forbidden: counting the service traffic of the pods of %s only", ns)
		pods, err = livePods(ctx, d.Client, ns)
	}
	if err != nil {
		return nil, err
	}
	return meshed(pods), nil
}

func meshed(pods []*corev1.Pod) []*corev1.Pod {
	var out []*corev1.Pod
	for _, p := range pods {
		if _, ok := proxyAdminPort(p); ok {
			out = append(out, p)
		}
	}
	return out
}

func inbound(l labelSet) bool { return l["direction"] == "inbound" }

func outbound(match func(labelSet) bool) func(labelSet) bool {
	return func(l labelSet) bool { return l["direction"] == "outbound" && match(l) }
}

func both(a, b func(labelSet) bool) func(labelSet) bool {
	return func(l labelSet) bool { return a(l) && b(l) }
}

// matchHTTP matches the requests to t by their destination labels.
func matchHTTP(t target) func(labelSet) bool {
	switch t.res.Kind {
	case KindNamespace:
		return func(l labelSet) bool { return l["dst_namespace"] == t.res.Name }
	case KindService:
		return func(l labelSet) bool { return l["dst_namespace"] == t.res.Namespace && l["dst_service"] == t.res.Name }
	}
	names := map[string]bool{}
	for _, p := range t.pods {
		names[p.Name] = true
	}
	return func(l labelSet) bool { return l["dst_namespace"] == t.res.Namespace && names[l["dst_pod"]] }
}

// matchTCP matches the connections to t's pods by target_addr.
func matchTCP(t target) func(labelSet) bool {
	ips := map[string]bool{}
	for _, p := range t.pods {
		for _, ip := range p.Status.PodIPs {
			ips[ip.IP] = true
		}
		if p.Status.PodIP != "" {
			ips[p.Status.PodIP] = true
		}
	}
	return func(l labelSet) bool { return ips[l.targetIP()] }
}

// sampled is the deltas of the pods scraped twice, by namespace/name.
type sampled map[string]podDelta

// sampleTwice scrapes the pods, waits window, and scrapes those that answered
// again. Failures are warnings; it fails only when every pod failed.
func (d *Direct) sampleTwice(ctx context.Context, pods []*corev1.Pod, window time.Duration) (sampled, error) {
	out := sampled{}
	if len(pods) == 0 {
		return out, nil
	}
	first, failed := d.scrapeAll(ctx, pods)
	if err := d.sleep(ctx, window); err != nil {
		return nil, err
	}
	var again []*corev1.Pod
	for _, p := range pods {
		if first[key(p)] != nil {
			again = append(again, p)
		}
	}
	second, failed2 := d.scrapeAll(ctx, again)
	failed = append(failed, failed2...)
	for k, b := range second {
		out[k] = deltas(first[k], b)
	}
	if len(failed) > 0 {
		d.warnf("could not scrape %d of %d pods", len(failed), len(pods))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no proxy could be scraped (%d pods): %w", len(pods), failed[0])
	}
	return out, ctx.Err()
}

func key(p *corev1.Pod) string { return p.Namespace + "/" + p.Name }

// scrapeAll scrapes the pods, at most Concurrency at a time.
func (d *Direct) scrapeAll(ctx context.Context, pods []*corev1.Pod) (map[string]*sample, []error) {
	n := d.Concurrency
	if n <= 0 {
		n = DefaultConcurrency
	}
	var (
		mu     sync.Mutex
		got    = map[string]*sample{}
		failed []error
		wg     sync.WaitGroup
		slots  = make(chan struct{}, n)
	)
	for _, p := range pods {
		wg.Add(1)
		slots <- struct{}{}
		go func() {
			defer func() { <-slots; wg.Done() }()
			s, err := d.scrape(ctx, p)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed = append(failed, err)
				d.warnf("%v", err)
				return
			}
			got[key(p)] = s
		}()
	}
	wg.Wait()
	return got, failed
}

// scrape reads one proxy's /metrics through the API server's pods/proxy.
func (d *Direct) scrape(ctx context.Context, p *corev1.Pod) (*sample, error) {
	port, _ := proxyAdminPort(p)
	if port == "" {
		return nil, fmt.Errorf("pod %s: container %s has no port named %s", key(p), inject.ProxyContainer, inject.AdminPortName)
	}
	if p.Status.PodIP == "" {
		return nil, fmt.Errorf("pod %s: no IP yet", key(p))
	}
	timeout := d.PodTimeout
	if timeout <= 0 {
		timeout = DefaultPodTimeout
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	body, err := d.Client.CoreV1().Pods(p.Namespace).ProxyGet("", p.Name, port, "metrics", nil).DoRaw(cctx)
	at := d.now()
	if err != nil {
		if errors.Is(cctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil {
			return nil, fmt.Errorf("pod %s: scrape port %s: timed out after %s", key(p), port, timeout)
		}
		return nil, fmt.Errorf("pod %s: scrape port %s: %w", key(p), port, err)
	}
	s, err := parseSample(bytes.NewReader(body), at)
	if err != nil {
		return nil, fmt.Errorf("pod %s: %w", key(p), err)
	}
	return s, nil
}

func (d *Direct) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

func (d *Direct) sleep(ctx context.Context, w time.Duration) error {
	if d.Sleep != nil {
		return d.Sleep(ctx, w)
	}
	if w <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(w)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func (d *Direct) warnf(format string, args ...any) { warnTo(d.Warnings, format, args...) }

// warnTo writes one warning line to w (nil: nowhere).
func warnTo(w io.Writer, format string, args ...any) {
	if w != nil {
		fmt.Fprintf(w, "Warning: "+format+"\n", args...)
	}
}

// compute is one row from the pods' deltas; traffic tells whether any series matched.
func compute(s rowSpec, got sampled) (Row, bool) {
	row := Row{Resource: s.target.res, TotalPods: len(s.target.pods)}
	for _, p := range s.target.pods {
		if _, ok := proxyAdminPort(p); ok {
			row.MeshedPods++
		}
	}
	var (
		traffic bool
		scraped int
		buckets = map[float64]float64{}
	)
	for _, p := range s.sources {
		pd, ok := got[key(p)]
		if !ok {
			continue
		}
		scraped++
		var podRequests float64
		for _, r := range pd.responses {
			if !s.http(r.labels) {
				continue
			}
			traffic = true
			podRequests += r.value
			if r.labels["classification"] == "success" {
				row.Successes += r.value
			}
			if r.labels["tls"] == "true" {
				row.TLSRequests += r.value
			}
		}
		row.Requests += podRequests
		if pd.seconds > 0 {
			row.RPS += podRequests / pd.seconds
		}
		for _, h := range pd.latency {
			if !s.http(h.labels) {
				continue
			}
			for _, b := range h.buckets {
				buckets[b.UpperBound] += b.Count
			}
		}
		if s.tcp != nil {
			for _, c := range pd.tcpOpen {
				if s.tcp(c.labels) {
					traffic = true
					row.TCPConnections += c.value
				}
			}
		}
	}
	nan := math.NaN()
	row.SuccessRate, row.TLSShare = nan, nan
	if row.Requests > 0 {
		row.SuccessRate = row.Successes / row.Requests
		row.TLSShare = row.TLSRequests / row.Requests
	}
	if !traffic {
		row.RPS = nan // no series at all: nothing to say, as Linkerd's "-"
	}
	if s.tcp == nil || scraped == 0 {
		row.TCPConnections = nan
	}
	bs := make([]Bucket, 0, len(buckets))
	for ub, c := range buckets {
		bs = append(bs, Bucket{ub, c})
	}
	row.LatencyP50, row.LatencyP95, row.LatencyP99 = Quantile(0.5, bs), Quantile(0.95, bs), Quantile(0.99, bs)
	return row, traffic
}
