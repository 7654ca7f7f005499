package values

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// Schema is a compiled values.schema.json.
type Schema struct {
	s *jsonschema.Schema
}

// CompileSchema compiles a chart's values.schema.json. It loads no remote references.
func CompileSchema(schemaJSON []byte) (*Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schemaJSON))
	if err != nil {
		return nil, fmt.Errorf("values.schema.json: %w", err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("file:///values.schema.json", doc); err != nil {
		return nil, fmt.Errorf("values.schema.json: %w", err)
	}
	s, err := c.Compile("file:///values.schema.json")
	if err != nil {
		return nil, fmt.Errorf("values.schema.json: %w", err)
	}
	return &Schema{s: s}, nil
}

// Problem is one schema violation: the dotted key and what is wrong with it.
type Problem struct {
	Key     string
	Message string
}

// Error is every problem one source has, named by the source.
type Error struct {
	Source   string
	Problems []Problem
}

func (e *Error) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "%s: %s: %s", e.Source, p.Key, p.Message)
	}
	return b.String()
}

// Validate checks one source on its own: unknown keys, wrong types, values out of range.
// Null values are skipped (in Helm they delete a default). The error is an *Error.
func (s *Schema) Validate(src Source) error {
	err := s.s.Validate(dropNulls(src.Values))
	if err == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return fmt.Errorf("%s: %w", src.Name, err)
	}
	p := message.NewPrinter(language.English)
	var problems []Problem
	var walk func(*jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) > 0 {
			for _, c := range e.Causes {
				walk(c)
			}
			return
		}
		key := strings.Join(e.InstanceLocation, ".")
		switch k := e.ErrorKind.(type) {
		case *kind.AdditionalProperties:
			for _, prop := range k.Properties {
				problems = append(problems, Problem{Key: join(key, prop), Message: "unknown key (not in values.schema.json)"})
			}
			return
		case *kind.Type:
			problems = append(problems, Problem{Key: orTop(key), Message: fmt.Sprintf("is a %s, want %s", k.Got, strings.Join(k.Want, " or "))})
			return
		}
		problems = append(problems, Problem{Key: orTop(key), Message: e.ErrorKind.LocalizedString(p)})
	}
	walk(ve)
	sort.SliceStable(problems, func(i, j int) bool { return problems[i].Key < problems[j].Key })
	return &Error{Source: src.Name, Problems: problems}
}

func join(a, b string) string {
	if a == "" {
		return b
	}
	return a + "." + b
}

func orTop(key string) string {
	if key == "" {
		return "(top level)"
	}
	return key
}

func dropNulls(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		switch t := v.(type) {
		case nil:
			continue
		case map[string]any:
			out[k] = dropNulls(t)
		default:
			out[k] = v
		}
	}
	return out
}
