package destination

import (
	"slices"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/meshplane/mesh/render/inject"
)

// podInfo is what the server keeps of a pod, as the pod informer's transform leaves
// it: about a fifth of a corev1.Pod, and 10,000 pods are most of the server's memory.
type podInfo struct {
	metav1.TypeMeta
	metav1.ObjectMeta // name, namespace, deletion, controller; annotations: opaque ports only

	serviceAccount string
	meshed         bool // runs the proxy
	running        bool // phase Running
	ips            []string
}

// DeepCopyObject is for runtime.Object.
func (p *podInfo) DeepCopyObject() runtime.Object {
	c := *p
	p.DeepCopyInto(&c.ObjectMeta) // ObjectMeta's
	c.ips = slices.Clone(p.ips)
	return &c
}

// trimPod is the pod informer's transform: a *corev1.Pod becomes a *podInfo.
func trimPod(obj any) (any, error) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil
	}
	out := &podInfo{TypeMeta: p.TypeMeta, ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace, UID: p.UID,
		ResourceVersion: p.ResourceVersion, DeletionTimestamp: p.DeletionTimestamp},
		serviceAccount: p.Spec.ServiceAccountName, meshed: meshed(p), running: p.Status.Phase == corev1.PodRunning}
	if out.serviceAccount == "" {
		out.serviceAccount = "default"
	}
	if v, ok := p.Annotations[opaqueAnnotation]; ok {
		out.Annotations = map[string]string{opaqueAnnotation: v}
	}
	for _, o := range p.OwnerReferences {
		if o.Controller != nil && *o.Controller {
			out.OwnerReferences = []metav1.OwnerReference{{Kind: o.Kind, Name: o.Name, Controller: o.Controller}}
		}
	}
	if !p.Spec.HostNetwork { // a host-network pod's IP is its node's
		for _, ip := range p.Status.PodIPs {
			out.ips = append(out.ips, ip.IP)
		}
		if len(out.ips) == 0 && p.Status.PodIP != "" {
			out.ips = []string{p.Status.PodIP}
		}
	}
	return out, nil
}

// meshed reports whether the pod runs the proxy.
func meshed(p *corev1.Pod) bool {
	for _, c := range p.Spec.InitContainers {
		if c.Name == inject.ProxyContainer {
			return true
		}
	}
	for _, c := range p.Spec.Containers {
		if c.Name == inject.ProxyContainer {
			return true
		}
	}
	return false
}

// podIPs indexes pods by IP.
func podIPs(obj any) ([]string, error) {
	if p, ok := obj.(*podInfo); ok {
		return p.ips, nil
	}
	return nil, nil
}

// onPod wakes only the streams that show the pod: the services whose slices point at
// it, and its IPs' streams. Updates that change nothing a stream shows (status
// conditions: the EndpointSlice controller reports readiness) wake nobody.
func (s *Server) onPod(old, cur any) {
	o, _ := old.(*podInfo)
	c, _ := cur.(*podInfo)
	if o != nil && c != nil && !podChanged(o, c) {
		return
	}
	var keys []string
	p := c
	for _, q := range []*podInfo{o, c} {
		if q == nil {
			continue
		}
		p = q
		for _, ip := range q.ips {
			keys = append(keys, ipKey(ip))
		}
	}
	if p == nil {
		return
	}
	objs, _ := s.slices.GetIndexer().ByIndex(byPod, p.Namespace+"/"+p.Name)
	for _, o := range objs {
		sl := o.(*discoveryv1.EndpointSlice)
		keys = append(keys, endpointsKey(sl.Namespace, sl.Labels[discoveryv1.LabelServiceName]))
	}
	s.hub.notify(keys...)
}

// podChanged reports whether an update changes what streams show of the pod.
func podChanged(o, c *podInfo) bool {
	return (o.DeletionTimestamp == nil) != (c.DeletionTimestamp == nil) || o.running != c.running || o.meshed != c.meshed ||
		o.serviceAccount != c.serviceAccount || !slices.Equal(o.ips, c.ips) ||
		o.Annotations[opaqueAnnotation] != c.Annotations[opaqueAnnotation] || controller(o) != controller(c)
}

// controller is the pod's controller as kind/name, "" if none.
func controller(p *podInfo) string {
	if len(p.OwnerReferences) == 0 {
		return ""
	}
	return p.OwnerReferences[0].Kind + "/" + p.OwnerReferences[0].Name
}

// podByIP is the running pod with IP ip, if any (the first by name if several).
func (s *Server) podByIP(ip string) *podInfo {
	objs, _ := s.pods.GetIndexer().ByIndex(byIP, ip)
	var best *podInfo
	for _, o := range objs {
		p := o.(*podInfo)
		if p.DeletionTimestamp != nil || !p.running {
			continue
		}
		if best == nil || p.Namespace+"/"+p.Name < best.Namespace+"/"+best.Name {
			best = p
		}
	}
	return best
}
