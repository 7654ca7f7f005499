package stat

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// Edge is traffic from one workload to another, as `linkerd viz edges` shows it.
// Src is the zero Resource for callers without a proxy (seen only in the
// destination's inbound series, without a client identity).
type Edge struct {
	Src, Dst Resource
	// ClientID is the source's verified identity as the destination's proxy saw
	// it (client_id), ServerID the destination's as the source's proxy saw it
	// (server_id); "" when unknown.
	ClientID, ServerID string
	// Secured: every series of the edge had tls="true" and a peer identity.
	Secured bool
	// NoTLSReason is the no_tls_reason of an unsecured series, if any said one.
	NoTLSReason string
	// Requests are the responses on the edge: in the window, or, with no window,
	// since the proxies started. RPS is NaN without a window.
	Requests float64
	RPS      float64
}

// EdgeKinds are the kinds Edges aggregates by.
func EdgeKinds() []string { return []string{KindDeployment, KindStatefulSet, KindDaemonSet, KindPod} }

// Edges lists the edges between the workloads of kind in namespace ns ("" for
// all): the outbound requests of their meshed pods, by destination workload, and
// the inbound requests their pods received from callers without a proxy or with
// an identity of none of the sources. A destination is the owner workload (of
// kind) of the pod the request went to (dst_pod), looked up in the pod list of
// the destination's namespace; a pod no workload of kind selects, or a request
// without dst_pod, goes to the service (dst_service).
//
// With window 0 each proxy is scraped once and Requests counts since it
// started; otherwise twice, window apart, as Stat does.
func (d *Direct) Edges(ctx context.Context, ns, kind string, window time.Duration) ([]Edge, error) {
	if err := checkEdges(kind, window); err != nil {
		return nil, err
	}
	targets, err := resolve(ctx, d.Client, Resource{Kind: kind, Namespace: ns})
	if err != nil {
		return nil, err
	}
	owners, scrape, idPrefix := edgeSources(targets)
	got, err := d.sampleOnceOrTwice(ctx, scrape, window)
	if err != nil {
		return nil, err
	}
	resolved := map[string]bool{ns: true}
	if ns == "" {
		for _, t := range targets {
			resolved[t.res.Namespace] = true
		}
	}
	edges := newEdgeSet(window)
	for _, p := range scrape {
		pd, ok := got[key(p)]
		if !ok {
			continue
		}
		src := owners[key(p)]
		for _, r := range pd.responses {
			l := r.labels
			switch l["direction"] {
			case "outbound":
				dstNS := l["dst_namespace"]
				if !resolved[dstNS] && dstNS != "" {
					resolved[dstNS] = true
					ts, err := resolve(ctx, d.Client, Resource{Kind: kind, Namespace: dstNS})
					if err != nil {
						d.warnf("destinations in %s: %v: naming them by service", dstNS, err)
					}
					owners.add(ts)
				}
				edges.add(src, owners.destination(kind, l), l, r.value, pd.seconds)
			case "inbound":
				if _, known := idPrefix[prefixOf(l["client_id"])]; known && l["client_id"] != "" {
					continue // counted at the source, as outbound
				}
				edges.add(Resource{}, src, l, r.value, pd.seconds)
			}
		}
	}
	// Client identities: the client_id of each source in its destinations'
	// inbound series.
	for _, p := range scrape {
		pd, ok := got[key(p)]
		if !ok {
			continue
		}
		for _, r := range pd.responses {
			edges.clientID(idPrefix, owners[key(p)], r.labels)
		}
	}
	return edges.sorted(), nil
}

// checkEdges refuses what no source can give edges for.
func checkEdges(kind string, window time.Duration) error {
	if !contains(EdgeKinds(), kind) {
		return fmt.Errorf("edges: kind %q: want one of %s", kind, strings.Join(EdgeKinds(), ", "))
	}
	if window < 0 {
		return fmt.Errorf("window %s is negative", window)
	}
	return nil
}

// edgeSources are the meshed pods of the targets (the sources of edges), each
// pod's workload, and the workload of each of their identity prefixes
// (SA.NS.serviceaccount.identity.), to find a source's client_id in its
// destinations' inbound series.
func edgeSources(targets []target) (ownerIndex, []*corev1.Pod, map[string]Resource) {
	owners := ownerIndex{}
	owners.add(targets)
	var pods []*corev1.Pod
	for _, t := range targets {
		pods = append(pods, meshed(t.pods)...)
	}
	ids := map[string]Resource{}
	for _, p := range pods {
		ids[identityPrefix(p)] = owners[key(p)]
	}
	return owners, pods, ids
}

// edgeSet gathers edges from series of either source: an outbound series of a
// source's proxy (or an inbound one of a caller without an identity of a
// source) is added with its count over the window.
type edgeSet struct {
	window time.Duration
	edges  map[string]*Edge
}

func newEdgeSet(window time.Duration) *edgeSet {
	return &edgeSet{window: window, edges: map[string]*Edge{}}
}

func edgeKey(src, dst Resource) string {
	return src.Namespace + "/" + src.Name + "\x00" + dst.Kind + "/" + dst.Namespace + "/" + dst.Name
}

// add counts v requests of the series l on the edge src -> dst; seconds is the
// time they were counted over (0: no rate).
func (s *edgeSet) add(src, dst Resource, l labelSet, v, seconds float64) {
	k := edgeKey(src, dst)
	if src.Name == "" {
		k += "\x00" + l["client_id"]
	}
	e := s.edges[k]
	if e == nil {
		e = &Edge{Src: src, Dst: dst, Secured: true, RPS: math.NaN()}
		if s.window > 0 {
			e.RPS = 0
		}
		s.edges[k] = e
	}
	peer := l["server_id"]
	if l["direction"] == "inbound" {
		peer = l["client_id"]
		e.ClientID = peer
	} else if peer != "" {
		e.ServerID = peer
	}
	if l["tls"] != "true" || peer == "" {
		e.Secured = false
		if r := l["no_tls_reason"]; r != "" {
			e.NoTLSReason = r
		}
	}
	e.Requests += v
	if s.window > 0 && seconds > 0 {
		e.RPS += v / seconds
	}
}

// clientID gives the edge from a known source to dst the client_id of dst's
// inbound series l, when l is one and its identity is a source's.
func (s *edgeSet) clientID(ids map[string]Resource, dst Resource, l labelSet) {
	id := l["client_id"]
	src, ok := ids[prefixOf(id)]
	if l["direction"] != "inbound" || id == "" || !ok {
		return
	}
	if e := s.edges[edgeKey(src, dst)]; e != nil {
		e.ClientID = id
	}
}

// sorted is the edges by source, destination and client identity.
func (s *edgeSet) sorted() []Edge {
	out := make([]Edge, 0, len(s.edges))
	for _, e := range s.edges {
		out = append(out, *e)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		for _, c := range [][2]string{{a.Src.Namespace, b.Src.Namespace}, {a.Src.Name, b.Src.Name}, {a.Dst.Namespace, b.Dst.Namespace}, {a.Dst.Name, b.Dst.Name}, {a.ClientID, b.ClientID}} {
			if c[0] != c[1] {
				return c[0] < c[1]
			}
		}
		return false
	})
	return out
}

// ownerIndex is each pod's (namespace/name) workload.
type ownerIndex map[string]Resource

func (o ownerIndex) add(ts []target) {
	for _, t := range ts {
		for _, p := range t.pods {
			if _, ok := o[key(p)]; !ok {
				o[key(p)] = t.res
			}
		}
	}
}

// destination is the workload of an outbound series' dst_pod, or its service.
func (o ownerIndex) destination(kind string, l labelSet) Resource {
	ns := l["dst_namespace"]
	if r, ok := o[ns+"/"+l["dst_pod"]]; ok && l["dst_pod"] != "" {
		return r
	}
	if kind == KindPod && l["dst_pod"] != "" {
		return Resource{Kind: KindPod, Namespace: ns, Name: l["dst_pod"]}
	}
	return Resource{Kind: KindService, Namespace: ns, Name: l["dst_service"]}
}

// identityPrefix is the start of the pod's mesh identity: SA.NS.serviceaccount.identity.
func identityPrefix(p *corev1.Pod) string {
	sa := p.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	return sa + "." + p.Namespace + ".serviceaccount.identity."
}

// prefixOf is an identity's SA.NS.serviceaccount.identity. part, "" if it has none.
func prefixOf(id string) string {
	const mid = ".serviceaccount.identity."
	i := strings.Index(id, mid)
	if i < 0 {
		return ""
	}
	return id[:i+len(mid)]
}

// sampleOnceOrTwice is sampleTwice, or with window 0 one scrape whose counters
// count whole (seconds 0).
func (d *Direct) sampleOnceOrTwice(ctx context.Context, pods []*corev1.Pod, window time.Duration) (sampled, error) {
	if window > 0 {
		return d.sampleTwice(ctx, pods, window)
	}
	out := sampled{}
	if len(pods) == 0 {
		return out, nil
	}
	got, failed := d.scrapeAll(ctx, pods)
	for k, s := range got {
		out[k] = deltas(&sample{at: s.at}, s)
	}
	if len(failed) > 0 {
		d.warnf("could not scrape %d of %d pods", len(failed), len(pods))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no proxy could be scraped (%d pods): %w", len(pods), failed[0])
	}
	return out, ctx.Err()
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
