// Package prune is `mesh prune`: it deletes the objects of a render's ApplySets
// (KEP-3659) that are in the cluster but no longer in the render, and only those.
//
// A render's ApplySets are found in the render itself (render/applyset): each parent
// ConfigMap names its set's ID, group-kinds and namespaces. For each set, prune lists
// the objects labelled applyset.kubernetes.io/part-of=ID in every group-kind of the
// set, the live parent's (the set as last applied) and the render's together, in
// every namespace of either and at the cluster scope, and deletes those the render
// lacks, in the reverse of the apply order (webhook configurations first, CRDs and
// Namespaces last). An object without the label (created at runtime, by a controller or
// a user) is never listed, so never deleted. Afterwards the render's parent is applied
// (server-side, field manager "mesh"), so the cluster's parent lists the new set.
//
// Candidates lists what a prune would delete without deleting anything: `mesh diff`
// reports them.
package prune

import (
	"context"
	"errors"
	"fmt"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/yaml"

	"github.com/meshplane/mesh/render/applyset"
	"github.com/meshplane/mesh/render/manifest"
)

// FieldManager is the field manager the parent is applied with.
const FieldManager = "mesh"

// Cluster is what a prune needs of the cluster.
type Cluster struct {
	Dynamic dynamic.Interface
	Mapper  meta.RESTMapper
}

// NewCluster builds a Cluster whose kinds come from discovery (cached for the run).
func NewCluster(dyn dynamic.Interface, disc discovery.DiscoveryInterface) *Cluster {
	return &Cluster{Dynamic: dyn, Mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(disc))}
}

// Ref names an object in the cluster.
type Ref struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace,omitempty"`
	Name       string `json:"name"`
	// ApplySet is the ID of the set the object is part of.
	ApplySet string    `json:"applySet"`
	UID      types.UID `json:"-"`
}

func (r Ref) object() manifest.Object {
	return manifest.Object{APIVersion: r.APIVersion, Kind: r.Kind, Namespace: r.Namespace, Name: r.Name}
}

// String is Kind/namespace/name, as mesh check names objects.
func (r Ref) String() string { return r.object().String() }

// Kept is an object of a set that the render lacks but prune does not delete.
type Kept struct {
	Ref
	Reason string `json:"reason"`
}

// Plan is what a prune deletes: the candidates in deletion order, the objects it keeps
// anyway, and notes for the user (never data).
type Plan struct {
	Sets       []*Set   `json:"-"`
	Candidates []Ref    `json:"candidates"`
	Kept       []Kept   `json:"kept,omitempty"`
	Notes      []string `json:"-"`
}

// Candidates lists the objects of the sets of objs that the cluster holds and objs
// does not, in deletion order: what a prune deletes. It changes nothing. A parent of
// another tool or with a wrong ID, in objs or in the cluster, is an error.
func Candidates(ctx context.Context, c *Cluster, objs []manifest.Object) (*Plan, error) {
	sets, err := Sets(objs)
	if err != nil {
		return nil, err
	}
	if len(sets) == 0 {
		return nil, ErrNoApplySet
	}
	plan := &Plan{Sets: sets}
	for _, s := range sets {
		if err := plan.add(ctx, c, s); err != nil {
			return nil, err
		}
	}
	slices.SortStableFunc(plan.Candidates, func(a, b Ref) int { return manifest.Compare(b.object(), a.object()) })
	return plan, nil
}

// ErrNoApplySet is the error for input without an ApplySet parent.
var ErrNoApplySet = errors.New("the input holds no ApplySet parent (a ConfigMap labelled " + applyset.IDLabel + "): render it with mesh install")

type key struct {
	group, kind, namespace, name string
}

func (p *Plan) add(ctx context.Context, c *Cluster, s *Set) error {
	gks := slices.Clone(s.GroupKinds)
	nss := slices.Clone(s.Namespaces)
	live, err := c.Dynamic.Resource(schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}).Namespace(s.Parent.Namespace).Get(ctx, s.Parent.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		p.Notes = append(p.Notes, fmt.Sprintf("ApplySet parent %s is not in the cluster: looking for members of the render's kinds only", s.Parent))
	case err != nil:
		return fmt.Errorf("reading ApplySet parent %s: %w", s.Parent, err)
	default:
		if id := live.GetLabels()[applyset.IDLabel]; id != s.ID {
			return fmt.Errorf("ApplySet parent %s in the cluster: label %s is %q, want %s", s.Parent, applyset.IDLabel, id, s.ID)
		}
		ann := live.GetAnnotations()
		if err := checkTooling(ann[applyset.ToolingAnnotation]); err != nil {
			return fmt.Errorf("ApplySet parent %s in the cluster: %w", s.Parent, err)
		}
		gks = append(gks, applyset.ParseGroupKinds(ann[applyset.GroupKindsAnnotation])...)
		nss = append(nss, namespaces(s.Parent.Namespace, ann[applyset.AdditionalNamespacesAnnotation])...)
	}
	slices.SortFunc(gks, func(a, b applyset.GroupKind) int { return compareStrings(a.String(), b.String()) })
	gks = slices.Compact(gks)
	slices.Sort(nss)
	nss = slices.Compact(nss)

	keep := map[key]bool{}
	for _, o := range s.Members {
		k, err := memberKey(c.Mapper, o)
		if err != nil {
			return err
		}
		keep[k] = true
	}
	selector := metav1.FormatLabelSelector(&metav1.LabelSelector{MatchLabels: map[string]string{applyset.PartOfLabel: s.ID}})
	for _, gk := range gks {
		m, err := c.Mapper.RESTMapping(schema.GroupKind{Group: gk.Group, Kind: gk.Kind})
		if meta.IsNoMatchError(err) {
			continue // not served (cert-manager not installed, a CRD deleted): no objects of it
		}
		if err != nil {
			return fmt.Errorf("ApplySet %s: kind %s: %w", s.Parent, gk, err)
		}
		scopes := []string{""}
		if m.Scope.Name() == meta.RESTScopeNameNamespace {
			scopes = nss
		}
		for _, ns := range scopes {
			list, err := c.Dynamic.Resource(m.Resource).Namespace(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
			if err != nil {
				return fmt.Errorf("ApplySet %s: listing %s%s: %w", s.Parent, m.Resource.GroupResource(), inNamespace(ns), err)
			}
			for _, item := range list.Items {
				if keep[key{gk.Group, gk.Kind, item.GetNamespace(), item.GetName()}] {
					continue
				}
				ref := Ref{APIVersion: item.GetAPIVersion(), Kind: item.GetKind(), Namespace: item.GetNamespace(), Name: item.GetName(), ApplySet: s.ID, UID: item.GetUID()}
				if reason := keepReason(item, s); reason != "" {
					p.Kept = append(p.Kept, Kept{Ref: ref, Reason: reason})
					continue
				}
				p.Candidates = append(p.Candidates, ref)
			}
		}
	}
	return nil
}

// keepReason says why an object of the set that the render lacks is not deleted.
func keepReason(item unstructured.Unstructured, s *Set) string {
	if item.GetKind() == "Namespace" && item.GetAPIVersion() == "v1" && item.GetName() == s.Parent.Namespace {
		return "it holds the ApplySet parent " + s.Parent.String() + " (and everything else of the set): delete it with mesh uninstall"
	}
	if len(item.GetOwnerReferences()) > 0 {
		return "it has owner references: its owner decides its lifetime"
	}
	if item.GetDeletionTimestamp() != nil {
		return "it is being deleted"
	}
	return ""
}

// memberKey is how an object of the render is matched with the cluster's: the
// namespace of a cluster-scoped kind does not count, and a namespaced object must name
// its namespace (or prune would not know which object of the cluster it is).
func memberKey(mapper meta.RESTMapper, o manifest.Object) (key, error) {
	k := key{o.Group(), o.Kind, o.Namespace, o.Name}
	m, err := mapper.RESTMapping(schema.GroupKind{Group: o.Group(), Kind: o.Kind})
	switch {
	case meta.IsNoMatchError(err):
		return k, nil // not served: nothing of it is listed
	case err != nil:
		return k, fmt.Errorf("%s: %s: %w", o.Source, o, err)
	case m.Scope.Name() == meta.RESTScopeNameRoot:
		k.namespace = ""
	case o.Namespace == "":
		return k, fmt.Errorf("%s: %s is namespaced but names no namespace: prune compares objects by namespace", o.Source, o)
	}
	return k, nil
}

func inNamespace(ns string) string {
	if ns == "" {
		return ""
	}
	return " in namespace " + ns
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// DryRun is how a prune runs: for real, only listing (client), or with the API
// server's dry run of each deletion (server).
type DryRun string

// Dry-run modes, kubectl's.
const (
	DryRunNone   DryRun = "none"
	DryRunClient DryRun = "client"
	DryRunServer DryRun = "server"
)

// Options of a prune.
type Options struct {
	DryRun DryRun
	// Progress, when set, is told of each deletion as it is done.
	Progress func(Ref)
}

// Result is a prune: the plan, and what it deleted (nil on a client dry run).
type Result struct {
	*Plan
	Deleted []Ref `json:"deleted"`
}

// Run deletes the candidates in deletion order, each only if it is still the object
// listed (its UID), then applies the render's parents. An object already gone counts
// as deleted. The first failure stops the prune and leaves the parents as they were,
// so the next prune still looks for every kind of the old set.
func Run(ctx context.Context, c *Cluster, objs []manifest.Object, o Options) (*Result, error) {
	if o.DryRun == "" {
		o.DryRun = DryRunNone
	}
	plan, err := Candidates(ctx, c, objs)
	if err != nil {
		return nil, err
	}
	res := &Result{Plan: plan}
	if o.DryRun == DryRunClient {
		return res, nil
	}
	res.Deleted = []Ref{}
	var dryRun []string
	if o.DryRun == DryRunServer {
		dryRun = []string{metav1.DryRunAll}
	}
	background := metav1.DeletePropagationBackground
	for _, r := range plan.Candidates {
		gv, err := schema.ParseGroupVersion(r.APIVersion)
		if err != nil {
			return res, fmt.Errorf("%s: %w", r, err)
		}
		m, err := c.Mapper.RESTMapping(gv.WithKind(r.Kind).GroupKind(), gv.Version)
		if err != nil {
			return res, fmt.Errorf("deleting %s: %w", r, err)
		}
		uid := r.UID
		err = c.Dynamic.Resource(m.Resource).Namespace(r.Namespace).Delete(ctx, r.Name, metav1.DeleteOptions{
			DryRun: dryRun, PropagationPolicy: &background, Preconditions: &metav1.Preconditions{UID: &uid},
		})
		if err != nil && !apierrors.IsNotFound(err) {
			return res, fmt.Errorf("deleting %s: %w", r, err)
		}
		res.Deleted = append(res.Deleted, r)
		if o.Progress != nil {
			o.Progress(r)
		}
	}
	for _, s := range plan.Sets {
		if err := applyParent(ctx, c, s, dryRun); err != nil {
			return res, err
		}
	}
	return res, nil
}

// applyParent applies the render's parent, forcing conflicts as kubectl does for its
// parents: its annotations are the set's, and the set is what was just pruned to.
func applyParent(ctx context.Context, c *Cluster, s *Set, dryRun []string) error {
	body, err := yaml.YAMLToJSON(s.Object.YAML)
	if err != nil {
		return fmt.Errorf("%s: %w", s.Object.Source, err)
	}
	force := true
	_, err = c.Dynamic.Resource(schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}).Namespace(s.Parent.Namespace).
		Patch(ctx, s.Parent.Name, types.ApplyPatchType, body, metav1.PatchOptions{FieldManager: FieldManager, Force: &force, DryRun: dryRun})
	if err != nil {
		return fmt.Errorf("updating ApplySet parent %s: %w", s.Parent, err)
	}
	return nil
}
