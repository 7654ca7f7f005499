package resolve

import (
	"context"
	"fmt"
	"sort"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"

	"github.com/meshplane/mesh/render/inject"
)

// Target is one object a resource names, and its live pods (pending or running:
// Linkerd's count, succeeded and failed pods are gone).
type Target struct {
	Resource Resource
	Pods     []*corev1.Pod
}

// Selected is one object of a kind with pods: its name and how it picks them.
type Selected struct {
	Namespace, Name string
	Selector        labels.Selector // nil: selects nothing (a Service without a selector)
}

// Targets lists the objects r names (one, or every object of the kind in r's
// namespace, "" for all) with their live pods, sorted by namespace and name. A
// named object that does not exist is an error wrapping ErrNotFound. A named
// namespace whose get is forbidden (a namespace-scoped user) is taken as it is:
// its pods are listed all the same.
func Targets(ctx context.Context, c kubernetes.Interface, r Resource) ([]Target, error) {
	switch r.Kind {
	case KindPod:
		var pods []corev1.Pod
		if r.Name != "" {
			p, err := c.CoreV1().Pods(r.Namespace).Get(ctx, r.Name, metav1.GetOptions{})
			if err != nil {
				return nil, NotFound(r, err)
			}
			pods = []corev1.Pod{*p}
		} else {
			l, err := c.CoreV1().Pods(r.Namespace).List(ctx, metav1.ListOptions{})
			if err != nil {
				return nil, fmt.Errorf("list pods: %w", err)
			}
			pods = l.Items
		}
		var out []Target
		for i := range pods {
			p := &pods[i]
			t := Target{Resource: Resource{Kind: KindPod, Namespace: p.Namespace, Name: p.Name}}
			if Live(p) {
				t.Pods = []*corev1.Pod{p}
			}
			out = append(out, t)
		}
		return sorted(out), nil
	case KindNamespace:
		var names []string
		if r.Name != "" {
			if _, err := c.CoreV1().Namespaces().Get(ctx, r.Name, metav1.GetOptions{}); err != nil && !apierrors.IsForbidden(err) {
				return nil, NotFound(r, err)
			}
			names = []string{r.Name}
		} else {
			l, err := c.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
			if err != nil {
				return nil, fmt.Errorf("list namespaces: %w", err)
			}
			for _, n := range l.Items {
				names = append(names, n.Name)
			}
		}
		pods, err := LivePods(ctx, c, r.Name)
		if err != nil {
			return nil, err
		}
		byNS := map[string][]*corev1.Pod{}
		for _, p := range pods {
			byNS[p.Namespace] = append(byNS[p.Namespace], p)
		}
		var out []Target
		for _, n := range names {
			out = append(out, Target{Resource: Resource{Kind: KindNamespace, Name: n}, Pods: byNS[n]})
		}
		return sorted(out), nil
	}
	objs, err := Selectors(ctx, c, r)
	if err != nil {
		return nil, err
	}
	pods, err := LivePods(ctx, c, r.Namespace)
	if err != nil {
		return nil, err
	}
	var out []Target
	for _, o := range objs {
		t := Target{Resource: Resource{Kind: r.Kind, Namespace: o.Namespace, Name: o.Name}}
		for _, p := range pods {
			if p.Namespace == o.Namespace && o.Selector != nil && o.Selector.Matches(labels.Set(p.Labels)) {
				t.Pods = append(t.Pods, p)
			}
		}
		out = append(out, t)
	}
	return sorted(out), nil
}

// object is what Selectors needs of a workload or service.
type object struct {
	meta *metav1.ObjectMeta
	sel  *metav1.LabelSelector
}

// Selectors gets or lists the deployments, statefulsets, daemonsets, replicasets,
// jobs or services r names, with their pod selectors.
func Selectors(ctx context.Context, c kubernetes.Interface, r Resource) ([]Selected, error) {
	get, list := metav1.GetOptions{}, metav1.ListOptions{}
	apps, ns := c.AppsV1(), r.Namespace
	var objs []object
	var err error
	// one gets the named object; all lists them.
	var one func() (object, error)
	var all func() ([]object, error)
	switch r.Kind {
	case KindDeployment:
		one = func() (object, error) {
			o, err := apps.Deployments(ns).Get(ctx, r.Name, get)
			if err != nil {
				return object{}, err
			}
			return object{&o.ObjectMeta, o.Spec.Selector}, nil
		}
		all = func() ([]object, error) {
			l, err := apps.Deployments(ns).List(ctx, list)
			if err != nil {
				return nil, err
			}
			var out []object
			for i := range l.Items {
				out = append(out, object{&l.Items[i].ObjectMeta, l.Items[i].Spec.Selector})
			}
			return out, nil
		}
	case KindStatefulSet:
		one = func() (object, error) {
			o, err := apps.StatefulSets(ns).Get(ctx, r.Name, get)
			if err != nil {
				return object{}, err
			}
			return object{&o.ObjectMeta, o.Spec.Selector}, nil
		}
		all = func() ([]object, error) {
			l, err := apps.StatefulSets(ns).List(ctx, list)
			if err != nil {
				return nil, err
			}
			var out []object
			for i := range l.Items {
				out = append(out, object{&l.Items[i].ObjectMeta, l.Items[i].Spec.Selector})
			}
			return out, nil
		}
	case KindDaemonSet:
		one = func() (object, error) {
			o, err := apps.DaemonSets(ns).Get(ctx, r.Name, get)
			if err != nil {
				return object{}, err
			}
			return object{&o.ObjectMeta, o.Spec.Selector}, nil
		}
		all = func() ([]object, error) {
			l, err := apps.DaemonSets(ns).List(ctx, list)
			if err != nil {
				return nil, err
			}
			var out []object
			for i := range l.Items {
				out = append(out, object{&l.Items[i].ObjectMeta, l.Items[i].Spec.Selector})
			}
			return out, nil
		}
	case KindReplicaSet:
		one = func() (object, error) {
			o, err := apps.ReplicaSets(ns).Get(ctx, r.Name, get)
			if err != nil {
				return object{}, err
			}
			return object{&o.ObjectMeta, o.Spec.Selector}, nil
		}
		all = func() ([]object, error) {
			l, err := apps.ReplicaSets(ns).List(ctx, list)
			if err != nil {
				return nil, err
			}
			var out []object
			for i := range l.Items {
				out = append(out, object{&l.Items[i].ObjectMeta, l.Items[i].Spec.Selector})
			}
			return out, nil
		}
	case KindJob:
		one = func() (object, error) {
			o, err := c.BatchV1().Jobs(ns).Get(ctx, r.Name, get)
			if err != nil {
				return object{}, err
			}
			return object{&o.ObjectMeta, o.Spec.Selector}, nil
		}
		all = func() ([]object, error) {
			l, err := c.BatchV1().Jobs(ns).List(ctx, list)
			if err != nil {
				return nil, err
			}
			var out []object
			for i := range l.Items {
				out = append(out, object{&l.Items[i].ObjectMeta, l.Items[i].Spec.Selector})
			}
			return out, nil
		}
	case KindService:
		svcSel := func(s *corev1.Service) *metav1.LabelSelector {
			if len(s.Spec.Selector) == 0 {
				return nil // selects no pod, as for the endpoints controller
			}
			return &metav1.LabelSelector{MatchLabels: s.Spec.Selector}
		}
		one = func() (object, error) {
			o, err := c.CoreV1().Services(ns).Get(ctx, r.Name, get)
			if err != nil {
				return object{}, err
			}
			return object{&o.ObjectMeta, svcSel(o)}, nil
		}
		all = func() ([]object, error) {
			l, err := c.CoreV1().Services(ns).List(ctx, list)
			if err != nil {
				return nil, err
			}
			var out []object
			for i := range l.Items {
				out = append(out, object{&l.Items[i].ObjectMeta, svcSel(&l.Items[i])})
			}
			return out, nil
		}
	default:
		return nil, fmt.Errorf("unknown kind %q", r.Kind)
	}
	if r.Name != "" {
		o, e := one()
		if e != nil {
			return nil, NotFound(r, e)
		}
		objs = []object{o}
	} else if objs, err = all(); err != nil {
		return nil, fmt.Errorf("list %ss: %w", r.Kind, err)
	}
	out := make([]Selected, 0, len(objs))
	for _, o := range objs {
		sel, err := metav1.LabelSelectorAsSelector(o.sel)
		if err != nil {
			return nil, fmt.Errorf("%s %s/%s: spec.selector: %w", r.Kind, o.meta.Namespace, o.meta.Name, err)
		}
		if o.sel == nil {
			sel = nil
		}
		out = append(out, Selected{Namespace: o.meta.Namespace, Name: o.meta.Name, Selector: sel})
	}
	return out, nil
}

// ErrNotFound is returned (wrapped) when a named object does not exist.
var ErrNotFound error = notFoundError{}

type notFoundError struct{}

func (notFoundError) Error() string { return "not found" }

// NotFound names r in err: ErrNotFound when the API server said it does not exist.
func NotFound(r Resource, err error) error {
	where := r.Namespace
	if where != "" {
		where += "/"
	}
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("%s %s%s: %w", r.Kind, where, r.Name, ErrNotFound)
	}
	return fmt.Errorf("get %s %s%s: %w", r.Kind, where, r.Name, err)
}

// LivePods lists the live pods of ns ("" for all namespaces).
func LivePods(ctx context.Context, c kubernetes.Interface, ns string) ([]*corev1.Pod, error) {
	l, err := c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list pods: %w", err)
	}
	var out []*corev1.Pod
	for i := range l.Items {
		if Live(&l.Items[i]) {
			out = append(out, &l.Items[i])
		}
	}
	return out, nil
}

// Live: not being deleted, and pending or running.
func Live(p *corev1.Pod) bool {
	return p.DeletionTimestamp == nil && (p.Status.Phase == corev1.PodPending || p.Status.Phase == corev1.PodRunning || p.Status.Phase == "")
}

func sorted(ts []Target) []Target {
	sort.Slice(ts, func(i, j int) bool {
		if ts[i].Resource.Namespace != ts[j].Resource.Namespace {
			return ts[i].Resource.Namespace < ts[j].Resource.Namespace
		}
		return ts[i].Resource.Name < ts[j].Resource.Name
	})
	return ts
}

// ProxyAdminPort is the container port named inject.AdminPortName of the pod's
// proxy container (a container or, as a native sidecar, an init container named
// inject.ProxyContainer); meshed is whether the pod has that container at all.
func ProxyAdminPort(p *corev1.Pod) (port string, meshed bool) {
	for _, cs := range [][]corev1.Container{p.Spec.Containers, p.Spec.InitContainers} {
		for _, c := range cs {
			if c.Name != inject.ProxyContainer {
				continue
			}
			for _, cp := range c.Ports {
				if cp.Name == inject.AdminPortName {
					return strconv.Itoa(int(cp.ContainerPort)), true
				}
			}
			return "", true
		}
	}
	return "", false
}

// Tappable: running, with the proxy container (or native sidecar) running.
func Tappable(p *corev1.Pod) bool {
	if p.Status.Phase != corev1.PodRunning {
		return false
	}
	for _, s := range append(p.Status.ContainerStatuses, p.Status.InitContainerStatuses...) {
		if s.Name == inject.ProxyContainer && s.State.Running != nil {
			return true
		}
	}
	return false
}
