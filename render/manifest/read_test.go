package manifest

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func collect(t *testing.T, in Inputs, env Env) ([]string, error) {
	t.Helper()
	var got []string
	err := in.Each(context.Background(), env, func(d Doc) error {
		f := "yaml"
		if d.Format == JSON {
			f = "json"
		}
		got = append(got, fmt.Sprintf("%s#%d %s %s", filepath.Base(d.Source), d.Index, f, strings.TrimSpace(string(d.Raw))))
		return nil
	})
	return got, err
}

func TestEachInputs(t *testing.T) {
	dir := t.TempDir()
	write := func(rel, content string) string {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("m/a.yaml", "a: 1\n---\n# only a comment\n---\nb: 2\n")
	write("m/b.json", `{"c": 3} {"d": 4}`+"\n")
	write("m/notes.txt", "ignored: true\n")
	write("m/sub/c.yml", "e: 5\n")
	bom := write("bom.yaml", "\xEF\xBB\xBF---\nf: 6\n")
	long := write("long.yaml", "g: "+strings.Repeat("x", 200<<10)+"\n")

	tests := []struct {
		name string
		in   Inputs
		env  Env
		want []string
	}{
		{"dir, top level only", Inputs{Filenames: []string{filepath.Join(dir, "m")}}, Env{},
			[]string{"a.yaml#1 yaml a: 1", "a.yaml#3 yaml b: 2", `b.json#1 json {"c": 3}`, `b.json#2 json {"d": 4}`}},
		{"dir, recursive", Inputs{Filenames: []string{filepath.Join(dir, "m")}, Recursive: true}, Env{},
			[]string{"a.yaml#1 yaml a: 1", "a.yaml#3 yaml b: 2", `b.json#1 json {"c": 3}`, `b.json#2 json {"d": 4}`, "c.yml#1 yaml e: 5"}},
		{"stdin and file, in order", Inputs{Filenames: []string{"-", bom}}, Env{Stdin: strings.NewReader("--- # first\nh: 7\n")},
			[]string{"stdin#1 yaml h: 7", "bom.yaml#1 yaml f: 6"}},
		{"JSON list on stdin", Inputs{Filenames: []string{"-"}}, Env{Stdin: strings.NewReader(` [{"a":1}]`)},
			[]string{`stdin#1 json [{"a":1}]`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := collect(t, tc.in, tc.env)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}

	t.Run("a line longer than the buffer", func(t *testing.T) {
		got, err := collect(t, Inputs{Filenames: []string{long}}, Env{})
		if err != nil || len(got) != 1 || len(got[0]) < 200<<10 {
			t.Fatalf("%d docs, %v", len(got), err)
		}
	})
	t.Run("errors name the source", func(t *testing.T) {
		for _, tc := range []struct {
			in   Inputs
			env  Env
			want string
		}{
			{Inputs{}, Env{}, "no input"},
			{Inputs{Filenames: []string{filepath.Join(dir, "missing.yaml")}}, Env{}, "missing.yaml"},
			{Inputs{Filenames: []string{"-", "-"}}, Env{Stdin: strings.NewReader("a: 1\n")}, "only once"},
			{Inputs{Filenames: []string{"-"}}, Env{Stdin: strings.NewReader(`{"a": 1} {"b": `)}, "stdin: document 2"},
			{Inputs{Kustomize: filepath.Join(dir, "m")}, Env{}, "kustomize"},
		} {
			if _, err := collect(t, tc.in, tc.env); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%+v: error %v, want %q", tc.in, err, tc.want)
			}
		}
	})
}

func TestEachURL(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/app.yaml" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, "a: 1\n---\nb: 2\n")
	}))
	defer srv.Close()
	got, err := collect(t, Inputs{Filenames: []string{srv.URL + "/app.yaml"}}, Env{HTTP: srv.Client()})
	if err != nil || len(got) != 2 {
		t.Fatalf("%v %v", got, err)
	}
	if _, err := collect(t, Inputs{Filenames: []string{srv.URL + "/nope.yaml"}}, Env{HTTP: srv.Client()}); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("404: %v", err)
	}
}

func TestEachKustomize(t *testing.T) {
	dir := t.TempDir()
	_ = os.WriteFile(filepath.Join(dir, "cm.yaml"), []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\n"), 0o644)
	_ = os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte("resources: [cm.yaml]\nnamespace: prod\n"), 0o644)
	got, err := collect(t, Inputs{Kustomize: dir}, Env{})
	if err != nil || len(got) != 1 || !strings.Contains(got[0], "namespace: prod") {
		t.Fatalf("%v %v", got, err)
	}
}
