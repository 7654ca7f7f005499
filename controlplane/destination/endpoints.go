package destination

import (
	"cmp"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	meshv1 "github.com/meshplane/mesh/controlplane/api/mesh/v1"
)

// proxyInboundPort is where a meshed pod's proxy takes opaque traffic over mTLS.
const proxyInboundPort = 4143

// Get streams the authority's endpoints: the whole set, then what is added and removed.
// A service name resolves through its EndpointSlices; a Service's cluster IP as that
// Service; another IP to the running pod that has it. Anything else, or an IP no pod
// has, is answered "not a mesh destination" (NoEndpoints{exists: false}), so the proxy
// connects to the original address; the stream stays open and follows changes.
func (s *Server) Get(req *meshv1.GetDestination, stream meshv1.Destination_GetServer) error {
	if t, err := s.parse(req.GetPath()); err == nil {
		return s.follow(stream, endpointsKey(t.namespace, t.name), map[string]string{"namespace": t.namespace, "service": t.name},
			func() (map[string]*meshv1.WeightedAddr, bool, error) { return s.resolve(t) })
	}
	ip, port, ok := parseIP(req.GetPath())
	if !ok {
		return stream.Send(&meshv1.Update{Update: &meshv1.Update_NoEndpoints{NoEndpoints: &meshv1.NoEndpoints{Exists: false}}})
	}
	if svc := s.serviceByIP(ip); svc != nil {
		t := target{namespace: svc.Namespace, name: svc.Name, port: port}
		return s.follow(stream, endpointsKey(t.namespace, t.name), map[string]string{"namespace": t.namespace, "service": t.name},
			func() (map[string]*meshv1.WeightedAddr, bool, error) { return s.resolve(t) })
	}
	return s.follow(stream, ipKey(ip), nil, func() (map[string]*meshv1.WeightedAddr, bool, error) {
		eps, exists := s.resolvePod(ip, port)
		return eps, exists, nil
	})
}

// follow sends the resolved set, then on every wake-up of key what changed.
func (s *Server) follow(stream meshv1.Destination_GetServer, key string, setLabels map[string]string,
	resolve func() (map[string]*meshv1.WeightedAddr, bool, error)) error {
	wake, cancel := s.hub.subscribe(key)
	defer cancel()
	sent := map[string]*meshv1.WeightedAddr{}
	first := true
	for {
		eps, exists, err := resolve()
		if err != nil {
			return err
		}
		var add, remove []*meshv1.WeightedAddr
		for k, wa := range eps {
			if old, ok := sent[k]; !ok || !proto.Equal(old, wa) {
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
			if err := stream.Send(&meshv1.Update{Update: &meshv1.Update_Add{Add: &meshv1.AddressSet{Addrs: add, MetricLabels: setLabels}}}); err != nil {
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
		case <-s.closing:
			return errClosing()
		case <-wake:
		}
	}
}

// resolve computes a service port's ready endpoints; exists is false when the
// authority is not a mesh destination (no such Service, or ExternalName).
func (s *Server) resolve(t target) (eps map[string]*meshv1.WeightedAddr, exists bool, err error) {
	obj, ok, err := s.svcs.GetIndexer().GetByKey(t.namespace + "/" + t.name)
	if err != nil || !ok {
		return nil, false, err
	}
	svc := obj.(*corev1.Service)
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
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
	objs, err := s.slices.GetIndexer().ByIndex(byService, t.namespace+"/"+t.name)
	if err != nil {
		return nil, true, err
	}
	svcOpaque := opaque(svc.Annotations[opaqueAnnotation], t.port)
	eps = map[string]*meshv1.WeightedAddr{}
	for _, o := range objs {
		sl := o.(*discoveryv1.EndpointSlice)
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
					obj, ok, _ := s.pods.GetIndexer().GetByKey(t.namespace + "/" + e.TargetRef.Name)
					if !ok || obj.(*podInfo).DeletionTimestamp != nil {
						// The pod is gone or going; the slice will follow.
						continue
					}
					pod := obj.(*podInfo)
					s.decorate(wa, pod, port, svcOpaque || s.podOpaque(pod, port))
				}
				eps[net.JoinHostPort(ip.String(), strconv.Itoa(int(port)))] = wa
			}
		}
	}
	return eps, true, nil
}

// resolvePod answers an IP authority with the running pod that has the IP, if any.
func (s *Server) resolvePod(ip string, port int32) (map[string]*meshv1.WeightedAddr, bool) {
	pod := s.podByIP(ip)
	if pod == nil {
		return nil, false
	}
	addr := net.ParseIP(ip)
	if v4 := addr.To4(); v4 != nil {
		addr = v4
	}
	wa := &meshv1.WeightedAddr{Addr: &meshv1.TcpAddress{Ip: addr, Port: uint32(port)}, Weight: 10000,
		MetricLabels: map[string]string{"namespace": pod.Namespace}}
	s.decorate(wa, pod, port, s.podOpaque(pod, port))
	return map[string]*meshv1.WeightedAddr{net.JoinHostPort(ip, strconv.Itoa(int(port))): wa}, true
}

// podOpaque reports whether the pod's port is opaque: by its annotation, else its
// namespace's.
func (s *Server) podOpaque(pod *podInfo, port int32) bool {
	if v, ok := pod.Annotations[opaqueAnnotation]; ok {
		return opaque(v, port)
	}
	return opaque(s.namespaceAnnotation(pod.Namespace, opaqueAnnotation), port)
}

// decorate adds the pod's labels, and for a meshed pod its identity and protocol hint.
func (s *Server) decorate(wa *meshv1.WeightedAddr, pod *podInfo, port int32, opaque bool) {
	wa.MetricLabels["pod"] = pod.Name
	for _, o := range pod.OwnerReferences {
		if o.Controller != nil && *o.Controller {
			wa.MetricLabels[strings.ToLower(o.Kind)] = o.Name
		}
	}
	if !pod.meshed {
		return
	}
	wa.TlsIdentity = &meshv1.TlsIdentity{Name: fmt.Sprintf("%s.%s.serviceaccount.identity.%s", pod.serviceAccount, pod.Namespace, s.TrustDomain)}
	if opaque {
		wa.ProtocolHint = &meshv1.ProtocolHint{Protocol: &meshv1.ProtocolHint_Opaque_{Opaque: &meshv1.ProtocolHint_Opaque{InboundPort: proxyInboundPort}}}
	} else {
		wa.ProtocolHint = &meshv1.ProtocolHint{Protocol: &meshv1.ProtocolHint_H2_{H2: &meshv1.ProtocolHint_H2{}}}
	}
}

// opaque reports whether an opaque-ports annotation (ports and ranges,
// comma-separated) lists port. Invalid parts are ignored (the injector refuses them).
func opaque(annotation string, port int32) bool {
	for part := range strings.SplitSeq(annotation, ",") {
		lo, hi, _ := strings.Cut(strings.TrimSpace(part), "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			continue
		}
		b := a
		if hi != "" {
			if b, err = strconv.Atoi(hi); err != nil {
				continue
			}
		}
		if int(port) >= a && int(port) <= b {
			return true
		}
	}
	return false
}

func sortAddrs(as []*meshv1.WeightedAddr) {
	slices.SortFunc(as, func(a, b *meshv1.WeightedAddr) int {
		if c := strings.Compare(string(a.Addr.Ip), string(b.Addr.Ip)); c != 0 {
			return c
		}
		return cmp.Compare(a.Addr.Port, b.Addr.Port)
	})
}
