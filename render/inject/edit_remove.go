package inject

import (
	"fmt"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// entryEnd is the offset just past the last content line of the block entry (or list
// item) that starts on line with its key (or dash) at column col: the lines after it
// that are blank, comments or indented deeper, plus "- " items at col (kubectl's
// compact lists) when the entry is a mapping key.
func (d *yamlDoc) entryEnd(line, col int, isKey bool) int {
	last := line
	for l := line + 1; l <= len(d.lineStart); l++ {
		text := d.lineText(l)
		trimmed := strings.TrimLeft(text, " ")
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		ind := len(text) - len(trimmed)
		if ind > col-1 || (isKey && ind == col-1 && strings.HasPrefix(trimmed, "- ")) || (isKey && ind == col-1 && trimmed == "-") {
			last = l
			continue
		}
		break
	}
	return d.lineEnd(last)
}

// onOwnLine tells whether a node starts its line (nothing but spaces before it).
func (d *yamlDoc) onOwnLine(n *yaml.Node) bool {
	return strings.TrimSpace(d.lineText(n.Line)[:n.Column-1]) == ""
}

// nodeEnd is the offset just past a flow collection or single-line scalar.
func (d *yamlDoc) nodeEnd(n *yaml.Node) (int, error) {
	start := d.offset(n.Line, n.Column)
	switch n.Kind {
	case yaml.MappingNode, yaml.SequenceNode:
		end, err := matchBrace(d.src, start)
		return end + 1, err
	case yaml.ScalarNode:
		if n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
			return 0, fmt.Errorf("cannot edit a block scalar inside a flow collection")
		}
		return start + scalarLen(d.src[start:d.lineEnd(n.Line)], n, true), nil
	}
	return 0, fmt.Errorf("cannot edit this node in place")
}

// removeKeys deletes the entries of mapping m whose keys are in drop. It returns how
// many entries remain; when none would, it deletes nothing and the caller removes m.
func (d *yamlDoc) removeKeys(m *yaml.Node, drop map[string]bool) (int, error) {
	var kept, gone []int
	for i := 0; i+1 < len(m.Content); i += 2 {
		if drop[m.Content[i].Value] {
			gone = append(gone, i)
		} else {
			kept = append(kept, i)
		}
	}
	if len(gone) == 0 || len(kept) == 0 {
		return len(kept), nil
	}
	if m.Style&yaml.FlowStyle != 0 {
		var parts []string
		for _, i := range kept {
			s := d.offset(m.Content[i].Line, m.Content[i].Column)
			e, err := d.nodeEnd(m.Content[i+1])
			if err != nil {
				return 0, err
			}
			parts = append(parts, string(d.src[s:e]))
		}
		return len(kept), d.replaceFlow(m, "{"+strings.Join(parts, ", ")+"}")
	}
	for _, i := range gone {
		k := m.Content[i]
		if !d.onOwnLine(k) {
			return 0, fmt.Errorf("cannot remove %s in place", k.Value)
		}
		start := d.lineStart[k.Line-1]
		d.edits = append(d.edits, splice{at: start, remove: d.entryEnd(k.Line, k.Column, true) - start})
	}
	return len(kept), nil
}

// removeItems deletes the items of sequence seq for which drop is true. It returns how
// many remain; when none would, it deletes nothing and the caller removes seq's key.
func (d *yamlDoc) removeItems(seq *yaml.Node, drop func(*yaml.Node) bool) (int, error) {
	var kept, gone []*yaml.Node
	for _, it := range seq.Content {
		if drop(it) {
			gone = append(gone, it)
		} else {
			kept = append(kept, it)
		}
	}
	if len(gone) == 0 || len(kept) == 0 {
		return len(kept), nil
	}
	if seq.Style&yaml.FlowStyle != 0 {
		var parts []string
		for _, it := range kept {
			s := d.offset(it.Line, it.Column)
			e, err := d.nodeEnd(it)
			if err != nil {
				return 0, err
			}
			parts = append(parts, string(d.src[s:e]))
		}
		return len(kept), d.replaceFlow(seq, "["+strings.Join(parts, ", ")+"]")
	}
	dash := d.dashColumn(seq)
	for _, it := range gone {
		start := d.lineStart[it.Line-1]
		d.edits = append(d.edits, splice{at: start, remove: d.entryEnd(it.Line, dash, false) - start})
	}
	return len(kept), nil
}

func (d *yamlDoc) replaceFlow(n *yaml.Node, text string) error {
	start := d.offset(n.Line, n.Column)
	end, err := d.nodeEnd(n)
	if err != nil {
		return err
	}
	d.edits = append(d.edits, splice{at: start, remove: end - start, text: text})
	return nil
}
