package inject

import (
	"fmt"
	"regexp"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// OriginalAnnotations is the data marker of the round trip. When inject fills an
// annotations value that uninject could not write back from what is left of it (a
// null in any spelling, or {} where uninject would delete the emptied key: inside a
// flow mapping, in every JSON document), it adds this annotation, whose value is the
// original token: "" for a bare `annotations:`, "~", "null", "Null", "NULL", "{}"
// (in a block mapping also any extra spaces before it and a `!!null` tag; in a flow
// mapping "key-only" for a key without a colon, `{annotations, name: p}`). Uninject
// always removes it, and when the annotations are left with nothing else, writes that
// token back in their place. A comment could not carry this (JSON has none, and
// formatters drop them); an annotation is data, which every tool keeps. When a token
// does not say enough, the value is a JSON record instead (record.go).
const OriginalAnnotations = "meshplane.io/original-annotations"

// keyOnly is the token of a key written without a colon in a flow mapping
// (`{annotations, name: p}`), a null as well: uninject removes what setValue wrote
// after the key, colon included.
const keyOnly = "key-only"

// The null tokens, and the block form of a null: the text after the key's colon,
// without the one space that separates it, made only of spaces, an optional !!null
// tag and a token. Nothing else is ever written back, whatever the marker says.
var (
	nullTokens = map[string]bool{"~": true, "null": true, "Null": true, "NULL": true}
	blockNull  = regexp.MustCompile(`^ *(!!null( +(~|null|Null|NULL))?|~|null|Null|NULL)?$`)
)

// markerOK tells whether tok is a form uninject may write back for an annotations
// value inside a mapping written in style s.
func markerOK(tok string, s scalarStyle) bool {
	switch s {
	case inJSON:
		return tok == "null" || tok == "{}"
	case inFlow:
		return tok == "" || tok == "{}" || tok == keyOnly || nullTokens[tok]
	}
	return tok == "{}" || blockNull.MatchString(tok)
}

// nullToken is the marker's value for the null v (the value of key kn in mapping m)
// that setValue is about to replace: exactly the text it removes (less the space after
// the colon in a block mapping, where it removes from the colon on). ok is false when
// uninject could not write that text back (a tag or anchor in a flow mapping).
func (d *yamlDoc) nullToken(m, kn, v *yaml.Node) (tok string, ok bool, err error) {
	end, err := d.nullEnd(v)
	if err != nil {
		return "", false, err
	}
	s := d.style(m)
	if s == inBlock {
		colon, err := d.colonEnd(kn, kn.Column-1, false)
		if err != nil {
			return "", false, err
		}
		tok = strings.TrimPrefix(string(d.src[colon:max(end, colon)]), " ")
		return tok, markerOK(tok, s), nil
	}
	if isEmptyNull(v) {
		if colon, err := d.hasColon(kn); err != nil || !colon {
			return keyOnly, err == nil, err
		}
	}
	start := d.contentStart(v)
	if start != d.pos(v) {
		return "", false, nil
	}
	if !isEmptyNull(v) {
		tok = string(d.src[start:max(end, start)])
	}
	return tok, tok == v.Value && markerOK(tok, s), nil
}

// withMarker is kvs with the marker after them.
func withMarker(kvs []kv, tok string) []kv {
	return append(append(make([]kv, 0, len(kvs)+1), kvs...), kv{OriginalAnnotations, tok})
}

// keptEmpty tells whether uninject empties the flow mapping m, a value of parent, in
// place rather than deleting its key (see dropEmpty).
func (d *yamlDoc) keptEmpty(m, parent *yaml.Node) bool {
	return m.Style&yaml.FlowStyle != 0 && d.style(parent) == inBlock
}

// restore writes the token tok back in place of ann, the annotations mapping (value of
// key kn in meta) all of whose entries go: `{}` empties a flow mapping between its
// brackets (so `{ }` stays `{ }`), anything else replaces the mapping's text. It
// reports false, and edits nothing, when tok is not a form allowed there.
func (d *yamlDoc) restore(meta, kn, ann *yaml.Node, tok string) (bool, error) {
	s := d.style(meta)
	if !markerOK(tok, s) {
		return false, nil
	}
	flow := ann.Style&yaml.FlowStyle != 0
	if flow && tok == "{}" {
		return true, d.clearFlow(ann)
	}
	end, err := d.nodeEnd(ann)
	if err != nil {
		return false, err
	}
	if s != inBlock {
		if tok == keyOnly { // setValue wrote ": " and the flow text after the key
			start, err := d.end(kn, kn.Column-1, true, true)
			if err != nil {
				return false, err
			}
			return true, d.edit(ann, start, end-start, "")
		}
		// setValue wrote the flow text where the token was, after a space of its own
		// for a null written as nothing.
		start := d.contentStart(ann)
		if tok == "" && start > 0 && d.src[start-1] == ' ' {
			start--
		}
		return true, d.edit(ann, start, end-start, tok)
	}
	colon, err := d.colonEnd(kn, kn.Column-1, false)
	if err != nil {
		return false, err
	}
	if tok != "" {
		tok = " " + tok
	}
	comment, err := d.markerComment(ann)
	if err != nil {
		return false, err
	}
	return true, d.edit(ann, colon, end-colon, tok+comment)
}

// markerComment is the comment after the marker's value on its line, when entries
// follow the marker in block mapping ann: the comment that followed the null, which
// setValue left after the last entry it wrote, before a later inject added more. ("" if
// the marker is last: its comment is after the text restore replaces.)
func (d *yamlDoc) markerComment(ann *yaml.Node) (string, error) {
	n := len(ann.Content)
	if ann.Style&yaml.FlowStyle != 0 || n < 4 || ann.Content[n-2].Value == OriginalAnnotations {
		return "", nil
	}
	for i := 0; i+1 < n; i += 2 {
		if ann.Content[i].Value != OriginalAnnotations {
			continue
		}
		v := ann.Content[i+1]
		end, err := d.end(v, ann.Content[i].Column-1, false, false)
		if err != nil {
			return "", err
		}
		rest := strings.TrimRight(string(d.src[end:d.lineEnd(d.line(end))]), "\r\n")
		if strings.HasPrefix(strings.TrimLeft(rest, " \t"), "#") {
			return rest, nil
		}
	}
	return "", nil
}

// markerWarning says that uninject did not write back the token tok of a marker.
// what is the key it stands for.
func markerWarning(res Result, what, tok string) string {
	return fmt.Sprintf("%s/%s: %s %q is not a form uninject writes back; the %s key was removed instead",
		strings.ToLower(res.Kind), res.Name, OriginalAnnotations, tok, what)
}
