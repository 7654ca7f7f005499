package inject

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"sync"

	yaml "go.yaml.in/yaml/v3"
)

// itemCache remembers rendered list items: across a manifest nearly every pod gets the
// same proxy, init container and volumes, and rendering them is most of --manual's cost.
type itemCache struct {
	mu sync.Mutex
	m  map[string]string
}

const itemCacheSize = 512

func (c *itemCache) get(key string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.m[key]
	return s, ok
}

func (c *itemCache) put(key, val string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= itemCacheSize {
		c.m = map[string]string{} // bounded: start over rather than grow
	}
	c.m[key] = val
}

// blockItem renders v (a Kubernetes object or part of one) as block YAML in its JSON
// field order, each line prefixed by indent, the first after "- ".
func (d *yamlDoc) blockItem(v any, indent string, nl string) (string, error) {
	j, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	key := indent + "\x00" + nl + "\x00" + string(j)
	if d.cache != nil {
		if s, ok := d.cache.get(key); ok {
			return s, nil
		}
	}
	s, err := renderBlockItem(j, indent, nl)
	if err == nil && d.cache != nil {
		d.cache.put(key, s)
	}
	return s, err
}

func renderBlockItem(j []byte, indent string, nl string) (string, error) {
	var n yaml.Node
	if err := yaml.Unmarshal(j, &n); err != nil {
		return "", err
	}
	markBlock(&n)
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&n); err != nil {
		return "", err
	}
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	var out strings.Builder
	for i, l := range lines {
		if i == 0 {
			out.WriteString(indent + "- " + l + nl)
		} else {
			out.WriteString(indent + "  " + l + nl)
		}
	}
	return out.String(), nil
}

// markBlock clears the styles JSON parsing leaves: flow collections and quoted
// scalars. The encoder then quotes only what YAML needs quoted.
func markBlock(n *yaml.Node) {
	n.Style = 0
	for _, c := range n.Content {
		markBlock(c)
	}
}

func flowItem(v any) (string, error) {
	j, err := json.Marshal(v)
	return string(j), err
}

// seqStyle says how the document writes block lists under a key: compact ("- " at the
// key's column, as kubectl does) or indented by step.
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
				if v.Kind == yaml.SequenceNode && v.Style&yaml.FlowStyle == 0 && len(v.Content) > 0 {
					found = true
					compact = d.dashColumn(v) == n.Content[i].Column
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

// dashColumn is the 1-based column of the "-" of a block sequence's first item.
func (d *yamlDoc) dashColumn(seq *yaml.Node) int {
	first := seq.Content[0]
	line := d.lineText(first.Line)
	for c := first.Column - 2; c >= 0; c-- {
		if c < len(line) && line[c] == '-' {
			return c + 1
		}
	}
	return first.Column - 2
}

// setList makes key in mapping m a list holding items: created if missing (or null),
// else items are added at the start (prepend) or the end of the existing list.
func (d *yamlDoc) setList(m *yaml.Node, key string, items []any, prepend bool) error {
	kn, v := lookup(m, key)
	nl := d.lineEnding()
	switch {
	case v == nil || isNull(v):
		if v != nil { // `key:` or `key: null`: replace the whole entry's value
			return d.fillNullList(kn, v, items, m.Style&yaml.FlowStyle != 0)
		}
		if m.Style&yaml.FlowStyle != 0 || len(m.Content) == 0 || d.json {
			text, err := d.flowList(items)
			if err != nil {
				return err
			}
			return d.addFlowRaw(m, d.quote(key)+": "+text)
		}
		col := m.Content[0].Column
		indent := strings.Repeat(" ", col-1)
		dash := indent
		if !d.compactLists() {
			dash += "  "
		}
		var b strings.Builder
		b.WriteString(indent + d.quote(key) + ":" + nl)
		for _, it := range items {
			s, err := d.blockItem(it, dash, nl)
			if err != nil {
				return err
			}
			b.WriteString(s)
		}
		pos := d.blockEnd(m)
		text := b.String()
		if pos > 0 && d.src[pos-1] != '\n' {
			text = nl + strings.TrimSuffix(text, nl)
		}
		d.edits = append(d.edits, splice{at: pos, text: text})
		return nil
	case v.Kind != yaml.SequenceNode:
		return fmt.Errorf("%s is a %s, not a list", key, kindName(v))
	case v.Style&yaml.FlowStyle != 0 || len(v.Content) == 0:
		start := d.offset(v.Line, v.Column)
		if start >= len(d.src) || d.src[start] != '[' {
			return fmt.Errorf("%s: cannot edit this list in place", key)
		}
		end, err := matchBrace(d.src, start)
		if err != nil {
			return err
		}
		var parts []string
		for _, it := range items {
			s, err := flowItem(it)
			if err != nil {
				return err
			}
			parts = append(parts, s)
		}
		text := strings.Join(parts, ", ")
		if len(v.Content) == 0 {
			d.edits = append(d.edits, splice{at: start + 1, remove: end - start - 1, text: text})
		} else if prepend {
			d.edits = append(d.edits, splice{at: start + 1, text: text + ", "})
		} else {
			at := end
			for at > start+1 && strings.ContainsRune(" \t\r\n", rune(d.src[at-1])) {
				at--
			}
			d.edits = append(d.edits, splice{at: at, text: ", " + text})
		}
		return nil
	default:
		dash := d.dashColumn(v)
		indent := strings.Repeat(" ", dash-1)
		var b strings.Builder
		for _, it := range items {
			s, err := d.blockItem(it, indent, nl)
			if err != nil {
				return err
			}
			b.WriteString(s)
		}
		var pos int
		if prepend {
			pos = d.lineStart[v.Content[0].Line-1]
		} else {
			pos = d.itemsEnd(v, dash)
		}
		text := b.String()
		if pos > 0 && d.src[pos-1] != '\n' {
			text = nl + strings.TrimSuffix(text, nl)
		}
		d.edits = append(d.edits, splice{at: pos, text: text})
		return nil
	}
}

func (d *yamlDoc) flowList(items []any) (string, error) {
	var parts []string
	for _, it := range items {
		s, err := flowItem(it)
		if err != nil {
			return "", err
		}
		parts = append(parts, s)
	}
	return "[" + strings.Join(parts, ", ") + "]", nil
}

func (d *yamlDoc) fillNullList(kn, v *yaml.Node, items []any, flow bool) error {
	text, err := d.flowList(items)
	if err != nil {
		return err
	}
	if v.Line == kn.Line && v.Value == "" {
		line := d.lineText(kn.Line)
		code := line
		if c := strings.Index(line, " #"); c >= 0 {
			code = line[:c]
		}
		pos := d.lineStart[kn.Line-1] + len(strings.TrimRight(code, " \t"))
		d.edits = append(d.edits, splice{at: pos, text: " " + text})
		return nil
	}
	start := d.offset(v.Line, v.Column)
	d.edits = append(d.edits, splice{at: start, remove: scalarLen(d.src[start:d.lineEnd(v.Line)], v, flow), text: text})
	return nil
}

// addFlowRaw inserts a raw "key: value" entry into flow mapping m.
func (d *yamlDoc) addFlowRaw(m *yaml.Node, entry string) error {
	start := d.offset(m.Line, m.Column)
	if start >= len(d.src) || d.src[start] != '{' {
		return fmt.Errorf("cannot edit this mapping in place")
	}
	end, err := matchBrace(d.src, start)
	if err != nil {
		return err
	}
	if len(m.Content) > 0 {
		entry = ", " + entry
	}
	at := end
	for at > start+1 && strings.ContainsRune(" \t\r\n", rune(d.src[at-1])) {
		at--
	}
	d.edits = append(d.edits, splice{at: at, text: entry})
	return nil
}

// itemsEnd is the offset just past the last content line of block sequence seq whose
// dashes stand at column dash.
func (d *yamlDoc) itemsEnd(seq *yaml.Node, dash int) int {
	last := seq.Content[0].Line
	for line := last + 1; line <= len(d.lineStart); line++ {
		text := d.lineText(line)
		trimmed := strings.TrimLeft(text, " ")
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		ind := len(text) - len(trimmed)
		if ind < dash-1 || (ind == dash-1 && !strings.HasPrefix(trimmed, "-")) {
			break
		}
		last = line
	}
	return d.lineEnd(last)
}
