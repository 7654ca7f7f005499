// Package resolve is the one resolution of viz/: from a resource (KIND, or KIND/NAME,
// in a namespace or all of them) to the Kubernetes objects it names and their live
// pods, and from a pod to its proxy (Meshed, ProxyAdminPort, Tappable). mesh stat,
// edges and routes (viz/stat) and mesh tap and top (viz/tap) all resolve through it,
// so a kind means the same pods everywhere.
//
// The kinds are kubectl's: deployment, statefulset, daemonset, replicaset, job,
// pod, namespace and service, spelled singular, plural or short. Each command
// accepts its own subset (mesh stat: no replicaset or job).
package resolve

import "strings"

// The kinds, canonical (Resource.Kind).
const (
	KindDeployment  = "deployment"
	KindStatefulSet = "statefulset"
	KindDaemonSet   = "daemonset"
	KindReplicaSet  = "replicaset"
	KindJob         = "job"
	KindPod         = "pod"
	KindNamespace   = "namespace"
	KindService     = "service"
)

// Resource names one Kubernetes object or all of a kind, e.g. deploy/web in shop.
type Resource struct {
	Kind      string // canonical singular: deployment, statefulset, daemonset, replicaset, job, pod, namespace, service
	Namespace string // "" only for Kind namespace, or for every namespace (--all-namespaces)
	Name      string // "" = every object of Kind
}

// String is KIND/NAME, or KIND for every object of the kind.
func (r Resource) String() string {
	if r.Name == "" {
		return r.Kind
	}
	return r.Kind + "/" + r.Name
}

// Canonical maps kubectl's names of a kind (deploy, deployment, deployments, ...;
// case-insensitive) to its canonical name; ok is false for an unknown kind.
func Canonical(s string) (kind string, ok bool) {
	switch strings.ToLower(s) {
	case "deploy", "deployment", "deployments":
		return KindDeployment, true
	case "sts", "statefulset", "statefulsets":
		return KindStatefulSet, true
	case "ds", "daemonset", "daemonsets":
		return KindDaemonSet, true
	case "rs", "replicaset", "replicasets":
		return KindReplicaSet, true
	case "job", "jobs":
		return KindJob, true
	case "po", "pod", "pods":
		return KindPod, true
	case "ns", "namespace", "namespaces":
		return KindNamespace, true
	case "svc", "service", "services":
		return KindService, true
	}
	return "", false
}
