package stat

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"

	vresolve "github.com/meshplane/mesh/viz/resolve"
)

// The resolution is viz/resolve's, shared with mesh tap and top; these adapters keep
// this package's short names.

// target is one object a row reports on, and its live pods.
type target struct {
	res  Resource
	pods []*corev1.Pod
}

// selected is one object of a kind with pods: its name and how it picks them.
type selected struct {
	ns, name string
	sel      labels.Selector // nil: selects nothing (a Service without a selector)
}

// resolve lists the objects r names with their live pods (resolve.Targets).
func resolve(ctx context.Context, c kubernetes.Interface, r Resource) ([]target, error) {
	ts, err := vresolve.Targets(ctx, c, r)
	if err != nil {
		return nil, err
	}
	out := make([]target, len(ts))
	for i, t := range ts {
		out[i] = target{res: t.Resource, pods: t.Pods}
	}
	return out, nil
}

// selectors gets or lists the objects r names with their selectors (resolve.Selectors).
func selectors(ctx context.Context, c kubernetes.Interface, r Resource) ([]selected, error) {
	objs, err := vresolve.Selectors(ctx, c, r)
	if err != nil {
		return nil, err
	}
	out := make([]selected, len(objs))
	for i, o := range objs {
		out[i] = selected{ns: o.Namespace, name: o.Name, sel: o.Selector}
	}
	return out, nil
}

// ErrNotFound is returned (wrapped) when a named object does not exist.
var ErrNotFound = vresolve.ErrNotFound

// livePods lists the pending and running pods of ns ("" for all namespaces).
func livePods(ctx context.Context, c kubernetes.Interface, ns string) ([]*corev1.Pod, error) {
	return vresolve.LivePods(ctx, c, ns)
}

// proxyAdminPort: see resolve.ProxyAdminPort.
func proxyAdminPort(p *corev1.Pod) (port string, meshed bool) { return vresolve.ProxyAdminPort(p) }
