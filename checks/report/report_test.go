package report

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"strings"
	"testing"

	"github.com/meshplane/mesh/checks"
	"github.com/meshplane/mesh/internal/testing/golden"
)

const hintBase = "https://meshplane.io/docs/checks#"

// fixture has passes, an error failure, a warning failure (multi-line, with XML
// specials), a check skipped because of its dependency and two categories, one of
// which appears again after the other. Durations are 0 so outputs are stable.
func fixture() checks.Report {
	check := func(id, cat, desc string, sev checks.Severity) checks.Check {
		return checks.Check{ID: id, Category: cat, Description: desc, Hint: hintBase + id, Severity: sev}
	}
	return checks.Report{Results: []checks.Result{
		{
			Check:  check("kubernetes-api.reachable", "kubernetes-api", "can reach the Kubernetes API", checks.Error),
			Status: checks.Passed, Attempts: 1,
		},
		{
			Check:   check("kubernetes-api.crds", "kubernetes-api", "mesh CRDs are installed", checks.Error),
			Status:  checks.Failed,
			Message: "customresourcedefinition meshpolicies.meshplane.io not found", Attempts: 3,
		},
		{
			Check:  check("offline.images-pinned", "offline", "images are pinned by digest", checks.Warning),
			Status: checks.Failed,
			Message: "2 images have a tag & no digest:\n" +
				"ghcr.io/meshplane/proxy:<latest>\n" +
				"ghcr.io/meshplane/cni:1.2",
			Attempts: 1,
		},
		{
			Check:   check("kubernetes-api.webhook", "kubernetes-api", "the injector webhook answers", checks.Error),
			Status:  checks.Skipped,
			Message: "depends on kubernetes-api.crds, which failed",
		},
		{
			Check:  check("offline.registry", "offline", "the registry mirror is set", checks.Error),
			Status: checks.Passed, Attempts: 1,
		},
	}}
}

func allPassed() checks.Report {
	return checks.Report{Results: []checks.Result{
		{Check: checks.Check{ID: "a.one", Category: "a", Description: "one holds"}, Status: checks.Passed, Attempts: 1},
		{Check: checks.Check{ID: "b.two", Category: "b", Description: "two holds", Severity: checks.Warning}, Status: checks.Passed, Attempts: 1},
	}}
}

func render(t *testing.T, f func(*bytes.Buffer) error) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := f(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestGolden(t *testing.T) {
	r := fixture()
	for _, tt := range []struct {
		file   string
		format string
		color  bool
	}{
		{"table.txt", FormatTable, false},
		{"table-color.txt", FormatTable, true},
		{"report.json", FormatJSON, false},
		{"report.xml", FormatJUnit, false},
		{"short.txt", FormatShort, false},
		{"all-passed-table.txt", FormatTable, false},
		{"all-passed-short.txt", FormatShort, false},
	} {
		t.Run(tt.file, func(t *testing.T) {
			in := r
			if strings.HasPrefix(tt.file, "all-passed") {
				in = allPassed()
			}
			got := render(t, func(b *bytes.Buffer) error { return Write(b, tt.format, in, tt.color) })
			golden.Assert(t, tt.file, got)
		})
	}
}

func TestTableColor(t *testing.T) {
	plain := string(render(t, func(b *bytes.Buffer) error { return Table(b, fixture(), false) }))
	if strings.Contains(plain, "\x1b") {
		t.Errorf("table without colour has escape codes:\n%q", plain)
	}
	colored := string(render(t, func(b *bytes.Buffer) error { return Table(b, fixture(), true) }))
	for _, want := range []string{"\x1b[32m√\x1b[0m", "\x1b[31m×\x1b[0m", "\x1b[33m‼\x1b[0m"} {
		if !strings.Contains(colored, want) {
			t.Errorf("coloured table lacks %q", want)
		}
	}
	// Without the escape codes, the coloured table is the plain one.
	stripped := colored
	for _, code := range []string{"\x1b[0m", "\x1b[1m", "\x1b[2m", "\x1b[31m", "\x1b[32m", "\x1b[33m"} {
		stripped = strings.ReplaceAll(stripped, code, "")
	}
	if stripped != plain {
		t.Errorf("coloured table differs from the plain one beyond colour:\n%s\nvs\n%s", stripped, plain)
	}
}

func TestTableGroupsByCategoryInFirstAppearanceOrder(t *testing.T) {
	out := string(render(t, func(b *bytes.Buffer) error { return Table(b, fixture(), false) }))
	api := strings.Index(out, "kubernetes-api\n")
	webhook := strings.Index(out, "the injector webhook answers")
	offline := strings.Index(out, "offline\n")
	if api < 0 || offline < 0 || webhook < 0 || api >= webhook || webhook >= offline {
		t.Errorf("want kubernetes-api (with its late webhook check) before offline:\n%s", out)
	}
	if strings.Count(out, "kubernetes-api\n") != 1 {
		t.Errorf("category header repeated:\n%s", out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if last := lines[len(lines)-1]; last != "Status check results are × (2 passed, 1 error, 1 warning, 1 skipped)" {
		t.Errorf("summary = %q", last)
	}
	passed := string(render(t, func(b *bytes.Buffer) error { return Table(b, allPassed(), false) }))
	if !strings.HasSuffix(passed, "\nStatus check results are √\n") {
		t.Errorf("all-passed table does not end with the √ summary:\n%s", passed)
	}
}

func TestJSONParses(t *testing.T) {
	var doc struct {
		Success    *bool `json:"success"`
		Categories []struct {
			Name   string `json:"name"`
			Checks []struct {
				ID, Description, Severity, Result, Message, Hint string
				Attempts                                         int
			} `json:"checks"`
		} `json:"categories"`
	}
	dec := json.NewDecoder(bytes.NewReader(render(t, func(b *bytes.Buffer) error { return JSON(b, fixture()) })))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("JSON does not parse: %v", err)
	}
	if dec.More() {
		t.Error("more than one JSON document")
	}
	if doc.Success == nil || *doc.Success {
		t.Errorf("success = %v, want false", doc.Success)
	}
	if len(doc.Categories) != 2 || doc.Categories[0].Name != "kubernetes-api" || doc.Categories[1].Name != "offline" {
		t.Fatalf("categories = %+v", doc.Categories)
	}
	var results []string
	for _, c := range doc.Categories {
		for _, ch := range c.Checks {
			results = append(results, ch.ID+"="+ch.Result)
		}
	}
	want := "kubernetes-api.reachable=success kubernetes-api.crds=error kubernetes-api.webhook=skipped offline.images-pinned=warning offline.registry=success"
	if got := strings.Join(results, " "); got != want {
		t.Errorf("results = %s\nwant      %s", got, want)
	}
	crds := doc.Categories[0].Checks[1]
	if crds.Attempts != 3 || crds.Severity != "error" || crds.Hint != hintBase+"kubernetes-api.crds" {
		t.Errorf("crds = %+v", crds)
	}

	// A report with only a failed warning is a success; an empty one has [] categories.
	warnOnly := checks.Report{Results: []checks.Result{fixture().Results[2]}}
	if out := string(render(t, func(b *bytes.Buffer) error { return JSON(b, warnOnly) })); !strings.Contains(out, `"success": true`) {
		t.Errorf("failed warning only: want success true:\n%s", out)
	}
	if out := string(render(t, func(b *bytes.Buffer) error { return JSON(b, checks.Report{}) })); out != "{\n  \"success\": true,\n  \"categories\": []\n}\n" {
		t.Errorf("empty report JSON = %q", out)
	}
}

func TestJUnitParses(t *testing.T) {
	var doc junitSuites
	if err := xml.Unmarshal(render(t, func(b *bytes.Buffer) error { return JUnit(b, fixture()) }), &doc); err != nil {
		t.Fatalf("JUnit XML does not parse: %v", err)
	}
	if doc.Tests != 5 || doc.Failures != 2 || doc.Errors != 0 || doc.Skipped != 1 {
		t.Errorf("testsuites counts tests=%d failures=%d errors=%d skipped=%d, want 5 2 0 1",
			doc.Tests, doc.Failures, doc.Errors, doc.Skipped)
	}
	if len(doc.Suites) != 2 {
		t.Fatalf("%d testsuites, want 2", len(doc.Suites))
	}
	api, off := doc.Suites[0], doc.Suites[1]
	if api.Name != "kubernetes-api" || api.Tests != 3 || api.Failures != 1 || api.Skipped != 1 || len(api.Cases) != 3 {
		t.Errorf("kubernetes-api suite = %+v", api)
	}
	if off.Name != "offline" || off.Tests != 2 || off.Failures != 1 || off.Skipped != 0 || len(off.Cases) != 2 {
		t.Errorf("offline suite = %+v", off)
	}
	if f := api.Cases[1].Failure; f == nil || f.Type != "error" || !strings.Contains(f.Text, hintBase+"kubernetes-api.crds") {
		t.Errorf("crds failure = %+v", f)
	}
	if s := api.Cases[2].Skipped; s == nil || s.Message != "depends on kubernetes-api.crds, which failed" {
		t.Errorf("webhook skipped = %+v", s)
	}
	f := off.Cases[0].Failure
	if f == nil || f.Type != "warning" || !strings.Contains(f.Text, "ghcr.io/meshplane/proxy:<latest>") {
		t.Errorf("images-pinned failure = %+v (want type warning and the unescaped message)", f)
	}
	if api.Cases[0].Failure != nil || api.Cases[0].Skipped != nil {
		t.Errorf("passed case has a failure or skip: %+v", api.Cases[0])
	}
}

func TestShort(t *testing.T) {
	out := string(render(t, func(b *bytes.Buffer) error { return Short(b, fixture()) }))
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 4 {
		t.Fatalf("short output has %d lines, want 3 + summary:\n%s", len(lines), out)
	}
	if lines[3] != "2 passed, 2 failed, 1 skipped" {
		t.Errorf("summary = %q", lines[3])
	}
	for _, l := range lines[:3] {
		if strings.Contains(l, "reachable") || strings.Contains(l, "registry") {
			t.Errorf("passed check listed: %q", l)
		}
	}
	if got := string(render(t, func(b *bytes.Buffer) error { return Short(b, allPassed()) })); got != "2 passed, 0 failed, 0 skipped\n" {
		t.Errorf("all passed: %q", got)
	}
}

func TestWriteUnknownFormat(t *testing.T) {
	var b bytes.Buffer
	err := Write(&b, "yaml", fixture(), false)
	if err == nil || !strings.Contains(err.Error(), `"yaml"`) || !strings.Contains(err.Error(), "table, json, junit, short") {
		t.Errorf("Write(yaml) = %v, want an error naming the format and the valid ones", err)
	}
	if b.Len() != 0 {
		t.Errorf("wrote %q for an unknown format", b.String())
	}
}

type failingWriter struct{ err error }

func (f failingWriter) Write([]byte) (int, error) { return 0, f.err }

func TestWriteErrorsAreWrapped(t *testing.T) {
	sentinel := errors.New("disk full")
	for _, format := range Formats() {
		err := Write(failingWriter{sentinel}, format, fixture(), true)
		if !errors.Is(err, sentinel) {
			t.Errorf("%s: error %v does not wrap the writer's", format, err)
		}
	}
}

func TestJUnitOddMessages(t *testing.T) {
	msg := "end ]]> of cdata, an escape \x1b[31m, a \x00 and a quote \""
	r := checks.Report{Results: []checks.Result{{
		Check:  checks.Check{ID: "x.odd", Category: "x", Description: "odd <things>"},
		Status: checks.Failed, Message: msg,
	}}}
	var doc junitSuites
	out := render(t, func(b *bytes.Buffer) error { return JUnit(b, r) })
	if err := xml.Unmarshal(out, &doc); err != nil {
		t.Fatalf("JUnit XML does not parse: %v\n%s", err, out)
	}
	if got := doc.Suites[0].Cases[0]; got.Name != "x.odd: odd <things>" || !strings.Contains(got.Failure.Text, "end ]]> of cdata") {
		t.Errorf("case = %+v", got)
	}
}
