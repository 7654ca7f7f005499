package manifest

import (
	"math/rand/v2"
	"slices"
	"testing"
)

func obj(apiVersion, kind, namespace, name string) Object {
	return Object{APIVersion: apiVersion, Kind: kind, Namespace: namespace, Name: name}
}

func TestRank(t *testing.T) {
	// Each group applies strictly before the next.
	groups := [][]string{
		{"Namespace"},
		{"CustomResourceDefinition"},
		{"ServiceAccount"},
		{"ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"},
		{"ConfigMap", "Secret"},
		{"Service"},
		{"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "ReplicationController", "Job", "CronJob", "Pod"},
		{"PodDisruptionBudget"},
		{"MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"},
		{"ServiceProfile", "Certificate", "Ingress", "HorizontalPodAutoscaler", "namespace", "Unknown"},
	}
	prev := -1
	for i, g := range groups {
		r := Rank(Object{Kind: g[0]})
		if r <= prev {
			t.Errorf("group %d (%s) has rank %d, not after %d", i, g[0], r, prev)
		}
		for _, k := range g[1:] {
			if rk := Rank(Object{Kind: k}); rk != r {
				t.Errorf("Rank(%s) = %d, want %d like %s", k, rk, r, g[0])
			}
		}
		prev = r
	}
}

func TestSort(t *testing.T) {
	// The apply order, written out.
	want := []Object{
		obj("v1", "Namespace", "", "mesh"),
		obj("apiextensions.k8s.io/v1", "CustomResourceDefinition", "", "a.policy.meshplane.io"),
		obj("apiextensions.k8s.io/v1", "CustomResourceDefinition", "", "b.policy.meshplane.io"),
		obj("v1", "ServiceAccount", "mesh", "identity"),
		obj("rbac.authorization.k8s.io/v1", "ClusterRole", "", "identity"),
		obj("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "", "identity"),
		obj("rbac.authorization.k8s.io/v1", "Role", "mesh", "identity"),
		obj("rbac.authorization.k8s.io/v1", "RoleBinding", "mesh", "identity"),
		obj("v1", "ConfigMap", "a", "config"),
		obj("v1", "ConfigMap", "mesh", "config"),
		obj("v1", "ConfigMap", "mesh", "other"),
		obj("v1", "Secret", "mesh", "issuer"),
		obj("v1", "Service", "mesh", "destination"),
		// workloads: by group ("" < apps < batch), then kind
		obj("v1", "Pod", "mesh", "debug"),
		obj("apps/v1", "DaemonSet", "mesh", "cni"),
		obj("apps/v1", "Deployment", "mesh", "destination"),
		obj("apps/v1", "Deployment", "mesh", "identity"),
		obj("apps/v1", "StatefulSet", "mesh", "store"),
		obj("batch/v1", "CronJob", "mesh", "rotate"),
		obj("batch/v1", "Job", "mesh", "init"),
		obj("policy/v1", "PodDisruptionBudget", "mesh", "destination"),
		obj("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration", "", "injector"),
		obj("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration", "", "validator"),
		// other kinds last, by group
		obj("cert-manager.io/v1", "Certificate", "mesh", "issuer"),
		obj("cert-manager.io/v1", "Issuer", "mesh", "anchor"),
		obj("networking.k8s.io/v1", "Ingress", "mesh", "web"),
		obj("policy.meshplane.io/v1", "ServiceProfile", "mesh", "a"),
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 50 {
		got := slices.Clone(want)
		if i == 0 {
			slices.Reverse(got)
		} else {
			rng.Shuffle(len(got), func(a, b int) { got[a], got[b] = got[b], got[a] })
		}
		Sort(got)
		for j := range want {
			if got[j].String() != want[j].String() || got[j].APIVersion != want[j].APIVersion {
				t.Fatalf("shuffle %d: position %d is %s (%s), want %s (%s)", i, j, got[j], got[j].APIVersion, want[j], want[j].APIVersion)
			}
		}
	}
}

func TestCompareTieBreaks(t *testing.T) {
	tests := []struct {
		name string
		a, b Object
	}{
		{"rank before group", obj("zzz/v1", "ServiceAccount", "", "a"), obj("", "ConfigMap", "", "a")},
		{"group before kind", obj("v1", "Zeta", "", "a"), obj("a.io/v1", "Alpha", "", "a")},
		{"kind before namespace", obj("x.io/v1", "A", "z", "a"), obj("x.io/v1", "B", "a", "a")},
		{"namespace before name", obj("v1", "ConfigMap", "a", "z"), obj("v1", "ConfigMap", "b", "a")},
		{"cluster-scoped first", obj("v1", "ConfigMap", "", "z"), obj("v1", "ConfigMap", "a", "a")},
		{"name", obj("v1", "ConfigMap", "n", "a"), obj("v1", "ConfigMap", "n", "b")},
		{"version does not count", obj("x.io/v2", "A", "", "a"), obj("x.io/v1", "A", "", "b")},
	}
	for _, tt := range tests {
		if c := Compare(tt.a, tt.b); c >= 0 {
			t.Errorf("%s: Compare(%s, %s) = %d, want < 0", tt.name, tt.a, tt.b, c)
		}
		if c := Compare(tt.b, tt.a); c <= 0 {
			t.Errorf("%s: Compare(%s, %s) = %d, want > 0", tt.name, tt.b, tt.a, c)
		}
	}
	if c := Compare(obj("x.io/v1", "A", "n", "a"), obj("x.io/v2", "A", "n", "a")); c != 0 {
		t.Errorf("same identity in two versions: Compare = %d, want 0", c)
	}
}

// Objects equal in apply order keep their relative order.
func TestSortStable(t *testing.T) {
	objs := []Object{
		{APIVersion: "v1", Kind: "ConfigMap", Name: "same", Source: "first"},
		{APIVersion: "v1", Kind: "Namespace", Name: "ns"},
		{APIVersion: "v1", Kind: "ConfigMap", Name: "same", Source: "second"},
		{APIVersion: "v1", Kind: "ConfigMap", Name: "same", Source: "third"},
	}
	Sort(objs)
	var got []string
	for _, o := range objs {
		got = append(got, o.Kind+":"+o.Source)
	}
	want := []string{"Namespace:", "ConfigMap:first", "ConfigMap:second", "ConfigMap:third"}
	if !slices.Equal(got, want) {
		t.Errorf("Sort = %q, want %q", got, want)
	}
	Sort(nil) // no panic
}
