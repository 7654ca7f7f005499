package uninstall

import (
	"bytes"
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/meshplane/mesh/lifecycle/prune"
	"github.com/meshplane/mesh/render/manifest"
)

// Phase is one step of an uninstall: its objects are deleted together, and the next
// phase starts once they are all gone.
type Phase int

// The phases, in deletion order. Webhook configurations go first, so that no pod
// creation waits on (or is mutated by) an injector that is going away; then what runs;
// then what only the running parts needed; the namespace after everything in it; CRDs
// (and their ApplySet parent) last, and only when asked for.
const (
	PhaseWebhooks       Phase = iota // Mutating/ValidatingWebhookConfigurations, APIServices
	PhaseWorkloads                   // Deployments, DaemonSets, StatefulSets, Jobs, ..., PodDisruptionBudgets
	PhaseServices                    // Services
	PhaseOther                       // every other kind: custom resources (cert-manager's Certificates, Issuers)
	PhaseConfig                      // ConfigMaps, Secrets
	PhaseRBAC                        // Roles, RoleBindings, ClusterRoles, ClusterRoleBindings
	PhaseServiceAccount              // ServiceAccounts
	PhaseInventory                   // the control plane's ApplySet parents
	PhaseNamespace                   // the control plane's Namespace
	PhaseCRDs                        // CustomResourceDefinitions (--crds)
	PhaseCRDInventory                // the CRDs' ApplySet parent (--crds)
)

var phaseNames = map[Phase]string{
	PhaseWebhooks: "webhook configurations", PhaseWorkloads: "workloads", PhaseServices: "services",
	PhaseOther: "other objects", PhaseConfig: "configuration", PhaseRBAC: "RBAC",
	PhaseServiceAccount: "service accounts", PhaseInventory: "ApplySet parents", PhaseNamespace: "namespaces",
	PhaseCRDs: "CRDs", PhaseCRDInventory: "the CRDs' ApplySet parent",
}

func (p Phase) String() string { return phaseNames[p] }

var kindPhase = map[string]Phase{
	"admissionregistration.k8s.io/MutatingWebhookConfiguration":   PhaseWebhooks,
	"admissionregistration.k8s.io/ValidatingWebhookConfiguration": PhaseWebhooks,
	"apiregistration.k8s.io/APIService":                           PhaseWebhooks,
	"apps/Deployment":                                             PhaseWorkloads,
	"apps/DaemonSet":                                              PhaseWorkloads,
	"apps/StatefulSet":                                            PhaseWorkloads,
	"apps/ReplicaSet":                                             PhaseWorkloads,
	"batch/Job":                                                   PhaseWorkloads,
	"batch/CronJob":                                               PhaseWorkloads,
	"/Pod":                                                        PhaseWorkloads,
	"/ReplicationController":                                      PhaseWorkloads,
	"policy/PodDisruptionBudget":                                  PhaseWorkloads,
	"autoscaling/HorizontalPodAutoscaler":                         PhaseWorkloads,
	"/Service":                                                    PhaseServices,
	"/ConfigMap":                                                  PhaseConfig,
	"/Secret":                                                     PhaseConfig,
	"rbac.authorization.k8s.io/Role":                              PhaseRBAC,
	"rbac.authorization.k8s.io/RoleBinding":                       PhaseRBAC,
	"rbac.authorization.k8s.io/ClusterRole":                       PhaseRBAC,
	"rbac.authorization.k8s.io/ClusterRoleBinding":                PhaseRBAC,
	"/ServiceAccount":                                             PhaseServiceAccount,
	"/Namespace":                                                  PhaseNamespace,
	"apiextensions.k8s.io/CustomResourceDefinition":               PhaseCRDs,
}

// Ref names an object to delete (or left behind) in the cluster.
type Ref struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace,omitempty"`
	Name       string `json:"name"`
	// Parent is set for an ApplySet parent; CRDSet for the parent of a set of CRDs only.
	Parent bool   `json:"-"`
	CRDSet bool   `json:"-"`
	UID    string `json:"-"`
}

func (r Ref) object() manifest.Object {
	return manifest.Object{APIVersion: r.APIVersion, Kind: r.Kind, Namespace: r.Namespace, Name: r.Name}
}

// String is Kind/namespace/name, as mesh check names objects.
func (r Ref) String() string { return r.object().String() }

// Group is the object's API group.
func (r Ref) Group() string { return r.object().Group() }

// Phase is the step of the uninstall that deletes the object.
func (r Ref) Phase() Phase {
	switch {
	case r.Parent && r.CRDSet:
		return PhaseCRDInventory
	case r.Parent:
		return PhaseInventory
	}
	if p, ok := kindPhase[r.Group()+"/"+r.Kind]; ok {
		return p
	}
	return PhaseOther
}

// Compare orders refs for deletion: by phase, then group, kind, namespace and name.
func Compare(a, b Ref) int {
	return cmp.Or(
		cmp.Compare(a.Phase(), b.Phase()),
		cmp.Compare(a.Group(), b.Group()),
		cmp.Compare(a.Kind, b.Kind),
		cmp.Compare(a.Namespace, b.Namespace),
		cmp.Compare(a.Name, b.Name),
	)
}

// Sort puts refs in deletion order.
func Sort(refs []Ref) { slices.SortStableFunc(refs, Compare) }

// Output formats of Write.
const (
	FormatYAML = "yaml"
	FormatJSON = "json"
	FormatName = "name"
)

// Write writes the refs, in their order, for `kubectl delete -f -`: a YAML stream of
// objects holding only their identity (yaml), a v1 List of them (json), or one
// Kind/namespace/name a line (name).
func Write(w io.Writer, format string, refs []Ref) error {
	objs := make([]manifest.Object, len(refs))
	for i, r := range refs {
		var b bytes.Buffer
		fmt.Fprintf(&b, "apiVersion: %s\nkind: %s\nmetadata:\n  name: %s\n", r.APIVersion, r.Kind, r.Name)
		if r.Namespace != "" {
			fmt.Fprintf(&b, "  namespace: %s\n", r.Namespace)
		}
		objs[i] = manifest.Object{APIVersion: r.APIVersion, Kind: r.Kind, Namespace: r.Namespace, Name: r.Name, YAML: b.Bytes(), Source: r.String()}
	}
	switch format {
	case FormatYAML:
		return manifest.WriteYAML(w, objs)
	case FormatJSON:
		return manifest.WriteJSONList(w, objs)
	case FormatName:
		var b strings.Builder
		for _, r := range refs {
			b.WriteString(r.String() + "\n")
		}
		_, err := io.WriteString(w, b.String())
		return err
	}
	return fmt.Errorf("unknown format %q: want %s, %s or %s", format, FormatYAML, FormatJSON, FormatName)
}

// Order is the deletion order of a whole render, CRDs included: what an uninstall with
// --crds deletes of a cluster that holds exactly the render. The ApplySet parents are
// the objects carrying applyset.kubernetes.io/id.
func Order(objs []manifest.Object) ([]Ref, error) {
	sets, err := prune.Sets(objs)
	if err != nil {
		return nil, err
	}
	parents := map[k]bool{}
	for _, s := range sets {
		parents[k{s.Parent.Group, s.Parent.Kind, s.Parent.Namespace, s.Parent.Name}] = isCRDSet(s)
	}
	refs := make([]Ref, len(objs))
	for i, o := range objs {
		r := Ref{APIVersion: o.APIVersion, Kind: o.Kind, Namespace: o.Namespace, Name: o.Name}
		r.CRDSet, r.Parent = parents[keyOf(r)]
		refs[i] = r
	}
	Sort(refs)
	return refs, nil
}
