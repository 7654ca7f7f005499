package uninstall

import (
	"context"
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/meshplane/mesh/render/applyset"
	"github.com/meshplane/mesh/render/inject"
)

// PartOfMeshLabel is the label every object of the charts, and every object the control
// plane creates at run time (trust-root ConfigMaps, the issuer's Secret), carries.
const PartOfMeshLabel = "app.kubernetes.io/part-of=mesh"

var (
	podsResource       = schema.GroupVersionResource{Version: "v1", Resource: "pods"}
	namespacesResource = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}
)

// findMeshed lists the meshed pods outside the control plane's namespaces and the
// namespaces marked for injection. Injection sets no label on a pod, only annotations
// (meshplane.io/proxy-version, with the mesh-proxy container), so this is one list of
// every pod's metadata (no specs), paged, and one of the namespaces'.
func (p *Plan) findMeshed(ctx context.Context, c *Cluster, force bool) error {
	reason := func(r string) string {
		if force {
			return r + " (left meshed: --force)"
		}
		return r
	}
	err := listMeta(ctx, c, podsResource, "", metav1.ListOptions{}, func(o metav1.PartialObjectMetadata) {
		if _, ok := o.Annotations[inject.ProxyVersion]; !ok || slices.Contains(p.Namespaces, o.Namespace) {
			return
		}
		why := "its " + inject.ProxyContainer + " sidecar stops working without the control plane: uninject it (mesh uninject, or remove " + inject.InjectAnnotation + " and restart it)"
		for _, ref := range o.OwnerReferences {
			if ref.Controller != nil && *ref.Controller {
				why = "owned by " + ref.Kind + "/" + ref.Name + "; " + why
			}
		}
		p.Meshed = append(p.Meshed, Left{Ref: Ref{APIVersion: "v1", Kind: "Pod", Namespace: o.Namespace, Name: o.Name}, Reason: reason(why)})
	})
	if err != nil {
		return err
	}
	return listMeta(ctx, c, namespacesResource, "", metav1.ListOptions{}, func(o metav1.PartialObjectMetadata) {
		if o.Annotations[inject.InjectAnnotation] != inject.Enabled || slices.Contains(p.Namespaces, o.Name) {
			return
		}
		why := "annotated " + inject.InjectAnnotation + "=" + inject.Enabled + ": remove it with kubectl annotate namespace " + o.Name + " " + inject.InjectAnnotation + "-"
		p.Meshed = append(p.Meshed, Left{Ref: Ref{APIVersion: "v1", Kind: "Namespace", Name: o.Name}, Reason: reason(why)})
	})
}

// findRuntime lists what the control plane created at run time (labelled
// app.kubernetes.io/part-of=mesh, in no ApplySet) outside the namespaces the uninstall
// deletes: the identity controller's trust-root ConfigMaps in meshed namespaces.
func (p *Plan) findRuntime(ctx context.Context, c *Cluster) error {
	deleted := map[string]bool{}
	for _, r := range p.Delete {
		if r.Kind == "Namespace" && r.Group() == "" {
			deleted[r.Name] = true
		}
	}
	for _, kind := range []string{"ConfigMap", "Secret"} {
		res := schema.GroupVersionResource{Version: "v1", Resource: map[string]string{"ConfigMap": "configmaps", "Secret": "secrets"}[kind]}
		err := listMeta(ctx, c, res, "", metav1.ListOptions{LabelSelector: PartOfMeshLabel}, func(o metav1.PartialObjectMetadata) {
			r := Ref{APIVersion: "v1", Kind: kind, Namespace: o.Namespace, Name: o.Name}
			if _, ok := p.seen[keyOf(r)]; ok || deleted[o.Namespace] || p.listed(r) {
				return
			}
			reason := "created at run time by the control plane (labelled " + PartOfMeshLabel + ", in no ApplySet): kubectl delete " + kind + " -n " + o.Namespace + " " + o.Name
			switch {
			case o.Labels[applyset.IDLabel] != "":
				reason = "the parent of an ApplySet the input does not hold (another half of the render, another control plane)"
			case o.Labels[applyset.PartOfLabel] != "":
				reason = "a member of an ApplySet the input does not hold (another half of the render, another control plane)"
			}
			p.LeftBehind = append(p.LeftBehind, Left{Ref: r, Reason: reason})
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// listed tells whether r is already reported as foreign or left behind.
func (p *Plan) listed(r Ref) bool {
	same := func(l Left) bool { return keyOf(l.Ref) == keyOf(r) }
	return slices.ContainsFunc(p.LeftBehind, same) || slices.ContainsFunc(p.Foreign, same)
}
