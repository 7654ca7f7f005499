// Package destination is the discovery service: it resolves a service authority to its
// ready endpoints from EndpointSlices, with each endpoint's identity (only when its pod
// is meshed), protocol hint, zone and metric labels, and streams changes.
package destination

import (
	"context"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"

	"google.golang.org/protobuf/proto"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	meshv1 "github.com/meshplane/mesh/controlplane/api/mesh/v1"
	"github.com/meshplane/mesh/render/inject"
)

// Server implements Destination.Get over shared informers.
type Server struct {
	meshv1.UnimplementedDestinationServer

	ClusterDomain string
	TrustDomain   string

	factory informers.SharedInformerFactory
	mu      sync.Mutex
	subs    map[string]map[chan struct{}]bool // service key (ns/name) -> subscribers
}

// New builds the server's informers; Start runs them.
func New(client kubernetes.Interface, clusterDomain, trustDomain string) *Server {
	s := &Server{ClusterDomain: clusterDomain, TrustDomain: trustDomain,
		factory: informers.NewSharedInformerFactory(client, 0), subs: map[string]map[chan struct{}]bool{}}
	notify := func(key string) {
		s.mu.Lock()
		for ch := range s.subs[key] {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
		s.mu.Unlock()
	}
	byService := func(obj any) {
		switch o := obj.(type) {
		case *corev1.Service:
			notify(o.Namespace + "/" + o.Name)
		case *discoveryv1.EndpointSlice:
			notify(o.Namespace + "/" + o.Labels[discoveryv1.LabelServiceName])
		case *corev1.Pod:
			s.mu.Lock()
			keys := make([]string, 0)
			for k := range s.subs {
				if strings.HasPrefix(k, o.Namespace+"/") {
					keys = append(keys, k)
				}
			}
			s.mu.Unlock()
			for _, k := range keys {
				notify(k)
			}
		case cache.DeletedFinalStateUnknown:
			return
		}
	}
	h := cache.ResourceEventHandlerFuncs{AddFunc: byService, UpdateFunc: func(_, n any) { byService(n) }, DeleteFunc: byService}
	_, _ = s.factory.Core().V1().Services().Informer().AddEventHandler(h)
	_, _ = s.factory.Discovery().V1().EndpointSlices().Informer().AddEventHandler(h)
	_, _ = s.factory.Core().V1().Pods().Informer().AddEventHandler(h)
	return s
}

// Start runs the informers until ctx ends and waits for their first sync.
func (s *Server) Start(ctx context.Context) bool {
	s.factory.Start(ctx.Done())
	for _, ok := range s.factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return false
		}
	}
	return true
}

// target is what a Get asks for.
type target struct {
	namespace, name string
	port            int32
}

func (s *Server) parse(path string) (target, error) {
	host, portStr, err := net.SplitHostPort(path)
	if err != nil {
		return target{}, fmt.Errorf("%q: want service.namespace.svc.%s:port", path, s.ClusterDomain)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 1 || port > 65535 {
		return target{}, fmt.Errorf("%q: bad port", path)
	}
	host = strings.TrimSuffix(host, ".")
	parts := strings.Split(strings.TrimSuffix(host, ".svc."+s.ClusterDomain), ".")
	if !strings.HasSuffix(host, ".svc."+s.ClusterDomain) || len(parts) != 2 {
		return target{}, fmt.Errorf("%q: want service.namespace.svc.%s:port", path, s.ClusterDomain)
	}
	return target{namespace: parts[1], name: parts[0], port: int32(port)}, nil
}

// resolve computes the current ready endpoints; exists is false when the authority is
// not a mesh destination (no such Service, or ExternalName).
func (s *Server) resolve(t target) (eps map[string]*meshv1.WeightedAddr, exists bool, err error) {
	svc, err := s.factory.Core().V1().Services().Lister().Services(t.namespace).Get(t.name)
	if err != nil || svc.Spec.Type == corev1.ServiceTypeExternalName {
		return nil, false, nil
	}
	var portName string
	found := false
	for _, p := range svc.Spec.Ports {
		if p.Port == t.port {
			portName, found = p.Name, true
		}
	}
	if !found {
		return nil, true, nil
	}
	slices, err := s.factory.Discovery().V1().EndpointSlices().Lister().EndpointSlices(t.namespace).List(
		labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: t.name}))
	if err != nil {
		return nil, true, err
	}
	opaque := opaquePorts(svc.Annotations[inject.ConfigPrefix+"opaque-ports"])
	pods := s.factory.Core().V1().Pods().Lister().Pods(t.namespace)
	eps = map[string]*meshv1.WeightedAddr{}
	for _, sl := range slices {
		var port int32
		ok := false
		for _, p := range sl.Ports {
			if p.Port != nil && (p.Name == nil && portName == "" || p.Name != nil && *p.Name == portName) {
				port, ok = *p.Port, true
			}
		}
		if !ok {
			continue
		}
		for _, e := range sl.Endpoints {
			if e.Conditions.Ready != nil && !*e.Conditions.Ready {
				continue
			}
			for _, a := range e.Addresses {
				ip := net.ParseIP(a)
				if ip == nil {
					continue
				}
				if v4 := ip.To4(); v4 != nil {
					ip = v4
				}
				wa := &meshv1.WeightedAddr{Addr: &meshv1.TcpAddress{Ip: ip, Port: uint32(port)}, Weight: 10000,
					MetricLabels: map[string]string{"namespace": t.namespace, "service": t.name}}
				if e.Zone != nil {
					wa.Zone = *e.Zone
					wa.MetricLabels["zone"] = *e.Zone
				}
				if e.TargetRef != nil && e.TargetRef.Kind == "Pod" {
					pod, err := pods.Get(e.TargetRef.Name)
					if err != nil || pod.DeletionTimestamp != nil {
						// The pod is gone or going; the slice will follow.
						continue
					}
					s.decorate(wa, pod, port, opaque)
				}
				eps[net.JoinHostPort(ip.String(), strconv.Itoa(int(port)))] = wa
			}
		}
	}
	return eps, true, nil
}

// decorate adds the pod's labels, and for a meshed pod its identity and protocol hint.
func (s *Server) decorate(wa *meshv1.WeightedAddr, pod *corev1.Pod, port int32, opaque map[int32]bool) {
	wa.MetricLabels["pod"] = pod.Name
	for _, o := range pod.OwnerReferences {
		if o.Controller != nil && *o.Controller {
			wa.MetricLabels[strings.ToLower(o.Kind)] = o.Name
		}
	}
	meshed := false
	for _, c := range append(pod.Spec.InitContainers, pod.Spec.Containers...) {
		if c.Name == inject.ProxyContainer {
			meshed = true
		}
	}
	if !meshed {
		return
	}
	sa := pod.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	wa.TlsIdentity = &meshv1.TlsIdentity{Name: fmt.Sprintf("%s.%s.serviceaccount.identity.%s", sa, pod.Namespace, s.TrustDomain)}
	for k, v := range opaquePorts(pod.Annotations[inject.ConfigPrefix+"opaque-ports"]) {
		opaque[k] = v
	}
	if opaque[port] {
		wa.ProtocolHint = &meshv1.ProtocolHint{Protocol: &meshv1.ProtocolHint_Opaque_{Opaque: &meshv1.ProtocolHint_Opaque{InboundPort: 4143}}}
	} else {
		wa.ProtocolHint = &meshv1.ProtocolHint{Protocol: &meshv1.ProtocolHint_H2_{H2: &meshv1.ProtocolHint_H2{}}}
	}
}

func opaquePorts(s string) map[int32]bool {
	out := map[int32]bool{}
	for _, part := range strings.Split(s, ",") {
		lo, hi, _ := strings.Cut(strings.TrimSpace(part), "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			continue
		}
		b := a
		if hi != "" {
			if b, err = strconv.Atoi(hi); err != nil || b-a > 65535 {
				continue
			}
		}
		for p := a; p <= b; p++ {
			out[int32(p)] = true
		}
	}
	return out
}

// Get streams the authority's endpoints: the whole set, then what is added and removed.
func (s *Server) Get(req *meshv1.GetDestination, stream meshv1.Destination_GetServer) error {
	t, err := s.parse(req.GetPath())
	if err != nil {
		// Not a service name (an IP, another cluster's name): not a mesh destination.
		return stream.Send(&meshv1.Update{Update: &meshv1.Update_NoEndpoints{NoEndpoints: &meshv1.NoEndpoints{Exists: false}}})
	}
	key := t.namespace + "/" + t.name
	ch := make(chan struct{}, 1)
	s.mu.Lock()
	if s.subs[key] == nil {
		s.subs[key] = map[chan struct{}]bool{}
	}
	s.subs[key][ch] = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.subs[key], ch)
		if len(s.subs[key]) == 0 {
			delete(s.subs, key)
		}
		s.mu.Unlock()
	}()

	sent := map[string]*meshv1.WeightedAddr{}
	first := true
	for {
		eps, exists, err := s.resolve(t)
		if err != nil {
			return err
		}
		var add, remove []*meshv1.WeightedAddr
		for k, wa := range eps {
			if old, ok := sent[k]; !ok || !sameAddr(old, wa) {
				add = append(add, wa)
			}
		}
		for k, wa := range sent {
			if _, ok := eps[k]; !ok {
				remove = append(remove, &meshv1.WeightedAddr{Addr: wa.Addr})
			}
		}
		sortAddrs(add)
		sortAddrs(remove)
		if len(remove) > 0 {
			if err := stream.Send(&meshv1.Update{Update: &meshv1.Update_Remove{Remove: &meshv1.AddressSet{Addrs: remove}}}); err != nil {
				return err
			}
		}
		if len(add) > 0 {
			if err := stream.Send(&meshv1.Update{Update: &meshv1.Update_Add{Add: &meshv1.AddressSet{Addrs: add,
				MetricLabels: map[string]string{"namespace": t.namespace, "service": t.name}}}}); err != nil {
				return err
			}
		}
		// No endpoints: said once when the stream starts empty and when the set empties.
		if len(eps) == 0 && (first || len(sent) > 0) {
			if err := stream.Send(&meshv1.Update{Update: &meshv1.Update_NoEndpoints{NoEndpoints: &meshv1.NoEndpoints{Exists: exists}}}); err != nil {
				return err
			}
		}
		sent = eps
		first = false
		select {
		case <-stream.Context().Done():
			return nil
		case <-ch:
		}
	}
}

func sameAddr(a, b *meshv1.WeightedAddr) bool { return proto.Equal(a, b) }

func sortAddrs(as []*meshv1.WeightedAddr) {
	sort.Slice(as, func(i, j int) bool {
		return net.IP(as[i].Addr.Ip).String()+":"+strconv.Itoa(int(as[i].Addr.Port)) < net.IP(as[j].Addr.Ip).String()+":"+strconv.Itoa(int(as[j].Addr.Port))
	})
}
