package manifest

import (
	"cmp"
	"slices"
)

// Apply order: Namespace, CRDs, ServiceAccounts, RBAC, ConfigMaps and Secrets, Services,
// workloads, PodDisruptionBudgets, webhooks, then every other kind (custom resources).
var kindRank = map[string]int{
	"Namespace":                      0,
	"CustomResourceDefinition":       1,
	"ServiceAccount":                 2,
	"ClusterRole":                    3,
	"ClusterRoleBinding":             3,
	"Role":                           3,
	"RoleBinding":                    3,
	"ConfigMap":                      4,
	"Secret":                         4,
	"Service":                        5,
	"Deployment":                     6,
	"StatefulSet":                    6,
	"DaemonSet":                      6,
	"ReplicaSet":                     6,
	"ReplicationController":          6,
	"Job":                            6,
	"CronJob":                        6,
	"Pod":                            6,
	"PodDisruptionBudget":            7,
	"MutatingWebhookConfiguration":   8,
	"ValidatingWebhookConfiguration": 8,
}

const otherRank = 9

// Rank is the object's place in the apply order; lower applies first.
func Rank(o Object) int {
	if r, ok := kindRank[o.Kind]; ok {
		return r
	}
	return otherRank
}

// Compare orders objects for apply: by rank, then group, kind, namespace and name.
func Compare(a, b Object) int {
	return cmp.Or(
		cmp.Compare(Rank(a), Rank(b)),
		cmp.Compare(a.Group(), b.Group()),
		cmp.Compare(a.Kind, b.Kind),
		cmp.Compare(a.Namespace, b.Namespace),
		cmp.Compare(a.Name, b.Name),
	)
}

// Sort puts objects in apply order. Equal objects keep their relative order.
func Sort(objs []Object) {
	slices.SortStableFunc(objs, Compare)
}
