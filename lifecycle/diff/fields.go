package diff

import (
	"reflect"
	"sort"

	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"
	"sigs.k8s.io/structured-merge-diff/v6/value"
)

// A field set (fieldpath.Set, the decoded managedFields of one manager) names fields by
// path elements: a field name in a map, and for a list item its key fields
// ([name="web"]), its value ([="x"]) or its index. A member of the set is a field the
// manager owns whole (a scalar, an atomic map or list, or a list item's existence); a
// child set names what it owns inside. Walking a JSON value with the set needs no
// schema: the set itself says how each list is keyed.

// Op is what a change does to a field.
type Op string

// Ops.
const (
	Add     Op = "add"     // not in the cluster; the apply adds it
	Remove  Op = "remove"  // in the cluster and owned by mesh; the apply removes it
	Replace Op = "replace" // the apply changes its value
)

// Change is one field the apply would change, by its path (as the API server names
// fields in conflicts: .spec.template.spec.containers[name="web"].image).
type Change struct {
	Path   string `json:"path"`
	Op     Op     `json:"op"`
	Live   any    `json:"live,omitempty"`
	Merged any    `json:"merged,omitempty"`
}

// filter returns the parts of v that s names. A nil set names everything.
func filter(v any, s *fieldpath.Set) any {
	if s == nil {
		return v
	}
	switch t := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, child := range t {
			pe := fieldpath.FieldNameElement(k)
			if cs, ok := s.Children.Get(pe); ok {
				out[k] = filter(child, cs)
			} else if s.Members.Has(pe) {
				out[k] = child
			}
		}
		return out
	case []any:
		out := []any{}
		pes := elements(s)
		for i, item := range t {
			pe, ok := match(pes, item, i)
			if !ok {
				continue
			}
			if cs, ok := s.Children.Get(pe); ok {
				out = append(out, filter(item, cs))
			} else if s.Members.Has(pe) {
				out = append(out, item)
			}
		}
		return out
	default:
		return v
	}
}

// elements are the path elements s names directly: members and children.
func elements(s *fieldpath.Set) []fieldpath.PathElement {
	var pes []fieldpath.PathElement
	s.Members.Iterate(func(pe fieldpath.PathElement) { pes = append(pes, pe) })
	s.Children.Iterate(func(pe fieldpath.PathElement) { pes = append(pes, pe) })
	return pes
}

// match finds the path element that names list item i.
func match(pes []fieldpath.PathElement, item any, i int) (fieldpath.PathElement, bool) {
	for _, pe := range pes {
		switch {
		case pe.Key != nil:
			m, ok := item.(map[string]any)
			if !ok {
				continue
			}
			all := true
			for _, f := range *pe.Key {
				fv, ok := m[f.Name]
				if !ok || !value.Equals(value.NewValueInterface(fv), f.Value) {
					all = false
					break
				}
			}
			if all {
				return pe, true
			}
		case pe.Value != nil:
			if value.Equals(value.NewValueInterface(item), *pe.Value) {
				return pe, true
			}
		case pe.Index != nil:
			if *pe.Index == i {
				return pe, true
			}
		}
	}
	return fieldpath.PathElement{}, false
}

// compare lists the changes from live to merged, both already filtered by s. A field
// the set owns whole is one change; inside a field it owns in part, compare descends.
// A nil set owns everything, descending into maps only.
func compare(live, merged any, s *fieldpath.Set, path fieldpath.Path, out *[]Change) {
	switch l := live.(type) {
	case map[string]any:
		m, ok := merged.(map[string]any)
		if !ok {
			break
		}
		keys := map[string]bool{}
		for k := range l {
			keys[k] = true
		}
		for k := range m {
			keys[k] = true
		}
		sorted := make([]string, 0, len(keys))
		for k := range keys {
			sorted = append(sorted, k)
		}
		sort.Strings(sorted)
		for _, k := range sorted {
			pe := fieldpath.FieldNameElement(k)
			var cs *fieldpath.Set
			if s != nil {
				cs, _ = s.Children.Get(pe)
			}
			descend := cs != nil || s == nil
			compareChild(l, m, k, pe, cs, descend, path, out)
		}
		return
	case []any:
		m, ok := merged.([]any)
		if !ok || s == nil {
			break
		}
		pes := elements(s)
		type item struct {
			pe fieldpath.PathElement
			v  any
		}
		index := func(list []any) (map[string]any, []item) {
			byKey := map[string]any{}
			var order []item
			for i, v := range list {
				if pe, ok := match(pes, v, i); ok {
					byKey[pe.String()] = v
					order = append(order, item{pe, v})
				}
			}
			return byKey, order
		}
		lk, lo := index(l)
		mk, mo := index(m)
		seen := map[string]bool{}
		for _, it := range append(lo, mo...) {
			key := it.pe.String()
			if seen[key] {
				continue
			}
			seen[key] = true
			cs, _ := s.Children.Get(it.pe)
			compareChild(lk, mk, key, it.pe, cs, cs != nil, path, out)
		}
		return
	}
	if !reflect.DeepEqual(live, merged) {
		*out = append(*out, Change{Path: path.String(), Op: Replace, Live: live, Merged: merged})
	}
}

// compareChild compares the entry key of two maps (fields, or list items by key).
func compareChild(l, m map[string]any, key string, pe fieldpath.PathElement, cs *fieldpath.Set, descend bool, path fieldpath.Path, out *[]Change) {
	lv, inLive := l[key]
	mv, inMerged := m[key]
	p := append(append(fieldpath.Path{}, path...), pe)
	switch {
	case inLive && !inMerged:
		*out = append(*out, Change{Path: p.String(), Op: Remove, Live: lv})
	case !inLive && inMerged:
		*out = append(*out, Change{Path: p.String(), Op: Add, Merged: mv})
	case descend:
		compare(lv, mv, cs, p, out)
	case !reflect.DeepEqual(lv, mv):
		*out = append(*out, Change{Path: p.String(), Op: Replace, Live: lv, Merged: mv})
	}
}
