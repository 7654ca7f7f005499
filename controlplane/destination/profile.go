package destination

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	meshv1 "github.com/meshplane/mesh/controlplane/api/mesh/v1"
)

// DefaultRetryBudget is the budget of a profile that sets none (Linkerd's).
func DefaultRetryBudget() *meshv1.RetryBudget {
	return &meshv1.RetryBudget{RetryRatio: 0.2, MinRetriesPerSecond: 10, Ttl: durationpb.New(10 * time.Second)}
}

// GetProfile streams the profile of service.namespace.svc.CLUSTER-DOMAIN:port (or of
// a Service's cluster IP): the routes and retry budget of the ServiceProfile named
// after the service's fully qualified name in its namespace, and whether the port is
// opaque (the Service's config.meshplane.io/opaque-ports, else its namespace's). It
// sends again whenever that answer changes. Without a ServiceProfile the profile is
// empty: no name, no routes, the default retry budget. A pod IP authority gets an
// empty profile, opaque if the pod's annotation lists the port; any other authority
// an empty profile. The stream stays open until the proxy closes it.
func (s *Server) GetProfile(req *meshv1.GetDestination, stream meshv1.Destination_GetProfileServer) error {
	var key string
	var compute func() *meshv1.DestinationProfile
	if t, err := s.parse(req.GetPath()); err == nil {
		key, compute = s.profileKey(t.namespace, t.name), func() *meshv1.DestinationProfile { return s.serviceProfile(t) }
	} else if ip, port, ok := parseIP(req.GetPath()); ok {
		if svc := s.serviceByIP(ip); svc != nil {
			t := target{namespace: svc.Namespace, name: svc.Name, port: port}
			key, compute = s.profileKey(t.namespace, t.name), func() *meshv1.DestinationProfile { return s.serviceProfile(t) }
		} else {
			key, compute = ipKey(ip), func() *meshv1.DestinationProfile {
				p := &meshv1.DestinationProfile{RetryBudget: DefaultRetryBudget()}
				if pod := s.podByIP(ip); pod != nil {
					p.OpaqueProtocol = s.podOpaque(pod, port)
				}
				return p
			}
		}
	} else {
		if err := stream.Send(&meshv1.DestinationProfile{RetryBudget: DefaultRetryBudget()}); err != nil {
			return err
		}
		select {
		case <-stream.Context().Done():
			return nil
		case <-s.closing:
			return errClosing()
		}
	}
	wake, cancel := s.hub.subscribe(key)
	defer cancel()
	var sent *meshv1.DestinationProfile
	for {
		p := compute()
		if sent == nil || !proto.Equal(sent, p) {
			if err := stream.Send(p); err != nil {
				return err
			}
			sent = p
		}
		select {
		case <-stream.Context().Done():
			return nil
		case <-s.closing:
			return errClosing()
		case <-wake:
		}
	}
}

// serviceProfile is the current profile of a service port.
func (s *Server) serviceProfile(t target) *meshv1.DestinationProfile {
	fqn := s.fqn(t.namespace, t.name)
	s.profMu.RLock()
	conv := s.converted[t.namespace+"/"+fqn]
	s.profMu.RUnlock()
	p := &meshv1.DestinationProfile{RetryBudget: DefaultRetryBudget()}
	if conv != nil {
		p = proto.CloneOf(conv)
	}
	if obj, ok, _ := s.svcs.GetIndexer().GetByKey(t.namespace + "/" + t.name); ok {
		if v, set := obj.(*corev1.Service).Annotations[opaqueAnnotation]; set {
			p.OpaqueProtocol = opaque(v, t.port)
			return p
		}
	}
	p.OpaqueProtocol = opaque(s.namespaceAnnotation(t.namespace, opaqueAnnotation), t.port)
	return p
}

// onProfile converts a changed ServiceProfile once and wakes its streams.
func (s *Server) onProfile(old, cur any) {
	var key string
	if u, ok := cur.(*unstructured.Unstructured); ok {
		p := convertProfile(u, func(msg string, args ...any) {
			s.log.Warn(msg, append([]any{"serviceprofile", u.GetNamespace() + "/" + u.GetName()}, args...)...)
		})
		key = u.GetNamespace() + "/" + u.GetName()
		s.profMu.Lock()
		s.converted[key] = p
		s.profMu.Unlock()
	} else if u, ok := old.(*unstructured.Unstructured); ok {
		key = u.GetNamespace() + "/" + u.GetName()
		s.profMu.Lock()
		delete(s.converted, key)
		s.profMu.Unlock()
	} else {
		return
	}
	s.hub.notify("p/" + key)
}

// profileSpec is what GetProfile reads of a ServiceProfile's spec.
type profileSpec struct {
	Routes      []json.RawMessage `json:"routes"`
	RetryBudget *struct {
		RetryRatio          float64 `json:"retryRatio"`
		MinRetriesPerSecond uint32  `json:"minRetriesPerSecond"`
		TTL                 string  `json:"ttl"`
	} `json:"retryBudget"`
}

type routeSpec struct {
	Name      string `json:"name"`
	Condition struct {
		Method    string `json:"method"`
		PathRegex string `json:"pathRegex"`
	} `json:"condition"`
	IsRetryable bool   `json:"isRetryable"`
	Timeout     string `json:"timeout"`
}

// convertProfile turns a ServiceProfile into a DestinationProfile (without the opaque
// flag). A route that cannot be used (bad regex, bad timeout, malformed) is skipped
// and reported to warn; a bad retry budget is replaced by the default.
func convertProfile(u *unstructured.Unstructured, warn func(msg string, args ...any)) *meshv1.DestinationProfile {
	p := &meshv1.DestinationProfile{FullyQualifiedName: u.GetName(), RetryBudget: DefaultRetryBudget()}
	spec, _, _ := unstructured.NestedFieldNoCopy(u.Object, "spec")
	raw, err := json.Marshal(spec)
	var ps profileSpec
	if err == nil {
		err = json.Unmarshal(raw, &ps)
	}
	if err != nil {
		warn("malformed spec: using no routes and the default retry budget", "err", err)
		return p
	}
	for i, r := range ps.Routes {
		route, err := convertRoute(r)
		if err != nil {
			warn("skipping route", "route", i, "err", err)
			continue
		}
		p.Routes = append(p.Routes, route)
	}
	if b := ps.RetryBudget; b != nil {
		ttl, err := time.ParseDuration(b.TTL)
		switch {
		case err != nil:
			warn("bad retryBudget.ttl: using the default retry budget", "err", err)
		case ttl <= 0 || b.RetryRatio < 0:
			warn("retryBudget: negative ratio or non-positive ttl: using the default retry budget")
		default:
			p.RetryBudget = &meshv1.RetryBudget{RetryRatio: float32(b.RetryRatio), MinRetriesPerSecond: b.MinRetriesPerSecond, Ttl: durationpb.New(ttl)}
		}
	}
	return p
}

func convertRoute(raw json.RawMessage) (*meshv1.Route, error) {
	var r routeSpec
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("malformed: %w", err)
	}
	if r.Name == "" {
		return nil, fmt.Errorf("no name")
	}
	if _, err := regexp.Compile("^(?:" + r.Condition.PathRegex + ")$"); err != nil {
		return nil, fmt.Errorf("route %s: pathRegex: %w", r.Name, err)
	}
	route := &meshv1.Route{Name: r.Name, IsRetryable: r.IsRetryable,
		Condition: &meshv1.RequestMatch{Method: strings.ToUpper(r.Condition.Method), PathRegex: r.Condition.PathRegex}}
	if r.Timeout != "" {
		d, err := time.ParseDuration(r.Timeout)
		if err != nil {
			return nil, fmt.Errorf("route %s: timeout: %w", r.Name, err)
		}
		if d < 0 {
			return nil, fmt.Errorf("route %s: negative timeout %s", r.Name, r.Timeout)
		}
		route.Timeout = durationpb.New(d)
	}
	return route, nil
}
