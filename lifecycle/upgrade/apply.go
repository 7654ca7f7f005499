package upgrade

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"

	"github.com/meshplane/mesh/checks"
	"github.com/meshplane/mesh/lifecycle/diff"
	"github.com/meshplane/mesh/render/manifest"
)

// ConflictError is an apply that other field managers' fields stop: the API server's
// message names each manager and field. --force-conflicts takes them.
type ConflictError struct {
	Object diff.Ref
	Err    error
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("%s: %v; apply with --force-conflicts to take these fields", e.Object, e.Err)
}
func (e *ConflictError) Unwrap() error { return e.Err }

// appliedObject is an object after its apply: where it is, and the answer.
type appliedObject struct {
	ref    diff.Ref
	action Action
	ri     dynamic.ResourceInterface
	obj    *unstructured.Unstructured // the server's answer; nil for a client dry run
}

func sortObjects(objs []diff.Object) []diff.Object {
	out := slices.Clone(objs)
	slices.SortStableFunc(out, func(a, b diff.Object) int { return manifest.Compare(a.Object, b.Object) })
	return out
}

// apply applies one object with server-side apply (a dry run with DryRunServer;
// nothing with DryRunClient).
func apply(ctx context.Context, c *diff.Cluster, obj diff.Object, o Options) (*appliedObject, error) {
	ref := diff.Ref{APIVersion: obj.APIVersion, Kind: obj.Kind, Namespace: obj.Namespace, Name: obj.Name}
	a := &appliedObject{ref: ref}
	if o.DryRun == DryRunClient {
		a.action = Listed
		return a, nil
	}
	gv, err := schema.ParseGroupVersion(obj.APIVersion)
	if err != nil {
		return nil, &diff.InputError{Err: fmt.Errorf("%s: apiVersion %q: %w", obj.Source, obj.APIVersion, err)}
	}
	mapping, err := c.Mapper.RESTMapping(gv.WithKind(obj.Kind).GroupKind(), gv.Version)
	if err != nil {
		return nil, classify(c, ref, obj.Source, "discovery", err)
	}
	if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
		if ref.Namespace == "" {
			return nil, &diff.InputError{Err: fmt.Errorf("%s (%s): a namespaced object without a namespace", ref, obj.Source)}
		}
		a.ri = c.Dynamic.Resource(mapping.Resource).Namespace(ref.Namespace)
	} else {
		a.ri = c.Dynamic.Resource(mapping.Resource)
	}
	live, err := a.ri.Get(ctx, ref.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		live = nil
	case err != nil:
		return nil, classify(c, ref, obj.Source, "get", err)
	}
	data, err := json.Marshal(obj.Body)
	if err != nil {
		return nil, &diff.InputError{Err: fmt.Errorf("%s: %w", obj.Source, err)}
	}
	po := metav1.PatchOptions{FieldManager: o.FieldManager, Force: &o.ForceConflicts}
	if o.DryRun == DryRunServer {
		po.DryRun = []string{metav1.DryRunAll}
	}
	a.obj, err = a.ri.Patch(ctx, ref.Name, types.ApplyPatchType, data, po)
	if err != nil {
		if apierrors.IsConflict(err) {
			return nil, &ConflictError{Object: ref, Err: err}
		}
		return nil, classify(c, ref, obj.Source, "server-side apply", err)
	}
	switch {
	case live == nil:
		a.action = Created
	case live.GetResourceVersion() != a.obj.GetResourceVersion():
		a.action = Configured
	default:
		a.action = Unchanged
	}
	if o.DryRun == DryRunServer {
		a.action += " (server dry run)"
	}
	return a, nil
}

// classify: refused credentials or a failing server is a *checks.ClusterError (exit
// 3); an object the server rejects a *diff.InputError (exit 2).
func classify(c *diff.Cluster, ref diff.Ref, source, what string, err error) error {
	wrapped := fmt.Errorf("%s (%s): %s: %w", ref, source, what, err)
	if apierrors.IsUnauthorized(err) || apierrors.IsForbidden(err) {
		return &checks.ClusterError{Host: c.Host, Unauthorized: true, Err: wrapped}
	}
	if meta.IsNoMatchError(err) {
		return &diff.InputError{Err: fmt.Errorf("%s (%s): the cluster serves no kind %s in %s", ref, source, ref.Kind, ref.APIVersion)}
	}
	var status apierrors.APIStatus
	if errors.As(err, &status) && status.Status().Code >= http.StatusBadRequest && status.Status().Code < http.StatusInternalServerError &&
		!apierrors.IsTimeout(err) && !apierrors.IsTooManyRequests(err) {
		return &diff.InputError{Err: wrapped}
	}
	return &checks.ClusterError{Host: c.Host, Err: wrapped}
}

// joinRefs names objects for a message.
func joinRefs(refs []string) string { return strings.Join(refs, ", ") }
