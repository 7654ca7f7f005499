package schema

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// The API server's default --service-node-port-range (the project's test cluster
// keeps it): a nodePort outside it is refused when the port is allocated.
const (
	minNodePort = 30000
	maxNodePort = 32767
)

// validateService: the type and its fields (a headless Service is not a NodePort or
// LoadBalancer one, an ExternalName one has a valid externalName and no cluster IP,
// nodePorts only where they are allocated and in the node-port range), ports (named
// when several, unique by name, by port and protocol and by nodePort and protocol),
// the selector's labels, session affinity and traffic policies.
func validateService(s *corev1.Service) field.ErrorList {
	spec := field.NewPath("spec")
	var errs field.ErrorList
	typ := s.Spec.Type
	if typ == "" {
		typ = corev1.ServiceTypeClusterIP // the default
	} else {
		errs = append(errs, enum(spec.Child("type"), s.Spec.Type, corev1.ServiceTypeClusterIP, corev1.ServiceTypeNodePort, corev1.ServiceTypeLoadBalancer, corev1.ServiceTypeExternalName)...)
	}
	headless := s.Spec.ClusterIP == corev1.ClusterIPNone
	if len(s.Spec.Ports) == 0 && !headless && typ != corev1.ServiceTypeExternalName {
		errs = append(errs, field.Required(spec.Child("ports"), ""))
	}
	switch typ {
	case corev1.ServiceTypeNodePort, corev1.ServiceTypeLoadBalancer:
		if headless {
			errs = append(errs, field.Invalid(spec.Child("clusterIPs").Index(0), s.Spec.ClusterIP, fmt.Sprintf("may not be set to 'None' for %s services", typ)))
		}
	case corev1.ServiceTypeExternalName:
		if s.Spec.ClusterIP != "" || len(s.Spec.ClusterIPs) > 0 {
			errs = append(errs, field.Forbidden(spec.Child("clusterIPs"), "may not be set for ExternalName services"))
		}
		if cname := strings.TrimSuffix(s.Spec.ExternalName, "."); cname == "" {
			errs = append(errs, field.Required(spec.Child("externalName"), ""))
		} else {
			for _, msg := range validation.IsDNS1123Subdomain(cname) {
				errs = append(errs, field.Invalid(spec.Child("externalName"), cname, msg))
			}
		}
	}
	errs = append(errs, validateServicePorts(s.Spec.Ports, typ, spec.Child("ports"))...)
	errs = append(errs, metav1validation.ValidateLabels(s.Spec.Selector, spec.Child("selector"))...)

	if a := s.Spec.SessionAffinity; a != "" {
		errs = append(errs, enum(spec.Child("sessionAffinity"), a, corev1.ServiceAffinityClientIP, corev1.ServiceAffinityNone)...)
		if a == corev1.ServiceAffinityNone && s.Spec.SessionAffinityConfig != nil {
			errs = append(errs, field.Forbidden(spec.Child("sessionAffinityConfig"), "must not be set when session affinity is None"))
		}
	}
	external := typ == corev1.ServiceTypeNodePort || typ == corev1.ServiceTypeLoadBalancer || len(s.Spec.ExternalIPs) > 0
	if p := s.Spec.ExternalTrafficPolicy; p != "" {
		if !external {
			errs = append(errs, field.Invalid(spec.Child("externalTrafficPolicy"), p, "may only be set for externally-accessible services"))
		} else {
			errs = append(errs, enum(spec.Child("externalTrafficPolicy"), p, corev1.ServiceExternalTrafficPolicyCluster, corev1.ServiceExternalTrafficPolicyLocal)...)
		}
	}
	if p := s.Spec.InternalTrafficPolicy; p != nil {
		errs = append(errs, enum(spec.Child("internalTrafficPolicy"), *p, corev1.ServiceInternalTrafficPolicyCluster, corev1.ServiceInternalTrafficPolicyLocal)...)
	}
	if typ != corev1.ServiceTypeLoadBalancer {
		if len(s.Spec.LoadBalancerSourceRanges) > 0 {
			errs = append(errs, field.Forbidden(spec.Child("loadBalancerSourceRanges"), "may only be used when `type` is 'LoadBalancer'"))
		}
		if s.Spec.AllocateLoadBalancerNodePorts != nil {
			errs = append(errs, field.Forbidden(spec.Child("allocateLoadBalancerNodePorts"), "may only be used when `type` is 'LoadBalancer'"))
		}
	}
	return errs
}

func validateServicePorts(ports []corev1.ServicePort, typ corev1.ServiceType, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	type portKey struct {
		port  int32
		proto corev1.Protocol
	}
	names := map[string]bool{}
	seen, seenNode := map[portKey]bool{}, map[portKey]bool{}
	for i, sp := range ports {
		ip := p.Index(i)
		switch {
		case sp.Name == "" && len(ports) > 1:
			errs = append(errs, field.Required(ip.Child("name"), ""))
		case sp.Name != "":
			errs = append(errs, dns1123Label(ip.Child("name"), sp.Name)...)
			if names[sp.Name] {
				errs = append(errs, field.Duplicate(ip.Child("name"), sp.Name))
			}
			names[sp.Name] = true
		}
		errs = append(errs, portNum(ip.Child("port"), int(sp.Port))...)
		proto := sp.Protocol
		if proto == "" {
			proto = corev1.ProtocolTCP
		} else {
			errs = append(errs, enum(ip.Child("protocol"), sp.Protocol, corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP)...)
		}
		if k := (portKey{sp.Port, proto}); seen[k] {
			errs = append(errs, field.Duplicate(ip, fmt.Sprintf("%d/%s", sp.Port, proto)))
		} else {
			seen[k] = true
		}
		switch {
		case sp.TargetPort.StrVal != "":
			for _, msg := range validation.IsValidPortName(sp.TargetPort.StrVal) {
				errs = append(errs, field.Invalid(ip.Child("targetPort"), sp.TargetPort.StrVal, msg))
			}
		case sp.TargetPort.IntVal != 0:
			errs = append(errs, portNum(ip.Child("targetPort"), int(sp.TargetPort.IntVal))...)
		}
		if sp.AppProtocol != nil {
			for _, msg := range validation.IsQualifiedName(*sp.AppProtocol) {
				errs = append(errs, field.Invalid(ip.Child("appProtocol"), *sp.AppProtocol, msg))
			}
		}
		errs = append(errs, validateNodePort(sp.NodePort, typ, ip.Child("nodePort"))...)
		if sp.NodePort != 0 {
			if k := (portKey{sp.NodePort, proto}); seenNode[k] {
				errs = append(errs, field.Duplicate(ip.Child("nodePort"), sp.NodePort))
			} else {
				seenNode[k] = true
			}
		}
	}
	return errs
}

// validateNodePort: a nodePort is for NodePort and LoadBalancer Services, in the
// node-port range.
func validateNodePort(port int32, typ corev1.ServiceType, p *field.Path) field.ErrorList {
	switch {
	case port == 0:
		return nil
	case typ == corev1.ServiceTypeClusterIP:
		return field.ErrorList{field.Forbidden(p, "may not be used when `type` is 'ClusterIP'")}
	case typ != corev1.ServiceTypeNodePort && typ != corev1.ServiceTypeLoadBalancer:
		return nil
	case port < minNodePort || port > maxNodePort:
		return field.ErrorList{field.Invalid(p, port, fmt.Sprintf("provided port is not in the valid range. The range of valid ports is %d-%d", minNodePort, maxNodePort))}
	}
	return nil
}
