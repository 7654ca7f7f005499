package manifest

import (
	"fmt"
	"slices"
	"strings"

	"sigs.k8s.io/yaml"
)

// AddMetadataEntry adds key: value at the end of the document's metadata.labels or
// metadata.annotations (field), in the text, creating the field as metadata's first
// key when it has none; every other byte stays as it was. It expects block style, as
// the charts write; the result is decoded and checked, never trusted. value is
// written as given: quote it (a JSON string is a YAML scalar) unless it is plain.
func AddMetadataEntry(o Object, field, key, value string) (Object, error) {
	what := strings.TrimSuffix(field, "s") // label, annotation
	if field != "labels" && field != "annotations" {
		return o, fmt.Errorf("metadata field %q: want labels or annotations", field)
	}
	lines := strings.SplitAfter(string(o.YAML), "\n")
	meta := slices.Index(lines, "metadata:\n")
	if meta < 0 {
		return o, fmt.Errorf("%s: %s: no block metadata mapping to give a %s", o.Source, o, what)
	}
	end := meta + 1 // the end of metadata's block
	for end < len(lines) && (indent(lines[end]) > 0 || strings.TrimSpace(lines[end]) == "") && lines[end] != "" {
		end++
	}
	if end == meta+1 {
		return o, fmt.Errorf("%s: %s: metadata is empty", o.Source, o)
	}
	child := indent(lines[meta+1])
	pad := strings.Repeat(" ", child)
	at, entry := meta+1, pad+field+":\n"+pad+pad+key+": "+value+"\n"
	for i := meta + 1; i < end; i++ {
		if lines[i] != pad+field+":\n" {
			continue
		}
		j := i + 1
		for j < end && indent(lines[j]) > child {
			j++
		}
		if j == i+1 {
			return o, fmt.Errorf("%s: %s: metadata.%s is empty", o.Source, o, field)
		}
		at, entry = j, strings.Repeat(" ", indent(lines[i+1]))+key+": "+value+"\n"
		break
	}
	text := strings.Join(slices.Insert(lines, at, entry), "")
	read := func(doc []byte) (map[string]any, error) {
		var m struct {
			Metadata map[string]any `json:"metadata"`
		}
		err := yaml.Unmarshal(doc, &m)
		entries, _ := m.Metadata[field].(map[string]any)
		return entries, err
	}
	before, err := read(o.YAML)
	if err != nil {
		return o, fmt.Errorf("%s: %w", o.Source, err)
	}
	if _, ok := before[key]; ok {
		return o, fmt.Errorf("%s: %s already carries the %s %s", o.Source, o, what, key)
	}
	after, err := read([]byte(text))
	if err != nil {
		return o, fmt.Errorf("%s: giving %s the %s %s: %w", o.Source, o, what, key, err)
	}
	var want string
	if err := yaml.Unmarshal([]byte(value), &want); err != nil || after[key] != want || len(after) != len(before)+1 {
		return o, fmt.Errorf("%s: %s: could not add the %s %s (%s not in block style?)", o.Source, o, what, key, field)
	}
	o.YAML = []byte(text)
	return o, nil
}

func indent(line string) int {
	return len(line) - len(strings.TrimLeft(line, " "))
}
