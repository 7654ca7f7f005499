// Package diff is `mesh diff`: what applying a render (or any manifests) with
// server-side apply would change in the cluster, limited to the fields mesh owns.
//
// For each object, in apply order (CRDs first), it asks the API server for a dry-run
// server-side apply with the field manager "mesh" (not forced, so conflicts with other
// managers surface), and compares the result with the live object. Both sides are
// restricted to the fields the "mesh" manager owns (the dry-run result's managedFields,
// and the live object's, so that a field the new render drops shows as removed):
// fields set by other managers (an HPA's replicas, a rollout controller's
// annotations, the injector's caBundle) and server-managed fields never show as
// drift. Secrets' values are shown as hashes. Objects whose kind is not served yet
// (their CRD is not installed) are pending; objects that do not exist are added.
package diff

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"

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
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"

	"github.com/meshplane/mesh/checks"
	"github.com/meshplane/mesh/render/manifest"
)

// FieldManager is the field manager mesh applies with.
const FieldManager = "mesh"

// Exit codes of `mesh diff`, kubectl diff's: they never depend on the output format.
const (
	ExitSame    = 0                  // no differences
	ExitDiffers = 1                  // differences: changed, added, pending, conflicting objects or prune candidates
	ExitInput   = checks.ExitUsage   // bad input: unreadable manifests, objects the server rejects
	ExitCluster = checks.ExitCluster // the cluster is unreachable, refuses the credentials or fails
)

// Status of one object.
type Status string

// Statuses.
const (
	Unchanged Status = "unchanged" // applying changes no field mesh owns
	Changed   Status = "changed"   // applying changes fields mesh owns
	Added     Status = "added"     // not in the cluster: applying creates it
	Pending   Status = "pending"   // its kind is not served yet (its CRD is not installed)
	Conflict  Status = "conflict"  // applying without force fails: other managers own fields it sets
)

// Options of a diff.
type Options struct {
	// Namespace is given to namespaced objects that name none (kubectl's -n).
	Namespace string
	// FieldManager is the manager whose fields are compared; FieldManager if empty.
	FieldManager string
	// Prune lists the objects of the install that the input no longer holds; nil lists
	// none.
	Prune PruneLister
}

// PruneLister lists objects in the cluster that belong to this install but are absent
// from the objects diffed: what a prune would delete. It is the hook for the ApplySet
// inventory; the diff reports what it lists and counts it as a difference.
type PruneLister interface {
	PruneCandidates(ctx context.Context, objs []Object) ([]Ref, error)
}

// Ref names an object in the cluster.
type Ref struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace,omitempty"`
	Name       string `json:"name"`
}

func (r Ref) String() string { return checks.ObjectName(r.Kind, r.Namespace, r.Name) }

// Cluster is what a diff needs of the cluster.
type Cluster struct {
	Dynamic dynamic.Interface
	Mapper  meta.RESTMapper
	Host    string // the API server's URL, for errors
}

// NewCluster builds a Cluster whose kinds come from discovery (cached for the run).
func NewCluster(dyn dynamic.Interface, disc discovery.DiscoveryInterface, host string) *Cluster {
	return &Cluster{Dynamic: dyn, Mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(disc)), Host: host}
}

// Result is the diff of one object.
type Result struct {
	APIVersion string          `json:"apiVersion"`
	Kind       string          `json:"kind"`
	Namespace  string          `json:"namespace,omitempty"`
	Name       string          `json:"name"`
	Source     string          `json:"source,omitempty"`
	Status     Status          `json:"status"`
	Reason     string          `json:"reason,omitempty"` // why it is pending, or added without validation
	Changes    []Change        `json:"changes,omitempty"`
	Conflicts  []FieldConflict `json:"conflicts,omitempty"`
	// Diff is the unified diff of the fields mesh owns, live to merged.
	Diff string `json:"diff,omitempty"`

	// Live and Merged are the fields mesh owns, with the object's identity; Live is nil
	// for an object that does not exist.
	Live, Merged map[string]any `json:"-"`
}

// Name is how reports name the object: Kind/namespace/name.
func (r Result) String() string { return checks.ObjectName(r.Kind, r.Namespace, r.Name) }

// FieldConflict is a field another manager owns with another value.
type FieldConflict struct {
	Manager string `json:"manager"` // the manager's name
	Field   string `json:"field"`   // the field's path
	Message string `json:"message"` // the API server's words ("conflict with \"hpa\" using apps/v1")
}

// Report is a diff of every object.
type Report struct {
	Objects []Result `json:"objects"`
	Prune   []Ref    `json:"pruneCandidates,omitempty"`
}

// Count is how many objects have each status.
func (r *Report) Count() map[Status]int {
	n := map[Status]int{}
	for _, o := range r.Objects {
		n[o.Status]++
	}
	return n
}

// ExitCode is ExitDiffers when applying would change anything, else ExitSame.
func (r *Report) ExitCode() int {
	if len(r.Prune) > 0 {
		return ExitDiffers
	}
	for _, o := range r.Objects {
		if o.Status != Unchanged {
			return ExitDiffers
		}
	}
	return ExitSame
}

// InputError is an object the API server rejects (invalid, malformed): exit ExitInput.
type InputError struct{ Err error }

func (e *InputError) Error() string { return e.Err.Error() }
func (e *InputError) Unwrap() error { return e.Err }

// ExitCode is ExitInput.
func (e *InputError) ExitCode() int { return ExitInput }

// Run diffs objs against the cluster, in apply order. It stops at the first object the
// server rejects (an *InputError) or a cluster that fails (a *checks.ClusterError).
func Run(ctx context.Context, c *Cluster, objs []Object, o Options) (*Report, error) {
	if o.FieldManager == "" {
		o.FieldManager = FieldManager
	}
	if o.Namespace == "" {
		o.Namespace = metav1.NamespaceDefault
	}
	sorted := slices.Clone(objs)
	slices.SortStableFunc(sorted, func(a, b Object) int { return manifest.Compare(a.Object, b.Object) })
	if err := duplicates(sorted); err != nil {
		return nil, err
	}
	crds := inputCRDs(sorted)
	rep := &Report{Objects: []Result{}}
	for _, obj := range sorted {
		r, err := c.diff(ctx, obj, o, crds)
		if err != nil {
			return nil, err
		}
		rep.Objects = append(rep.Objects, *r)
	}
	if o.Prune != nil {
		refs, err := o.Prune.PruneCandidates(ctx, sorted)
		if err != nil {
			return nil, fmt.Errorf("listing prune candidates: %w", err)
		}
		rep.Prune = refs
	}
	return rep, nil
}

func duplicates(objs []Object) error {
	seen := map[string]string{}
	for _, o := range objs {
		key := o.Group() + "/" + o.String()
		if first, dup := seen[key]; dup {
			return &InputError{Err: fmt.Errorf("%s: %s is also in %s", o.Source, o, first)}
		}
		seen[key] = o.Source
	}
	return nil
}

// inputCRD is a CRD of the input: its name, and whether its kind is namespaced.
type inputCRD struct {
	name       string
	namespaced bool
}

// inputCRDs maps the kinds the input's CRDs define to the CRDs.
func inputCRDs(objs []Object) map[schema.GroupKind]inputCRD {
	m := map[schema.GroupKind]inputCRD{}
	for _, o := range objs {
		if o.Kind != "CustomResourceDefinition" || o.Group() != "apiextensions.k8s.io" {
			continue
		}
		group, _, _ := unstructured.NestedString(o.Body, "spec", "group")
		kind, _, _ := unstructured.NestedString(o.Body, "spec", "names", "kind")
		scope, _, _ := unstructured.NestedString(o.Body, "spec", "scope")
		m[schema.GroupKind{Group: group, Kind: kind}] = inputCRD{name: o.Name, namespaced: scope == "Namespaced"}
	}
	return m
}

func (c *Cluster) diff(ctx context.Context, obj Object, o Options, crds map[schema.GroupKind]inputCRD) (*Result, error) {
	r := &Result{APIVersion: obj.APIVersion, Kind: obj.Kind, Namespace: obj.Namespace, Name: obj.Name, Source: obj.Source}
	gv, err := schema.ParseGroupVersion(obj.APIVersion)
	if err != nil {
		return nil, &InputError{Err: fmt.Errorf("%s: apiVersion %q: %w", obj.Source, obj.APIVersion, err)}
	}
	gk := gv.WithKind(obj.Kind).GroupKind()
	mapping, err := c.Mapper.RESTMapping(gk, gv.Version)
	if meta.IsNoMatchError(err) {
		r.Status = Pending
		if crd, ok := crds[gk]; ok {
			r.Reason = fmt.Sprintf("its CustomResourceDefinition %s is in the input and not installed yet", crd.name)
			if crd.namespaced && r.Namespace == "" {
				r.Namespace = o.Namespace
			}
		} else {
			r.Reason = fmt.Sprintf("the cluster serves no kind %s in %s", obj.Kind, obj.APIVersion)
		}
		return r, nil
	}
	if err != nil {
		return nil, c.apiError(obj, "discovery", err)
	}
	body := deepCopy(obj.Body)
	var ri dynamic.ResourceInterface
	if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
		if r.Namespace == "" {
			r.Namespace = o.Namespace
		}
		if err := unstructured.SetNestedField(body, r.Namespace, "metadata", "namespace"); err != nil {
			return nil, &InputError{Err: fmt.Errorf("%s: metadata: %w", obj.Source, err)}
		}
		ri = c.Dynamic.Resource(mapping.Resource).Namespace(r.Namespace)
	} else {
		r.Namespace = ""
		unstructured.RemoveNestedField(body, "metadata", "namespace")
		ri = c.Dynamic.Resource(mapping.Resource)
	}

	var live map[string]any
	if u, err := ri.Get(ctx, obj.Name, metav1.GetOptions{}); err == nil {
		live = u.Object
	} else if !apierrors.IsNotFound(err) {
		return nil, c.apiError(obj, "get", err)
	}

	data, err := json.Marshal(body)
	if err != nil {
		return nil, &InputError{Err: fmt.Errorf("%s: %w", obj.Source, err)}
	}
	apply := func(force bool) (*unstructured.Unstructured, error) {
		return ri.Patch(ctx, obj.Name, types.ApplyPatchType, data, metav1.PatchOptions{
			FieldManager: o.FieldManager, DryRun: []string{metav1.DryRunAll}, Force: &force,
		})
	}
	merged, err := apply(false)
	if conflicts := conflictsOf(err); len(conflicts) > 0 {
		// Named, then shown as what a forced apply would do.
		r.Conflicts = conflicts
		merged, err = apply(true)
	}
	var owned *fieldpath.Set
	switch {
	case err == nil:
		owned, err = ownedFields(merged.Object, o.FieldManager, obj.APIVersion)
		if err != nil {
			return nil, fmt.Errorf("%s: the dry run's managedFields: %w", r, err)
		}
		if live != nil {
			liveOwned, err := ownedFields(live, o.FieldManager, obj.APIVersion)
			if err != nil {
				return nil, fmt.Errorf("%s: the live object's managedFields: %w", r, err)
			}
			// A field mesh owns now and the render dropped: the apply removes it.
			owned = owned.Union(liveOwned)
		}
		r.Merged = view(merged.Object, owned)
	case live == nil && missingNamespace(err):
		// A new object in a namespace that does not exist yet (a first install): the
		// server cannot dry-run it, so it is shown as given, without defaults.
		r.Reason = fmt.Sprintf("namespace %s does not exist yet: shown as given, not validated by the server", r.Namespace)
		body["metadata"].(map[string]any)["namespace"] = r.Namespace
		r.Merged = view(body, nil)
	default:
		return nil, c.apiError(obj, "server-side apply (dry run)", err)
	}

	if live != nil {
		r.Live = view(live, owned)
	}
	base := r.Live
	if base == nil {
		base = identity(r.Merged)
	}
	compare(base, r.Merged, owned, nil, &r.Changes)
	switch {
	case len(r.Conflicts) > 0:
		r.Status = Conflict
	case live == nil:
		r.Status = Added
	case len(r.Changes) > 0:
		r.Status = Changed
	default:
		r.Status = Unchanged
	}
	if r.Status != Unchanged {
		if r.Diff, err = unified(r); err != nil {
			return nil, fmt.Errorf("%s: %w", r, err)
		}
	}
	return r, nil
}

// ownedFields decodes the fields the manager owns by applying (not by updates, nor on
// a subresource) at apiVersion. An object the manager never applied owns none.
func ownedFields(obj map[string]any, manager, apiVersion string) (*fieldpath.Set, error) {
	u := unstructured.Unstructured{Object: obj}
	set := fieldpath.NewSet()
	for _, e := range u.GetManagedFields() {
		if e.Manager != manager || e.Operation != metav1.ManagedFieldsOperationApply || e.Subresource != "" || e.APIVersion != apiVersion || e.FieldsV1 == nil {
			continue
		}
		s := fieldpath.NewSet()
		if err := s.FromJSON(e.FieldsV1.GetRawReader()); err != nil {
			return nil, err
		}
		set = set.Union(s)
	}
	if obj["apiVersion"] == "v1" && obj["kind"] == "Secret" {
		// stringData is write-only: the server moves it into data, which the manager
		// then sets in effect.
		if sd, ok := set.Children.Get(fieldpath.FieldNameElement("stringData")); ok {
			sd.Members.Iterate(func(pe fieldpath.PathElement) {
				set.Insert(fieldpath.Path{fieldpath.FieldNameElement("data"), pe})
			})
		}
	}
	return set, nil
}

// conflictRE reads the manager from a conflict cause: `conflict with "hpa" using apps/v1`.
var conflictRE = regexp.MustCompile(`^conflict with ("(?:[^"\\]|\\.)*")`)

// conflictsOf lists the field manager conflicts of a 409 from an apply.
func conflictsOf(err error) []FieldConflict {
	var status apierrors.APIStatus
	if err == nil || !errors.As(err, &status) || status.Status().Reason != metav1.StatusReasonConflict || status.Status().Details == nil {
		return nil
	}
	var out []FieldConflict
	for _, c := range status.Status().Details.Causes {
		if c.Type != metav1.CauseTypeFieldManagerConflict {
			continue
		}
		cf := FieldConflict{Field: c.Field, Message: c.Message}
		if m := conflictRE.FindStringSubmatch(c.Message); m != nil {
			cf.Manager, _ = strconv.Unquote(m[1])
		}
		out = append(out, cf)
	}
	return out
}

// missingNamespace tells whether err is the 404 of a namespace that does not exist.
func missingNamespace(err error) bool {
	var status apierrors.APIStatus
	if !apierrors.IsNotFound(err) || !errors.As(err, &status) {
		return false
	}
	d := status.Status().Details
	return d != nil && d.Kind == "namespaces"
}

// apiError classifies an error of the API server: credentials refused or a server
// that fails is a *checks.ClusterError (exit 3), an object it rejects an *InputError
// (exit 2).
func (c *Cluster) apiError(obj Object, what string, err error) error {
	wrapped := fmt.Errorf("%s (%s): %s: %w", obj.Object, obj.Source, what, err)
	if apierrors.IsUnauthorized(err) || apierrors.IsForbidden(err) {
		return &checks.ClusterError{Host: c.Host, Unauthorized: true, Err: wrapped}
	}
	var status apierrors.APIStatus
	if errors.As(err, &status) && status.Status().Code >= http.StatusBadRequest && status.Status().Code < http.StatusInternalServerError && !apierrors.IsTimeout(err) && !apierrors.IsTooManyRequests(err) {
		return &InputError{Err: wrapped}
	}
	return &checks.ClusterError{Host: c.Host, Err: wrapped}
}
