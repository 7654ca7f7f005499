package inject

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// A yamlDoc edits one YAML document by splicing text into its original bytes. yaml.v3
// is used only to find where things are; nothing is re-encoded, so comments, blank
// lines, key order, quoting and indentation stay exactly as they were.
type yamlDoc struct {
	src       []byte
	lineStart []int // byte offset of each line's start, 0-based line index
	root      *yaml.Node
	edits     []splice
	json      bool       // the document is JSON: quote inserted text as JSON
	cache     *itemCache // rendered list items, shared by an Injector's documents
}

type splice struct {
	at     int    // byte offset
	remove int    // bytes removed at at
	text   string // inserted at at
}

func parseYAMLDoc(src []byte) (*yamlDoc, error) {
	for i, b := range src {
		if b == '\r' && (i+1 == len(src) || src[i+1] != '\n') {
			return nil, fmt.Errorf("line breaks must be LF or CRLF; a lone CR (old Mac line ending) is not supported")
		}
	}
	var n yaml.Node
	if err := yaml.Unmarshal(src, &n); err != nil {
		return nil, err
	}
	d := &yamlDoc{src: src, lineStart: []int{0}}
	for i, b := range src {
		if b == '\n' {
			d.lineStart = append(d.lineStart, i+1)
		}
	}
	if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		d.root = n.Content[0]
	}
	return d, nil
}

// offset is the byte offset of a 1-based line and column.
func (d *yamlDoc) offset(line, col int) int {
	if line-1 >= len(d.lineStart) {
		return len(d.src)
	}
	return d.lineStart[line-1] + col - 1
}

// lineEnd is the offset just past the newline ending the 1-based line (or the end).
func (d *yamlDoc) lineEnd(line int) int {
	if line < len(d.lineStart) {
		return d.lineStart[line]
	}
	return len(d.src)
}

// lineText is the 1-based line without its newline.
func (d *yamlDoc) lineText(line int) string {
	return strings.TrimRight(string(d.src[d.lineStart[line-1]:d.lineEnd(line)]), "\r\n")
}

// lineEnding is the document's newline ("\r\n" if its first line ends so).
func (d *yamlDoc) lineEnding() string {
	if i := bytes.IndexByte(d.src, '\n'); i > 0 && d.src[i-1] == '\r' {
		return "\r\n"
	}
	return "\n"
}

// bytes applies the edits.
func (d *yamlDoc) bytes() []byte {
	if len(d.edits) == 0 {
		return d.src
	}
	edits := append([]splice(nil), d.edits...)
	sort.SliceStable(edits, func(i, j int) bool { return edits[i].at < edits[j].at })
	var b bytes.Buffer
	pos := 0
	for _, e := range edits {
		b.Write(d.src[pos:e.at])
		b.WriteString(e.text)
		pos = e.at + e.remove
	}
	b.Write(d.src[pos:])
	return b.Bytes()
}

// lookup returns the value node of key in mapping m.
func lookup(m *yaml.Node, key string) (keyNode, value *yaml.Node) {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil, nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i], m.Content[i+1]
		}
	}
	return nil, nil
}

// at walks mapping keys from n; nil if any is missing or not a mapping.
func at(n *yaml.Node, path ...string) *yaml.Node {
	for _, k := range path {
		_, n = lookup(n, k)
		if n == nil {
			return nil
		}
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// quote renders s as a scalar of the document's syntax.
func (d *yamlDoc) quote(s string) string {
	if d.json {
		b, _ := json.Marshal(s)
		return string(b)
	}
	return quoteYAML(s)
}

// quoteYAML renders s as a plain YAML scalar, or a quoted one where it needs quoting.
func quoteYAML(s string) string {
	var n yaml.Node
	n.SetString(s)
	out, err := yaml.Marshal(&n)
	if err != nil || strings.Contains(strings.TrimSpace(string(out)), "\n") {
		return strconv.Quote(s)
	}
	return strings.TrimSpace(string(out))
}

// kv is one key and its string value.
type kv struct{ key, value string }

// setStrings sets each key to its value in the mapping reached by path from m, creating
// the missing mappings of the path, all in one splice. It reports whether the document
// changed. Keys already holding their value are left alone.
func (d *yamlDoc) setStrings(m *yaml.Node, path []string, kvs []kv) (bool, error) {
	cur := m
	i := 0
	for ; i < len(path); i++ {
		kn, v := lookup(cur, path[i])
		if v == nil {
			break
		}
		if v.Kind != yaml.MappingNode {
			if isNull(v) {
				return true, d.fillNull(kn, v, path[i+1:], kvs, cur.Style&yaml.FlowStyle != 0)
			}
			return false, fmt.Errorf("%s is a %s, not a mapping", strings.Join(path[:i+1], "."), kindName(v))
		}
		cur = v
	}
	if i < len(path) {
		return true, d.addEntries(cur, path[i:], kvs)
	}
	var missing []kv
	changed := false
	for _, p := range kvs {
		_, v := lookup(cur, p.key)
		switch {
		case v == nil:
			missing = append(missing, p)
		case v.Kind == yaml.ScalarNode && v.Value == p.value:
		default:
			if err := d.replaceScalar(v, p.value, cur.Style&yaml.FlowStyle != 0); err != nil {
				return false, fmt.Errorf("%s: %w", p.key, err)
			}
			changed = true
		}
	}
	if len(missing) == 0 {
		return changed, nil
	}
	return true, d.addEntries(cur, nil, missing)
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "list"
	case yaml.ScalarNode:
		return "scalar (" + strings.TrimPrefix(n.Tag, "!!") + ")"
	}
	return "node"
}

// replaceScalar replaces a single-line scalar's text.
func (d *yamlDoc) replaceScalar(v *yaml.Node, value string, flow bool) error {
	if v.Kind != yaml.ScalarNode || v.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
		return fmt.Errorf("cannot replace a %s value in place", kindName(v))
	}
	start := d.offset(v.Line, v.Column)
	end := start + scalarLen(d.src[start:d.lineEnd(v.Line)], v, flow)
	d.edits = append(d.edits, splice{at: start, remove: end - start, text: d.quote(value)})
	return nil
}

// scalarLen is the length of a single-line scalar's text at the start of rest. In a
// flow collection a plain scalar also ends at ",", "}" or "]".
func scalarLen(rest []byte, v *yaml.Node, flow bool) int {
	switch {
	case v.Style&yaml.DoubleQuotedStyle != 0:
		for i := 1; i < len(rest); i++ {
			switch rest[i] {
			case '\\':
				i++
			case '"':
				return i + 1
			}
		}
	case v.Style&yaml.SingleQuotedStyle != 0:
		for i := 1; i < len(rest); i++ {
			if rest[i] == '\'' {
				if i+1 < len(rest) && rest[i+1] == '\'' {
					i++
					continue
				}
				return i + 1
			}
		}
	}
	// Plain: up to " #", a flow indicator in flow context, or the end of the line.
	s := string(rest)
	end := len(strings.TrimRight(s, "\r\n"))
	if j := strings.Index(s, " #"); j >= 0 && j < end {
		end = j
	}
	if flow {
		if j := strings.IndexAny(s, ",}]"); j >= 0 && j < end {
			end = j
		}
	}
	return len(strings.TrimRight(s[:end], " \t"))
}

// nested renders the path as nested block mappings holding kvs, starting at indent.
func nested(quote func(string) string, path []string, kvs []kv, indent, step, nl string) string {
	var b strings.Builder
	for i, k := range path {
		b.WriteString(indent + strings.Repeat(step, i) + quote(k) + ":" + nl)
	}
	for _, p := range kvs {
		b.WriteString(indent + strings.Repeat(step, len(path)) + quote(p.key) + ": " + quote(p.value) + nl)
	}
	return b.String()
}

// flowEntries renders kvs as flow entries, nested under path: a: {b: {k: v, k2: v2}}.
func flowEntries(quote func(string) string, path []string, kvs []kv) string {
	var parts []string
	for _, p := range kvs {
		parts = append(parts, quote(p.key)+": "+quote(p.value))
	}
	s := strings.Join(parts, ", ")
	for i := len(path) - 1; i >= 0; i-- {
		s = quote(path[i]) + ": {" + s + "}"
	}
	return s
}

// fillNull replaces a null value (`key:` or `key: null`) with the mapping keys→value.
func (d *yamlDoc) fillNull(kn, v *yaml.Node, path []string, kvs []kv, flow bool) error {
	if v.Line == kn.Line && v.Value == "" {
		// `key:` with nothing after it: open a block under the key.
		indent := strings.Repeat(" ", kn.Column-1)
		text := d.lineText(kn.Line)
		pos := d.offset(kn.Line, 1) + len(strings.TrimRight(text, " \t"))
		if c := strings.Index(text, " #"); c >= 0 {
			pos = d.offset(kn.Line, 1) + len(strings.TrimRight(text[:c], " \t"))
		}
		d.edits = append(d.edits, splice{at: pos, text: d.lineEnding() + strings.TrimSuffix(nested(d.quote, path, kvs, indent+"  ", "  ", d.lineEnding()), d.lineEnding())})
		return nil
	}
	start := d.offset(v.Line, v.Column)
	d.edits = append(d.edits, splice{at: start, remove: scalarLen(d.src[start:d.lineEnd(v.Line)], v, flow), text: "{" + flowEntries(d.quote, path, kvs) + "}"})
	return nil
}

// addEntries adds path→kvs to mapping m: after its last entry in block style, or
// inside the braces in flow style.
func (d *yamlDoc) addEntries(m *yaml.Node, path []string, kvs []kv) error {
	if m.Style&yaml.FlowStyle != 0 || len(m.Content) == 0 {
		return d.addFlowEntry(m, path, kvs)
	}
	col := m.Content[0].Column
	pos := d.blockEnd(m)
	nl := d.lineEnding()
	text := nested(d.quote, path, kvs, strings.Repeat(" ", col-1), d.indentStep(m), nl)
	if pos > 0 && d.src[pos-1] != '\n' { // the document ends without a newline
		text = nl + strings.TrimSuffix(text, nl)
	}
	d.edits = append(d.edits, splice{at: pos, text: text})
	return nil
}

// indentStep guesses the document's indentation step from m's nested mappings.
func (d *yamlDoc) indentStep(m *yaml.Node) string {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if v := m.Content[i+1]; v.Kind == yaml.MappingNode && v.Style&yaml.FlowStyle == 0 && len(v.Content) > 0 && v.Content[0].Column > m.Content[i].Column {
			return strings.Repeat(" ", v.Content[0].Column-m.Content[i].Column)
		}
	}
	return "  "
}

// blockEnd is the offset just past the last line of block mapping m's content: the
// lines after its first key that are blank, comments or indented at least as far as
// its keys (kubectl's compact lists, "- " at the keys' column, included). Trailing
// blank and comment lines belong to whatever follows.
func (d *yamlDoc) blockEnd(m *yaml.Node) int {
	col := m.Content[0].Column
	last := m.Content[0].Line
	for line := last + 1; line <= len(d.lineStart); line++ {
		text := d.lineText(line)
		trimmed := strings.TrimLeft(text, " ")
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		if len(text)-len(trimmed) < col-1 || trimmed == "---" || trimmed == "..." {
			break
		}
		last = line
	}
	return d.lineEnd(last)
}

// addFlowEntry inserts path→kvs before the closing brace of flow mapping m.
func (d *yamlDoc) addFlowEntry(m *yaml.Node, path []string, kvs []kv) error {
	return d.addFlowRaw(m, flowEntries(d.quote, path, kvs))
}

// matchBrace returns the offset of the "}" closing the "{" at start, skipping quoted text.
func matchBrace(src []byte, start int) (int, error) {
	depth := 0
	for i := start; i < len(src); i++ {
		switch src[i] {
		case '"':
			for i++; i < len(src) && src[i] != '"'; i++ {
				if src[i] == '\\' {
					i++
				}
			}
		case '\'':
			// A single-quoted scalar ends at a quote not followed by another ('' escapes).
			for i++; i < len(src); i++ {
				if src[i] != '\'' {
					continue
				}
				if i+1 < len(src) && src[i+1] == '\'' {
					i++
					continue
				}
				break
			}
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				return i, nil
			}
		}
	}
	return 0, fmt.Errorf("unterminated flow mapping")
}
