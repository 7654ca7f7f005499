package inject

import (
	"fmt"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// Where nodes start and end in the document's bytes, from the node tree alone:
// yaml.v3 gives each node's start; the end of a node is the end of its last
// descendant, and the end of a scalar is found by scanning its own syntax (quoted,
// plain, block) from its start. Nothing here assumes a key order, an indentation or
// a layout: block and flow collections nest in any way.

// pos is the byte offset where n starts (its anchor or tag, if it has one).
func (d *yamlDoc) pos(n *yaml.Node) int { return d.offset(n.Line, n.Column) }

// contentStart is where n's own text starts, after its anchor and tag.
func (d *yamlDoc) contentStart(n *yaml.Node) int {
	p := d.pos(n)
	for p < len(d.src) && (d.src[p] == '&' || d.src[p] == '!') {
		for p < len(d.src) && !isSpaceOrBreak(d.src[p]) {
			p++
		}
		p = d.skipSpace(p, false)
	}
	return p
}

func isSpaceOrBreak(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// skipSpace skips spaces and tabs, and with breaks also line breaks and comments.
func (d *yamlDoc) skipSpace(p int, breaks bool) int {
	for p < len(d.src) {
		switch c := d.src[p]; {
		case c == ' ' || c == '\t':
			p++
		case breaks && (c == '\r' || c == '\n'):
			p++
		case breaks && c == '#' && (p == 0 || isSpaceOrBreak(d.src[p-1])):
			for p < len(d.src) && d.src[p] != '\n' {
				p++
			}
		default:
			return p
		}
	}
	return p
}

// line is the 1-based line holding offset p.
func (d *yamlDoc) line(p int) int {
	lo, hi := 0, len(d.lineStart)-1
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if d.lineStart[mid] <= p {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return lo + 1
}

// afterLine is the offset just past the line break ending the line that holds p (the
// end of the document if that line has none).
func (d *yamlDoc) afterLine(p int) int { return d.lineEnd(d.line(p)) }

// indentOf is the indentation (in columns) of the 1-based line.
func (d *yamlDoc) indentOf(line int) int {
	t := d.lineText(line)
	return len(t) - len(strings.TrimLeft(t, " "))
}

// end is the offset just past n's last character. indent is the indentation of the
// block collection holding n (-1 at the top), which bounds plain and block scalars;
// flow says n is inside a flow collection; key says n is a mapping key.
func (d *yamlDoc) end(n *yaml.Node, indent int, flow, key bool) (int, error) {
	switch n.Kind {
	case yaml.AliasNode:
		p := d.pos(n) + 1
		for p < len(d.src) && !isSpaceOrBreak(d.src[p]) && !strings.ContainsRune(",[]{}", rune(d.src[p])) {
			p++
		}
		return p, nil
	case yaml.ScalarNode:
		return d.scalarEnd(n, indent, flow, key)
	case yaml.MappingNode, yaml.SequenceNode:
		if n.Style&yaml.FlowStyle != 0 {
			return d.flowEnd(n)
		}
		if len(n.Content) == 0 {
			return 0, fmt.Errorf("line %d: an empty block collection", n.Line)
		}
		last := n.Content[len(n.Content)-1]
		childIndent := n.Column - 1
		if n.Kind == yaml.MappingNode {
			childIndent = n.Content[len(n.Content)-2].Column - 1
		}
		if isEmptyNull(last) && n.Kind == yaml.MappingNode {
			return d.colonEnd(n.Content[len(n.Content)-2], childIndent, false)
		}
		return d.end(last, childIndent, false, false)
	}
	return 0, fmt.Errorf("line %d: cannot find the end of this node", n.Line)
}

// isEmptyNull is a null written as nothing at all (`key:`).
func isEmptyNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null" && n.Value == "" && n.Anchor == ""
}

// colonEnd is the offset just past the ":" that follows mapping key k.
func (d *yamlDoc) colonEnd(k *yaml.Node, indent int, flow bool) (int, error) {
	e, err := d.end(k, indent, flow, true)
	if err != nil {
		return 0, err
	}
	p := d.skipSpace(e, flow)
	if p >= len(d.src) || d.src[p] != ':' {
		return 0, fmt.Errorf("line %d: no \":\" after key %q", k.Line, k.Value)
	}
	return p + 1, nil
}

// flowEnd is the offset just past the bracket closing flow collection n.
func (d *yamlDoc) flowEnd(n *yaml.Node) (int, error) {
	p := d.contentStart(n)
	if p >= len(d.src) || (d.src[p] != '{' && d.src[p] != '[') {
		return 0, fmt.Errorf("line %d: a flow collection without its bracket", n.Line)
	}
	closer := byte('}')
	if d.src[p] == '[' {
		closer = ']'
	}
	p++
	if len(n.Content) > 0 {
		last := n.Content[len(n.Content)-1]
		var e int
		var err error
		if n.Kind == yaml.MappingNode && isEmptyNull(last) {
			e, err = d.end(n.Content[len(n.Content)-2], 0, true, true)
		} else {
			e, err = d.end(last, 0, true, false)
		}
		if err != nil {
			return 0, err
		}
		p = e
	}
	for {
		p = d.skipSpace(p, true)
		if p < len(d.src) && (d.src[p] == ',' || d.src[p] == ':') {
			p++
			continue
		}
		break
	}
	if p >= len(d.src) || d.src[p] != closer {
		return 0, fmt.Errorf("line %d: cannot find the end of this flow collection", n.Line)
	}
	return p + 1, nil
}

// scalarEnd is the offset just past a scalar's text.
func (d *yamlDoc) scalarEnd(n *yaml.Node, indent int, flow, key bool) (int, error) {
	start := d.contentStart(n)
	if n.Tag == "!!null" && n.Value == "" {
		return start, nil // nothing written (after an anchor or tag, if any)
	}
	if start >= len(d.src) {
		return 0, fmt.Errorf("line %d: a scalar past the end", n.Line)
	}
	switch {
	case n.Style&yaml.DoubleQuotedStyle != 0:
		for i := start + 1; i < len(d.src); i++ {
			switch d.src[i] {
			case '\\':
				i++
			case '"':
				return d.checkQuoted(n, start, i+1)
			}
		}
	case n.Style&yaml.SingleQuotedStyle != 0:
		for i := start + 1; i < len(d.src); i++ {
			if d.src[i] == '\'' {
				if i+1 < len(d.src) && d.src[i+1] == '\'' {
					i++
					continue
				}
				return d.checkQuoted(n, start, i+1)
			}
		}
	case n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0:
		return d.blockScalarEnd(n, start, indent)
	default:
		return d.plainEnd(n, start, indent, flow, key)
	}
	return 0, fmt.Errorf("line %d: unterminated quoted scalar", n.Line)
}

// checkQuoted makes sure src[start:end] reads back as n's value.
func (d *yamlDoc) checkQuoted(n *yaml.Node, start, end int) (int, error) {
	if !strings.Contains(string(d.src[start:end]), "\n") {
		var v string
		if err := yaml.Unmarshal(d.src[start:end], &v); err != nil || v != n.Value {
			return 0, fmt.Errorf("line %d: cannot find the end of this quoted scalar", n.Line)
		}
	}
	return end, nil
}

// plainEnd scans a plain scalar: on each line up to a comment, ": " (or, in a flow
// collection, a flow indicator); continued on following lines indented deeper than
// the collection holding it. The text found must fold to n's value.
func (d *yamlDoc) plainEnd(n *yaml.Node, start, indent int, flow, key bool) (int, error) {
	var pieces []string
	p, end := start, start
	for {
		lineEnd := d.lineEnd(d.line(p))
		stop := p
		stopped := false // at a comment, ": " or a flow indicator, not the line's end
		for stop < lineEnd && d.src[stop] != '\n' && d.src[stop] != '\r' {
			c := d.src[stop]
			if c == '#' && stop > start && (d.src[stop-1] == ' ' || d.src[stop-1] == '\t') {
				stopped = true
				break
			}
			if c == ':' && (stop+1 >= len(d.src) || isSpaceOrBreak(d.src[stop+1]) || (flow && strings.ContainsRune(",[]{}", rune(d.src[stop+1])))) {
				stopped = true
				break
			}
			if flow && strings.ContainsRune(",[]{}", rune(c)) {
				stopped = true
				break
			}
			stop++
		}
		text := strings.TrimRight(string(d.src[p:stop]), " \t")
		pieces = append(pieces, strings.TrimLeft(text, " \t"))
		if text != "" {
			end = p + len(text)
		}
		if stopped || key || lineEnd >= len(d.src) {
			break
		}
		// A continuation line: the next non-blank line, deeper than indent (any depth
		// in a flow collection), not a comment, not a document marker.
		next := d.line(p) + 1
		blanks := 0
		for next <= len(d.lineStart) && strings.TrimSpace(d.lineText(next)) == "" {
			next++
			blanks++
		}
		if next > len(d.lineStart) {
			break
		}
		t := d.lineText(next)
		trimmed := strings.TrimLeft(t, " \t")
		if (!flow && d.indentOf(next) <= indent) || strings.HasPrefix(trimmed, "#") || t == "---" || t == "..." ||
			strings.HasPrefix(t, "--- ") || (flow && strings.ContainsRune(",[]{}", rune(trimmed[0]))) {
			break
		}
		for range blanks {
			pieces = append(pieces, "")
		}
		p = d.lineStart[next-1] + len(t) - len(trimmed)
	}
	if fold(pieces) != n.Value && (n.Tag != "!!null" || n.Value != strings.Join(pieces, "")) {
		return 0, fmt.Errorf("line %d: cannot find the end of the plain scalar %q", n.Line, n.Value)
	}
	return end, nil
}

// fold joins the lines of a multi-line plain scalar as YAML does: lines with a space,
// each empty line as a newline.
func fold(pieces []string) string {
	var b strings.Builder
	for i, s := range pieces {
		switch {
		case i == 0:
		case s == "":
			b.WriteByte('\n')
			continue
		case pieces[i-1] != "":
			b.WriteByte(' ')
		}
		b.WriteString(s)
	}
	return b.String()
}

// blockScalarEnd is the end of a literal or folded scalar: its header line, then the
// lines indented at least as deep as its content (empty lines included; trailing ones
// only with keep chomping, "+").
func (d *yamlDoc) blockScalarEnd(n *yaml.Node, start, indent int) (int, error) {
	header := d.line(start)
	head := string(d.src[start:d.lineEnd(header)])
	content := -1
	keep := false
	for _, c := range strings.TrimSpace(strings.SplitN(head, " #", 2)[0])[1:] {
		switch {
		case c >= '1' && c <= '9':
			content = max(indent, 0) + int(c-'0')
			if indent < 0 {
				content = int(c - '0')
			}
		case c == '+':
			keep = true
		}
	}
	end := start + len(strings.TrimRight(strings.SplitN(head, " #", 2)[0], " \t\r\n"))
	lastLine := header
	for l := header + 1; l <= len(d.lineStart); l++ {
		t := d.lineText(l)
		if strings.TrimSpace(t) == "" {
			if keep {
				lastLine = l
			}
			continue
		}
		ind := d.indentOf(l)
		if content < 0 {
			if ind <= indent {
				break
			}
			content = ind
		}
		if ind < content {
			break
		}
		lastLine = l
	}
	if lastLine > header {
		end = d.lineStart[lastLine-1] + len(d.lineText(lastLine))
	}
	return end, nil
}

// parents maps every node of the document to the node holding it.
func (d *yamlDoc) parentOf(n *yaml.Node) *yaml.Node {
	if d.parents == nil {
		d.parents = map[*yaml.Node]*yaml.Node{}
		var walk func(n *yaml.Node)
		walk = func(n *yaml.Node) {
			for _, c := range n.Content {
				d.parents[c] = n
				walk(c)
			}
		}
		if d.root != nil {
			walk(d.root)
		}
	}
	return d.parents[n]
}

// depth is how deep n is in the tree (the root is 0).
func (d *yamlDoc) depth(n *yaml.Node) int {
	k := 0
	for p := d.parentOf(n); p != nil; p = d.parentOf(p) {
		k++
	}
	return k
}

// inFlowCollection tells whether n is inside a flow collection.
func (d *yamlDoc) inFlowCollection(n *yaml.Node) bool {
	for p := d.parentOf(n); p != nil; p = d.parentOf(p) {
		if p.Style&yaml.FlowStyle != 0 {
			return true
		}
	}
	return false
}

// indentFor is the indentation of the block collection holding n, as end needs it.
func (d *yamlDoc) indentFor(n *yaml.Node) int {
	p := d.parentOf(n)
	switch {
	case p == nil:
		return -1
	case p.Kind == yaml.SequenceNode:
		return p.Column - 1
	case p.Kind == yaml.MappingNode:
		for i := 0; i+1 < len(p.Content); i += 2 {
			if p.Content[i] == n || p.Content[i+1] == n {
				return p.Content[i].Column - 1
			}
		}
	}
	return -1
}

// nodeEnd is end with n's context taken from the tree.
func (d *yamlDoc) nodeEnd(n *yaml.Node) (int, error) {
	isKey := false
	if p := d.parentOf(n); p != nil && p.Kind == yaml.MappingNode {
		for i := 0; i < len(p.Content); i += 2 {
			isKey = isKey || p.Content[i] == n
		}
	}
	return d.end(n, d.indentFor(n), d.inFlowCollection(n), isKey)
}

// shared tells whether n is, or is inside, a node that an alias refers to: editing it
// would also change every place the alias stands for.
func (d *yamlDoc) shared(n *yaml.Node) bool {
	if d.aliased == nil {
		d.aliased = map[*yaml.Node]bool{}
		var walk func(n *yaml.Node)
		walk = func(n *yaml.Node) {
			if n.Kind == yaml.AliasNode && n.Alias != nil {
				d.aliased[n.Alias] = true
			}
			for _, c := range n.Content {
				walk(c)
			}
		}
		if d.root != nil {
			walk(d.root)
		}
	}
	for p := n; p != nil; p = d.parentOf(p) {
		if d.aliased[p] {
			return true
		}
	}
	return false
}
