package inject

import (
	"bytes"
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"

	yaml "go.yaml.in/yaml/v3"
)

// A yamlDoc edits one YAML (or JSON) document by splicing text into its original
// bytes. yaml.v3 is used only to find where things are; nothing is re-encoded, so
// comments, blank lines, key order, quoting and indentation stay exactly as they were.
//
// Every edit goes through the operations of this file. Their positions come from the
// node tree (node.go): a node's start as yaml.v3 reports it, and its end as found
// from its last descendant. New text is written by the emitter (emit.go), whose every
// string goes through scalarText.
type yamlDoc struct {
	src       []byte
	lineStart []int // byte offset of each line's start, 0-based line index
	root      *yaml.Node
	edits     []splice
	json      bool       // the document is JSON: write JSON
	cache     *itemCache // rendered list items, shared by an Injector's documents
	parents   map[*yaml.Node]*yaml.Node
	aliased   map[*yaml.Node]bool
}

// A splice replaces remove bytes at at with text. Insertions at the same offset are
// ordered deepest first: when a collection and the collection holding it end at the
// same place, what is added to the inner one must stay inside it.
type splice struct {
	at, remove int
	text       string
	depth      int
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

// offset is the byte offset of a 1-based line and column. yaml.v3 counts columns in
// characters, not bytes.
func (d *yamlDoc) offset(line, col int) int {
	if line-1 >= len(d.lineStart) {
		return len(d.src)
	}
	p := d.lineStart[line-1]
	for range col - 1 {
		if p >= len(d.src) {
			break
		}
		if d.src[p] < utf8.RuneSelf {
			p++
			continue
		}
		_, size := utf8.DecodeRune(d.src[p:])
		p += size
	}
	return p
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

// edit records a splice made for node target (its depth orders insertions).
func (d *yamlDoc) edit(target *yaml.Node, at, remove int, text string) error {
	if target != nil && d.shared(target) {
		return fmt.Errorf("line %d: cannot edit a node that an alias (*%s) refers to", target.Line, d.anchorOf(target))
	}
	depth := 0
	if target != nil {
		depth = d.depth(target)
	}
	d.edits = append(d.edits, splice{at: at, remove: remove, text: text, depth: depth})
	return nil
}

func (d *yamlDoc) anchorOf(n *yaml.Node) string {
	for p := n; p != nil; p = d.parentOf(p) {
		if p.Anchor != "" && d.aliased[p] {
			return p.Anchor
		}
	}
	return ""
}

// bytes applies the edits; overlapping edits are an error, never a corrupt document.
func (d *yamlDoc) bytes() ([]byte, error) {
	if len(d.edits) == 0 {
		return d.src, nil
	}
	edits := append([]splice(nil), d.edits...)
	sort.SliceStable(edits, func(i, j int) bool {
		if edits[i].at != edits[j].at {
			return edits[i].at < edits[j].at
		}
		return edits[i].depth > edits[j].depth
	})
	var b bytes.Buffer
	pos := 0
	for _, e := range edits {
		if e.at < pos {
			return nil, fmt.Errorf("internal error: overlapping edits at byte %d", e.at)
		}
		b.Write(d.src[pos:e.at])
		b.WriteString(e.text)
		pos = e.at + e.remove
	}
	b.Write(d.src[pos:])
	return b.Bytes(), nil
}

// lookup returns the key and value nodes of key in mapping m.
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

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "list"
	case yaml.MappingNode:
		return "mapping"
	case yaml.AliasNode:
		return "alias"
	case yaml.ScalarNode:
		return "scalar (" + strings.TrimPrefix(n.Tag, "!!") + ")"
	}
	return "node"
}

// emitter is how new text is written in this document: JSON, or YAML in the
// document's own indentation step and list style.
func (d *yamlDoc) emitter() emitter {
	return emitter{json: d.json, step: d.indentStep(), compact: d.compactLists()}
}

// style is how a scalar inside collection m is written.
func (d *yamlDoc) style(m *yaml.Node) scalarStyle {
	switch {
	case d.json:
		return inJSON
	case m.Style&yaml.FlowStyle != 0 || d.inFlowCollection(m):
		return inFlow
	}
	return inBlock
}

// kv is one key and its string value.
type kv struct{ key, value string }

// setStrings sets each key to its value in the mapping reached by path from m, creating
// the missing mappings of the path, all in one edit. It reports whether the document
// changed. Keys already holding their value are left alone. When the mapping at the end
// of the path is a null or an empty one that uninject would delete, the marker
// OriginalAnnotations records its original form (original.go).
func (d *yamlDoc) setStrings(m *yaml.Node, path []string, kvs []kv) (bool, error) {
	cur, parent := m, (*yaml.Node)(nil)
	for i := 0; i < len(path); i++ {
		kn, v := lookup(cur, path[i])
		switch {
		case v == nil:
			if i == len(path)-1 && len(cur.Content) == 0 && parent != nil && !d.keptEmpty(cur, parent) {
				tok := "{}" // the metadata, which uninject would delete
				kvs = withMarker(kvs, record{Metadata: &tok}.value())
			}
			return true, d.addEntries(cur, nestedNode(path[i:], kvs))
		case isNull(v):
			if v.Anchor != "" {
				// Filling it would change what its aliases mean, or drop the anchor.
				return false, fmt.Errorf("%s: line %d: cannot fill a null written with an anchor (&%s)", strings.Join(path[:i+1], "."), v.Line, v.Anchor)
			}
			if i >= len(path)-2 {
				tok, ok, err := d.nullToken(cur, kn, v)
				if err != nil {
					return false, err
				}
				r := record{Annotations: &tok}
				if i < len(path)-1 {
					r = record{Metadata: &tok}
				}
				if ok {
					kvs = withMarker(kvs, r.value())
				}
			}
			return true, d.setValue(cur, kn, v, mapNode(nestedNode(path[i+1:], kvs)...))
		case v.Kind != yaml.MappingNode:
			return false, fmt.Errorf("%s is a %s, not a mapping", strings.Join(path[:i+1], "."), kindName(v))
		}
		cur, parent = v, cur
	}
	var r record
	_, mv := lookup(cur, OriginalAnnotations)
	if mv != nil && mv.Kind == yaml.ScalarNode {
		var err error
		if r, err = parseRecord(mv.Value); err != nil {
			return false, fmt.Errorf("%s: %w", OriginalAnnotations, err)
		}
	}
	if len(cur.Content) == 0 && parent != nil && !d.keptEmpty(cur, parent) {
		tok := "{}" // uninject would delete the key
		r.Annotations = &tok
	}
	tracked, err := d.track(&r, cur, kvs)
	if err != nil {
		return false, err
	}
	if tracked || r.Annotations != nil && mv == nil {
		kvs = withMarker(kvs, r.value())
	}
	var missing []kv
	changed := false
	for _, p := range kvs {
		_, v := lookup(cur, p.key)
		switch {
		case v == nil:
			missing = append(missing, p)
		case v.Kind == yaml.ScalarNode && v.Value == p.value && v.Tag == "!!str":
		default:
			if err := d.replaceScalar(cur, v, p.value); err != nil {
				return false, fmt.Errorf("%s: %w", p.key, err)
			}
			changed = true
		}
	}
	if len(missing) == 0 {
		return changed, nil
	}
	return true, d.addEntries(cur, kvNodes(missing))
}

// replaceScalar replaces the scalar v (a value of mapping m) with the string value.
func (d *yamlDoc) replaceScalar(m, v *yaml.Node, value string) error {
	if v.Kind != yaml.ScalarNode {
		return fmt.Errorf("cannot replace a %s value with a string", kindName(v))
	}
	start := d.contentStart(v)
	end, err := d.nodeEnd(v)
	if err != nil {
		return err
	}
	if end < start {
		end = start
	}
	return d.edit(v, start, end-start, scalarText(value, d.style(m)))
}

// setValue replaces the null value v of key kn in mapping m with the new node: a
// block under the key in a block mapping, flow text otherwise.
func (d *yamlDoc) setValue(m, kn, v, value *yaml.Node) error {
	e := d.emitter()
	start := d.contentStart(v)
	end, err := d.nullEnd(v)
	if err != nil {
		return err
	}
	if d.style(m) != inBlock || isEmptyCollection(value) {
		text := e.flow(value)
		if d.style(m) != inBlock && isEmptyNull(v) {
			// A key with no colon in a flow mapping (`{annotations, name: p}`): the
			// value goes after the key, with the colon.
			if colon, err := d.hasColon(kn); err != nil {
				return err
			} else if !colon {
				kend, err := d.end(kn, kn.Column-1, true, true)
				if err != nil {
					return err
				}
				return d.edit(v, kend, 0, ": "+text)
			}
		}
		if isEmptyNull(v) {
			text = " " + text
		}
		return d.edit(v, start, max(end-start, 0), text)
	}
	// `key:` or `key: null`: from the colon on, the new block.
	colon, err := d.colonEnd(kn, kn.Column-1, false)
	if err != nil {
		return err
	}
	indent := strings.Repeat(" ", kn.Column-1) + e.step
	var lines []string
	if value.Kind == yaml.SequenceNode {
		dash := indent
		if e.compact {
			dash = strings.Repeat(" ", kn.Column-1)
		}
		lines = e.itemLines(value.Content, dash)
	} else {
		lines = e.entryLines(value.Content, indent)
	}
	nl := d.lineEnding()
	return d.edit(v, colon, max(end-colon, 0), nl+strings.Join(lines, nl))
}

// hasColon tells whether the key kn of a flow mapping is followed by its colon (a
// key alone, `{annotations, name: p}`, is not: its value is an empty null).
func (d *yamlDoc) hasColon(kn *yaml.Node) (bool, error) {
	kend, err := d.end(kn, kn.Column-1, true, true)
	if err != nil {
		return false, err
	}
	p := d.skipSpace(kend, true)
	return p < len(d.src) && d.src[p] == ':', nil
}

// nullEnd is where the null v ends: nodeEnd, less the spaces after a null written as
// a tag alone (`!!null # c`), which must stay between what replaces it and a comment.
func (d *yamlDoc) nullEnd(v *yaml.Node) (int, error) {
	end, err := d.nodeEnd(v)
	if err != nil {
		return 0, err
	}
	start := d.pos(v)
	for end > start && (d.src[end-1] == ' ' || d.src[end-1] == '\t') {
		end--
	}
	return end, nil
}

// addEntries adds mapping content (keys and values) at the end of mapping m.
func (d *yamlDoc) addEntries(m *yaml.Node, content []*yaml.Node) error {
	e := d.emitter()
	if m.Style&yaml.FlowStyle != 0 || len(m.Content) == 0 || d.json {
		return d.addFlow(m, e.flowEntries(content))
	}
	end, err := d.end(m, d.indentFor(m), false, false)
	if err != nil {
		return err
	}
	lines := e.entryLines(content, strings.Repeat(" ", m.Content[0].Column-1))
	return d.insertLines(m, d.afterLine(end), lines)
}

// insertLines inserts whole lines at the line start at.
func (d *yamlDoc) insertLines(target *yaml.Node, at int, lines []string) error {
	nl := d.lineEnding()
	text := strings.Join(lines, nl) + nl
	if at > 0 && d.src[at-1] != '\n' { // the document ends without a newline
		text = nl + strings.TrimSuffix(text, nl)
	}
	return d.edit(target, at, 0, text)
}

// addFlow adds flow text (entries or items) at the end of flow collection n.
func (d *yamlDoc) addFlow(n *yaml.Node, text string) error {
	if n.Style&yaml.FlowStyle == 0 && len(n.Content) > 0 {
		return fmt.Errorf("line %d: not a flow collection", n.Line)
	}
	if len(n.Content) == 0 {
		p := d.contentStart(n)
		if p >= len(d.src) || (d.src[p] != '{' && d.src[p] != '[') {
			return fmt.Errorf("line %d: cannot edit this collection in place", n.Line)
		}
		return d.edit(n, p+1, 0, text)
	}
	last := n.Content[len(n.Content)-1]
	var end int
	var err error
	if n.Kind == yaml.MappingNode && isEmptyNull(last) {
		end, err = d.end(n.Content[len(n.Content)-2], 0, true, true)
	} else {
		end, err = d.end(last, 0, true, false)
	}
	if err != nil {
		return err
	}
	return d.edit(n, end, 0, ", "+text)
}

// indentStep is the document's indentation step, from its first nested block mapping.
func (d *yamlDoc) indentStep() string {
	step := ""
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if step != "" || n == nil {
			return
		}
		if n.Kind == yaml.MappingNode && n.Style&yaml.FlowStyle == 0 {
			for i := 0; i+1 < len(n.Content); i += 2 {
				if v := n.Content[i+1]; v.Kind == yaml.MappingNode && v.Style&yaml.FlowStyle == 0 && len(v.Content) > 0 && v.Content[0].Column > n.Content[i].Column && v.Content[0].Line > n.Content[i].Line {
					step = strings.Repeat(" ", v.Content[0].Column-n.Content[i].Column)
					return
				}
			}
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(d.root)
	if step == "" {
		step = "  "
	}
	return step
}

// compactLists says how the document writes block lists under a key: compact ("- " at
// the key's column, as kubectl does) or indented.
func (d *yamlDoc) compactLists() bool {
	var found, compact bool
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if found || n == nil {
			return
		}
		if n.Kind == yaml.MappingNode && n.Style&yaml.FlowStyle == 0 {
			for i := 0; i+1 < len(n.Content); i += 2 {
				v := n.Content[i+1]
				if v.Kind == yaml.SequenceNode && v.Style&yaml.FlowStyle == 0 && len(v.Content) > 0 && v.Line > n.Content[i].Line {
					found = true
					compact = v.Column == n.Content[i].Column
					return
				}
			}
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(d.root)
	return !found || compact
}
