// Package values builds the values a chart renders with from layered sources (chart
// defaults, overlays, values files, --set flags) and validates every source on its
// own against the chart's values.schema.json, so an error names the source and the key.
package values

import (
	"fmt"
	"io"
	"strings"

	"helm.sh/helm/v3/pkg/strvals"
	"sigs.k8s.io/yaml"
)

// Source is one layer of values and the name errors call it by.
type Source struct {
	Name   string
	Values map[string]any
}

// Options are the value flags shared by every command that renders a chart. Sources are
// applied in Helm's order: files, then --set, --set-string, --set-file; later wins.
type Options struct {
	ValueFiles   []string // -f/--values: a path, or "-" for standard input
	Values       []string // --set a.b=c,d=e
	StringValues []string // --set-string a.b=c
	FileValues   []string // --set-file a.b=path
}

// Reader gives the bytes of a named file; "-" is standard input.
type Reader interface {
	ReadFile(name string) ([]byte, error)
	Stdin() io.Reader
}

// Sources reads every source the options name, in the order they apply.
func (o Options) Sources(r Reader) ([]Source, error) {
	var out []Source
	stdinUsed := false
	for _, f := range o.ValueFiles {
		var data []byte
		var err error
		if f == "-" {
			if stdinUsed {
				return nil, fmt.Errorf("--values -: standard input can be read only once")
			}
			stdinUsed = true
			data, err = io.ReadAll(r.Stdin())
		} else {
			data, err = r.ReadFile(f)
		}
		if err != nil {
			return nil, fmt.Errorf("values file %s: %w", f, err)
		}
		src, err := Parse(f, data)
		if err != nil {
			return nil, err
		}
		out = append(out, src)
	}
	for _, s := range o.Values {
		m, err := strvals.Parse(s)
		if err != nil {
			return nil, fmt.Errorf("--set %q: %w", s, err)
		}
		out = append(out, Source{Name: fmt.Sprintf("--set %s", s), Values: m})
	}
	for _, s := range o.StringValues {
		m, err := strvals.ParseString(s)
		if err != nil {
			return nil, fmt.Errorf("--set-string %q: %w", s, err)
		}
		out = append(out, Source{Name: fmt.Sprintf("--set-string %s", s), Values: m})
	}
	for _, s := range o.FileValues {
		m, err := strvals.ParseFile(s, func(rs []rune) (any, error) {
			path := string(rs)
			data, err := r.ReadFile(path)
			if err != nil {
				return nil, fmt.Errorf("reading %s: %w", path, err)
			}
			return string(data), nil
		})
		if err != nil {
			return nil, fmt.Errorf("--set-file %q: %w", s, err)
		}
		out = append(out, Source{Name: fmt.Sprintf("--set-file %s", s), Values: m})
	}
	return out, nil
}

// Parse reads a YAML (or JSON) values document. An empty document is an empty map;
// anything but a mapping at the top is an error naming the source.
func Parse(name string, data []byte) (Source, error) {
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		return Source{}, fmt.Errorf("values file %s: %w", name, err)
	}
	switch m := v.(type) {
	case nil:
		return Source{Name: name, Values: map[string]any{}}, nil
	case map[string]any:
		return Source{Name: name, Values: m}, nil
	default:
		return Source{}, fmt.Errorf("values file %s: the top level must be a mapping of keys, not %T", name, v)
	}
}

// Merge merges the sources in order, later winning, with Helm's semantics: maps merge
// key by key, any other value replaces. The result shares no maps with the inputs.
func Merge(sources ...Source) map[string]any {
	out := map[string]any{}
	for _, s := range sources {
		out = mergeMaps(out, s.Values)
	}
	return out
}

func mergeMaps(a, b map[string]any) map[string]any {
	out := make(map[string]any, len(a)+len(b))
	for k, v := range a {
		out[k] = deepCopy(v)
	}
	for k, v := range b {
		if vm, ok := v.(map[string]any); ok {
			if am, ok := out[k].(map[string]any); ok {
				out[k] = mergeMaps(am, vm)
				continue
			}
		}
		out[k] = deepCopy(v)
	}
	return out
}

// deepCopy copies maps and lists, so merged values share nothing with their sources.
func deepCopy(v any) any {
	switch t := v.(type) {
	case map[string]any:
		return mergeMaps(nil, t)
	case []any:
		out := make([]any, len(t))
		for i, x := range t {
			out[i] = deepCopy(x)
		}
		return out
	default:
		return v
	}
}

// Lookup returns the value at a dotted path and whether it is set.
func Lookup(m map[string]any, path string) (any, bool) {
	var cur any = m
	for _, k := range strings.Split(path, ".") {
		cm, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = cm[k]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// Set sets the value at a dotted path, creating maps on the way.
func Set(m map[string]any, path string, v any) {
	keys := strings.Split(path, ".")
	for _, k := range keys[:len(keys)-1] {
		next, ok := m[k].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[k] = next
		}
		m = next
	}
	m[keys[len(keys)-1]] = v
}

// Origin names the last source that sets the dotted path, or "" if none does.
func Origin(sources []Source, path string) string {
	for i := len(sources) - 1; i >= 0; i-- {
		if _, ok := Lookup(sources[i].Values, path); ok {
			return sources[i].Name
		}
	}
	return ""
}

// YAML encodes values with sorted keys, the same bytes on every call.
func YAML(m map[string]any) ([]byte, error) {
	b, err := yaml.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encoding values: %w", err)
	}
	return b, nil
}
