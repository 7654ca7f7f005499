package values

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

const testSchema = `{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "additionalProperties": false,
  "properties": {
    "replicas": {"type": "integer", "minimum": 1},
    "name": {"type": "string"},
    "debug": {"type": "boolean"},
    "logLevel": {"enum": ["debug", "info", "warn", "error"]},
    "ratio": {"type": "number", "maximum": 1},
    "rate": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 10},
    "word": {"type": "string", "pattern": "^[a-z]+$"},
    "proxy": {
      "type": "object",
      "additionalProperties": false,
      "properties": {
        "image": {
          "type": "object",
          "additionalProperties": false,
          "properties": {
            "tag": {"type": "string"},
            "pullPolicy": {"enum": ["Always", "IfNotPresent", "Never"]}
          }
        },
        "ports": {"type": "array", "items": {"type": "integer"}}
      }
    },
    "extra": {"type": "object"}
  }
}`

func compile(t *testing.T) *Schema {
	t.Helper()
	s, err := CompileSchema([]byte(testSchema))
	if err != nil {
		t.Fatalf("CompileSchema: %v", err)
	}
	return s
}

func TestCompileSchemaErrors(t *testing.T) {
	tests := []struct {
		name, schema string
	}{
		{"not json", `{"type": `},
		{"bad keyword value", `{"type": 42}`},
		{"remote reference", `{"$ref": "https://example.com/other.json"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := CompileSchema([]byte(tt.schema))
			if err == nil {
				t.Fatal("CompileSchema succeeded")
			}
			if !strings.HasPrefix(err.Error(), "values.schema.json: ") {
				t.Errorf("error %q does not name values.schema.json", err)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	s := compile(t)
	tests := []struct {
		name   string
		values map[string]any
		want   []Problem // nil: valid
	}{
		{
			name:   "empty",
			values: map[string]any{},
		},
		{
			name: "valid, numbers of every origin",
			values: map[string]any{
				"replicas": int64(3),     // --set
				"ratio":    float64(0.5), // YAML
				"name":     "x",
				"debug":    true,
				"logLevel": "info",
				"proxy":    map[string]any{"image": map[string]any{"tag": "v1", "pullPolicy": "Always"}, "ports": []any{int64(80), float64(443)}},
				"extra":    map[string]any{"anything": []any{"goes"}},
			},
		},
		{
			name:   "a whole float is an integer",
			values: map[string]any{"replicas": float64(2)},
		},
		{
			name: "null values are skipped",
			values: map[string]any{
				"replicas":       nil,
				"unknownButNull": nil,
				"proxy":          map[string]any{"image": map[string]any{"tag": nil, "bogus": nil}},
			},
		},
		{
			name:   "unknown top-level key",
			values: map[string]any{"replica": 3},
			want:   []Problem{{Key: "replica", Message: "unknown key (not in values.schema.json)"}},
		},
		{
			name:   "unknown nested key is dotted",
			values: map[string]any{"proxy": map[string]any{"image": map[string]any{"tga": "v1"}}},
			want:   []Problem{{Key: "proxy.image.tga", Message: "unknown key (not in values.schema.json)"}},
		},
		{
			name:   "several unknown keys in one map, sorted",
			values: map[string]any{"proxy": map[string]any{"zz": 1, "aa": 1, "mm": 1}},
			want: []Problem{
				{Key: "proxy.aa", Message: "unknown key (not in values.schema.json)"},
				{Key: "proxy.mm", Message: "unknown key (not in values.schema.json)"},
				{Key: "proxy.zz", Message: "unknown key (not in values.schema.json)"},
			},
		},
		{
			name:   "string for integer",
			values: map[string]any{"replicas": "3"},
			want:   []Problem{{Key: "replicas", Message: "needs an integer, not \"3\""}},
		},
		{
			name:   "fraction for integer",
			values: map[string]any{"replicas": 1.5},
			want:   []Problem{{Key: "replicas", Message: "needs an integer, not 1.5"}},
		},
		{
			name:   "scalar for object",
			values: map[string]any{"proxy": "yes"},
			want:   []Problem{{Key: "proxy", Message: "is a string, want object"}},
		},
		{
			name:   "array item of the wrong type",
			values: map[string]any{"proxy": map[string]any{"ports": []any{int64(80), "http"}}},
			want:   []Problem{{Key: "proxy.ports.1", Message: "needs an integer, not \"http\""}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.Validate(Source{Name: "my-values.yaml", Values: tt.values})
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			var ve *Error
			if !errors.As(err, &ve) {
				t.Fatalf("Validate error %v (%T) is not an *Error", err, err)
			}
			if ve.Source != "my-values.yaml" {
				t.Errorf("Source = %q", ve.Source)
			}
			if !reflect.DeepEqual(ve.Problems, tt.want) {
				t.Errorf("Problems =\n%#v\nwant\n%#v", ve.Problems, tt.want)
			}
		})
	}
}

// Problems whose message comes from the validator: check key and the gist of the message.
func TestValidateRangeAndEnum(t *testing.T) {
	s := compile(t)
	tests := []struct {
		name   string
		values map[string]any
		key    string
		gist   []string
	}{
		{"below minimum", map[string]any{"replicas": int64(0)}, "replicas", []string{"must be at least 1, not 0"}},
		{"above maximum", map[string]any{"ratio": 1.5}, "ratio", []string{"must be at most 1, not 1.5"}},
		{"at the exclusive minimum", map[string]any{"rate": 0.0}, "rate", []string{"must be above 0, not 0"}},
		{"above the exclusive maximum", map[string]any{"rate": 2e6}, "rate", []string{"must be below 10, not 2000000"}},
		{"pattern", map[string]any{"word": "a b"}, "word", []string{`"a b" does not match the pattern ^[a-z]+$`}},
		{"not in enum", map[string]any{"logLevel": "verbose"}, "logLevel", []string{"debug", "info"}},
		{"nested enum", map[string]any{"proxy": map[string]any{"image": map[string]any{"pullPolicy": "Sometimes"}}},
			"proxy.image.pullPolicy", []string{"Always", "IfNotPresent"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.Validate(Source{Name: "--set x", Values: tt.values})
			var ve *Error
			if !errors.As(err, &ve) {
				t.Fatalf("Validate error %v is not an *Error", err)
			}
			if len(ve.Problems) != 1 {
				t.Fatalf("Problems = %#v, want one", ve.Problems)
			}
			p := ve.Problems[0]
			if p.Key != tt.key {
				t.Errorf("Key = %q, want %q", p.Key, tt.key)
			}
			for _, g := range tt.gist {
				if !strings.Contains(p.Message, g) {
					t.Errorf("Message %q does not contain %q", p.Message, g)
				}
			}
		})
	}
}

func TestValidateSeveralProblemsSortedByKey(t *testing.T) {
	s := compile(t)
	err := s.Validate(Source{Name: "--set-string a", Values: map[string]any{
		"replicas": "two",
		"zebra":    1,
		"debug":    "yes",
		"proxy":    map[string]any{"image": map[string]any{"tag": 5, "extra": true}},
		"logLevel": "loud",
	}})
	var ve *Error
	if !errors.As(err, &ve) {
		t.Fatalf("Validate error %v is not an *Error", err)
	}
	var keys []string
	for _, p := range ve.Problems {
		keys = append(keys, p.Key)
	}
	want := []string{"debug", "logLevel", "proxy.image.extra", "proxy.image.tag", "replicas", "zebra"}
	if !reflect.DeepEqual(keys, want) {
		t.Fatalf("problem keys = %q, want %q", keys, want)
	}
	// The message has one line per problem, each naming the source and the key.
	lines := strings.Split(ve.Error(), "\n")
	if len(lines) != len(want) {
		t.Fatalf("Error() has %d lines, want %d:\n%s", len(lines), len(want), ve.Error())
	}
	for i, l := range lines {
		if prefix := "--set-string a: " + want[i] + ": "; !strings.HasPrefix(l, prefix) {
			t.Errorf("line %d = %q, want prefix %q", i+1, l, prefix)
		}
	}
	// The same input gives the same error every time (no map-order leaks).
	for range 10 {
		again := s.Validate(Source{Name: "--set-string a", Values: map[string]any{
			"replicas": "two",
			"zebra":    1,
			"debug":    "yes",
			"proxy":    map[string]any{"image": map[string]any{"tag": 5, "extra": true}},
			"logLevel": "loud",
		}})
		if again.Error() != err.Error() {
			t.Fatalf("error differs between runs:\n%s\n---\n%s", err, again)
		}
	}
}

func TestValidateTopLevelProblem(t *testing.T) {
	s, err := CompileSchema([]byte(`{"type": "object", "required": ["name"]}`))
	if err != nil {
		t.Fatal(err)
	}
	err = s.Validate(Source{Name: "values.yaml", Values: map[string]any{}})
	var ve *Error
	if !errors.As(err, &ve) {
		t.Fatalf("Validate error %v is not an *Error", err)
	}
	if len(ve.Problems) != 1 || ve.Problems[0].Key != "(top level)" || !strings.Contains(ve.Problems[0].Message, "name") {
		t.Errorf("Problems = %#v, want one (top level) problem naming the missing key", ve.Problems)
	}
}

// Validate reads the source without changing it, nulls included.
func TestValidateDoesNotMutate(t *testing.T) {
	s := compile(t)
	v := map[string]any{"replicas": nil, "proxy": map[string]any{"image": map[string]any{"tag": nil}}}
	if err := s.Validate(Source{Name: "x", Values: v}); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"replicas": nil, "proxy": map[string]any{"image": map[string]any{"tag": nil}}}
	if !reflect.DeepEqual(v, want) {
		t.Errorf("Validate changed its input: %#v", v)
	}
}

// Values as Sources produce them validate end to end: --set gives int64, files float64.
func TestValidateSources(t *testing.T) {
	s := compile(t)
	r := newReader(map[string]string{"v.yaml": "replicas: 2\nproxy:\n  image:\n    tag: v1\n"}, "")
	srcs, err := Options{
		ValueFiles:   []string{"v.yaml"},
		Values:       []string{"replicas=3,proxy.ports={80,443}"},
		StringValues: []string{"replicas=3"},
	}.Sources(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, src := range srcs[:2] {
		if err := s.Validate(src); err != nil {
			t.Errorf("Validate(%s): %v", src.Name, err)
		}
	}
	err = s.Validate(srcs[2])
	var ve *Error
	if !errors.As(err, &ve) || ve.Source != "--set-string replicas=3" ||
		!reflect.DeepEqual(ve.Problems, []Problem{{Key: "replicas", Message: "needs an integer, not \"3\""}}) {
		t.Errorf("Validate(--set-string replicas=3) = %v", err)
	}
}
