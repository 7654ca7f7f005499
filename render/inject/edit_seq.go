package inject

import (
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
	m  map[string][]string
}

const itemCacheSize = 512

func (c *itemCache) get(key string) ([]string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.m[key]
	return s, ok
}

func (c *itemCache) put(key string, val []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= itemCacheSize {
		c.m = map[string][]string{} // bounded: start over rather than grow
	}
	c.m[key] = val
}

// items are Kubernetes objects (or parts of them) to add to a list.
type items []any

// nodes renders the items as nodes.
func (it items) nodes() ([]*yaml.Node, error) {
	out := make([]*yaml.Node, 0, len(it))
	for _, v := range it {
		n, err := objectNode(v)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

// blockLines renders the items as block list lines with their dashes at indent.
func (d *yamlDoc) blockLines(it items, indent string) ([]string, error) {
	e := d.emitter()
	var out []string
	for _, v := range it {
		j, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		key := fmt.Sprintf("%s\x00%s\x00%v\x00%s", indent, e.step, e.compact, j)
		if d.cache != nil {
			if lines, ok := d.cache.get(key); ok {
				out = append(out, lines...)
				continue
			}
		}
		n, err := objectNode(v)
		if err != nil {
			return nil, err
		}
		lines := e.itemLines([]*yaml.Node{n}, indent)
		if d.cache != nil {
			d.cache.put(key, lines)
		}
		out = append(out, lines...)
	}
	return out, nil
}

// setList makes key in mapping m a list holding the items: created if missing (or
// null), else the items are added at the start (prepend) or the end of the list.
func (d *yamlDoc) setList(m *yaml.Node, key string, it items, prepend bool) error {
	nodes, err := it.nodes()
	if err != nil {
		return err
	}
	seq := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Content: nodes}
	kn, v := lookup(m, key)
	switch {
	case v == nil:
		return d.addEntries(m, []*yaml.Node{strNode(key), seq})
	case isNull(v):
		return d.setValue(m, kn, v, seq)
	case v.Kind != yaml.SequenceNode:
		return fmt.Errorf("%s is a %s, not a list", key, kindName(v))
	case v.Style&yaml.FlowStyle != 0 || len(v.Content) == 0 || d.json:
		text := d.emitter().flowItems(nodes)
		if prepend && len(v.Content) > 0 {
			p := d.contentStart(v)
			if p >= len(d.src) || d.src[p] != '[' {
				return fmt.Errorf("%s: cannot edit this list in place", key)
			}
			return d.edit(v, p+1, 0, text+", ")
		}
		return d.addFlow(v, text)
	}
	dash := d.pos(v)
	if d.src[dash] != '-' {
		return fmt.Errorf("%s (line %d): cannot edit an anchored or tagged list in place", key, v.Line)
	}
	indent := strings.Repeat(" ", v.Column-1)
	lines, err := d.blockLines(it, indent)
	if err != nil {
		return err
	}
	if prepend { // at the first dash: the new items, then the first item's indentation
		nl := d.lineEnding()
		return d.edit(v, dash, 0, strings.TrimPrefix(strings.Join(lines, nl), indent)+nl+indent)
	}
	end, err := d.end(v, d.indentFor(v), false, false)
	if err != nil {
		return err
	}
	return d.insertLines(v, d.afterLine(end), lines)
}

// entrySpan is where entry i (a key and its value, or an item) of collection n starts
// and ends.
func (d *yamlDoc) entrySpan(n *yaml.Node, i int) (start, end int, err error) {
	flow := n.Style&yaml.FlowStyle != 0
	if n.Kind == yaml.SequenceNode {
		it := n.Content[i]
		end, err = d.end(it, n.Column-1, flow, false)
		return d.pos(it), end, err
	}
	k, v := n.Content[2*i], n.Content[2*i+1]
	if isEmptyNull(v) {
		if flow {
			end, err = d.end(k, 0, true, true)
			if err == nil {
				if p := d.skipSpace(end, true); p < len(d.src) && d.src[p] == ':' {
					end = p + 1
				}
			}
		} else {
			end, err = d.colonEnd(k, k.Column-1, false)
		}
	} else {
		end, err = d.end(v, k.Column-1, flow, false)
	}
	return d.pos(k), end, err
}

// remove deletes the entries of collection n (mapping entries or list items, by
// index) for which gone is true. At least one entry must stay.
func (d *yamlDoc) remove(n *yaml.Node, gone []bool) error {
	count := len(gone)
	if n.Style&yaml.FlowStyle != 0 {
		// Each run of removed entries goes with the separator before it, or, at the
		// start, with the one after it.
		for a := 0; a < count; a++ {
			if !gone[a] {
				continue
			}
			b := a
			for b+1 < count && gone[b+1] {
				b++
			}
			var from, to int
			if a > 0 {
				_, e1, err := d.entrySpan(n, a-1)
				if err != nil {
					return err
				}
				_, e2, err := d.entrySpan(n, b)
				if err != nil {
					return err
				}
				from, to = e1, e2
			} else {
				s1, _, err := d.entrySpan(n, a)
				if err != nil {
					return err
				}
				s2, _, err := d.entrySpan(n, b+1)
				if err != nil {
					return err
				}
				from, to = s1, s2
			}
			if err := d.edit(n, from, to-from, ""); err != nil {
				return err
			}
			a = b
		}
		return nil
	}
	// Block: whole lines, from the line of the key (or dash) to the end of the value;
	// runs of adjacent entries as one span.
	var spans [][2]int
	for i := 0; i < count; i++ {
		if !gone[i] {
			continue
		}
		start, end, err := d.entrySpan(n, i)
		if err != nil {
			return err
		}
		if n.Kind == yaml.SequenceNode {
			if start, err = d.dashBefore(start); err != nil {
				return err
			}
		}
		lineStart := d.lineStart[d.line(start)-1]
		if strings.TrimLeft(string(d.src[lineStart:start]), " ") != "" {
			return fmt.Errorf("line %d: cannot remove an entry that does not start its line", d.line(start))
		}
		endLine := d.afterLine(end)
		if k := len(spans) - 1; k >= 0 && spans[k][1] == lineStart {
			spans[k][1] = endLine
		} else {
			spans = append(spans, [2]int{lineStart, endLine})
		}
	}
	if k := len(spans) - 1; k >= 0 && spans[k][1] == len(d.src) && spans[k][0] > 0 && d.src[len(d.src)-1] != '\n' {
		// The last lines of a document without a final newline: their line break
		// before them goes, as insertLines added it.
		spans[k][0]--
		if spans[k][0] > 0 && d.src[spans[k][0]-1] == '\r' {
			spans[k][0]--
		}
	}
	for _, sp := range spans {
		if err := d.edit(n, sp[0], sp[1]-sp[0], ""); err != nil {
			return err
		}
	}
	return nil
}

// dashBefore is the offset of the "- " that introduces the block list item at p.
func (d *yamlDoc) dashBefore(p int) (int, error) {
	for q := p - 1; q >= 0; q-- {
		switch d.src[q] {
		case ' ', '\t', '\r', '\n':
			continue
		case '-':
			return q, nil
		}
		break
	}
	return 0, fmt.Errorf("line %d: cannot find this item's dash", d.line(p))
}

// removeKeys deletes the entries of mapping m whose keys are in drop. It returns how
// many entries remain; when none would, it deletes nothing and the caller removes m.
func (d *yamlDoc) removeKeys(m *yaml.Node, drop map[string]bool) (int, error) {
	gone := make([]bool, len(m.Content)/2)
	kept, any := 0, false
	for i := range gone {
		gone[i] = drop[m.Content[2*i].Value]
		if gone[i] {
			any = true
		} else {
			kept++
		}
	}
	if !any || kept == 0 {
		return kept, nil
	}
	return kept, d.remove(m, gone)
}

// removeItems deletes the items of sequence seq for which drop is true. It returns how
// many remain; when none would, it deletes nothing and the caller removes seq's key.
func (d *yamlDoc) removeItems(seq *yaml.Node, drop func(*yaml.Node) bool) (int, error) {
	gone := make([]bool, len(seq.Content))
	kept, any := 0, false
	for i, it := range seq.Content {
		gone[i] = drop(it)
		if gone[i] {
			any = true
		} else {
			kept++
		}
	}
	if !any || kept == 0 {
		return kept, nil
	}
	return kept, d.remove(seq, gone)
}

// clearFlow deletes every entry of flow collection n, and nothing else: what lies
// between its brackets before the first entry and after the last (spaces, line
// breaks, comments) stays, so `{ }` filled by addFlow comes back as `{ }`. A trailing
// comma goes with the entries.
func (d *yamlDoc) clearFlow(n *yaml.Node) error {
	if n.Style&yaml.FlowStyle == 0 {
		return fmt.Errorf("line %d: not a flow collection", n.Line)
	}
	count := len(n.Content)
	if n.Kind == yaml.MappingNode {
		count /= 2
	}
	if count == 0 {
		return nil
	}
	start, _, err := d.entrySpan(n, 0)
	if err != nil {
		return err
	}
	_, end, err := d.entrySpan(n, count-1)
	if err != nil {
		return err
	}
	if p := d.skipSpace(end, true); p < len(d.src) && d.src[p] == ',' {
		end = p + 1
	}
	return d.edit(n, start, end-start, "")
}
