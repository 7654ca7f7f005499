package inject_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"

	sigsyaml "sigs.k8s.io/yaml"
)

// A generator of manifests for the property test: Kubernetes objects written with
// random key order, block and flow collections mixed, comments, anchors and aliases,
// every scalar in a random valid quoting style, in multi-document streams with
// comment-only documents. What it writes is only text: the test decodes it to know
// what it means.
type gen struct {
	r       *rand.Rand
	step    int // the document's indentation step
	compact bool
	anchors int
}

func newGen(seed uint64) *gen {
	return &gen{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

func (g *gen) chance(p float64) bool   { return g.r.Float64() < p }
func (g *gen) pick(s ...string) string { return s[g.r.IntN(len(s))] }

func (g *gen) pickAny(v ...any) any { return v[g.r.IntN(len(v))] }

// An ordered mapping, a list, and an aliased value of the abstract documents.
type (
	omap  []entry
	entry struct {
		k string
		v any
	}
	list []any
	// anchored is written with an anchor the first time and as an alias after.
	anchored struct {
		name string
		v    any
		seen *bool
	}
	// nullAnn is a null written in any of its spellings: annotations' value.
	nullAnn struct{}
)

// shuffle puts a mapping's keys in random order.
func (g *gen) shuffle(m omap) omap {
	g.r.Shuffle(len(m), func(i, j int) { m[i], m[j] = m[j], m[i] })
	return m
}

// trickyStrings are values whose plain form would not read back as themselves.
var trickyStrings = []string{
	"warn,mesh=debug", "a: b", "#x", "x #y", "*x", "&x", "!x", "yes", "no", "on", "off", "y", "n",
	"true", "null", "~", "123", "1e3", "0x1F", "012", "1_000", "1:30", "2001-12-14", ".5", "-1",
	"'q'", `"dq"`, " lead", "trail ", "{a}", "[b]", "a,b", "multi\nline", "tab\tx", "-", "- x",
	"? x", "%x", "@x", "`x", "|x", ">x", "a'b", `a"b`, `back\slash`, "ünïcødé", "a  b", "x:", ":x",
	"--flag=1", "$(var)", "é: è", "line\n", "two\n\nlines",
}

func (g *gen) tricky() string {
	if g.chance(0.3) {
		return g.pick("plain", "value-1", "v1.2.3", "a/b.c")
	}
	return trickyStrings[g.r.IntN(len(trickyStrings))]
}

// scalar writes a string in a random style valid in the context.
func (g *gen) scalar(s string, flow bool, indent int) string {
	for {
		switch g.r.IntN(4) {
		case 0:
			if plainOK(s) {
				return s
			}
		case 1:
			if !strings.ContainsAny(s, "\n\t") {
				return "'" + strings.ReplaceAll(s, "'", "''") + "'"
			}
		case 2:
			b, _ := json.Marshal(s)
			return string(b)
		case 3:
			if !flow && literalSafe(s) {
				head := "|-"
				if strings.HasSuffix(s, "\n") {
					head = "|"
				}
				pad := strings.Repeat(" ", indent+g.step)
				return head + "\n" + pad + strings.ReplaceAll(strings.TrimSuffix(s, "\n"), "\n", "\n"+pad)
			}
		}
	}
}

// plainOK is the generator's own, simple notion of a safe plain scalar: no indicator
// characters, and read back as itself by the YAML reader the test decodes with.
func plainOK(s string) bool {
	if s == "" || strings.ContainsAny(s, ":#,[]{}&*!|>'\"%@`\n\t ") || s[0] == '-' || s[0] == '?' {
		return false
	}
	var v map[string]any
	if err := sigsyaml.Unmarshal([]byte("k: "+s), &v); err != nil {
		return false
	}
	got, ok := v["k"].(string)
	return ok && got == s
}

func literalSafe(s string) bool {
	if !strings.Contains(strings.TrimSuffix(s, "\n"), "\n") || strings.HasSuffix(s, "\n\n") {
		return false
	}
	for _, l := range strings.Split(strings.TrimSuffix(s, "\n"), "\n") {
		if l == "" || strings.TrimSpace(l) != l || strings.Contains(l, "\t") {
			return false
		}
	}
	return true
}

func (g *gen) comment() string {
	return "# " + g.pick("note", "a: b", "- x", "{ }", "---", "TODO: keep")
}

// value writes v after "key:" (or "- "): " text" on the same line, or a line break
// and a block at indent.
func (g *gen) value(v any, indent int, flow bool) string {
	switch t := v.(type) {
	case *anchored:
		if *t.seen {
			return " *" + t.name
		}
		*t.seen = true
		return " &" + t.name + g.value(t.v, indent, flow)
	case string:
		return " " + g.scalar(t, flow, indent)
	case int:
		return fmt.Sprintf(" %d", t)
	case bool:
		return fmt.Sprintf(" %v", t)
	case omap:
		if len(t) == 0 || flow || g.chance(0.3) {
			return " " + g.flow(t, indent)
		}
		return "\n" + g.blockMap(t, indent+g.step)
	case list:
		if len(t) == 0 || flow || g.chance(0.3) {
			return " " + g.flow(t, indent)
		}
		dash := indent + g.step
		if g.compact {
			dash = indent
		}
		return "\n" + g.blockList(t, dash)
	case nil:
		if flow {
			return " null"
		}
		return g.pick("", " null", " ~")
	case nullAnn:
		if flow { // " " is `key: ` with nothing after it
			return " " + g.pick("null", "~", "Null", "NULL", "")
		}
		return g.pick("", " null", " ~", " Null", " NULL", "  ~", " !!null", " !!null null")
	}
	panic(fmt.Sprintf("gen: %T", v))
}

func (g *gen) line(indent int, text string) string {
	s := strings.Repeat(" ", indent) + text
	if !strings.Contains(text, "\n") && g.chance(0.1) {
		s += " " + g.comment()
	}
	return s + "\n"
}

func (g *gen) blockMap(m omap, indent int) string {
	var b strings.Builder
	for i, e := range m {
		if g.chance(0.1) {
			b.WriteString(strings.Repeat(" ", indent) + g.comment() + "\n")
		}
		if i > 0 && g.chance(0.05) {
			b.WriteString("\n")
		}
		b.WriteString(g.entryText(e, indent, indent))
	}
	return b.String()
}

// entryText writes one block entry; first entries of list items start after "- ".
func (g *gen) entryText(e entry, indent, col int) string {
	v := g.value(e.v, col, false)
	text := g.scalar(e.k, false, col) + ":" + v
	if strings.HasPrefix(v, "\n") {
		return strings.Repeat(" ", indent) + g.scalar(e.k, false, col) + ":" + v
	}
	return g.line(indent, text)
}

func (g *gen) blockList(l list, indent int) string {
	var b strings.Builder
	for _, it := range l {
		switch t := it.(type) {
		case omap:
			if len(t) > 0 && g.chance(0.8) {
				// "- key: value" then the rest at the item's column.
				first := g.entryText(t[0], 0, indent+2)
				b.WriteString(strings.Repeat(" ", indent) + "- " + first)
				if len(t) > 1 {
					b.WriteString(g.blockMap(t[1:], indent+2))
				}
				continue
			}
		}
		v := g.value(it, indent+2, false)
		if strings.HasPrefix(v, "\n") {
			b.WriteString(strings.Repeat(" ", indent) + "-" + v)
		} else {
			b.WriteString(g.line(indent, "-"+v))
		}
	}
	return b.String()
}

// flow writes a collection in flow style, sometimes over several lines (indented
// deeper than indent), sometimes with comments after commas.
func (g *gen) flow(v any, indent int) string {
	multi := g.chance(0.2)
	sep := func() string {
		if multi {
			c := ""
			if g.chance(0.3) {
				c = " " + g.comment()
			}
			return "," + c + "\n" + strings.Repeat(" ", indent+g.step)
		}
		return g.pick(", ", ",", " , ")
	}
	item := func(x any) string {
		switch t := x.(type) {
		case omap, list:
			return g.flow(t, indent)
		}
		return strings.TrimPrefix(g.value(x, indent, true), " ")
	}
	switch t := v.(type) {
	case omap:
		parts := make([]string, len(t))
		for i, e := range t {
			if _, null := e.v.(nullAnn); null && g.chance(0.2) {
				parts[i] = g.scalar(e.k, true, indent) // a key alone: `{annotations, name: p}`
				continue
			}
			parts[i] = g.scalar(e.k, true, indent) + ": " + item(e.v)
		}
		s := "{"
		if len(parts) == 0 {
			return g.pick("{}", "{}", "{ }")
		}
		for i, p := range parts {
			if i > 0 {
				s += sep()
			}
			s += p
		}
		return s + "}"
	case list:
		s := "["
		for i, x := range t {
			if i > 0 {
				s += sep()
			}
			s += item(x)
		}
		return s + "]"
	}
	panic("gen: flow of a scalar")
}

// doc writes one document: a mapping at the top.
func (g *gen) doc(m omap) string {
	g.step = 2 + 2*g.r.IntN(2)
	g.compact = g.chance(0.5)
	if g.chance(0.15) {
		return g.flow(m, 0) + "\n"
	}
	return g.blockMap(m, 0)
}

func (g *gen) anchor(v any) *anchored {
	g.anchors++
	seen := false
	return &anchored{name: fmt.Sprintf("a%d", g.anchors), v: v, seen: &seen}
}

// podSpec is an app's pod spec: containers with ports and env, maybe init
// containers and volumes, in any state inject must handle (missing, empty, null,
// block, flow).
func (g *gen) podSpec(name string, restart string) omap {
	c := omap{{"name", name}, {"image", g.pick("app:1", "registry:5000/app:v2", "app@sha256:0123")}}
	if g.chance(0.6) {
		c = append(c, entry{"ports", list{omap{{"containerPort", 8080 + g.r.IntN(3)}}, omap{{"containerPort", 9090}, {"protocol", "TCP"}}}[:1+g.r.IntN(2)]})
	}
	if g.chance(0.6) {
		shared := g.anchor(g.tricky())
		c = append(c, entry{"env", list{omap{{"name", "A"}, {"value", shared}}, omap{{"name", "B"}, {"value", shared}}}})
	}
	spec := omap{{"containers", list{g.shuffle(c)}}}
	if restart != "" {
		spec = append(spec, entry{"restartPolicy", restart})
	}
	for _, l := range []struct {
		key  string
		item omap
	}{{"initContainers", omap{{"name", "setup"}, {"image", "busybox:1"}}}, {"volumes", omap{{"name", "data"}, {"emptyDir", omap{}}}}} {
		switch g.r.IntN(5) {
		case 1:
			spec = append(spec, entry{l.key, list{}})
		case 2:
			spec = append(spec, entry{l.key, nil})
		case 3, 4:
			spec = append(spec, entry{l.key, list{l.item}})
		}
	}
	if g.chance(0.3) {
		spec = append(spec, entry{"serviceAccountName", "app"})
	}
	return g.shuffle(spec)
}

// meta is an object's metadata, with annotations in any state.
func (g *gen) meta(name string, labels any) omap {
	m := omap{}
	if name != "" {
		m = append(m, entry{"name", name})
	}
	if labels != nil {
		m = append(m, entry{"labels", labels})
	}
	switch g.r.IntN(6) {
	case 1:
		m = append(m, entry{"annotations", omap{}})
	case 2, 3:
		if g.chance(0.1) {
			// An anchored null: inject refuses to fill it, and leaves the object.
			m = append(m, entry{"annotations", g.anchor(nullAnn{})})
			break
		}
		m = append(m, entry{"annotations", nullAnn{}})
	case 4, 5:
		ann := omap{{"example.com/note", g.tricky()}, {"team", g.pick("web", "a,b")}}
		if g.chance(0.4) {
			// Mesh's own annotations, already there: the marker's record keeps a
			// config annotation; meshplane.io/inject: enabled says x is injected.
			ann = append(ann, entry{g.pick("config.meshplane.io/opaque-ports", "meshplane.io/inject"), g.pick("25", "enabled")})
			if ann[2].k == "meshplane.io/inject" {
				ann[2].v = "enabled"
			} else {
				ann[2].v = "25"
			}
		}
		m = append(m, entry{"annotations", g.shuffle(ann)})
	}
	return g.shuffle(m)
}

// workload is a random object: a workload (maybe one inject must leave alone), a
// Service or ConfigMap (never touched), or a List of some.
func (g *gen) object(i int, item bool) omap {
	name := fmt.Sprintf("w%d", i)
	labels := g.anchor(omap{{"app", name}})
	template := func(restart string) omap {
		t := omap{{"spec", g.podSpec(name, restart)}}
		// A selector's template must carry its labels (the API server and mesh check
		// refuse it otherwise); a Job's may leave them out.
		switch {
		case restart == "" || g.chance(0.4):
			t = append(t, entry{"metadata", g.meta("", labels)})
		case g.chance(0.8):
			// metadata itself a null or {}: the marker's record says so.
			t = append(t, entry{"metadata", g.pickAny(nullAnn{}, omap{})})
		}
		return g.shuffle(t)
	}
	kind := g.r.IntN(8)
	for item && kind == 4 {
		kind = g.r.IntN(8) // a List's item is no List: mesh check reads one level
	}
	switch kind {
	case 0:
		spec := g.podSpec(name, "")
		if g.chance(0.3) {
			spec = append(spec, entry{"hostNetwork", true}) // refused: left as it is
		}
		return g.shuffle(omap{{"apiVersion", "v1"}, {"kind", "Pod"}, {"metadata", g.meta(name, nil)}, {"spec", spec}})
	case 1:
		return g.shuffle(omap{{"apiVersion", "batch/v1"}, {"kind", "CronJob"}, {"metadata", g.meta(name, nil)},
			{"spec", g.shuffle(omap{{"schedule", "*/5 * * * *"}, {"jobTemplate", omap{{"spec", omap{{"template", template("OnFailure")}}}}}})}})
	case 2:
		return g.shuffle(omap{{"apiVersion", "v1"}, {"kind", "Service"}, {"metadata", g.meta(name, nil)},
			{"spec", g.shuffle(omap{{"selector", omap{{"app", name}}}, {"ports", list{omap{{"port", 80}, {"targetPort", 8080}}}}})}})
	case 3:
		return g.shuffle(omap{{"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"metadata", g.meta(name, nil)},
			{"data", omap{{"a", g.tricky()}, {"b", g.tricky()}}}})
	case 4:
		return omap{{"apiVersion", "v1"}, {"kind", "List"}, {"items", list{g.object(i*10+1, true), g.object(i*10+2, true)}}}
	case 5:
		return g.shuffle(omap{{"apiVersion", "apps/v1"}, {"kind", "StatefulSet"}, {"metadata", g.meta(name, nil)},
			{"spec", g.shuffle(omap{{"serviceName", name}, {"selector", omap{{"matchLabels", labels}}}, {"template", template("")}})}})
	default:
		spec := omap{{"selector", omap{{"matchLabels", labels}}}, {"template", template("")}}
		if g.chance(0.5) {
			spec = append(spec, entry{"replicas", 2})
		}
		return g.shuffle(omap{{"apiVersion", "apps/v1"}, {"kind", "Deployment"}, {"metadata", g.meta(name, nil)}, {"spec", g.shuffle(spec)}})
	}
}

// json writes v as JSON: compact, with spaces after the separators, or indented by
// step (0: on one line).
func (g *gen) json(v any, indent, step int, spaced bool) string {
	nl := func(d int) string {
		if step == 0 {
			return ""
		}
		return "\n" + strings.Repeat(" ", d)
	}
	colon, comma := ":", ","
	if spaced || step > 0 {
		colon = ": "
	}
	if spaced && step == 0 {
		comma = ", "
	}
	switch t := v.(type) {
	case *anchored:
		return g.json(t.v, indent, step, spaced)
	case nullAnn, nil:
		return "null"
	case string:
		b, _ := json.Marshal(t)
		return string(b)
	case int, bool:
		return fmt.Sprint(t)
	case omap:
		if len(t) == 0 {
			return g.pick("{}", "{ }")
		}
		parts := make([]string, len(t))
		for i, e := range t {
			k, _ := json.Marshal(e.k)
			parts[i] = nl(indent+step) + string(k) + colon + g.json(e.v, indent+step, step, spaced)
		}
		return "{" + strings.Join(parts, comma) + nl(indent) + "}"
	case list:
		if len(t) == 0 {
			return "[]"
		}
		parts := make([]string, len(t))
		for i, x := range t {
			parts[i] = nl(indent+step) + g.json(x, indent+step, step, spaced)
		}
		return "[" + strings.Join(parts, comma) + nl(indent) + "]"
	}
	panic(fmt.Sprintf("gen: json of %T", v))
}

// jsonStream writes one to three JSON objects, one after the other, each ending its
// line: what a JSON input holds, and how inject writes it back.
func (g *gen) jsonStream() string {
	var b strings.Builder
	for i := range 1 + g.r.IntN(3) {
		b.WriteString(g.json(g.object(i, false), 0, g.pick3(0, 2, 4), g.chance(0.5)) + "\n")
	}
	return b.String()
}

func (g *gen) pick3(a, b, c int) int { return []int{a, b, c}[g.r.IntN(3)] }

// stream writes a multi-document stream: maybe a licence header and a leading
// "---", objects, comment-only documents, maybe a trailing one; or now and then a
// JSON input.
func (g *gen) stream() string {
	if g.chance(0.25) {
		return g.jsonStream()
	}
	var b strings.Builder
	if g.chance(0.3) {
		b.WriteString("# Licence: Apache-2.0\n# Copyright the authors\n")
	}
	first := true
	for i := range 1 + g.r.IntN(4) {
		if !first || g.chance(0.5) {
			b.WriteString(g.pick("---\n", "--- # next\n"))
		}
		first = false
		if g.chance(0.15) {
			b.WriteString("# only a comment here\n" + g.pick("---\n", "--- # after the comment\n"))
		}
		doc := g.doc(g.object(i, false))
		if b.Len() == 0 && doc[0] == '{' {
			b.WriteString("---\n") // else the stream would be read as JSON
		}
		b.WriteString(doc)
	}
	if g.chance(0.2) {
		b.WriteString("---\n# trailing comment\n")
	}
	return b.String()
}
