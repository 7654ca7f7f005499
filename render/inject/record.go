package inject

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// A record is what the marker OriginalAnnotations says. Its short form, the value
// alone, is a token: how the annotations value was written before inject filled it.
// Its long form, a JSON object (whose text starts with `{"`), is written only when a
// token does not say enough:
//
//   - "annotations": the token of the annotations value, as in the short form;
//   - "metadata": the token of the pod template's (or object's) metadata value, when
//     that was the null or {} inject filled;
//   - "added" and "changed": when the object already had mesh annotations before
//     inject (config.meshplane.io/*, meshplane.io/proxy-version) and was not yet
//     injected, the mesh annotations inject added, and the original text of those
//     whose value it changed. Uninject then removes what inject added, writes back
//     what it changed, and keeps the mesh annotations it found and left alone.
//
// With no "added" and no "changed" (a short form, no marker at all), uninject removes
// every mesh annotation, as Linkerd does.
type record struct {
	Annotations *string           `json:"annotations,omitempty"`
	Metadata    *string           `json:"metadata,omitempty"`
	Added       []string          `json:"added,omitempty"`
	Changed     map[string]string `json:"changed,omitempty"`
}

// tracks tells whether the record says which mesh annotations inject wrote.
func (r record) tracks() bool { return r.Added != nil || r.Changed != nil }

// parseRecord reads a marker's value: a token (the short form) or a JSON object. A
// JSON object with unknown fields, or not exactly one object, is an error.
func parseRecord(v string) (record, error) {
	if !strings.HasPrefix(v, `{"`) {
		return record{Annotations: &v}, nil
	}
	dec := json.NewDecoder(strings.NewReader(v))
	dec.DisallowUnknownFields()
	var r record
	if err := dec.Decode(&r); err != nil {
		return record{}, fmt.Errorf("not a record: %w", err)
	}
	if dec.More() {
		return record{}, fmt.Errorf("not a record: text after the object")
	}
	return r, nil
}

// value is the marker's value for r: the token alone when that is all r says.
func (r record) value() string {
	if r.Annotations != nil && r.Metadata == nil && !r.tracks() {
		return *r.Annotations
	}
	slices.Sort(r.Added)
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(r) // strings and a map of strings: it cannot fail
	return strings.TrimSuffix(b.String(), "\n")
}

// checkRecord is CheckAnnotation for the marker: every token in it must be one uninject
// writes back (in some style), and every changed text a string scalar.
func checkRecord(v string) error {
	r, err := parseRecord(v)
	if err != nil {
		return err
	}
	for _, t := range []*string{r.Annotations, r.Metadata} {
		if t != nil && !markerOK(*t, inBlock) && !markerOK(*t, inFlow) {
			return fmt.Errorf("not a form inject writes (\"\", ~, null, Null, NULL, {} or key-only); uninject will not write %q back", *t)
		}
	}
	for k, text := range r.Changed {
		if !meshAnnotation(k, strNode("")) || k == OriginalAnnotations {
			return fmt.Errorf("changed: %s is not a mesh annotation", k)
		}
		if _, ok := scalarFromText(text, inFlow); !ok {
			if _, ok := scalarFromText(text, inBlock); !ok {
				return fmt.Errorf("changed: %s: %q is not a string scalar", k, text)
			}
		}
	}
	for _, k := range r.Added {
		if !meshAnnotation(k, strNode("")) || k == OriginalAnnotations {
			return fmt.Errorf("added: %s is not a mesh annotation", k)
		}
	}
	return nil
}

// scalarFromText tells whether text, written as a mapping value in style s, is one
// string scalar on one line and nothing else, and returns its value. Only such text is
// written back for a changed annotation: anything else could inject YAML.
func scalarFromText(text string, s scalarStyle) (string, bool) {
	if text == "" || strings.ContainsAny(text, "\r\n") {
		return "", false
	}
	if s == inJSON {
		var v string
		if !strings.HasPrefix(text, `"`) || json.Unmarshal([]byte(text), &v) != nil {
			return "", false
		}
		return v, true
	}
	src := "k: " + text + "\n"
	if s == inFlow {
		src = "{k: " + text + "}\n"
	}
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(src), &n); err != nil || len(n.Content) != 1 {
		return "", false
	}
	m := n.Content[0]
	if m.Kind != yaml.MappingNode || len(m.Content) != 2 {
		return "", false
	}
	v := m.Content[1]
	if v.Kind != yaml.ScalarNode || v.Tag != "!!str" || v.Anchor != "" || v.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
		return "", false
	}
	return v.Value, true
}

// valueText is the source text of the scalar v, the value of a mapping entry.
func (d *yamlDoc) valueText(v *yaml.Node) (string, error) {
	start := d.contentStart(v)
	end, err := d.nodeEnd(v)
	if err != nil {
		return "", err
	}
	return string(d.src[start:max(end, start)]), nil
}

// track updates r for kvs about to be set in the annotations mapping ann, when the
// object already had mesh annotations and was not injected (see record). It reports
// whether r must be written. An object that says `meshplane.io/inject: enabled` with
// no record was injected by an inject that found no mesh annotation: everything mesh's
// in it is inject's, and no record is needed.
func (d *yamlDoc) track(r *record, ann *yaml.Node, kvs []kv) (bool, error) {
	if !r.tracks() {
		if ann == nil || scalar(ann, InjectAnnotation) == Enabled {
			return false, nil
		}
		found := false
		for i := 0; i+1 < len(ann.Content); i += 2 {
			k := ann.Content[i].Value
			found = found || k != OriginalAnnotations && meshAnnotation(k, ann.Content[i+1])
		}
		if !found {
			return false, nil
		}
	}
	if r.Changed == nil {
		r.Changed = map[string]string{}
	}
	for _, p := range kvs {
		_, v := lookup(ann, p.key)
		switch {
		case p.key == OriginalAnnotations:
		case v == nil:
			if !slices.Contains(r.Added, p.key) {
				r.Added = append(r.Added, p.key)
			}
		case v.Kind == yaml.ScalarNode && v.Value == p.value && v.Tag == "!!str":
		case slices.Contains(r.Added, p.key):
		default:
			if _, ok := r.Changed[p.key]; !ok {
				text, err := d.valueText(v)
				if err != nil {
					return false, err
				}
				r.Changed[p.key] = text
			}
		}
	}
	if len(r.Changed) == 0 {
		r.Changed = nil
	}
	return true, nil
}
