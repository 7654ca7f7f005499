package inject

import (
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"

	yaml "go.yaml.in/yaml/v3"
	sigsyaml "sigs.k8s.io/yaml"
)

// scalarText's output reads back as exactly the string, as a value, a key and a list
// item, in block and flow context, by yaml.v3 and by sigs.k8s.io/yaml (YAML 1.1, as
// kubectl reads); JSON's by encoding/json.
func TestScalarTextReadsBack(t *testing.T) {
	t.Parallel()
	values := []string{
		"3306,5432", "a,b", "warn,mesh=debug", "", " ", "a: b", "a:b", "#x", "x #y", "x#y", "*x", "&x", "!x", "|", ">", "-", "- x", "--x", "?", "? x", "%x",
		"@x", "`x", "'", `"`, `\`, "yes", "No", "ON", "off", "y", "n", "true", "False", "null", "Null", "~", "123", "-1", "+1", "1e3", ".5", "0x1F",
		"0o17", "012", "0b101", "1_000", "1:30", "2001-12-14", "2001-12-14T21:59:43.10-05:00", ".inf", "-.Inf", ".NaN", "{a}", "[b]", "a]", "x,",
		"multi\nline", "line\n", "\n", "tab\tx", "\x00", "\x7f", "\u0085", "\u2028", "\ufeff", "ünïcødé", "😀", "a  b", "x:", ":x", "$(var)",
		"--flag=1", "=", "a=b", "10m", "0.5", "v1.2.3", "ghcr.io/meshplane/proxy:v1.2.3", "0.0.0.0:4143", "/var/run", "a/b",
	}
	r := rand.New(rand.NewPCG(1, 2))
	alphabet := []rune("ab01:,#-*&!?|>'\"%@` \t\n{}[]~.=+/\\é\u2028\x00")
	for range 2000 {
		var b strings.Builder
		for range r.IntN(8) {
			b.WriteRune(alphabet[r.IntN(len(alphabet))])
		}
		values = append(values, b.String())
	}
	readers := map[string]func([]byte, any) error{"yaml.v3": yaml.Unmarshal, "sigs.k8s.io/yaml": func(b []byte, v any) error { return sigsyaml.Unmarshal(b, v) }}
	for _, s := range values {
		if !utf8.ValidString(s) {
			continue
		}
		for style, docs := range map[scalarStyle][]string{
			inBlock: {"k: %s\n", "%s: v\n", "- %s\n", "a:\n  k: %s\n  z: 1\n"},
			inFlow:  {"{k: %s}\n", "{%s: v}\n", "[%s, z]\n", "{a: [x, %s], z: 1}\n"},
		} {
			text := scalarText(s, style)
			for _, doc := range docs {
				src := strings.Replace(doc, "%s", text, 1)
				for name, read := range readers {
					var v any
					if err := read([]byte(src), &v); err != nil {
						t.Errorf("%q in %q: %s: %v", s, src, name, err)
						continue
					}
					if got, ok := find(v, s); !ok {
						t.Errorf("%q written %q: %s read %#v", s, src, name, got)
					}
				}
			}
		}
		var got string
		if err := json.Unmarshal([]byte(scalarText(s, inJSON)), &got); err != nil || got != s {
			t.Errorf("JSON %q: %q (%v)", s, got, err)
		}
	}
}

// find tells whether s is a string value or key somewhere in v.
func find(v any, s string) (any, bool) {
	switch t := v.(type) {
	case string:
		return t, t == s
	case []any:
		for _, x := range t {
			if _, ok := find(x, s); ok {
				return v, true
			}
		}
	case map[string]any:
		for k, x := range t {
			if k == s {
				return v, true
			}
			if _, ok := find(x, s); ok {
				return v, true
			}
		}
	}
	return v, false
}
