package stat

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	vresolve "github.com/meshplane/mesh/viz/resolve"
)

// The kinds mesh stat reports on, canonical (Resource.Kind): viz/resolve's, less
// replicaset and job.
const (
	KindDeployment  = vresolve.KindDeployment
	KindStatefulSet = vresolve.KindStatefulSet
	KindDaemonSet   = vresolve.KindDaemonSet
	KindPod         = vresolve.KindPod
	KindNamespace   = vresolve.KindNamespace
	KindService     = vresolve.KindService
)

// Kinds are the canonical kinds, in the order help lists them.
func Kinds() []string {
	return []string{KindDeployment, KindStatefulSet, KindDaemonSet, KindPod, KindNamespace, KindService}
}

// ParseKind maps kubectl's names of a kind (deploy, deployment, deployments, ...;
// case-insensitive) to its canonical name.
func ParseKind(s string) (string, error) {
	if k, ok := vresolve.Canonical(s); ok && isKind(k) {
		return k, nil
	}
	return "", fmt.Errorf("unknown kind %q: want one of %s (or kubectl's short names: deploy, sts, ds, po, ns, svc)", s, strings.Join(Kinds(), ", "))
}

// isKind: k is one of Kinds, canonical.
func isKind(k string) bool { return slices.Contains(Kinds(), k) }

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

// Validate checks a Query: a known kind, --to and --from naming one object each and
// not both, and a window that is not negative.
func (q Query) Validate() error {
	if !isKind(q.Resource.Kind) {
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
