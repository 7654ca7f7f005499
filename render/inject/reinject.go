package inject

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	yaml "go.yaml.in/yaml/v3"
	corev1 "k8s.io/api/core/v1"
	sigsyaml "sigs.k8s.io/yaml"
)

// meshParts are mesh's items in a pod spec, by list, in order, as JSON of their typed
// objects (so that equal objects compare equal however they are written).
type meshParts map[string][]meshPart

type meshPart struct {
	name string
	json []byte
}

// parts are the sidecar's items as meshParts.
func (sc Sidecar) parts() meshParts {
	p := meshParts{}
	add := func(list, name string, v any) {
		j, _ := json.Marshal(v) // typed Kubernetes objects always marshal
		p[list] = append(p[list], meshPart{name, j})
	}
	for _, c := range sc.InitContainers {
		add("initContainers", c.Name, c)
	}
	for _, c := range sc.Containers {
		add("containers", c.Name, c)
	}
	for _, v := range sc.Volumes {
		add("volumes", v.Name, v)
	}
	return p
}

func hasMeshParts(spec *yaml.Node) bool {
	for _, list := range meshLists {
		if seq := at(spec, list); seq != nil && seq.Kind == yaml.SequenceNode {
			for _, it := range seq.Content {
				if meshItem[list](it) {
					return true
				}
			}
		}
	}
	return false
}

// currentParts decodes mesh's items of a pod spec.
func currentParts(spec *yaml.Node) (meshParts, error) {
	p := meshParts{}
	for _, list := range meshLists {
		seq := at(spec, list)
		if seq == nil || seq.Kind != yaml.SequenceNode {
			continue
		}
		for _, it := range seq.Content {
			if !meshItem[list](it) {
				continue
			}
			raw, err := yaml.Marshal(it)
			if err != nil {
				return nil, err
			}
			var typed any = &corev1.Container{}
			if list == "volumes" {
				typed = &corev1.Volume{}
			}
			if err := sigsyaml.Unmarshal(raw, typed); err != nil {
				return nil, fmt.Errorf("%s %s: %w", list, scalar(it, "name"), err)
			}
			j, _ := json.Marshal(typed)
			p[list] = append(p[list], meshPart{scalar(it, "name"), j})
		}
	}
	return p, nil
}

// changes lists how want differs from p: added, removed and moved items, and the
// fields that differ. None means p is current.
func (p meshParts) changes(want meshParts) []string {
	var out []string
	where := func(parts meshParts) map[string]string {
		m := map[string]string{}
		for list, items := range parts {
			for _, it := range items {
				m[it.name] = list
			}
		}
		return m
	}
	have, wanted := where(p), where(want)
	for _, list := range meshLists {
		var names []string
		for _, it := range want[list] {
			names = append(names, it.name)
		}
		var got []string
		for _, it := range p[list] {
			got = append(got, it.name)
		}
		for _, it := range want[list] {
			switch l, ok := have[it.name]; {
			case !ok:
				out = append(out, "added "+it.name)
			case l != list:
				out = append(out, fmt.Sprintf("moved %s from %s to %s", it.name, l, list))
			}
		}
		for _, it := range p[list] {
			if _, ok := wanted[it.name]; !ok {
				out = append(out, "removed "+it.name)
			}
		}
		if strings.Join(names, ",") != strings.Join(got, ",") && len(names) == len(got) {
			out = append(out, list+" reordered")
		}
		for _, w := range want[list] {
			for _, h := range p[list] {
				if w.name == h.name && !bytes.Equal(w.json, h.json) {
					out = append(out, w.name+": "+strings.Join(fieldDiff(h.json, w.json), ", "))
				}
			}
		}
	}
	return out
}

// fieldDiff names the top-level fields that differ between two JSON objects.
func fieldDiff(a, b []byte) []string {
	var ma, mb map[string]json.RawMessage
	_ = json.Unmarshal(a, &ma)
	_ = json.Unmarshal(b, &mb)
	var out []string
	for k, v := range mb {
		if !bytes.Equal(ma[k], v) {
			out = append(out, k)
		}
	}
	for k := range ma {
		if _, ok := mb[k]; !ok {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// versionChange says how the template's proxy version changes, if it does.
func versionChange(tmpl *yaml.Node, version string) []string {
	old := scalar(tmpl, "metadata", "annotations", ProxyVersion)
	if old == version {
		return nil
	}
	if old == "" {
		old = "none"
	}
	return []string{fmt.Sprintf("proxy version %s → %s", old, version)}
}
