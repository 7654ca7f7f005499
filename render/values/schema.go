package values

import (
	"bytes"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
	"k8s.io/apimachinery/pkg/api/resource"
)

// Schema is a compiled values.schema.json.
type Schema struct {
	s     *jsonschema.Schema
	moved []Moved
}

// WithMoved returns the schema with a table of renamed and removed keys (MovedKeys):
// Validate reports a key of the table with its replacement, or why it was removed,
// instead of as an unknown key, and its error is then a *MovedError.
func (s *Schema) WithMoved(table []Moved) *Schema {
	return &Schema{s: s.s, moved: table}
}

// CompileSchema compiles a chart's values.schema.json. It loads no remote references.
func CompileSchema(schemaJSON []byte) (*Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schemaJSON))
	if err != nil {
		return nil, fmt.Errorf("values.schema.json: %w", err)
	}
	c := jsonschema.NewCompiler()
	c.RegisterFormat(&jsonschema.Format{Name: "quantity", Validate: validQuantity})
	c.AssertFormat()
	if err := c.AddResource("file:///values.schema.json", doc); err != nil {
		return nil, fmt.Errorf("values.schema.json: %w", err)
	}
	s, err := c.Compile("file:///values.schema.json")
	if err != nil {
		return nil, fmt.Errorf("values.schema.json: %w", err)
	}
	return &Schema{s: s}, nil
}

// validQuantity: a string is a Kubernetes resource quantity ("100m", "64Mi"); numbers
// are quantities too.
func validQuantity(v any) error {
	s, ok := v.(string)
	if !ok {
		return nil
	}
	if _, err := resource.ParseQuantity(s); err != nil {
		return fmt.Errorf("%q is not a Kubernetes quantity (such as 100m, 0.5, 64Mi or 1G)", s)
	}
	return nil
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
// Null values are skipped (in Helm they delete a default). The error is an *Error, or
// a *MovedError (wrapping one) when the source sets keys of the WithMoved table.
func (s *Schema) Validate(src Source) error {
	moved := FindMoved(src, s.moved)
	err := s.s.Validate(dropNulls(src.Values))
	if err == nil && len(moved) == 0 {
		return nil
	}
	if len(moved) > 0 {
		// The keys' new names (or why they are gone) say more than the schema's
		// "unknown key", and are all a values file written for an older release needs.
		return &MovedError{Err: &Error{Source: src.Name, Problems: moved}}
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
			problems = append(problems, Problem{Key: orTop(key), Message: typeMessage(k, lookupPath(src.Values, e.InstanceLocation))})
			return
		case *kind.Format:
			problems = append(problems, Problem{Key: orTop(key), Message: k.Err.Error()})
			return
		case *kind.Pattern:
			problems = append(problems, Problem{Key: orTop(key), Message: fmt.Sprintf("%q does not match the pattern %s", k.Got, k.Want)})
			return
		}
		if msg, ok := bound(e.ErrorKind); ok {
			problems = append(problems, Problem{Key: orTop(key), Message: msg})
			return
		}
		problems = append(problems, Problem{Key: orTop(key), Message: e.ErrorKind.LocalizedString(p)})
	}
	walk(ve)
	sort.SliceStable(problems, func(i, j int) bool { return problems[i].Key < problems[j].Key })
	return &Error{Source: src.Name, Problems: problems}
}

// typeMessage says what type a key needs. A key that needs an integer says so, also for
// 2.5, which --set passes on as the string "2.5".
func typeMessage(k *kind.Type, v any) string {
	if slices.Contains(k.Want, "integer") && !slices.Contains(k.Want, "string") && !slices.Contains(k.Want, "number") {
		switch x := v.(type) {
		case string:
			return fmt.Sprintf("needs an integer, not %q", x)
		case float64:
			return fmt.Sprintf("needs an integer, not %v", x)
		}
		return fmt.Sprintf("needs an integer, not a %s", k.Got)
	}
	return fmt.Sprintf("is a %s, want %s", k.Got, strings.Join(k.Want, " or "))
}

// bound says which bound a number misses, in plain decimals ("must be above 0, not
// 0"), not the validator's scientific notation; ok is false for other errors.
func bound(k jsonschema.ErrorKind) (msg string, ok bool) {
	var rel string
	var want, got *big.Rat
	switch k := k.(type) {
	case *kind.Minimum:
		rel, want, got = "at least", k.Want, k.Got
	case *kind.Maximum:
		rel, want, got = "at most", k.Want, k.Got
	case *kind.ExclusiveMinimum:
		rel, want, got = "above", k.Want, k.Got
	case *kind.ExclusiveMaximum:
		rel, want, got = "below", k.Want, k.Got
	default:
		return "", false
	}
	return fmt.Sprintf("must be %s %s, not %s", rel, decimal(want), decimal(got)), true
}

func decimal(r *big.Rat) string {
	if r.IsInt() {
		return r.Num().String()
	}
	f, _ := r.Float64()
	return strconv.FormatFloat(f, 'f', -1, 64)
}

func lookupPath(m map[string]any, path []string) any {
	var cur any = m
	for _, p := range path {
		switch c := cur.(type) {
		case map[string]any:
			cur = c[p]
		case []any:
			i, err := strconv.Atoi(p)
			if err != nil || i < 0 || i >= len(c) {
				return nil
			}
			cur = c[i]
		default:
			return nil
		}
	}
	return cur
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
