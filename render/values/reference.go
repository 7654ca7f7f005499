package values

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// Reference renders a Markdown table of every leaf key in a values schema: its dotted
// key, type, default (from defaults, else the schema's default) and description. Keys are sorted, so the table
// is the same on every run.
func Reference(schemaJSON []byte, defaults map[string]any) (string, error) {
	var root schemaNode
	if err := json.Unmarshal(schemaJSON, &root); err != nil {
		return "", fmt.Errorf("values.schema.json: %w", err)
	}
	var b strings.Builder
	b.WriteString("| Key | Type | Default | Description |\n|---|---|---|---|\n")
	var walk func(prefix string, n schemaNode)
	walk = func(prefix string, n schemaNode) {
		if len(n.Properties) > 0 {
			keys := make([]string, 0, len(n.Properties))
			for k := range n.Properties {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				walk(join(prefix, k), n.Properties[k])
			}
			return
		}
		def := "—"
		if v, ok := Lookup(defaults, prefix); ok {
			j, _ := json.Marshal(v)
			def = "`" + strings.ReplaceAll(string(j), "|", `\|`) + "`"
		} else if len(n.Default) > 0 {
			// A key values.yaml leaves out (so that renders without it are unchanged):
			// the schema states the default the chart applies.
			var v any
			if err := json.Unmarshal(n.Default, &v); err == nil {
				j, _ := json.Marshal(v)
				def = "`" + strings.ReplaceAll(string(j), "|", `\|`) + "`"
			}
		}
		desc := strings.ReplaceAll(n.Description, "|", `\|`)
		if len(n.Enum) > 0 {
			var e []string
			for _, v := range n.Enum {
				e = append(e, fmt.Sprintf("`%v`", v))
			}
			desc += " One of " + strings.Join(e, ", ") + "."
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", prefix, n.typeName(), def, desc)
	}
	walk("", root)
	return b.String(), nil
}

type schemaNode struct {
	Type        any                   `json:"type"`
	Description string                `json:"description"`
	Enum        []any                 `json:"enum"`
	Properties  map[string]schemaNode `json:"properties"`
	Default     json.RawMessage       `json:"default"`
}

func (n schemaNode) typeName() string {
	switch t := n.Type.(type) {
	case string:
		return t
	case []any:
		var s []string
		for _, x := range t {
			s = append(s, fmt.Sprint(x))
		}
		return strings.Join(s, " or ")
	}
	return "any"
}
