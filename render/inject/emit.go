package inject

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// New content is built as yaml.Node trees (strings, nested mappings, Kubernetes
// objects in their JSON field order) and written by the emitter, in block style at a
// given indentation or in flow style. Every string goes through scalarText.

// strNode is a string scalar.
func strNode(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s} }

// mapNode is a mapping of string keys to values, in the given order.
func mapNode(entries ...*yaml.Node) *yaml.Node {
	return &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Content: entries}
}

// kvNodes are kvs as mapping content.
func kvNodes(kvs []kv) []*yaml.Node {
	var out []*yaml.Node
	for _, p := range kvs {
		out = append(out, strNode(p.key), strNode(p.value))
	}
	return out
}

// nestedNode is path → kvs as nested mappings' content: a: {b: {k: v}}.
func nestedNode(path []string, kvs []kv) []*yaml.Node {
	content := kvNodes(kvs)
	for i := len(path) - 1; i >= 0; i-- {
		content = []*yaml.Node{strNode(path[i]), mapNode(content...)}
	}
	return content
}

// objectNode is v (a Kubernetes object or part of one) as a node, in its JSON field
// order. It reads the JSON itself: a YAML parser would refuse strings holding
// characters YAML cannot carry raw, which the emitter escapes.
func objectNode(v any) (*yaml.Node, error) {
	j, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.UseNumber()
	return jsonNode(dec)
}

func jsonNode(dec *json.Decoder) (*yaml.Node, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		n := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		if t == '{' {
			n.Kind, n.Tag = yaml.MappingNode, "!!map"
		}
		for dec.More() {
			if n.Kind == yaml.MappingNode {
				k, err := dec.Token()
				if err != nil {
					return nil, err
				}
				n.Content = append(n.Content, strNode(k.(string)))
			}
			c, err := jsonNode(dec)
			if err != nil {
				return nil, err
			}
			n.Content = append(n.Content, c)
		}
		if _, err := dec.Token(); err != nil { // the closing delimiter
			return nil, err
		}
		return n, nil
	case string:
		return strNode(t), nil
	case json.Number:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: t.String()}, nil
	case bool:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: fmt.Sprint(t)}, nil
	case nil:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null"}, nil
	}
	return nil, fmt.Errorf("unexpected JSON token %v", tok)
}

// emitter writes new nodes in a document's style.
type emitter struct {
	json    bool   // the document is JSON
	step    string // one level of block indentation
	compact bool   // block lists under a key start at the key's column, as kubectl writes them
}

func (e emitter) scalar(n *yaml.Node, flow bool) string {
	if n.Tag != "!!str" {
		return n.Value // numbers, bools and null from JSON: already valid plain scalars
	}
	switch {
	case e.json:
		return scalarText(n.Value, inJSON)
	case flow:
		return scalarText(n.Value, inFlow)
	}
	return scalarText(n.Value, inBlock)
}

// flow writes n in flow style (JSON in a JSON document).
func (e emitter) flow(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		parts := make([]string, 0, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			parts = append(parts, e.scalar(n.Content[i], true)+": "+e.flow(n.Content[i+1]))
		}
		return "{" + strings.Join(parts, ", ") + "}"
	case yaml.SequenceNode:
		parts := make([]string, 0, len(n.Content))
		for _, c := range n.Content {
			parts = append(parts, e.flow(c))
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	return e.scalar(n, true)
}

// flowEntries writes mapping content as flow entries, without braces.
func (e emitter) flowEntries(content []*yaml.Node) string {
	s := e.flow(mapNode(content...))
	return s[1 : len(s)-1]
}

// flowItems writes sequence items as flow items, without brackets.
func (e emitter) flowItems(items []*yaml.Node) string {
	s := e.flow(&yaml.Node{Kind: yaml.SequenceNode, Content: items})
	return s[1 : len(s)-1]
}

func isEmptyCollection(n *yaml.Node) bool {
	return (n.Kind == yaml.MappingNode || n.Kind == yaml.SequenceNode) && len(n.Content) == 0
}

// entryLines writes mapping content as block lines at indent (no line breaks).
func (e emitter) entryLines(content []*yaml.Node, indent string) []string {
	var out []string
	for i := 0; i+1 < len(content); i += 2 {
		k, v := e.scalar(content[i], false), content[i+1]
		switch {
		case v.Kind == yaml.MappingNode && !isEmptyCollection(v):
			out = append(out, indent+k+":")
			out = append(out, e.entryLines(v.Content, indent+e.step)...)
		case v.Kind == yaml.SequenceNode && !isEmptyCollection(v):
			out = append(out, indent+k+":")
			dash := indent
			if !e.compact {
				dash += e.step
			}
			out = append(out, e.itemLines(v.Content, dash)...)
		case v.Kind == yaml.ScalarNode && v.Tag == "!!str" && literalOK(v.Value):
			out = append(out, indent+k+": "+literalHeader(v.Value))
			out = append(out, literalLines(v.Value, indent+e.step)...)
		case v.Kind == yaml.ScalarNode:
			out = append(out, indent+k+": "+e.scalar(v, false))
		default:
			out = append(out, indent+k+": "+e.flow(v))
		}
	}
	return out
}

// itemLines writes sequence items as block lines with their dashes at indent.
func (e emitter) itemLines(items []*yaml.Node, indent string) []string {
	var out []string
	inner := indent + "  "
	for _, it := range items {
		var lines []string
		switch {
		case it.Kind == yaml.MappingNode && !isEmptyCollection(it):
			lines = e.entryLines(it.Content, inner)
		case it.Kind == yaml.SequenceNode && !isEmptyCollection(it):
			lines = e.itemLines(it.Content, inner)
		case it.Kind == yaml.ScalarNode && it.Tag == "!!str" && literalOK(it.Value):
			lines = append([]string{inner + literalHeader(it.Value)}, literalLines(it.Value, inner)...)
		case it.Kind == yaml.ScalarNode:
			lines = []string{inner + e.scalar(it, false)}
		default:
			lines = []string{inner + e.flow(it)}
		}
		lines[0] = indent + "- " + strings.TrimPrefix(lines[0], inner)
		out = append(out, lines...)
	}
	return out
}

func literalHeader(s string) string {
	if strings.HasSuffix(s, "\n") {
		return "|"
	}
	return "|-"
}

func literalLines(s, indent string) []string {
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	for i := range lines {
		lines[i] = indent + lines[i]
	}
	return lines
}
