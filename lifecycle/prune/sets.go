package prune

import (
	"fmt"
	"slices"
	"strings"

	"github.com/meshplane/mesh/render/applyset"
	"github.com/meshplane/mesh/render/manifest"
)

// Set is one ApplySet of the input: its parent (an object of the input carrying
// applyset.kubernetes.io/id) and the input's objects labelled part-of it.
type Set struct {
	Parent applyset.Parent
	ID     string
	// Object is the parent's document, applied after a prune so that the cluster's
	// parent lists the new set's group-kinds and namespaces.
	Object manifest.Object
	// GroupKinds and Namespaces are what the parent's annotations list (Namespaces with
	// the parent's own).
	GroupKinds []applyset.GroupKind
	Namespaces []string
	Members    []manifest.Object
}

// Sets finds the ApplySets of objs. It checks what the specification requires of the
// input: a parent's ID is the hash of its identity and its tooling is mesh's, and every
// object labelled part-of a set belongs to a set whose parent is in the input (else the
// input is only part of a render, and what it lacks would be pruned). Objects without
// the label are not members of any set: prune never looks at them.
func Sets(objs []manifest.Object) ([]*Set, error) {
	byID := map[string]*Set{}
	var sets []*Set
	for _, o := range objs {
		labels, ann, err := applyset.Labels(o)
		if err != nil {
			return nil, err
		}
		id, ok := labels[applyset.IDLabel]
		if !ok {
			continue
		}
		p := applyset.Parent{Kind: o.Kind, Group: o.Group(), Namespace: o.Namespace, Name: o.Name}
		if p.Kind != "ConfigMap" || p.Group != "" {
			return nil, fmt.Errorf("%s: %s: mesh prune supports ConfigMap ApplySet parents only", o.Source, o)
		}
		if p.Namespace == "" {
			return nil, fmt.Errorf("%s: %s: the ApplySet parent names no namespace", o.Source, o)
		}
		if id != p.ID() {
			return nil, fmt.Errorf("%s: %s: label %s is %s, but the ID of this parent is %s", o.Source, o, applyset.IDLabel, id, p.ID())
		}
		if err := checkTooling(ann[applyset.ToolingAnnotation]); err != nil {
			return nil, fmt.Errorf("%s: %s: %w", o.Source, o, err)
		}
		if byID[id] != nil {
			return nil, fmt.Errorf("%s: %s: a second parent of ApplySet %s", o.Source, o, id)
		}
		s := &Set{Parent: p, ID: id, Object: o, GroupKinds: applyset.ParseGroupKinds(ann[applyset.GroupKindsAnnotation])}
		s.Namespaces = namespaces(p.Namespace, ann[applyset.AdditionalNamespacesAnnotation])
		byID[id] = s
		sets = append(sets, s)
	}
	for _, o := range objs {
		labels, _, _ := applyset.Labels(o) // decoded above
		id, ok := labels[applyset.PartOfLabel]
		if !ok {
			continue
		}
		s := byID[id]
		if s == nil {
			return nil, fmt.Errorf("%s: %s is part of ApplySet %s, whose parent is not in the input: prune needs the whole render (both halves of mesh install, or the half with its parent)", o.Source, o, id)
		}
		if !slices.Contains(s.GroupKinds, applyset.Of(o)) {
			return nil, fmt.Errorf("%s: %s: its kind %s is not in the %s annotation of its parent %s", o.Source, o, applyset.Of(o), applyset.GroupKindsAnnotation, s.Parent)
		}
		if o.Namespace != "" && !slices.Contains(s.Namespaces, o.Namespace) {
			return nil, fmt.Errorf("%s: %s: namespace %s is outside its ApplySet (parent %s, %s)", o.Source, o, o.Namespace, s.Parent, applyset.AdditionalNamespacesAnnotation)
		}
		s.Members = append(s.Members, o)
	}
	return sets, nil
}

// checkTooling accepts mesh's tooling annotation, mesh/VERSION. Another tool's
// ApplySet is refused, as the specification asks: its tool may keep more state than
// the labels, which a prune by mesh would not update.
func checkTooling(tooling string) error {
	if tooling == "" {
		return fmt.Errorf("the ApplySet parent has no %s annotation", applyset.ToolingAnnotation)
	}
	if name := toolName(tooling); name != applyset.ToolName {
		return fmt.Errorf("the ApplySet is managed by %q (%s: %s), not by mesh: use that tool to prune it", name, applyset.ToolingAnnotation, tooling)
	}
	return nil
}

// toolName is the tool part of TOOL/VERSION (kubectl's toolingBaseName).
func toolName(tooling string) string {
	if i := strings.LastIndexByte(tooling, '/'); i >= 0 {
		return tooling[:i]
	}
	return tooling
}

// namespaces is the parent's namespace and the additional ones, sorted, unique.
func namespaces(parent, additional string) []string {
	ns := []string{parent}
	for _, n := range strings.Split(additional, ",") {
		if n = strings.TrimSpace(n); n != "" {
			ns = append(ns, n)
		}
	}
	slices.Sort(ns)
	return slices.Compact(ns)
}
