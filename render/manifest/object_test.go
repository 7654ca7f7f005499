package manifest

import (
	"strings"
	"testing"
)

// id is an object's identity and source, for comparing SplitYAML results.
type id struct {
	APIVersion, Kind, Namespace, Name, Source string
}

func ids(objs []Object) []id {
	var out []id
	for _, o := range objs {
		out = append(out, id{o.APIVersion, o.Kind, o.Namespace, o.Name, o.Source})
	}
	return out
}

func cm(name string) string {
	return "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " + name + "\n"
}

func TestSplitYAML(t *testing.T) {
	tests := []struct {
		name  string
		data  string
		want  []id
		yamls []string // the objects' YAML, when checked
	}{
		{
			name: "empty stream",
			data: "",
		},
		{
			name: "only comments and separators",
			data: "# just a comment\n---\n\n# another\n   \n---\n---\n",
		},
		{
			name:  "single document, no separator",
			data:  cm("a"),
			want:  []id{{"v1", "ConfigMap", "", "a", "s.yaml (document 1)"}},
			yamls: []string{cm("a")},
		},
		{
			name: "no trailing newline",
			data: strings.TrimSuffix(cm("a"), "\n"),
			want: []id{{"v1", "ConfigMap", "", "a", "s.yaml (document 1)"}},
			// the YAML ends with exactly one newline
			yamls: []string{cm("a")},
		},
		{
			name: "identity with namespace and group",
			data: "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: prod\nspec: {}\n",
			want: []id{{"apps/v1", "Deployment", "prod", "web", "s.yaml (document 1)"}},
		},
		{
			name: "comment-only documents are dropped but counted",
			data: cm("a") + "---\n# Source: nothing rendered\n---\n" + cm("b"),
			want: []id{
				{"v1", "ConfigMap", "", "a", "s.yaml (document 1)"},
				{"v1", "ConfigMap", "", "b", "s.yaml (document 3)"},
			},
		},
		{
			name: "separator with a comment and trailing spaces",
			data: cm("a") + "--- # next one\n" + cm("b") + "---   \n" + cm("c") + "---\t#tab\n" + cm("d"),
			want: []id{
				{"v1", "ConfigMap", "", "a", "s.yaml (document 1)"},
				{"v1", "ConfigMap", "", "b", "s.yaml (document 2)"},
				{"v1", "ConfigMap", "", "c", "s.yaml (document 3)"},
				{"v1", "ConfigMap", "", "d", "s.yaml (document 4)"},
			},
			yamls: []string{cm("a"), cm("b"), cm("c"), cm("d")},
		},
		{
			name: "leading comments kept, leading blank lines and trailing white space trimmed",
			data: cm("a") + "---\n\n\n# Source: chart/templates/b.yaml\n" + cm("b") + "\n\n   \n",
			want: []id{
				{"v1", "ConfigMap", "", "a", "s.yaml (document 1)"},
				{"v1", "ConfigMap", "", "b", "s.yaml (document 2)"},
			},
			yamls: []string{cm("a"), "# Source: chart/templates/b.yaml\n" + cm("b")},
		},
		{
			name: "indented --- inside a block scalar is not a separator",
			data: "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: script\ndata:\n  run.sh: |\n    echo start\n    ---\n    echo end\n" +
				"---\n" + cm("b"),
			want: []id{
				{"v1", "ConfigMap", "", "script", "s.yaml (document 1)"},
				{"v1", "ConfigMap", "", "b", "s.yaml (document 2)"},
			},
			yamls: []string{
				"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: script\ndata:\n  run.sh: |\n    echo start\n    ---\n    echo end\n",
				cm("b"),
			},
		},
		{
			name: "CRLF line endings",
			data: "apiVersion: v1\r\nkind: ConfigMap\r\nmetadata:\r\n  name: a\r\n---\r\n\r\napiVersion: v1\r\nkind: Secret\r\nmetadata:\r\n  name: b\r\n  namespace: ns\r\n",
			want: []id{
				{"v1", "ConfigMap", "", "a", "s.yaml (document 1)"},
				{"v1", "Secret", "ns", "b", "s.yaml (document 2)"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs, err := SplitYAML("s.yaml", []byte(tt.data))
			if err != nil {
				t.Fatalf("SplitYAML: %v", err)
			}
			got := ids(objs)
			if len(got) != len(tt.want) {
				t.Fatalf("got %d objects %v, want %d %v", len(got), got, len(tt.want), tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("object %d = %+v, want %+v", i, got[i], tt.want[i])
				}
			}
			for i, o := range objs {
				y := string(o.YAML)
				if !strings.HasSuffix(y, "\n") || strings.HasSuffix(y, "\n\n") || strings.HasSuffix(y, " \n") {
					t.Errorf("object %d YAML does not end in exactly one newline: %q", i, y)
				}
				if strings.HasPrefix(y, "---") || strings.HasPrefix(y, "\n") || strings.HasPrefix(y, "\r") {
					t.Errorf("object %d YAML has a leading separator or blank line: %q", i, y)
				}
				if _, err := o.JSON(); err != nil {
					t.Errorf("object %d YAML does not convert to JSON: %v", i, err)
				}
			}
			for i, want := range tt.yamls {
				if string(objs[i].YAML) != want {
					t.Errorf("object %d YAML = %q, want %q", i, objs[i].YAML, want)
				}
			}
		})
	}
}

// Lines that merely start with "---" are not separators.
func TestSplitYAMLNotSeparators(t *testing.T) {
	for _, line := range []string{"----", "---x", "---a: b"} {
		data := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  annotations:\n    note: |\n      x\n" + line + "\n"
		objs, err := SplitYAML("s.yaml", []byte(data))
		// The line stays in the document: the YAML parser then rejects it ("----") or
		// reads it as a key ("---a: b"). Cutting the document there would instead give
		// one object whose YAML lacks the line, and no error.
		if err == nil && (len(objs) != 1 || !strings.Contains(string(objs[0].YAML), line)) {
			t.Errorf("%q was taken for a separator: %v", line, ids(objs))
		}
		if err != nil && !strings.Contains(err.Error(), "s.yaml: document 1: ") {
			t.Errorf("%q: error %q does not name document 1", line, err)
		}
	}
}

// Objects' YAML is a copy: changing the input does not change them.
func TestSplitYAMLCopiesText(t *testing.T) {
	data := []byte(cm("a") + "---\n" + cm("b"))
	objs, err := SplitYAML("s", data)
	if err != nil {
		t.Fatal(err)
	}
	for i := range data {
		data[i] = 'X'
	}
	if string(objs[0].YAML) != cm("a") || string(objs[1].YAML) != cm("b") {
		t.Errorf("objects changed with their input: %q %q", objs[0].YAML, objs[1].YAML)
	}
	// Appending to one object's YAML does not write into the next.
	objs[0].YAML = append(objs[0].YAML, "extra: 1\n"...)
	if string(objs[1].YAML) != cm("b") {
		t.Errorf("appending to object 0 changed object 1: %q", objs[1].YAML)
	}
}

func TestSplitYAMLErrors(t *testing.T) {
	tests := []struct {
		name string
		data string
		want []string
	}{
		{
			name: "no kind",
			data: cm("a") + "---\napiVersion: v1\nmetadata:\n  name: b\n",
			want: []string{"t.yaml: document 2: apiVersion and kind are required"},
		},
		{
			name: "no apiVersion",
			data: "kind: ConfigMap\nmetadata:\n  name: b\n",
			want: []string{"t.yaml: document 1: apiVersion and kind are required"},
		},
		{
			name: "no name, counting a dropped comment-only document",
			data: cm("a") + "---\n# empty\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  namespace: x\n",
			want: []string{"t.yaml: document 3 (Secret): metadata.name is required"},
		},
		{
			name: "malformed YAML",
			data: cm("a") + "---\n" + cm("b") + "---\napiVersion: v1\nkind: [unclosed\n",
			want: []string{"t.yaml: document 3: "},
		},
		{
			name: "not a mapping",
			data: "- a\n- b\n",
			want: []string{"t.yaml: document 1: "},
		},
		{
			name: "name of the wrong type",
			data: "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [a]\n",
			want: []string{"t.yaml: document 1: "},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs, err := SplitYAML("t.yaml", []byte(tt.data))
			if err == nil {
				t.Fatalf("SplitYAML succeeded: %v", ids(objs))
			}
			if objs != nil {
				t.Errorf("objects returned with the error: %v", ids(objs))
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// Regression: a stream that begins with "---" used to get an
// empty "document 1" before that separator, so every document is numbered one too high:
// a file holding a single document reports it as "document 2". Helm templates very often
// begin with "---" (range loops), so errors and Object.Source point at the wrong
// document. The text before the first separator should count as a document only when
// it holds one.
func TestSplitYAMLNumberingWithLeadingSeparator(t *testing.T) {
	objs, err := SplitYAML("s.yaml", []byte("---\n"+cm("a")+"---\n"+cm("b")))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"s.yaml (document 1)", "s.yaml (document 2)"}
	for i, o := range objs {
		if o.Source != want[i] {
			t.Errorf("object %s: Source = %q, want %q", o.Name, o.Source, want[i])
		}
	}
	_, err = SplitYAML("one.yaml", []byte("---\napiVersion: v1\nkind: Secret\nmetadata: {}\n"))
	if err == nil || !strings.Contains(err.Error(), "one.yaml: document 1 ") {
		t.Errorf("error for the only document of a stream = %v, want it called document 1", err)
	}
}

// Regression: a "---" line followed by content ("--- {...}",
// valid YAML) used to be taken for a separator and its content thrown away, so the object
// silently disappears. The doc comment allows only spaces or a comment after "---";
// such a line should either keep its content or be an error (kubectl rejects it).
func TestSplitYAMLContentOnSeparatorLineNotLost(t *testing.T) {
	data := "--- {apiVersion: v1, kind: ConfigMap, metadata: {name: inline}}\n---\n" + cm("b")
	objs, err := SplitYAML("s.yaml", []byte(data))
	if err != nil {
		return // rejecting the line is fine
	}
	for _, o := range objs {
		if o.Name == "inline" {
			return
		}
	}
	t.Errorf("the object on the --- line was silently dropped; got %v", ids(objs))
}

func TestObjectGroupAndString(t *testing.T) {
	tests := []struct {
		o          Object
		group, str string
	}{
		{Object{APIVersion: "v1", Kind: "ConfigMap", Namespace: "ns", Name: "a"}, "", "ConfigMap/ns/a"},
		{Object{APIVersion: "apps/v1", Kind: "Deployment", Name: "d"}, "apps", "Deployment/d"},
		{Object{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRole", Name: "r"}, "rbac.authorization.k8s.io", "ClusterRole/r"},
	}
	for _, tt := range tests {
		if g := tt.o.Group(); g != tt.group {
			t.Errorf("%v Group() = %q, want %q", tt.o, g, tt.group)
		}
		if s := tt.o.String(); s != tt.str {
			t.Errorf("String() = %q, want %q", s, tt.str)
		}
	}
}
