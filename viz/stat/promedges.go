package stat

import (
	"context"
	"errors"
	"math"
	"time"

	"k8s.io/client-go/dynamic"
)

// errNoKube is Edges' and Routes' error without Prometheus.Kube.
var errNoKube = errors.New("the Prometheus source needs a Kubernetes client for edges and routes (Prometheus.Kube)")

// Edges is Direct.Edges from Prometheus (EdgesPromQL): the same edges, named
// the same way. The sources are the live workloads of kind in ns (from
// Kubernetes, as Direct lists them) and their pods' identities tell which
// inbound client_id is a source's; a destination is the workload its dst_
// label names (from the install's relabelling), else its service. With window
// 0, Requests counts since the proxies started and RPS is NaN, as in Direct.
func (p *Prometheus) Edges(ctx context.Context, ns, kind string, window time.Duration) ([]Edge, error) {
	qs, err := EdgesPromQL(ns, kind, window)
	if err != nil {
		return nil, err
	}
	if p.Kube == nil {
		return nil, errNoKube
	}
	targets, err := resolve(ctx, p.Kube, Resource{Kind: kind, Namespace: ns})
	if err != nil {
		return nil, err
	}
	_, _, ids := edgeSources(targets)
	live := map[Resource]bool{}
	for _, t := range targets {
		live[t.res] = true
	}
	workload := func(l labelSet) Resource {
		return Resource{Kind: kind, Namespace: l["namespace"], Name: l[qs.Label]}
	}
	seconds := window.Seconds()
	edges := newEdgeSet(window)
	out, err := p.Query(ctx, qs.Outbound)
	if err != nil {
		return nil, err
	}
	for _, s := range out {
		l := labelSet(s.Metric)
		if src := workload(l); live[src] && !math.IsNaN(s.Value) {
			edges.add(src, promDestination(kind, qs.Label, l), l, s.Value, seconds)
		}
	}
	in, err := p.Query(ctx, qs.Inbound)
	if err != nil {
		return nil, err
	}
	for _, s := range in {
		l := labelSet(s.Metric)
		l["direction"] = "inbound"
		dst := workload(l)
		if !live[dst] || math.IsNaN(s.Value) {
			continue
		}
		if _, known := ids[prefixOf(l["client_id"])]; known && l["client_id"] != "" {
			edges.clientID(ids, dst, l) // counted at the source, as outbound
			continue
		}
		edges.add(Resource{}, dst, l, s.Value, seconds)
	}
	return edges.sorted(), nil
}

// promDestination is the workload an outbound series' dst_LABEL names, or its
// service: what ownerIndex.destination finds from dst_pod.
func promDestination(kind, label string, l labelSet) Resource {
	if name := l["dst_"+label]; name != "" {
		return Resource{Kind: kind, Namespace: l["dst_namespace"], Name: name}
	}
	return Resource{Kind: KindService, Namespace: l["dst_namespace"], Name: l["dst_service"]}
}

// Routes is Direct.Routes from Prometheus (RoutesPromQL): the same rows, in the
// same order, with the same MESHED counts; a route's figures are NaN when
// Prometheus has no series of it in the window.
func (p *Prometheus) Routes(ctx context.Context, dyn dynamic.Interface, r Resource, window time.Duration) ([]RouteRow, error) {
	if err := checkRoutes(r, window); err != nil {
		return nil, err
	}
	if p.Kube == nil {
		return nil, errNoKube
	}
	ts, err := resolve(ctx, p.Kube, r)
	if err != nil {
		return nil, err
	}
	t := ts[0]
	service, order, err := profileRoutes(ctx, p.Kube, dyn, t, p.warnf)
	if err != nil {
		return nil, err
	}
	var pods []string
	for _, pod := range meshed(t.pods) {
		pods = append(pods, pod.Name)
	}
	rows := map[string]*Row{}
	var seen []string
	if len(pods) > 0 {
		qs, err := RoutesPromQL(r, pods, window)
		if err != nil {
			return nil, err
		}
		reqs, err := p.Query(ctx, qs.Requests)
		if err != nil {
			return nil, err
		}
		for _, s := range reqs {
			route := s.Metric["route"]
			x := rows[route]
			if x == nil {
				x = nanRow(t.res)
				rows[route] = x
				seen = append(seen, route)
			}
			x.count(s)
		}
		for i, lq := range qs.Latency {
			samples, err := p.Query(ctx, lq)
			if err != nil {
				return nil, err
			}
			for _, s := range samples {
				if x := rows[s.Metric["route"]]; x != nil {
					x.setLatency(i, s.Value)
				}
			}
		}
	}
	meshedPods := len(pods)
	all := routeOrder(order, seen)
	out := make([]RouteRow, 0, len(all))
	for _, n := range all {
		x := rows[n]
		traffic := x != nil
		if !traffic {
			x = nanRow(t.res)
		}
		x.finish(window)
		if !traffic {
			x.RPS = math.NaN()
		}
		x.MeshedPods, x.TotalPods, x.TCPConnections = meshedPods, len(t.pods), math.NaN() // no TCP figure, as Direct's
		out = append(out, RouteRow{Route: routeName(n), Service: service[n], Row: *x})
	}
	return out, nil
}

func (p *Prometheus) warnf(format string, args ...any) { warnTo(p.Warnings, format, args...) }
