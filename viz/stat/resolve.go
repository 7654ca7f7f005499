package stat

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

// target is one object a row reports on, and its pods.
type target struct {
	res  Resource
	pods []*corev1.Pod // pending or running (Linkerd's count: succeeded and failed pods are gone)
}

// selected is one object of a kind with pods: its name and how it picks them.
type selected struct {
	ns, name string
	sel      labels.Selector // nil: selects nothing (a Service without a selector)
}

// resolve lists the objects r names (one, or every object of the kind in r's
// namespace, "" for all) with their pods, sorted by namespace and name. A named
// object that does not exist is an error naming it.
func resolve(ctx context.Context, c kubernetes.Interface, r Resource) ([]target, error) {
	switch r.Kind {
	case KindPod:
		var pods []corev1.Pod
		if r.Name != "" {
			p, err := c.CoreV1().Pods(r.Namespace).Get(ctx, r.Name, metav1.GetOptions{})
			if err != nil {
				return nil, notFound(r, err)
			}
			pods = []corev1.Pod{*p}
		} else {
			l, err := c.CoreV1().Pods(r.Namespace).List(ctx, metav1.ListOptions{})
			if err != nil {
				return nil, fmt.Errorf("list pods: %w", err)
			}
			pods = l.Items
		}
		var out []target
		for i := range pods {
			p := &pods[i]
			t := target{res: Resource{Kind: KindPod, Namespace: p.Namespace, Name: p.Name}}
			if live(p) {
				t.pods = []*corev1.Pod{p}
			}
			out = append(out, t)
		}
		return sorted(out), nil
	case KindNamespace:
		var names []string
		if r.Name != "" {
			if _, err := c.CoreV1().Namespaces().Get(ctx, r.Name, metav1.GetOptions{}); err != nil {
				return nil, notFound(r, err)
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
		podNS := ""
		if r.Name != "" {
			podNS = r.Name
		}
		pods, err := livePods(ctx, c, podNS)
		if err != nil {
			return nil, err
		}
		byNS := map[string][]*corev1.Pod{}
		for _, p := range pods {
			byNS[p.Namespace] = append(byNS[p.Namespace], p)
		}
		var out []target
		for _, n := range names {
			out = append(out, target{res: Resource{Kind: KindNamespace, Name: n}, pods: byNS[n]})
		}
		return sorted(out), nil
	}
	objs, err := selectors(ctx, c, r)
	if err != nil {
		return nil, err
	}
	pods, err := livePods(ctx, c, r.Namespace)
	if err != nil {
		return nil, err
	}
	var out []target
	for _, o := range objs {
		t := target{res: Resource{Kind: r.Kind, Namespace: o.ns, Name: o.name}}
		for _, p := range pods {
			if p.Namespace == o.ns && o.sel != nil && o.sel.Matches(labels.Set(p.Labels)) {
				t.pods = append(t.pods, p)
			}
		}
		out = append(out, t)
	}
	return sorted(out), nil
}

// selectors gets or lists the deployments, statefulsets, daemonsets or services r names.
func selectors(ctx context.Context, c kubernetes.Interface, r Resource) ([]selected, error) {
	var out []selected
	add := func(ns, name string, ls *metav1.LabelSelector) error {
		sel, err := metav1.LabelSelectorAsSelector(ls)
		if err != nil {
			return fmt.Errorf("%s %s/%s: spec.selector: %w", r.Kind, ns, name, err)
		}
		if ls == nil {
			sel = nil
		}
		out = append(out, selected{ns, name, sel})
		return nil
	}
	get, list := metav1.GetOptions{}, metav1.ListOptions{}
	apps := c.AppsV1()
	var err error
	switch r.Kind {
	case KindDeployment:
		if r.Name != "" {
			o, e := apps.Deployments(r.Namespace).Get(ctx, r.Name, get)
			if e != nil {
				return nil, notFound(r, e)
			}
			err = add(o.Namespace, o.Name, o.Spec.Selector)
			break
		}
		l, e := apps.Deployments(r.Namespace).List(ctx, list)
		if e != nil {
			return nil, fmt.Errorf("list deployments: %w", e)
		}
		for i := range l.Items {
			if err = add(l.Items[i].Namespace, l.Items[i].Name, l.Items[i].Spec.Selector); err != nil {
				break
			}
		}
	case KindStatefulSet:
		if r.Name != "" {
			o, e := apps.StatefulSets(r.Namespace).Get(ctx, r.Name, get)
			if e != nil {
				return nil, notFound(r, e)
			}
			err = add(o.Namespace, o.Name, o.Spec.Selector)
			break
		}
		l, e := apps.StatefulSets(r.Namespace).List(ctx, list)
		if e != nil {
			return nil, fmt.Errorf("list statefulsets: %w", e)
		}
		for i := range l.Items {
			if err = add(l.Items[i].Namespace, l.Items[i].Name, l.Items[i].Spec.Selector); err != nil {
				break
			}
		}
	case KindDaemonSet:
		if r.Name != "" {
			o, e := apps.DaemonSets(r.Namespace).Get(ctx, r.Name, get)
			if e != nil {
				return nil, notFound(r, e)
			}
			err = add(o.Namespace, o.Name, o.Spec.Selector)
			break
		}
		l, e := apps.DaemonSets(r.Namespace).List(ctx, list)
		if e != nil {
			return nil, fmt.Errorf("list daemonsets: %w", e)
		}
		for i := range l.Items {
			if err = add(l.Items[i].Namespace, l.Items[i].Name, l.Items[i].Spec.Selector); err != nil {
				break
			}
		}
	case KindService:
		svcSel := func(s *corev1.Service) *metav1.LabelSelector {
			if len(s.Spec.Selector) == 0 {
				return nil // selects no pod, as for the endpoints controller
			}
			return &metav1.LabelSelector{MatchLabels: s.Spec.Selector}
		}
		if r.Name != "" {
			o, e := c.CoreV1().Services(r.Namespace).Get(ctx, r.Name, get)
			if e != nil {
				return nil, notFound(r, e)
			}
			err = add(o.Namespace, o.Name, svcSel(o))
			break
		}
		l, e := c.CoreV1().Services(r.Namespace).List(ctx, list)
		if e != nil {
			return nil, fmt.Errorf("list services: %w", e)
		}
		for i := range l.Items {
			if err = add(l.Items[i].Namespace, l.Items[i].Name, svcSel(&l.Items[i])); err != nil {
				break
			}
		}
	default:
		return nil, fmt.Errorf("unknown kind %q", r.Kind)
	}
	return out, err
}

// ErrNotFound is returned (wrapped) when a named object does not exist.
var ErrNotFound = notFoundError{}

type notFoundError struct{}

func (notFoundError) Error() string { return "not found" }

func notFound(r Resource, err error) error {
	where := r.Namespace
	if where != "" {
		where += "/"
	}
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("%s %s%s: %w", r.Kind, where, r.Name, ErrNotFound)
	}
	return fmt.Errorf("get %s %s%s: %w", r.Kind, where, r.Name, err)
}

// livePods lists the pending and running pods of ns ("" for all namespaces).
func livePods(ctx context.Context, c kubernetes.Interface, ns string) ([]*corev1.Pod, error) {
	l, err := c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list pods: %w", err)
	}
	var out []*corev1.Pod
	for i := range l.Items {
		if live(&l.Items[i]) {
			out = append(out, &l.Items[i])
		}
	}
	return out, nil
}

func live(p *corev1.Pod) bool {
	return p.DeletionTimestamp == nil && (p.Status.Phase == corev1.PodPending || p.Status.Phase == corev1.PodRunning || p.Status.Phase == "")
}

func sorted(ts []target) []target {
	sort.Slice(ts, func(i, j int) bool {
		if ts[i].res.Namespace != ts[j].res.Namespace {
			return ts[i].res.Namespace < ts[j].res.Namespace
		}
		return ts[i].res.Name < ts[j].res.Name
	})
	return ts
}

// proxyAdminPort is the container port named inject.AdminPortName of the pod's
// proxy container (a container or, as a native sidecar, an init container named
// inject.ProxyContainer); meshed is whether the pod has that container at all.
func proxyAdminPort(p *corev1.Pod) (port string, meshed bool) {
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
