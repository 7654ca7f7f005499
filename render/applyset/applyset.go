// Package applyset gives a render its ApplySet (KEP-3659): a parent ConfigMap whose
// labels and annotations name the set, and the applyset.kubernetes.io/part-of label on
// every member. It is pure, as all of render/: the ID is a hash of the parent's
// identity, the group-kinds are sorted, and labels are spliced into the documents'
// text at a fixed place, so the same objects always give the same bytes.
//
// The ID and the annotations' formats are kubectl's (k8s.io/kubectl/pkg/cmd/apply,
// applyset.go): base64url(sha256(name.namespace.kind.group)) between "applyset-" and
// "-v1"; group-kinds as Kind.group (Kind alone for the core group), sorted, joined by
// commas.
package applyset

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/meshplane/mesh/render/manifest"
)

// The ApplySet specification's label and annotation keys.
const (
	IDLabel                        = "applyset.kubernetes.io/id"
	PartOfLabel                    = "applyset.kubernetes.io/part-of"
	ToolingAnnotation              = "applyset.kubernetes.io/tooling"
	GroupKindsAnnotation           = "applyset.kubernetes.io/contains-group-kinds"
	AdditionalNamespacesAnnotation = "applyset.kubernetes.io/additional-namespaces"
)

// ToolName is the tool half of the tooling annotation mesh writes: mesh/VERSION.
const ToolName = "mesh"

// Parent names an ApplySet's parent object. mesh's parents are ConfigMaps.
type Parent struct {
	Kind      string // ConfigMap
	Group     string // "" for the core group
	Namespace string
	Name      string
}

// ConfigMap is the parent ConfigMap namespace/name.
func ConfigMap(namespace, name string) Parent {
	return Parent{Kind: "ConfigMap", Namespace: namespace, Name: name}
}

// ID is the set's ID, as kubectl computes it for the same parent.
func (p Parent) ID() string {
	sum := sha256.Sum256([]byte(strings.Join([]string{p.Name, p.Namespace, p.Kind, p.Group}, ".")))
	return "applyset-" + base64.RawURLEncoding.EncodeToString(sum[:]) + "-v1"
}

func (p Parent) String() string {
	return manifest.Object{Kind: p.Kind, Namespace: p.Namespace, Name: p.Name}.String()
}

// Set is one ApplySet to render.
type Set struct {
	Parent Parent
	// Version is the mesh version: the tooling annotation is mesh/Version.
	Version string
	// Kinds are group-kinds the set may hold besides those of its members: every kind the
	// chart can render, so that a later render that drops a whole kind (no more
	// PodDisruptionBudgets) still lists it and a prune finds the objects left of it.
	Kinds []GroupKind
}

// GroupKind is a kind and its API group ("" for the core group).
type GroupKind struct {
	Group string
	Kind  string
}

// String is kubectl's format: Kind.group, or Kind for the core group.
func (gk GroupKind) String() string {
	if gk.Group == "" {
		return gk.Kind
	}
	return gk.Kind + "." + gk.Group
}

// ParseGroupKind reads Kind.group (kubectl's schema.ParseGroupKind).
func ParseGroupKind(s string) GroupKind {
	kind, group, _ := strings.Cut(s, ".")
	return GroupKind{Group: group, Kind: kind}
}

// Of is the object's group-kind.
func Of(o manifest.Object) GroupKind { return GroupKind{Group: o.Group(), Kind: o.Kind} }

// FormatGroupKinds is the contains-group-kinds annotation: sorted, unique, commas.
func FormatGroupKinds(gks []GroupKind) string {
	s := make([]string, 0, len(gks))
	for _, gk := range gks {
		s = append(s, gk.String())
	}
	slices.Sort(s)
	return strings.Join(slices.Compact(s), ",")
}

// ParseGroupKinds reads the contains-group-kinds annotation; empty is the empty set.
func ParseGroupKinds(s string) []GroupKind {
	var gks []GroupKind
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			gks = append(gks, ParseGroupKind(p))
		}
	}
	return gks
}

// Apply labels every object as a member of set and adds the parent at the end
// (manifest.Sort puts it with the ConfigMaps, after the Namespace). An object that already carries a part-of label, or
// whose labels cannot be found in its text, is an error naming its source.
func Apply(objs []manifest.Object, set Set) ([]manifest.Object, error) {
	id := set.Parent.ID()
	out := make([]manifest.Object, 0, len(objs)+1)
	kinds := slices.Clone(set.Kinds)
	var namespaces []string
	for _, o := range objs {
		if o.Kind == set.Parent.Kind && o.Group() == set.Parent.Group && o.Namespace == set.Parent.Namespace && o.Name == set.Parent.Name {
			return nil, fmt.Errorf("%s: %s is the ApplySet's parent: the chart must not render it", o.Source, o)
		}
		labelled, err := manifest.AddMetadataEntry(o, "labels", PartOfLabel, id)
		if err != nil {
			return nil, err
		}
		out = append(out, labelled)
		kinds = append(kinds, Of(o))
		if o.Namespace != "" && o.Namespace != set.Parent.Namespace {
			namespaces = append(namespaces, o.Namespace)
		}
	}
	slices.Sort(namespaces)
	parent := ParentObject(set.Parent, ToolName+"/"+set.Version, FormatGroupKinds(kinds), strings.Join(slices.Compact(namespaces), ","))
	return append(out, parent), nil
}

// ParentObject is the parent's document. additionalNamespaces is left out when empty.
func ParentObject(p Parent, tooling, groupKinds, additionalNamespaces string) manifest.Object {
	var b bytes.Buffer
	fmt.Fprintf(&b, "apiVersion: v1\nkind: %s\nmetadata:\n  name: %s\n  namespace: %s\n", p.Kind, p.Name, p.Namespace)
	fmt.Fprintf(&b, "  labels:\n    app.kubernetes.io/part-of: mesh\n    %s: %s\n", IDLabel, p.ID())
	b.WriteString("  annotations:\n")
	if additionalNamespaces != "" {
		fmt.Fprintf(&b, "    %s: %s\n", AdditionalNamespacesAnnotation, quote(additionalNamespaces))
	}
	fmt.Fprintf(&b, "    %s: %s\n", GroupKindsAnnotation, quote(groupKinds))
	fmt.Fprintf(&b, "    %s: %s\n", ToolingAnnotation, quote(tooling))
	return manifest.Object{
		APIVersion: "v1", Kind: p.Kind, Namespace: p.Namespace, Name: p.Name,
		YAML: b.Bytes(), Source: "ApplySet parent " + p.String(),
	}
}

// quote writes s as a double-quoted YAML scalar (a JSON string is one).
func quote(s string) string {
	return fmt.Sprintf("%q", s) // the values are names, commas, dots and slashes: no escapes
}

// Labels reads the object's labels and annotations.
func Labels(o manifest.Object) (labels, annotations map[string]string, err error) {
	var m struct {
		Metadata struct {
			Labels      map[string]string `json:"labels"`
			Annotations map[string]string `json:"annotations"`
		} `json:"metadata"`
	}
	if err := yaml.Unmarshal(o.YAML, &m); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", o.Source, err)
	}
	return m.Metadata.Labels, m.Metadata.Annotations, nil
}
