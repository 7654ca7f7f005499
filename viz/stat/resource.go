package stat

import (
	"errors"
	"fmt"
	"strings"
)

// The kinds mesh stat reports on, canonical (Resource.Kind).
const (
	KindDeployment  = "deployment"
	KindStatefulSet = "statefulset"
	KindDaemonSet   = "daemonset"
	KindPod         = "pod"
	KindNamespace   = "namespace"
	KindService     = "service"
)

// kindAliases are kubectl's names for the kinds: singular, plural and short.
var kindAliases = map[string]string{
	"deploy": KindDeployment, "deployment": KindDeployment, "deployments": KindDeployment,
	"sts": KindStatefulSet, "statefulset": KindStatefulSet, "statefulsets": KindStatefulSet,
	"ds": KindDaemonSet, "daemonset": KindDaemonSet, "daemonsets": KindDaemonSet,
	"po": KindPod, "pod": KindPod, "pods": KindPod,
	"ns": KindNamespace, "namespace": KindNamespace, "namespaces": KindNamespace,
	"svc": KindService, "service": KindService, "services": KindService,
}

// Kinds are the canonical kinds, in the order help lists them.
func Kinds() []string {
	return []string{KindDeployment, KindStatefulSet, KindDaemonSet, KindPod, KindNamespace, KindService}
}

// ParseKind maps kubectl's names of a kind (deploy, deployment, deployments, ...;
// case-insensitive) to its canonical name.
func ParseKind(s string) (string, error) {
	if k, ok := kindAliases[strings.ToLower(s)]; ok {
		return k, nil
	}
	return "", fmt.Errorf("unknown kind %q: want one of %s (or kubectl's short names: deploy, sts, ds, po, ns, svc)", s, strings.Join(Kinds(), ", "))
}

// ParseResource reads KIND[/NAME] in namespace ns. A namespace resource has no
// namespace of its own.
func ParseResource(s, ns string) (Resource, error) {
	kind, name, _ := strings.Cut(s, "/")
	k, err := ParseKind(kind)
	if err != nil {
		return Resource{}, err
	}
	if strings.Contains(name, "/") {
		return Resource{}, fmt.Errorf("%q: want KIND or KIND/NAME", s)
	}
	r := Resource{Kind: k, Namespace: ns, Name: name}
	if k == KindNamespace {
		r.Namespace = ""
	}
	return r, nil
}

// ParseArgs reads mesh stat's arguments, KIND[/NAME] or KIND NAME, in namespace ns
// ("" for all namespaces).
func ParseArgs(args []string, ns string) (Resource, error) {
	switch len(args) {
	case 1:
		return ParseResource(args[0], ns)
	case 2:
		if strings.Contains(args[0], "/") {
			return Resource{}, errors.New("give KIND/NAME or KIND NAME, not both")
		}
		return ParseResource(args[0]+"/"+args[1], ns)
	default:
		return Resource{}, fmt.Errorf("want KIND[/NAME] [NAME], got %d arguments", len(args))
	}
}

// String is KIND/NAME, or KIND for every object of the kind.
func (r Resource) String() string {
	if r.Name == "" {
		return r.Kind
	}
	return r.Kind + "/" + r.Name
}

// Validate checks a Query: a known kind, --to and --from naming one object each and
// not both, and a window that is not negative.
func (q Query) Validate() error {
	if _, ok := kindAliases[q.Resource.Kind]; !ok || q.Resource.Kind != kindAliases[q.Resource.Kind] {
		return fmt.Errorf("unknown kind %q", q.Resource.Kind)
	}
	if q.To != nil && q.From != nil {
		return errors.New("--to and --from: give one")
	}
	for flag, r := range map[string]*Resource{"--to": q.To, "--from": q.From} {
		if r == nil {
			continue
		}
		if r.Name == "" {
			return fmt.Errorf("%s %s: name one object (KIND/NAME)", flag, r.Kind)
		}
		if r.Kind == KindService && flag == "--from" {
			return errors.New("--from svc: services send no traffic; name the workload that calls")
		}
	}
	if q.Window < 0 {
		return fmt.Errorf("window %s is negative", q.Window)
	}
	return nil
}
