// Package destination is the discovery service. Get resolves a service authority to its
// ready endpoints from EndpointSlices (or a pod IP authority to that pod), with each
// endpoint's identity (only when its pod is meshed), protocol hint, zone and metric
// labels, and streams changes. GetProfile streams a service's routes, retries and
// timeouts from its ServiceProfile, and whether its port is opaque. ServerTLS serves
// them over mTLS with the service's own certificate, which the proxy's identity client
// (controlplane/api/identityclient) obtains from identity.
package destination

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	meshv1 "github.com/meshplane/mesh/controlplane/api/mesh/v1"
	"github.com/meshplane/mesh/render/inject"
)

// ServiceProfiles is the ServiceProfile custom resource (CRD from the mesh-crds chart).
func ServiceProfiles() schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: "policy.meshplane.io", Version: "v1alpha1", Resource: "serviceprofiles"}
}

// opaqueAnnotation lists a Service's, namespace's or pod's opaque ports.
const opaqueAnnotation = inject.ConfigPrefix + "opaque-ports"

// Informer indexes.
const (
	byService = "service" // EndpointSlices by ns/service
	byPod     = "pod"     // EndpointSlices by the ns/name of the pods they point at
	byIP      = "ip"      // Pods by IP, Services by cluster IP
)

// Options configure a Server.
type Options struct {
	Client        kubernetes.Interface
	Dynamic       dynamic.Interface // for ServiceProfiles
	ClusterDomain string
	TrustDomain   string
	Log           *slog.Logger // default: discard
}

// Server implements Destination.Get and Destination.GetProfile over shared informers.
type Server struct {
	meshv1.UnimplementedDestinationServer

	ClusterDomain string
	TrustDomain   string

	log      *slog.Logger
	factory  informers.SharedInformerFactory
	dynamic  dynamicinformer.DynamicSharedInformerFactory
	svcs     cache.SharedIndexInformer
	slices   cache.SharedIndexInformer
	pods     cache.SharedIndexInformer
	nss      cache.SharedIndexInformer
	profiles cache.SharedIndexInformer
	hub      hub
	synced   []cache.InformerSynced

	// closing is closed by Close: every open stream ends, so that proxies reconnect
	// to another replica at once instead of keeping a stream no update will come on.
	closing   chan struct{}
	closeOnce sync.Once

	// Converted ServiceProfiles by ns/name, kept by the informer's handler so a bad
	// route is logged once per change, not once per stream.
	profMu    sync.RWMutex
	converted map[string]*meshv1.DestinationProfile
}

// New builds the server's informers; Start runs them.
func New(o Options) *Server {
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{ClusterDomain: o.ClusterDomain, TrustDomain: o.TrustDomain, log: log,
		factory: informers.NewSharedInformerFactory(o.Client, 0),
		dynamic: dynamicinformer.NewDynamicSharedInformerFactory(o.Dynamic, 0),
		hub:     hub{subs: map[string]map[chan struct{}]struct{}{}}, closing: make(chan struct{}),
		converted: map[string]*meshv1.DestinationProfile{}}
	s.svcs = s.factory.Core().V1().Services().Informer()
	s.slices = s.factory.Discovery().V1().EndpointSlices().Informer()
	s.pods = s.factory.Core().V1().Pods().Informer()
	s.nss = s.factory.Core().V1().Namespaces().Informer()
	s.profiles = s.dynamic.ForResource(ServiceProfiles()).Informer()

	// Keep only what resolving reads: 10,000 pods are most of the memory.
	_ = s.pods.SetTransform(trimPod)
	for _, inf := range []cache.SharedIndexInformer{s.svcs, s.slices, s.nss, s.profiles} {
		_ = inf.SetTransform(trimManagedFields)
	}
	_ = s.slices.AddIndexers(cache.Indexers{byService: sliceService, byPod: slicePods})
	_ = s.pods.AddIndexers(cache.Indexers{byIP: podIPs})
	_ = s.svcs.AddIndexers(cache.Indexers{byIP: serviceIPs})

	for inf, on := range map[cache.SharedIndexInformer]func(old, cur any){
		s.svcs: s.onService, s.slices: s.onSlice, s.pods: s.onPod, s.nss: s.onNamespace, s.profiles: s.onProfile} {
		reg, _ := inf.AddEventHandler(handler(on))
		s.synced = append(s.synced, inf.HasSynced, reg.HasSynced)
	}
	return s
}

// ServerOptions are the gRPC server's options for many long-lived, mostly idle
// streams (one per proxy and authority): proxies may keep idle connections alive
// with pings every 10s.
func ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
	}
}

// Start runs the informers until ctx ends and waits for their first sync, and for
// the handlers to have seen it (converted profiles are complete). Without
// the ServiceProfile CRD it waits until the CRD is installed.
func (s *Server) Start(ctx context.Context) bool {
	s.factory.Start(ctx.Done())
	s.dynamic.Start(ctx.Done())
	return cache.WaitForCacheSync(ctx.Done(), s.synced...)
}

// Close ends every open stream, and every stream opened after it at once, with
// codes.Unavailable: the process is stopping (its informers stop with it, so a stream
// left open would carry no more updates while the proxy trusts it). Proxies keep their
// last answer and reconnect, through the Service, to a replica that is not stopping.
// Call it before the gRPC server's GracefulStop, which waits for streams to end.
func (s *Server) Close() { s.closeOnce.Do(func() { close(s.closing) }) }

// errClosing is how a stream ends after Close.
func errClosing() error {
	return status.Error(codes.Unavailable, "the destination service is shutting down: reconnect")
}

// handler calls on with the old (nil on add) and the new (nil on delete) object.
func handler(on func(old, cur any)) cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { on(nil, o) },
		UpdateFunc: on,
		DeleteFunc: func(o any) {
			if d, ok := o.(cache.DeletedFinalStateUnknown); ok {
				o = d.Obj
			}
			on(o, nil)
		},
	}
}

// hub wakes the streams subscribed to a key. Keys: e/NS/SERVICE (endpoints),
// p/NS/FQN (profiles), ip/IP (pod IP authorities). A wake-up is a hint: the stream
// recomputes its answer from the listers and sends what changed.
type hub struct {
	mu   sync.Mutex
	subs map[string]map[chan struct{}]struct{}
}

func (h *hub) subscribe(key string) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	h.mu.Lock()
	if h.subs[key] == nil {
		h.subs[key] = map[chan struct{}]struct{}{}
	}
	h.subs[key][ch] = struct{}{}
	h.mu.Unlock()
	return ch, func() {
		h.mu.Lock()
		delete(h.subs[key], ch)
		if len(h.subs[key]) == 0 {
			delete(h.subs, key)
		}
		h.mu.Unlock()
	}
}

func (h *hub) notify(keys ...string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, k := range keys {
		for ch := range h.subs[k] {
			select {
			case ch <- struct{}{}:
			default: // already woken: it will read the latest state
			}
		}
	}
}

// notifyPrefix wakes every stream whose key starts with prefix (rare events only:
// a namespace's annotations changed).
func (h *hub) notifyPrefix(prefix string) {
	h.mu.Lock()
	var keys []string
	for k := range h.subs {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	h.mu.Unlock()
	h.notify(keys...)
}

func endpointsKey(ns, svc string) string { return "e/" + ns + "/" + svc }
func ipKey(ip string) string             { return "ip/" + ip }
func (s *Server) profileKey(ns, svc string) string {
	return "p/" + ns + "/" + s.fqn(ns, svc)
}
func (s *Server) fqn(ns, svc string) string { return svc + "." + ns + ".svc." + s.ClusterDomain }

func (s *Server) onService(old, cur any) {
	for _, o := range []any{old, cur} {
		if svc, ok := o.(*corev1.Service); ok {
			s.hub.notify(endpointsKey(svc.Namespace, svc.Name), s.profileKey(svc.Namespace, svc.Name))
		}
	}
}

func (s *Server) onSlice(old, cur any) {
	var keys []string
	for _, o := range []any{old, cur} {
		if sl, ok := o.(*discoveryv1.EndpointSlice); ok {
			keys = append(keys, endpointsKey(sl.Namespace, sl.Labels[discoveryv1.LabelServiceName]))
		}
	}
	if len(keys) == 2 && keys[0] == keys[1] {
		keys = keys[:1]
	}
	s.hub.notify(keys...)
}

// onNamespace wakes the namespace's endpoint and profile streams, and the pod IP
// streams, when its opaque ports change.
func (s *Server) onNamespace(old, cur any) {
	o, _ := old.(*corev1.Namespace)
	c, _ := cur.(*corev1.Namespace)
	if o == nil || c == nil || o.Annotations[opaqueAnnotation] == c.Annotations[opaqueAnnotation] {
		return
	}
	s.hub.notifyPrefix("e/" + c.Name + "/")
	s.hub.notifyPrefix("p/" + c.Name + "/")
	s.hub.notifyPrefix("ip/")
}

// Indexers.

func sliceService(obj any) ([]string, error) {
	sl, ok := obj.(*discoveryv1.EndpointSlice)
	if !ok || sl.Labels[discoveryv1.LabelServiceName] == "" {
		return nil, nil
	}
	return []string{sl.Namespace + "/" + sl.Labels[discoveryv1.LabelServiceName]}, nil
}

func slicePods(obj any) ([]string, error) {
	sl, ok := obj.(*discoveryv1.EndpointSlice)
	if !ok {
		return nil, nil
	}
	var out []string
	for _, e := range sl.Endpoints {
		if e.TargetRef != nil && e.TargetRef.Kind == "Pod" {
			out = append(out, sl.Namespace+"/"+e.TargetRef.Name)
		}
	}
	return out, nil
}

func serviceIPs(obj any) ([]string, error) {
	svc, ok := obj.(*corev1.Service)
	if !ok {
		return nil, nil
	}
	var out []string
	for _, ip := range append([]string{svc.Spec.ClusterIP}, svc.Spec.ClusterIPs...) {
		if net.ParseIP(ip) != nil {
			out = append(out, ip)
		}
	}
	return out, nil
}

func trimManagedFields(obj any) (any, error) {
	if m, err := meta.Accessor(obj); err == nil && m.GetManagedFields() != nil {
		m.SetManagedFields(nil)
	}
	return obj, nil
}

// target is a service authority.
type target struct {
	namespace, name string
	port            int32
}

// parse reads service.namespace.svc.CLUSTER-DOMAIN:port.
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

// parseIP reads ip:port; the IP in its canonical text form.
func parseIP(path string) (string, int32, bool) {
	host, portStr, err := net.SplitHostPort(path)
	if err != nil {
		return "", 0, false
	}
	ip := net.ParseIP(host)
	port, err := strconv.Atoi(portStr)
	if ip == nil || err != nil || port < 1 || port > 65535 {
		return "", 0, false
	}
	return ip.String(), int32(port), true
}

// serviceByIP is the Service whose cluster IP is ip, if any.
func (s *Server) serviceByIP(ip string) *corev1.Service {
	objs, _ := s.svcs.GetIndexer().ByIndex(byIP, ip)
	for _, o := range objs {
		if svc := o.(*corev1.Service); svc.Spec.Type != corev1.ServiceTypeExternalName {
			return svc
		}
	}
	return nil
}

// namespaceAnnotation is a namespace's annotation, "" if none.
func (s *Server) namespaceAnnotation(ns, key string) string {
	obj, ok, _ := s.nss.GetIndexer().GetByKey(ns)
	if !ok {
		return ""
	}
	return obj.(*corev1.Namespace).Annotations[key]
}
