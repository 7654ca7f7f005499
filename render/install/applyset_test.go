package install

import (
	"slices"
	"testing"

	"github.com/meshplane/mesh/render/applyset"
	"github.com/meshplane/mesh/render/manifest"
)

// Every render is two ApplySets: each object of a chart is a member of its chart's set
// (and of no other), each parent lists every kind of its members, and the parents are
// not members themselves.
func TestApplySet(t *testing.T) {
	t.Parallel()
	for _, tc := range renderCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := tc.opts
			res := render(t, o)
			ns := DefaultNamespace
			if o.Namespace != "" {
				ns = o.Namespace
			}
			parents := map[string]applyset.Parent{}
			if o.Part != ControlPlane {
				parents[CRDsApplySet().ID()] = CRDsApplySet()
			}
			if o.Part != CRDs {
				parents[ControlPlaneApplySet(ns).ID()] = ControlPlaneApplySet(ns)
			}
			members := map[string][]applyset.GroupKind{}
			seen := 0
			for _, obj := range res.Objects {
				labels, ann, err := applyset.Labels(obj)
				if err != nil {
					t.Fatal(err)
				}
				if id, ok := labels[applyset.IDLabel]; ok {
					p, ok := parents[id]
					if !ok || p.Name != obj.Name || p.Namespace != obj.Namespace || obj.Kind != "ConfigMap" {
						t.Errorf("%s: unexpected parent with ID %s", obj, id)
					}
					if labels[applyset.PartOfLabel] != "" {
						t.Errorf("parent %s is a member of a set", obj)
					}
					if ann[applyset.ToolingAnnotation] != "mesh/"+testVersion {
						t.Errorf("parent %s: tooling %q", obj, ann[applyset.ToolingAnnotation])
					}
					if _, ok := ann[applyset.AdditionalNamespacesAnnotation]; ok {
						t.Errorf("parent %s: every member is in its namespace or cluster-scoped, yet it names more", obj)
					}
					seen++
					continue
				}
				id := labels[applyset.PartOfLabel]
				if _, ok := parents[id]; !ok {
					t.Errorf("%s: part-of %q, not one of this render's sets", obj, id)
				}
				isCRD := obj.Kind == "CustomResourceDefinition"
				if isCRD != (id == CRDsApplySet().ID()) {
					t.Errorf("%s is in the wrong set", obj)
				}
				members[id] = append(members[id], applyset.Of(obj))
			}
			if seen != len(parents) {
				t.Errorf("%d parents, want %d", seen, len(parents))
			}
			for _, obj := range res.Objects {
				labels, ann, _ := applyset.Labels(obj)
				id, ok := labels[applyset.IDLabel]
				if !ok {
					continue
				}
				listed := applyset.ParseGroupKinds(ann[applyset.GroupKindsAnnotation])
				for _, gk := range members[id] {
					if !slices.Contains(listed, gk) {
						t.Errorf("parent %s does not list %s", obj, gk)
					}
				}
			}
		})
	}
}

// The parents list every kind a chart can render, whatever the values, so that a prune
// after a render that drops a kind entirely still looks for it. Every golden render,
// and renders with every optional template on, hold only listed kinds.
func TestApplySetKinds(t *testing.T) {
	t.Parallel()
	extra := []Options{{HA: true, IssuerMode: IssuerCertManager}}
	cases := slices.Clone(extra)
	for _, tc := range renderCases {
		cases = append(cases, tc.opts)
	}
	for _, o := range cases {
		for _, obj := range render(t, o).Objects {
			kinds := controlPlaneKindsFor([]manifest.Object{obj})
			if obj.Kind == "CustomResourceDefinition" {
				kinds = crdKinds
			}
			if !slices.Contains(kinds, applyset.Of(obj)) {
				t.Errorf("%s (%s): its kind is not in the ApplySet kinds of its chart", obj, obj.Source)
			}
		}
	}
}

// The ApplySet changes nothing else: without it, the render is the charts' output, the
// same objects byte for byte less the part-of lines.
func TestWithoutApplySet(t *testing.T) {
	t.Parallel()
	with := render(t, Options{HA: true})
	without := render(t, Options{HA: true, WithoutApplySet: true})
	var members []manifest.Object
	for _, o := range with.Objects {
		if o.Name != CRDsApplySetName && o.Name != ControlPlaneApplySetName {
			members = append(members, o)
		}
	}
	if len(members) != len(without.Objects) {
		t.Fatalf("%d members, %d objects without the ApplySet", len(members), len(without.Objects))
	}
	for i, o := range members {
		w := without.Objects[i]
		if o.String() != w.String() {
			t.Fatalf("object %d: %s, without: %s", i, o, w)
		}
		if len(o.YAML)-len(w.YAML) != len("    "+applyset.PartOfLabel+": ")+len(ControlPlaneApplySet(DefaultNamespace).ID())+1 {
			t.Errorf("%s: the ApplySet changed more than one label line:\n%s\nwithout:\n%s", o, o.YAML, w.YAML)
		}
	}
}
