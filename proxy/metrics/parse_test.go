package metrics

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// A strict parser of the text exposition format (version 0.0.4), as this package
// writes it: it checks the syntax and the invariants a Prometheus server relies on.

// validName reports whether s is a metric name ([a-zA-Z_:][a-zA-Z0-9_:]*), or with
// label a label name ([a-zA-Z_][a-zA-Z0-9_]*).
func validName(s string, label bool) bool {
	for i, c := range []byte(s) {
		ok := c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			(i > 0 && c >= '0' && c <= '9') || (!label && c == ':')
		if !ok {
			return false
		}
	}
	return s != ""
}

// parsedFamily is one family of an exposition.
type parsedFamily struct {
	name, help, typ string
	samples         []parsedSample
}

// parsedSample is one sample line; labels in line order (le included).
type parsedSample struct {
	name   string
	labels [][2]string
	value  float64
}

func (s parsedSample) label(name string) (string, bool) {
	for _, l := range s.labels {
		if l[0] == name {
			return l[1], true
		}
	}
	return "", false
}

// key is the sample's labels without le, rendered unambiguously.
func (s parsedSample) key() string {
	var parts []string
	for _, l := range s.labels {
		if l[0] != "le" {
			parts = append(parts, strconv.Quote(l[0])+"="+strconv.Quote(l[1]))
		}
	}
	return strings.Join(parts, ",")
}

// values are the label values without le, in line order.
func (s parsedSample) values() []string {
	var v []string
	for _, l := range s.labels {
		if l[0] != "le" {
			v = append(v, l[1])
		}
	}
	return v
}

// parseExposition parses body strictly; families in order.
func parseExposition(body string) ([]*parsedFamily, error) {
	if body == "" {
		return nil, nil
	}
	if !strings.HasSuffix(body, "\n") {
		return nil, fmt.Errorf("no final newline")
	}
	var fams []*parsedFamily
	seen := map[string]bool{}
	var cur *parsedFamily
	for i, line := range strings.Split(strings.TrimSuffix(body, "\n"), "\n") {
		n := i + 1
		switch {
		case line == "":
			return nil, fmt.Errorf("line %d: empty", n)
		case strings.HasPrefix(line, "# HELP "):
			name, help, ok := strings.Cut(line[len("# HELP "):], " ")
			if !ok || !validName(name, false) {
				return nil, fmt.Errorf("line %d: bad HELP %q", n, line)
			}
			if seen[name] {
				return nil, fmt.Errorf("line %d: family %s again", n, name)
			}
			if len(fams) > 0 && fams[len(fams)-1].name >= name {
				return nil, fmt.Errorf("line %d: family %s not sorted after %s", n, name, fams[len(fams)-1].name)
			}
			h, err := unescape(help, false)
			if err != nil {
				return nil, fmt.Errorf("line %d: HELP: %w", n, err)
			}
			seen[name] = true
			cur = &parsedFamily{name: name, help: h}
			fams = append(fams, cur)
		case strings.HasPrefix(line, "# TYPE "):
			name, typ, ok := strings.Cut(line[len("# TYPE "):], " ")
			if !ok || cur == nil || cur.name != name || cur.typ != "" || len(cur.samples) > 0 {
				return nil, fmt.Errorf("line %d: TYPE %q not right after its HELP", n, line)
			}
			if !slices.Contains([]string{"counter", "gauge", "histogram", "summary", "untyped"}, typ) {
				return nil, fmt.Errorf("line %d: type %q", n, typ)
			}
			cur.typ = typ
		case strings.HasPrefix(line, "#"):
			return nil, fmt.Errorf("line %d: unexpected comment %q", n, line)
		default:
			if cur == nil || cur.typ == "" {
				return nil, fmt.Errorf("line %d: sample before HELP and TYPE", n)
			}
			s, err := parseSample(line)
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", n, err)
			}
			if err := cur.accepts(s); err != nil {
				return nil, fmt.Errorf("line %d: %w", n, err)
			}
			cur.samples = append(cur.samples, s)
		}
	}
	for _, f := range fams {
		if err := f.check(); err != nil {
			return nil, fmt.Errorf("family %s: %w", f.name, err)
		}
	}
	return fams, nil
}

// accepts checks that s belongs to f and that its label names are right.
func (f *parsedFamily) accepts(s parsedSample) error {
	want := []string{f.name}
	if f.typ == "histogram" {
		want = []string{f.name + "_bucket", f.name + "_sum", f.name + "_count"}
	}
	if !slices.Contains(want, s.name) {
		return fmt.Errorf("sample %s in family %s", s.name, f.name)
	}
	_, hasLE := s.label("le")
	if hasLE != (s.name == f.name+"_bucket" && f.typ == "histogram") {
		return fmt.Errorf("%s: le label where it does not belong (or missing)", s.name)
	}
	names := make([]string, 0, len(s.labels))
	for _, l := range s.labels {
		if l[0] != "le" {
			names = append(names, l[0])
		}
	}
	if !slices.IsSorted(names) || len(slices.Compact(slices.Clone(names))) != len(names) {
		return fmt.Errorf("%s: label names not sorted and unique: %v", s.name, names)
	}
	if hasLE && s.labels[len(s.labels)-1][0] != "le" {
		return fmt.Errorf("%s: le is not the last label", s.name)
	}
	if len(f.samples) > 0 && strings.Join(names, ",") != strings.Join(labelNamesOf(f.samples[0]), ",") {
		return fmt.Errorf("%s: label names %v differ within the family", s.name, names)
	}
	return nil
}

func labelNamesOf(s parsedSample) []string {
	var n []string
	for _, l := range s.labels {
		if l[0] != "le" {
			n = append(n, l[0])
		}
	}
	return n
}

// check verifies the family's series: unique, sorted by label values, and for
// histograms: buckets cumulative, ascending, ending in +Inf = _count, then _sum
// and _count.
func (f *parsedFamily) check() error {
	if len(f.samples) == 0 {
		return fmt.Errorf("no samples")
	}
	if f.typ != "histogram" {
		for i := 1; i < len(f.samples); i++ {
			if slices.Compare(f.samples[i-1].values(), f.samples[i].values()) >= 0 {
				return fmt.Errorf("series not sorted or repeated: {%s} then {%s}", f.samples[i-1].key(), f.samples[i].key())
			}
		}
		for _, s := range f.samples {
			if f.typ == "counter" && (s.value < 0 || math.IsNaN(s.value)) {
				return fmt.Errorf("counter {%s} = %v", s.key(), s.value)
			}
		}
		return nil
	}
	var prev []string
	for i := 0; i < len(f.samples); {
		key, vals := f.samples[i].key(), f.samples[i].values()
		if prev != nil && slices.Compare(prev, vals) >= 0 {
			return fmt.Errorf("series not sorted or repeated: {%s}", key)
		}
		prev = vals
		lastLE, lastCount, buckets := math.Inf(-1), 0.0, 0
		for ; i < len(f.samples) && f.samples[i].name == f.name+"_bucket"; i++ {
			s := f.samples[i]
			if s.key() != key {
				return fmt.Errorf("{%s}: no _sum and _count before {%s}", key, s.key())
			}
			leText, _ := s.label("le")
			le, err := parseValue(leText)
			if err != nil || le <= lastLE {
				return fmt.Errorf("{%s}: le %q not ascending", key, leText)
			}
			if s.value < lastCount {
				return fmt.Errorf("{%s}: bucket le=%s = %v below the one before, %v", key, leText, s.value, lastCount)
			}
			lastLE, lastCount = le, s.value
			buckets++
		}
		if buckets == 0 || !math.IsInf(lastLE, +1) {
			return fmt.Errorf("{%s}: buckets do not end in +Inf", key)
		}
		if i+1 >= len(f.samples) || f.samples[i].name != f.name+"_sum" || f.samples[i+1].name != f.name+"_count" ||
			f.samples[i].key() != key || f.samples[i+1].key() != key {
			return fmt.Errorf("{%s}: buckets not followed by _sum and _count", key)
		}
		if c := f.samples[i+1].value; c != lastCount {
			return fmt.Errorf("{%s}: _count %v != +Inf bucket %v", key, c, lastCount)
		}
		i += 2
	}
	return nil
}

// parseSample parses name{l="v",...} value (no timestamp: this package writes none).
func parseSample(line string) (parsedSample, error) {
	var s parsedSample
	end := strings.IndexAny(line, "{ ")
	if end < 0 {
		return s, fmt.Errorf("no value in %q", line)
	}
	s.name = line[:end]
	if !validName(s.name, false) {
		return s, fmt.Errorf("bad metric name %q", s.name)
	}
	rest := line[end:]
	if strings.HasPrefix(rest, "{") {
		rest = rest[1:]
		for !strings.HasPrefix(rest, "}") {
			if len(s.labels) > 0 {
				var ok bool
				if rest, ok = strings.CutPrefix(rest, ","); !ok {
					return s, fmt.Errorf("no comma between labels in %q", line)
				}
			}
			eq := strings.Index(rest, `="`)
			if eq < 0 || !validName(rest[:eq], true) {
				return s, fmt.Errorf("bad label in %q", line)
			}
			name := rest[:eq]
			rest = rest[eq+2:]
			// The value ends at the first double quote not escaped.
			j := 0
			for ; j < len(rest) && rest[j] != '"'; j++ {
				if rest[j] == '\\' {
					j++
				}
			}
			if j >= len(rest) {
				return s, fmt.Errorf("unterminated label value in %q", line)
			}
			v, err := unescape(rest[:j], true)
			if err != nil {
				return s, fmt.Errorf("label %s: %w", name, err)
			}
			s.labels = append(s.labels, [2]string{name, v})
			rest = rest[j+1:]
		}
		rest = rest[1:]
	}
	v, ok := strings.CutPrefix(rest, " ")
	if !ok || strings.Contains(v, " ") {
		return s, fmt.Errorf("want one space and a value after the labels in %q", line)
	}
	var err error
	if s.value, err = parseValue(v); err != nil {
		return s, err
	}
	return s, nil
}

func parseValue(v string) (float64, error) {
	switch v {
	case "+Inf":
		return math.Inf(+1), nil
	case "-Inf":
		return math.Inf(-1), nil
	case "NaN":
		return math.NaN(), nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || strings.ContainsAny(v, "_xXpP") || strings.EqualFold(v, "inf") || strings.EqualFold(v, "infinity") {
		return 0, fmt.Errorf("bad value %q", v)
	}
	return f, nil
}

// unescape undoes the format's escapes: \\ and \n, and \" in label values; any
// other backslash, a raw newline or (in a label value) a raw double quote is an
// error.
func unescape(s string, label bool) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\n' || (label && c == '"'):
			return "", fmt.Errorf("raw %q in %q", c, s)
		case c != '\\':
			b.WriteByte(c)
			continue
		}
		i++
		if i == len(s) {
			return "", fmt.Errorf("trailing backslash in %q", s)
		}
		switch {
		case s[i] == '\\':
			b.WriteByte('\\')
		case s[i] == 'n':
			b.WriteByte('\n')
		case s[i] == '"' && label:
			b.WriteByte('"')
		default:
			return "", fmt.Errorf("bad escape \\%c in %q", s[i], s)
		}
	}
	return b.String(), nil
}

// familyByName finds a family.
func familyByName(fams []*parsedFamily, name string) *parsedFamily {
	for _, f := range fams {
		if f.name == name {
			return f
		}
	}
	return nil
}
