// Package uninstall is `mesh uninstall`: it finds what of mesh a cluster holds, and
// deletes it in a safe order, or lists it for `kubectl delete -f -`.
//
// The delete set is the objects of a render (mesh install's, or manifests) that the
// cluster holds and that are mesh's (labelled part-of one of the render's ApplySets,
// or applied by the "mesh" field manager), united with the live members of the
// render's ApplySets (lifecycle/prune's Candidates: what an older render created) and
// the ApplySet parents themselves. A rendered object the cluster holds but someone else
// owns is foreign: never deleted, only reported. CRDs, their custom resources and the
// CRDs' ApplySet parent are kept unless Options.CRDs.
//
// The order is by Phase: webhook configurations, workloads, Services, other kinds,
// ConfigMaps and Secrets, RBAC, ServiceAccounts, the ApplySet parents, the Namespace,
// then the CRDs and their parent. Delete deletes one phase at a time (foreground
// propagation) and waits for its objects to be gone before the next.
//
// An uninstall is refused (ErrMeshed) while meshed workloads remain: pods that carry the
// proxy (the meshplane.io/proxy-version annotation that injection writes) outside the
// control plane's namespace, and namespaces annotated meshplane.io/inject=enabled.
// Options.Force goes ahead and reports them as left behind.
package uninstall

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/restmapper"
	"k8s.io/utils/clock"

	"github.com/meshplane/mesh/lifecycle/prune"
	"github.com/meshplane/mesh/render/applyset"
	"github.com/meshplane/mesh/render/manifest"
)

// FieldManager is the field manager whose objects are mesh's even without the
// ApplySet label (what `mesh` applied itself).
const FieldManager = prune.FieldManager

// Cluster is what an uninstall needs of the cluster.
type Cluster struct {
	Dynamic  dynamic.Interface
	Metadata metadata.Interface
	Mapper   meta.RESTMapper
	// Host is the API server's URL, for messages.
	Host string
}

// NewCluster builds a Cluster whose kinds come from discovery (cached for the run).
func NewCluster(dyn dynamic.Interface, md metadata.Interface, disc discovery.DiscoveryInterface, host string) *Cluster {
	return &Cluster{Dynamic: dyn, Metadata: md, Mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(disc)), Host: host}
}

// Options of an uninstall.
type Options struct {
	// CRDs also deletes the CRDs (and with them every custom resource of theirs) and the
	// CRDs' ApplySet parent.
	CRDs bool
	// Force goes ahead while meshed workloads remain.
	Force bool
	// Timeout bounds Delete's waiting (default DefaultTimeout).
	Timeout time.Duration
	// Clock measures the timeout and paces the polls (default the real clock).
	Clock clock.Clock
	// Progress, when set, is told of each deletion and each phase done.
	Progress func(Event)
}

// DefaultTimeout is how long Delete waits for everything to be gone.
const DefaultTimeout = 5 * time.Minute

// Event is what Delete reports as it goes: an object deleted (Ref set) or a phase whose
// objects are all gone (Done).
type Event struct {
	Phase Phase
	Ref   *Ref
	Done  bool
}

// Left is an object an uninstall leaves in the cluster, and why.
type Left struct {
	Ref
	Reason string `json:"reason"`
}

// Plan is an uninstall: what to delete in order, what stays and why, the meshed
// workloads found, and notes for the user (never data).
type Plan struct {
	Delete []Ref `json:"delete"`
	// Foreign are objects of the render that the cluster holds but mesh does not own.
	Foreign []Left `json:"foreign"`
	// Meshed are the meshed pods and namespaces that refuse the uninstall (without
	// Force) or that it leaves meshed (with Force).
	Meshed []Left `json:"meshed"`
	// LeftBehind is everything else of mesh that stays: CRDs and custom resources
	// without CRDs, runtime objects of the control plane, objects with owners.
	LeftBehind []Left   `json:"leftBehind"`
	Notes      []string `json:"-"`
	Host       string   `json:"-"`
	// Namespaces are the control plane's namespaces the render names (its Namespace
	// objects and its ApplySet parents'), sorted.
	Namespaces []string  `json:"-"`
	seen       map[k]int // index in Delete
}

// ErrMeshed is the error of an uninstall refused because meshed workloads remain
// (Plan.Meshed lists them).
var ErrMeshed = errors.New("meshed workloads remain")

// MeshedError is the refusal: the meshed pods and namespaces.
type MeshedError struct{ Meshed []Left }

func (e *MeshedError) Error() string {
	names := make([]string, len(e.Meshed))
	for i, m := range e.Meshed {
		names[i] = m.String()
	}
	return fmt.Sprintf("%v: %s; uninject them (mesh uninject, kubectl rollout restart) or pass --force", ErrMeshed, strings.Join(names, ", "))
}

// Unwrap is ErrMeshed.
func (e *MeshedError) Unwrap() error { return ErrMeshed }

type k struct{ group, kind, namespace, name string }

func keyOf(r Ref) k { return k{r.Group(), r.Kind, r.Namespace, r.Name} }

// CheckInput checks what it can of the objects without a cluster: their ApplySets, as
// mesh prune does (lifecycle/prune.Sets).
func CheckInput(objs []manifest.Object) error {
	_, err := prune.Sets(objs)
	return err
}

// NewPlan finds what an uninstall of objs deletes and leaves, changing nothing. With
// meshed workloads and no Force, the plan comes with a *MeshedError.
func NewPlan(ctx context.Context, c *Cluster, objs []manifest.Object, o Options) (*Plan, error) {
	sets, err := prune.Sets(objs)
	if err != nil {
		return nil, err
	}
	p := &Plan{Host: c.Host, seen: map[k]int{}, Delete: []Ref{}, Foreign: []Left{}, Meshed: []Left{}, LeftBehind: []Left{}}
	ids, parents := map[string]bool{}, map[k]bool{}
	crdSet := map[string]bool{}
	for _, s := range sets {
		ids[s.ID] = true
		parents[k{s.Parent.Group, s.Parent.Kind, s.Parent.Namespace, s.Parent.Name}] = true
		crdSet[s.ID] = isCRDSet(s)
		if !crdSet[s.ID] {
			p.Namespaces = append(p.Namespaces, s.Parent.Namespace)
		}
	}
	for _, obj := range objs {
		if obj.Kind == "Namespace" && obj.Group() == "" {
			p.Namespaces = append(p.Namespaces, obj.Name)
		}
	}
	slices.Sort(p.Namespaces)
	p.Namespaces = slices.Compact(p.Namespaces)

	for _, obj := range objs {
		if err := p.addRendered(ctx, c, obj, ids, parents, crdSet); err != nil {
			return nil, err
		}
	}
	if len(sets) == 0 {
		p.Notes = append(p.Notes, "the input holds no ApplySet parent: only its own objects are deleted, not what an older render created")
	} else {
		cands, err := prune.Candidates(ctx, &prune.Cluster{Dynamic: c.Dynamic, Mapper: c.Mapper}, objs)
		if err != nil {
			return nil, err
		}
		p.Notes = append(p.Notes, cands.Notes...)
		for _, r := range cands.Candidates {
			p.add(Ref{APIVersion: r.APIVersion, Kind: r.Kind, Namespace: r.Namespace, Name: r.Name, UID: string(r.UID)})
		}
		for _, kept := range cands.Kept {
			r := Ref{APIVersion: kept.APIVersion, Kind: kept.Kind, Namespace: kept.Namespace, Name: kept.Name, UID: string(kept.UID)}
			if r.Kind == "Namespace" && r.Group() == "" {
				p.add(r) // the namespace of a parent, labelled part-of the set: an older render's
				continue
			}
			p.LeftBehind = append(p.LeftBehind, Left{Ref: r, Reason: kept.Reason})
		}
	}
	if err := p.keepCRDs(ctx, c, o.CRDs); err != nil {
		return nil, err
	}
	if err := p.findMeshed(ctx, c, o.Force); err != nil {
		return nil, err
	}
	if err := p.findRuntime(ctx, c); err != nil {
		return nil, err
	}
	Sort(p.Delete)
	if len(p.Meshed) > 0 && !o.Force {
		return p, &MeshedError{Meshed: p.Meshed}
	}
	return p, nil
}

// isCRDSet tells whether a set holds CRDs only: its parent goes with the CRDs.
func isCRDSet(s *prune.Set) bool {
	gks := s.GroupKinds
	return len(gks) > 0 && !slices.ContainsFunc(gks, func(gk applyset.GroupKind) bool {
		return gk != applyset.GroupKind{Group: "apiextensions.k8s.io", Kind: "CustomResourceDefinition"}
	})
}

func (p *Plan) add(r Ref) {
	if _, ok := p.seen[keyOf(r)]; ok {
		return
	}
	p.seen[keyOf(r)] = len(p.Delete)
	p.Delete = append(p.Delete, r)
}

// addRendered adds a rendered object the cluster holds: to the delete set when it is
// mesh's, else to Foreign. Kinds the cluster does not serve hold nothing.
func (p *Plan) addRendered(ctx context.Context, c *Cluster, obj manifest.Object, ids map[string]bool, parents map[k]bool, crdSet map[string]bool) error {
	m, err := mapping(c.Mapper, obj.APIVersion, obj.Kind)
	if meta.IsNoMatchError(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s: %s: %w", obj.Source, obj, err)
	}
	ns := obj.Namespace
	if m.Scope.Name() == meta.RESTScopeNameRoot {
		ns = ""
	} else if ns == "" {
		return fmt.Errorf("%s: %s is namespaced but names no namespace: uninstall deletes objects by namespace", obj.Source, obj)
	}
	live, err := c.Dynamic.Resource(m.Resource).Namespace(ns).Get(ctx, obj.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading %s: %w", obj, err)
	}
	r := Ref{APIVersion: obj.APIVersion, Kind: obj.Kind, Namespace: ns, Name: obj.Name, UID: string(live.GetUID())}
	labels := live.GetLabels()
	if id, ok := labels[applyset.IDLabel]; ok && parents[keyOf(r)] && ids[id] {
		r.Parent, r.CRDSet = true, crdSet[id]
		p.add(r)
		return nil
	}
	if ids[labels[applyset.PartOfLabel]] || managedBy(live, FieldManager) {
		p.add(r)
		return nil
	}
	owner := "no " + applyset.PartOfLabel + " label of the render's ApplySets and no field manager " + FieldManager
	if mgrs := managers(live); len(mgrs) > 0 {
		owner += " (managed by " + strings.Join(mgrs, ", ") + ")"
	}
	p.Foreign = append(p.Foreign, Left{Ref: r, Reason: owner})
	return nil
}

func mapping(mapper meta.RESTMapper, apiVersion, kind string) (*meta.RESTMapping, error) {
	gv, err := schema.ParseGroupVersion(apiVersion)
	if err != nil {
		return nil, err
	}
	return mapper.RESTMapping(gv.WithKind(kind).GroupKind(), gv.Version)
}

func managedBy(u *unstructured.Unstructured, manager string) bool {
	return slices.Contains(managers(u), manager)
}

func managers(u *unstructured.Unstructured) []string {
	var m []string
	for _, f := range u.GetManagedFields() {
		m = append(m, f.Manager)
	}
	slices.Sort(m)
	return slices.Compact(m)
}

// keepCRDs moves the CRDs and the CRDs' parent out of the delete set unless crds, and
// reports the custom resources that stay with them (or that go with them).
func (p *Plan) keepCRDs(ctx context.Context, c *Cluster, crds bool) error {
	var keep []Ref
	del := p.Delete[:0]
	for _, r := range p.Delete {
		if r.Phase() == PhaseCRDs || r.Phase() == PhaseCRDInventory {
			if r.Phase() == PhaseCRDs {
				crs, err := customResources(ctx, c, r.Name)
				if err != nil {
					return err
				}
				if crds && len(crs) > 0 {
					p.Notes = append(p.Notes, fmt.Sprintf("deleting %s deletes its %d custom resources", r, len(crs)))
				}
				if !crds {
					for _, cr := range crs {
						p.LeftBehind = append(p.LeftBehind, Left{Ref: cr, Reason: "a custom resource of " + r.String() + ", kept without --crds"})
					}
				}
			}
			if !crds {
				keep = append(keep, r)
				continue
			}
		}
		del = append(del, r)
	}
	p.Delete = del
	for _, r := range keep {
		reason := "CRDs are kept without --crds (deleting a CRD deletes every custom resource of it)"
		if r.Parent {
			reason = "the CRDs' ApplySet parent is kept with the CRDs (--crds deletes it)"
		}
		p.LeftBehind = append([]Left{{Ref: r, Reason: reason}}, p.LeftBehind...)
	}
	p.reindex()
	return nil
}

func (p *Plan) reindex() {
	p.seen = map[k]int{}
	for i, r := range p.Delete {
		p.seen[keyOf(r)] = i
	}
}

// customResources lists the objects of the CRD name, if it is served.
func customResources(ctx context.Context, c *Cluster, name string) ([]Ref, error) {
	crd, err := c.Dynamic.Resource(schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading CustomResourceDefinition/%s: %w", name, err)
	}
	group, _, _ := unstructured.NestedString(crd.Object, "spec", "group")
	kind, _, _ := unstructured.NestedString(crd.Object, "spec", "names", "kind")
	m, err := c.Mapper.RESTMapping(schema.GroupKind{Group: group, Kind: kind})
	if meta.IsNoMatchError(err) {
		return nil, nil // not established: nothing of it is stored
	}
	if err != nil {
		return nil, fmt.Errorf("CustomResourceDefinition/%s: %w", name, err)
	}
	var refs []Ref
	err = listMeta(ctx, c, m.Resource, "", metav1.ListOptions{}, func(o metav1.PartialObjectMetadata) {
		refs = append(refs, Ref{APIVersion: m.GroupVersionKind.GroupVersion().String(), Kind: kind, Namespace: o.Namespace, Name: o.Name})
	})
	return refs, err
}

// listMeta lists the objects' metadata (no specs: cheap), page by page.
func listMeta(ctx context.Context, c *Cluster, res schema.GroupVersionResource, ns string, opts metav1.ListOptions, each func(metav1.PartialObjectMetadata)) error {
	opts.Limit = 500
	for {
		list, err := c.Metadata.Resource(res).Namespace(ns).List(ctx, opts)
		if err != nil {
			return fmt.Errorf("listing %s: %w", res.GroupResource(), err)
		}
		for _, item := range list.Items {
			each(item)
		}
		if list.Continue == "" {
			return nil
		}
		opts.Continue = list.Continue
	}
}
