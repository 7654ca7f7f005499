package install

import (
	"slices"

	"github.com/meshplane/mesh/render/applyset"
	"github.com/meshplane/mesh/render/manifest"
)

// The render is two ApplySets, one per chart, so that each half can be applied and
// pruned alone (`mesh install crds`, then `mesh install control-plane`): a prune
// deletes every member of a set that the render lacks, and one set over both halves
// would make a prune with the CRDs' render delete the control plane.
//
// The CRDs' parent lives in kube-system: the CRDs are applied before the control
// plane's namespace exists, and they are one per cluster whatever the control plane's
// namespace, as is their set. The control plane's parent lives in its namespace.
const (
	CRDsApplySetName         = "mesh-crds-applyset"
	CRDsApplySetNamespace    = "kube-system"
	ControlPlaneApplySetName = "mesh-control-plane-applyset"
)

// CRDsApplySet is the parent of the CRDs' ApplySet.
func CRDsApplySet() applyset.Parent {
	return applyset.ConfigMap(CRDsApplySetNamespace, CRDsApplySetName)
}

// ControlPlaneApplySet is the parent of the control plane's ApplySet in namespace.
func ControlPlaneApplySet(namespace string) applyset.Parent {
	return applyset.ConfigMap(namespace, ControlPlaneApplySetName)
}

// Every kind each chart can render, whatever the values: the parents' group-kinds list
// them all, so that a render that drops the last object of a kind (no more
// PodDisruptionBudgets without --ha) still has the kind listed and a prune finds what
// is left of it. TestApplySetKinds keeps the lists complete.
var (
	crdKinds          = []applyset.GroupKind{{Group: "apiextensions.k8s.io", Kind: "CustomResourceDefinition"}}
	controlPlaneKinds = []applyset.GroupKind{
		{Kind: "Namespace"}, {Kind: "ServiceAccount"}, {Kind: "ConfigMap"}, {Kind: "Secret"}, {Kind: "Service"},
		{Group: "rbac.authorization.k8s.io", Kind: "ClusterRole"}, {Group: "rbac.authorization.k8s.io", Kind: "ClusterRoleBinding"},
		{Group: "rbac.authorization.k8s.io", Kind: "Role"}, {Group: "rbac.authorization.k8s.io", Kind: "RoleBinding"},
		{Group: "apps", Kind: "Deployment"}, {Group: "policy", Kind: "PodDisruptionBudget"},
		{Group: "admissionregistration.k8s.io", Kind: "MutatingWebhookConfiguration"},
		{Group: "cert-manager.io", Kind: "Certificate"}, {Group: "cert-manager.io", Kind: "Issuer"},
	}
)

// podMonitorKind is listed in the control plane's group-kinds only when the render has
// a PodMonitor (prometheus.podMonitor.enabled): listing it always would change every
// install's parent, and make each prune look for a kind most clusters do not serve
// (the Prometheus Operator's CRD). A prune unions the live parent's kinds with the
// render's, so a render that drops the PodMonitor still finds it if it is pruned
// before the new parent is applied.
var podMonitorKind = applyset.GroupKind{Group: "monitoring.coreos.com", Kind: "PodMonitor"}

// controlPlaneKindsFor are controlPlaneKinds, plus the optional kinds objs hold.
func controlPlaneKindsFor(objs []manifest.Object) []applyset.GroupKind {
	for _, o := range objs {
		if applyset.Of(o) == podMonitorKind {
			return append(slices.Clone(controlPlaneKinds), podMonitorKind)
		}
	}
	return controlPlaneKinds
}

// withApplySet makes objs the members of parent's set, unless o says none.
func withApplySet(o Options, parent applyset.Parent, kinds []applyset.GroupKind, objs []manifest.Object) ([]manifest.Object, error) {
	if o.WithoutApplySet {
		return objs, nil
	}
	return applyset.Apply(objs, applyset.Set{Parent: parent, Version: o.Version, Kinds: kinds})
}
