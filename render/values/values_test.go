package values

import (
	"errors"
	"io"
	"io/fs"
	"reflect"
	"strings"
	"testing"
)

// fakeReader serves files from a map and counts how often each is read and how often
// standard input is asked for.
type fakeReader struct {
	files      map[string]string
	stdin      string
	reads      map[string]int
	stdinCalls int
}

func newReader(files map[string]string, stdin string) *fakeReader {
	return &fakeReader{files: files, stdin: stdin, reads: map[string]int{}}
}

func (r *fakeReader) ReadFile(name string) ([]byte, error) {
	r.reads[name]++
	s, ok := r.files[name]
	if !ok {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return []byte(s), nil
}

func (r *fakeReader) Stdin() io.Reader {
	r.stdinCalls++
	return strings.NewReader(r.stdin)
}

func names(srcs []Source) []string {
	var out []string
	for _, s := range srcs {
		out = append(out, s.Name)
	}
	return out
}

func TestSourcesOrderAndNames(t *testing.T) {
	r := newReader(map[string]string{
		"a.yaml": "a: 1\nshared: a\n",
		"b.yaml": "b: 2\nshared: b\n",
		"ca.pem": "PEM-BYTES\n",
	}, "stdin: true\nshared: stdin\n")
	// Fields deliberately listed in a different order than they apply.
	o := Options{
		FileValues:   []string{"tls.ca=ca.pem"},
		StringValues: []string{"tag=007", "shared=string"},
		Values:       []string{"replicas=3,enabled=true", "shared=set"},
		ValueFiles:   []string{"a.yaml", "-", "b.yaml"},
	}
	srcs, err := o.Sources(r)
	if err != nil {
		t.Fatalf("Sources: %v", err)
	}
	wantNames := []string{
		"a.yaml",
		"-",
		"b.yaml",
		"--set replicas=3,enabled=true",
		"--set shared=set",
		"--set-string tag=007",
		"--set-string shared=string",
		"--set-file tls.ca=ca.pem",
	}
	if got := names(srcs); !reflect.DeepEqual(got, wantNames) {
		t.Fatalf("source names:\n got %q\nwant %q", got, wantNames)
	}

	wantValues := []map[string]any{
		{"a": float64(1), "shared": "a"},
		{"stdin": true, "shared": "stdin"},
		{"b": float64(2), "shared": "b"},
		{"replicas": int64(3), "enabled": true},
		{"shared": "set"},
		{"tag": "007"},
		{"shared": "string"},
		{"tls": map[string]any{"ca": "PEM-BYTES\n"}},
	}
	for i, want := range wantValues {
		if !reflect.DeepEqual(srcs[i].Values, want) {
			t.Errorf("source %d (%s) values = %#v, want %#v", i, srcs[i].Name, srcs[i].Values, want)
		}
	}
	if r.stdinCalls != 1 {
		t.Errorf("Stdin called %d times, want 1", r.stdinCalls)
	}
	if r.reads["ca.pem"] != 1 {
		t.Errorf("--set-file read ca.pem %d times, want 1 (through the Reader)", r.reads["ca.pem"])
	}
	// Later sources win when merged in the order given.
	if got := Merge(srcs...)["shared"]; got != "string" {
		t.Errorf("merged shared = %v, want the last --set-string to win", got)
	}
	if got := Origin(srcs, "shared"); got != "--set-string shared=string" {
		t.Errorf("Origin(shared) = %q", got)
	}
}

func TestSourcesEmpty(t *testing.T) {
	srcs, err := Options{}.Sources(newReader(nil, ""))
	if err != nil || len(srcs) != 0 {
		t.Fatalf("Sources of no options = %v, %v; want none", srcs, err)
	}
}

func TestSourcesStdinTwice(t *testing.T) {
	r := newReader(nil, "a: 1\n")
	_, err := Options{ValueFiles: []string{"-", "-"}}.Sources(r)
	if err == nil {
		t.Fatal("reading standard input twice succeeded")
	}
	if !strings.Contains(err.Error(), "standard input") || !strings.Contains(err.Error(), "--values -") {
		t.Errorf("error %q does not explain that standard input is read once", err)
	}
	if r.stdinCalls != 1 {
		t.Errorf("Stdin called %d times, want 1", r.stdinCalls)
	}
}

func TestSourcesErrors(t *testing.T) {
	files := map[string]string{
		"ok.yaml":   "a: 1\n",
		"list.yaml": "- a\n- b\n",
		"bad.yaml":  "a: [1, 2\n",
	}
	tests := []struct {
		name     string
		opts     Options
		want     []string // substrings of the error
		notFound bool     // the error wraps fs.ErrNotExist
	}{
		{
			name:     "missing values file",
			opts:     Options{ValueFiles: []string{"ok.yaml", "missing.yaml"}},
			want:     []string{"values file missing.yaml"},
			notFound: true,
		},
		{
			name: "values file not a mapping",
			opts: Options{ValueFiles: []string{"list.yaml"}},
			want: []string{"values file list.yaml", "mapping"},
		},
		{
			name: "malformed values file",
			opts: Options{ValueFiles: []string{"bad.yaml"}},
			want: []string{"values file bad.yaml"},
		},
		{
			name: "--set without a value",
			opts: Options{Values: []string{"a=1", "novalue"}},
			want: []string{`--set "novalue"`},
		},
		{
			name: "--set-string with a bad index",
			opts: Options{StringValues: []string{"list[x]=1"}},
			want: []string{`--set-string "list[x]=1"`},
		},
		{
			name: "--set-file without a path",
			opts: Options{FileValues: []string{"key"}},
			want: []string{`--set-file "key"`},
		},
		{
			name:     "--set-file of a missing file",
			opts:     Options{FileValues: []string{"tls.ca=nope.pem"}},
			want:     []string{`--set-file "tls.ca=nope.pem"`, "reading nope.pem"},
			notFound: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srcs, err := tt.opts.Sources(newReader(files, ""))
			if err == nil {
				t.Fatalf("Sources succeeded: %v", names(srcs))
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if tt.notFound && !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("error %q does not wrap fs.ErrNotExist", err)
			}
			if srcs != nil {
				t.Errorf("sources returned with the error: %v", names(srcs))
			}
		})
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		data    string
		want    map[string]any
		wantErr []string
	}{
		{name: "empty", data: "", want: map[string]any{}},
		{name: "white space", data: "\n  \n\n", want: map[string]any{}},
		{name: "comments only", data: "# nothing here\n# at all\n", want: map[string]any{}},
		{name: "explicit null", data: "null\n", want: map[string]any{}},
		{name: "document marker only", data: "---\n", want: map[string]any{}},
		{name: "mapping", data: "a:\n  b: [1, x]\n  c: null\n", want: map[string]any{
			"a": map[string]any{"b": []any{float64(1), "x"}, "c": nil},
		}},
		{name: "json", data: `{"a": {"b": "c"}}`, want: map[string]any{"a": map[string]any{"b": "c"}}},
		{name: "list", data: "- a\n- b\n", wantErr: []string{"values file my.yaml", "top level must be a mapping", "[]interface {}"}},
		{name: "string", data: "just a string\n", wantErr: []string{"values file my.yaml", "top level must be a mapping", "string"}},
		{name: "number", data: "42\n", wantErr: []string{"values file my.yaml", "top level must be a mapping"}},
		{name: "unclosed flow", data: "a: [1, 2\n", wantErr: []string{"values file my.yaml"}},
		{name: "bad indentation", data: "a:\n  b: 1\n c: 2\n", wantErr: []string{"values file my.yaml"}},
		{name: "tab indentation", data: "a:\n\tb: 1\n", wantErr: []string{"values file my.yaml"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, err := Parse("my.yaml", []byte(tt.data))
			if tt.wantErr != nil {
				if err == nil {
					t.Fatalf("Parse succeeded: %#v", src.Values)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not contain %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if src.Name != "my.yaml" {
				t.Errorf("Name = %q, want my.yaml", src.Name)
			}
			if src.Values == nil {
				t.Fatal("Values is a nil map")
			}
			if !reflect.DeepEqual(src.Values, tt.want) {
				t.Errorf("Values = %#v, want %#v", src.Values, tt.want)
			}
		})
	}
}

func TestMerge(t *testing.T) {
	tests := []struct {
		name    string
		sources []map[string]any
		want    map[string]any
	}{
		{
			name: "none",
			want: map[string]any{},
		},
		{
			name: "deep merge, later wins",
			sources: []map[string]any{
				{"a": map[string]any{"b": 1, "c": map[string]any{"d": 1, "e": 1}}, "top": "x"},
				{"a": map[string]any{"c": map[string]any{"e": 2, "f": 2}, "g": 2}},
				{"a": map[string]any{"c": map[string]any{"f": 3}}},
			},
			want: map[string]any{
				"a":   map[string]any{"b": 1, "c": map[string]any{"d": 1, "e": 2, "f": 3}, "g": 2},
				"top": "x",
			},
		},
		{
			name: "lists are replaced, not merged",
			sources: []map[string]any{
				{"l": []any{1, 2, 3}},
				{"l": []any{4}},
			},
			want: map[string]any{"l": []any{4}},
		},
		{
			name: "scalar replaces map",
			sources: []map[string]any{
				{"a": map[string]any{"b": 1}},
				{"a": "flat"},
			},
			want: map[string]any{"a": "flat"},
		},
		{
			name: "map replaces scalar",
			sources: []map[string]any{
				{"a": "flat"},
				{"a": map[string]any{"b": 1}},
			},
			want: map[string]any{"a": map[string]any{"b": 1}},
		},
		{
			name: "null is kept as a value (Helm deletes it when coalescing with defaults)",
			sources: []map[string]any{
				{"a": map[string]any{"b": 1}},
				{"a": nil},
			},
			want: map[string]any{"a": nil},
		},
		{
			name: "empty map merges into nothing",
			sources: []map[string]any{
				{"a": map[string]any{"b": 1}},
				{"a": map[string]any{}},
			},
			want: map[string]any{"a": map[string]any{"b": 1}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var srcs []Source
			var before [][]byte
			for i, m := range tt.sources {
				srcs = append(srcs, Source{Name: string(rune('a' + i)), Values: m})
				b, err := YAML(m)
				if err != nil {
					t.Fatal(err)
				}
				before = append(before, b)
			}
			got := Merge(srcs...)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Merge = %#v\nwant %#v", got, tt.want)
			}
			for i, m := range tt.sources {
				after, err := YAML(m)
				if err != nil {
					t.Fatal(err)
				}
				if string(after) != string(before[i]) {
					t.Errorf("Merge mutated source %d:\nbefore %s\nafter %s", i, before[i], after)
				}
			}
		})
	}
}

// The merged result shares no maps with the inputs: changing it changes no source.
func TestMergeSharesNoMaps(t *testing.T) {
	first := map[string]any{"a": map[string]any{"b": map[string]any{"c": 1}}, "only1": map[string]any{"x": 1}}
	second := map[string]any{"a": map[string]any{"b": map[string]any{"d": 2}}, "only2": map[string]any{"y": 2}}
	got := Merge(Source{Name: "1", Values: first}, Source{Name: "2", Values: second})

	Set(got, "a.b.c", "changed")
	Set(got, "a.b.d", "changed")
	Set(got, "only1.x", "changed")
	Set(got, "only2.y", "changed")
	Set(got, "a.new", "added")

	want1 := map[string]any{"a": map[string]any{"b": map[string]any{"c": 1}}, "only1": map[string]any{"x": 1}}
	want2 := map[string]any{"a": map[string]any{"b": map[string]any{"d": 2}}, "only2": map[string]any{"y": 2}}
	if !reflect.DeepEqual(first, want1) {
		t.Errorf("first source changed through the result: %#v", first)
	}
	if !reflect.DeepEqual(second, want2) {
		t.Errorf("second source changed through the result: %#v", second)
	}

	// A single source is copied too.
	only := map[string]any{"m": map[string]any{"k": "v"}}
	res := Merge(Source{Name: "only", Values: only})
	Set(res, "m.k", "changed")
	if only["m"].(map[string]any)["k"] != "v" {
		t.Error("single source changed through the result")
	}
}

func TestLookup(t *testing.T) {
	m := map[string]any{
		"a":    map[string]any{"b": map[string]any{"c": "deep"}, "nil": nil, "zero": 0},
		"s":    "scalar",
		"list": []any{map[string]any{"x": 1}},
	}
	tests := []struct {
		path string
		want any
		ok   bool
	}{
		{"a.b.c", "deep", true},
		{"a.b", map[string]any{"c": "deep"}, true},
		{"a.nil", nil, true},
		{"a.zero", 0, true},
		{"s", "scalar", true},
		{"a.b.c.d", nil, false}, // below a scalar
		{"s.x", nil, false},
		{"a.missing", nil, false},
		{"missing", nil, false},
		{"list.0.x", nil, false}, // lists are not walked
		{"", nil, false},
	}
	for _, tt := range tests {
		got, ok := Lookup(m, tt.path)
		if ok != tt.ok || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Lookup(%q) = %#v, %v; want %#v, %v", tt.path, got, ok, tt.want, tt.ok)
		}
	}
}

func TestSet(t *testing.T) {
	tests := []struct {
		name  string
		start map[string]any
		path  string
		v     any
		want  map[string]any
	}{
		{"top level", map[string]any{}, "a", 1, map[string]any{"a": 1}},
		{"creates maps", map[string]any{}, "a.b.c", "x", map[string]any{"a": map[string]any{"b": map[string]any{"c": "x"}}}},
		{"keeps siblings", map[string]any{"a": map[string]any{"keep": true}}, "a.b", 2,
			map[string]any{"a": map[string]any{"keep": true, "b": 2}}},
		{"replaces a scalar on the way", map[string]any{"a": "scalar"}, "a.b", 3, map[string]any{"a": map[string]any{"b": 3}}},
		{"overwrites", map[string]any{"a": map[string]any{"b": 1}}, "a.b", nil, map[string]any{"a": map[string]any{"b": nil}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			Set(tt.start, tt.path, tt.v)
			if !reflect.DeepEqual(tt.start, tt.want) {
				t.Errorf("after Set(%q, %v): %#v, want %#v", tt.path, tt.v, tt.start, tt.want)
			}
			if got, ok := Lookup(tt.start, tt.path); !ok || !reflect.DeepEqual(got, tt.v) {
				t.Errorf("Lookup after Set = %v, %v", got, ok)
			}
		})
	}
}

func TestOrigin(t *testing.T) {
	srcs := []Source{
		{Name: "values.yaml", Values: map[string]any{"a": map[string]any{"b": 1, "c": 1}, "x": 1}},
		{Name: "--set a.b=2", Values: map[string]any{"a": map[string]any{"b": 2}}},
		{Name: "--set x=null", Values: map[string]any{"x": nil}},
		{Name: "--set a.d=4", Values: map[string]any{"a": map[string]any{"d": 4}}},
	}
	tests := []struct {
		path, want string
	}{
		{"a.b", "--set a.b=2"}, // a later source overrides the first
		{"a.c", "values.yaml"}, // only the first sets it
		{"a", "--set a.d=4"},   // the last source touching the map
		{"a.d", "--set a.d=4"}, // only the last sets it
		{"x", "--set x=null"},  // null counts as set
		{"a.b.z", ""},          // nobody
		{"missing", ""},        // nobody
		{"a.b.c.d.e", ""},      // below a scalar
	}
	for _, tt := range tests {
		if got := Origin(srcs, tt.path); got != tt.want {
			t.Errorf("Origin(%q) = %q, want %q", tt.path, got, tt.want)
		}
	}
	if got := Origin(nil, "a"); got != "" {
		t.Errorf("Origin(nil) = %q", got)
	}
}

func TestYAMLSortedAndStable(t *testing.T) {
	m := map[string]any{"zeta": 1, "alpha": map[string]any{"z": true, "a": "s"}, "mid": []any{"x", 1}}
	first, err := YAML(m)
	if err != nil {
		t.Fatal(err)
	}
	want := "alpha:\n  a: s\n  z: true\nmid:\n- x\n- 1\nzeta: 1\n"
	if string(first) != want {
		t.Errorf("YAML =\n%s\nwant\n%s", first, want)
	}
	for range 20 {
		again, err := YAML(m)
		if err != nil {
			t.Fatal(err)
		}
		if string(again) != string(first) {
			t.Fatalf("YAML differs between calls:\n%s\n%s", first, again)
		}
	}
	// Round trip through Parse.
	src, err := Parse("round", first)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := Lookup(src.Values, "alpha.a"); got != "s" {
		t.Errorf("round trip alpha.a = %v", got)
	}
}
