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
	"k8s.io/client-go/kubernetes"
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
	if err := checkRoutes(r, window); err != nil {
		return nil, err
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
	service, order, err := profileRoutes(ctx, d.Client, dyn, t, d.warnf)
	if err != nil {
		return nil, err
	}
	var seen []string
	for _, pd := range got {
		for _, s := range pd.responses {
			if inbound(s.labels) {
				seen = append(seen, s.labels["route"])
			}
		}
	}
	all := routeOrder(order, seen)
	out := make([]RouteRow, 0, len(all))
	for _, n := range all {
		route := n
		spec := rowSpec{target: t, sources: sources, inbound: true, http: func(l labelSet) bool { return inbound(l) && l["route"] == route }}
		row, _ := compute(spec, got)
		out = append(out, RouteRow{Route: routeName(n), Service: service[n], Row: row})
	}
	return out, nil
}

// checkRoutes refuses what no source can give routes for.
func checkRoutes(r Resource, window time.Duration) error {
	if r.Name == "" || r.Kind == KindNamespace {
		return fmt.Errorf("routes: %s: name one workload, pod or service (KIND/NAME)", r)
	}
	if window < 0 {
		return fmt.Errorf("window %s is negative", window)
	}
	return nil
}

// routeOrder is the rows' routes: the profiles' (order), then the other routes
// seen in the traffic, sorted, and the default route ("") last.
func routeOrder(order, seen []string) []string {
	names := map[string]bool{}
	for _, n := range order {
		names[n] = true
	}
	var extra []string
	for _, n := range seen {
		if !names[n] {
			names[n] = true
			extra = append(extra, n)
		}
	}
	sort.Strings(extra)
	all := append(append([]string(nil), order...), extra...)
	sort.SliceStable(all, func(i, j int) bool { return all[i] != "" && all[j] == "" }) // [DEFAULT] last
	return all
}

// routeName is the row name of a route label: DefaultRoute for "".
func routeName(route string) string {
	if route == "" {
		return DefaultRoute
	}
	return route
}

// profileRoutes lists the routes of the ServiceProfiles (named SVC.NS.svc.*) of
// the services of t's namespace that select its pods (or of t, a service), in
// the profiles' order; route "" (the default) always. With dyn nil, none.
func profileRoutes(ctx context.Context, c kubernetes.Interface, dyn dynamic.Interface, t target, warnf func(string, ...any)) (map[string]string, []string, error) {
	service := map[string]string{}
	if dyn == nil {
		return service, nil, nil
	}
	order := []string{""}
	svcs := map[string]bool{}
	if t.res.Kind == KindService {
		svcs[t.res.Name] = true
	} else {
		objs, err := selectors(ctx, c, Resource{Kind: KindService, Namespace: t.res.Namespace})
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
		warnf("serviceprofiles in %s: %v: showing the routes with traffic only", t.res.Namespace, err)
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
