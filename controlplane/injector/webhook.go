// Package injector is the proxy injector: a mutating admission webhook that adds the
// proxy to pods of meshed namespaces and pods, with the same code as `mesh inject
// --manual`, and answers with a JSON patch of only the fields it changed.
package injector

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"reflect"

	admissionv1 "k8s.io/api/admission/v1"

	"github.com/meshplane/mesh/render/inject"
)

// Webhook handles AdmissionReviews of pod creation.
type Webhook struct {
	// Injector writes the proxy (an inject.Injector with Manual options).
	Injector *inject.Injector
	// NamespaceAnnotations returns a namespace's annotations.
	NamespaceAnnotations func(ctx context.Context, name string) (map[string]string, error)
	Log                  *slog.Logger
	// OnResult, if set, is called once per admission request with its result:
	// ResultInjected, ResultSkipped or ResultError.
	OnResult func(result string)
}

// The results of an admission request.
const (
	ResultInjected = "injected" // admitted with the proxy
	ResultSkipped  = "skipped"  // admitted unchanged: not a meshed pod, or one that must not be injected
	ResultError    = "error"    // admitted unchanged because of an error (or not an AdmissionReview)
)

// patchOp is one JSON patch operation.
type patchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value,omitempty"`
}

func (w *Webhook) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 8<<20))
	if err != nil {
		w.result(ResultError)
		http.Error(rw, err.Error(), http.StatusBadRequest)
		return
	}
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &review); err != nil || review.Request == nil {
		w.result(ResultError)
		http.Error(rw, "not an AdmissionReview", http.StatusBadRequest)
		return
	}
	resp := w.Review(r.Context(), review.Request)
	review.Response = resp
	review.Request = nil
	rw.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(rw).Encode(&review)
}

// Review decides on one request. It never denies: a pod that must not (or cannot) be
// injected is admitted unchanged, with the reason as a warning.
func (w *Webhook) Review(ctx context.Context, req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
	resp, result := w.review(ctx, req)
	w.result(result)
	return resp
}

func (w *Webhook) result(r string) {
	if w.OnResult != nil {
		w.OnResult(r)
	}
}

func (w *Webhook) review(ctx context.Context, req *admissionv1.AdmissionRequest) (*admissionv1.AdmissionResponse, string) {
	resp := &admissionv1.AdmissionResponse{UID: req.UID, Allowed: true}
	notInjected := func(err error) (*admissionv1.AdmissionResponse, string) {
		resp.Warnings = append(resp.Warnings, "mesh: not injected: "+err.Error())
		return resp, ResultError
	}
	if req.Kind.Kind != "Pod" || req.Operation != admissionv1.Create {
		return resp, ResultSkipped
	}
	var pod map[string]any
	if err := json.Unmarshal(req.Object.Raw, &pod); err != nil {
		return notInjected(err)
	}
	want, err := w.wanted(ctx, req.Namespace, pod)
	if err != nil {
		return notInjected(err)
	}
	if !want {
		return resp, ResultSkipped
	}
	pod["apiVersion"], pod["kind"] = "v1", "Pod"
	src, _ := json.Marshal(pod)
	out, results, err := w.Injector.JSON(src)
	if err != nil {
		return notInjected(err)
	}
	for _, r := range results {
		for _, warn := range r.Warnings {
			resp.Warnings = append(resp.Warnings, "mesh: "+warn)
		}
	}
	var injected map[string]any
	if err := json.Unmarshal(out, &injected); err != nil {
		return notInjected(err)
	}
	dropMarker(pod, injected)
	ops := diff(pod, injected)
	if len(ops) == 0 {
		// inject refused the pod (e.g. hostNetwork); its reason is among the warnings.
		return resp, ResultSkipped
	}
	patch, err := json.Marshal(ops)
	if err != nil {
		return notInjected(err)
	}
	pt := admissionv1.PatchTypeJSONPatch
	resp.Patch, resp.PatchType = patch, &pt
	if w.Log != nil {
		w.Log.Info("injected", "namespace", req.Namespace, "pod", podName(pod))
	}
	return resp, ResultInjected
}

// wanted: the pod's inject annotation decides; without one, its namespace's.
func (w *Webhook) wanted(ctx context.Context, namespace string, pod map[string]any) (bool, error) {
	md, _ := pod["metadata"].(map[string]any)
	ann, _ := md["annotations"].(map[string]any)
	switch ann[inject.InjectAnnotation] {
	case inject.Enabled:
		return true, nil
	case inject.Disabled:
		return false, nil
	}
	nsAnn, err := w.NamespaceAnnotations(ctx, namespace)
	if err != nil {
		return false, fmt.Errorf("namespace %s: %w", namespace, err)
	}
	return nsAnn[inject.InjectAnnotation] == inject.Enabled, nil
}

// diff is the JSON patch from a to b over the fields inject may change, each added or
// replaced whole: the minimum at the granularity of those fields.
func diff(a, b map[string]any) []patchOp {
	var ops []patchOp
	for _, f := range [][2]string{{"metadata", "annotations"}, {"spec", "initContainers"}, {"spec", "containers"}, {"spec", "volumes"}} {
		av, aok := field(a, f[0], f[1])
		bv, bok := field(b, f[0], f[1])
		if !bok || reflect.DeepEqual(av, bv) {
			continue
		}
		op := "replace"
		if !aok {
			op = "add"
		}
		ops = append(ops, patchOp{Op: op, Path: "/" + f[0] + "/" + f[1], Value: bv})
	}
	return ops
}

// dropMarker removes inject's round-trip marker from the injected pod b, or, when the
// pod a already had one, puts back its value (inject may have added to its record).
// The marker records how a manifest's text wrote null or {} annotations, and which
// mesh annotations inject added to it, for mesh uninject; a live pod has no such text.
// (The API server never sends null or {} annotations: it omits empty ones.)
func dropMarker(a, b map[string]any) {
	after, _ := field(b, "metadata", "annotations")
	ann, _ := after.(map[string]any)
	if ann == nil {
		return
	}
	before, _ := field(a, "metadata", "annotations")
	if had, _ := before.(map[string]any); had != nil {
		if v, ok := had[inject.OriginalAnnotations]; ok {
			ann[inject.OriginalAnnotations] = v
			return
		}
	}
	delete(ann, inject.OriginalAnnotations)
}

func field(m map[string]any, parent, key string) (any, bool) {
	p, _ := m[parent].(map[string]any)
	v, ok := p[key]
	return v, ok
}

func podName(pod map[string]any) string {
	md, _ := pod["metadata"].(map[string]any)
	if n, _ := md["name"].(string); n != "" {
		return n
	}
	n, _ := md["generateName"].(string)
	return n
}
