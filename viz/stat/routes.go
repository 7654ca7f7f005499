package stat

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
)

// DefaultRoute is the row of the requests no ServiceProfile route matched
// (route=""), Linkerd's name for it.
const DefaultRoute = "[DEFAULT]"

// ServiceProfiles is the ServiceProfile resource (templates/mesh-crds).
var ServiceProfiles = schema.GroupVersionResource{Group: "policy.meshplane.io", Version: "v1alpha1", Resource: "serviceprofiles"}

// RouteRow is one route's golden metrics over the window, as `linkerd viz routes`.
type RouteRow struct {
	Route   string // the route name, DefaultRoute for route=""
	Service string // the service of the ServiceProfile that names it, "" if none
	// Row's request figures (SuccessRate, RPS, latencies, TLSShare); NaN without traffic.
	Row
}

// Routes is the inbound traffic of the pods of r (one named object) per
// ServiceProfile route (the route label), with a DefaultRoute row for the
// requests no route matched. With Dynamic set, the routes of the ServiceProfiles
// of the services selecting r's pods are rows too, without data when they had no
// traffic; a missing CRD or a forbidden list is no error.
func (d *Direct) Routes(ctx context.Context, dyn dynamic.Interface, r Resource, window time.Duration) ([]RouteRow, error) {
	if r.Name == "" || r.Kind == KindNamespace {
		return nil, fmt.Errorf("routes: %s: name one workload, pod or service (KIND/NAME)", r)
	}
	if window < 0 {
		return nil, fmt.Errorf("window %s is negative", window)
	}
	ts, err := resolve(ctx, d.Client, r)
	if err != nil {
		return nil, err
	}
	t := ts[0]
	sources := meshed(t.pods)
	got, err := d.sampleTwice(ctx, sources, window)
	if err != nil {
		return nil, err
	}
	service := map[string]string{} // route -> service
	var order []string
	if dyn != nil {
		if service, order, err = d.profileRoutes(ctx, dyn, t); err != nil {
			return nil, err
		}
	}
	names := map[string]bool{}
	for _, n := range order {
		names[n] = true
	}
	var seen []string
	for _, pd := range got {
		for _, s := range pd.responses {
			if n := s.labels["route"]; inbound(s.labels) && !names[n] {
				names[n] = true
				seen = append(seen, n)
			}
		}
	}
	sort.Strings(seen)
	all := append(order, seen...)
	sort.SliceStable(all, func(i, j int) bool { return all[i] != "" && all[j] == "" }) // [DEFAULT] last
	out := make([]RouteRow, 0, len(all))
	for _, n := range all {
		route := n
		spec := rowSpec{target: t, sources: sources, inbound: true, http: func(l labelSet) bool { return inbound(l) && l["route"] == route }}
		row, _ := compute(spec, got)
		name := n
		if n == "" {
			name = DefaultRoute
		}
		out = append(out, RouteRow{Route: name, Service: service[n], Row: row})
	}
	return out, nil
}

// profileRoutes lists the routes of the ServiceProfiles (named SVC.NS.svc.*) of
// the services of t's namespace that select its pods (or of t, a service), in
// the profiles' order; route "" (the default) always.
func (d *Direct) profileRoutes(ctx context.Context, dyn dynamic.Interface, t target) (map[string]string, []string, error) {
	service := map[string]string{}
	order := []string{""}
	svcs := map[string]bool{}
	if t.res.Kind == KindService {
		svcs[t.res.Name] = true
	} else {
		objs, err := selectors(ctx, d.Client, Resource{Kind: KindService, Namespace: t.res.Namespace})
		if err != nil {
			return nil, nil, err
		}
		for _, o := range objs {
			for _, p := range t.pods {
				if o.sel != nil && o.sel.Matches(labels.Set(p.Labels)) {
					svcs[o.name] = true
				}
			}
		}
	}
	l, err := dyn.Resource(ServiceProfiles).Namespace(t.res.Namespace).List(ctx, metav1.ListOptions{})
	if apierrors.IsNotFound(err) || apierrors.IsForbidden(err) || meta.IsNoMatchError(err) {
		d.warnf("serviceprofiles in %s: %v: showing the routes with traffic only", t.res.Namespace, err)
		return service, order, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("list serviceprofiles in %s: %w", t.res.Namespace, err)
	}
	for _, sp := range l.Items {
		svc, rest, _ := strings.Cut(sp.GetName(), ".")
		if !svcs[svc] || !strings.HasPrefix(rest, t.res.Namespace+".svc.") {
			continue
		}
		routes, _, err := unstructuredRoutes(sp.Object)
		if err != nil {
			return nil, nil, fmt.Errorf("serviceprofile %s/%s: spec.routes: %w", sp.GetNamespace(), sp.GetName(), err)
		}
		for _, n := range routes {
			if _, dup := service[n]; !dup {
				order = append(order, n)
			}
			service[n] = svc
		}
	}
	return service, order, nil
}

// unstructuredRoutes is the names of spec.routes.
func unstructuredRoutes(obj map[string]any) ([]string, bool, error) {
	spec, _ := obj["spec"].(map[string]any)
	raw, ok := spec["routes"]
	if !ok {
		return nil, false, nil
	}
	list, ok := raw.([]any)
	if !ok {
		return nil, true, fmt.Errorf("not a list")
	}
	var out []string
	for i, x := range list {
		m, _ := x.(map[string]any)
		n, _ := m["name"].(string)
		if n == "" {
			return nil, true, fmt.Errorf("[%d].name: missing", i)
		}
		out = append(out, n)
	}
	return out, true, nil
}
