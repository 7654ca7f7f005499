package install

import (
	"os"
	"strings"
	"testing"

	"github.com/meshplane/mesh/internal/testing/golden"
	"github.com/meshplane/mesh/render/values"
	"github.com/meshplane/mesh/templates"
)

const (
	referenceDoc   = "../../docs/install.md"
	referenceStart = "<!-- values-reference:start (generated from values.schema.json: go test ./render/install -run TestValuesReference -update) -->\n"
	referenceEnd   = "<!-- values-reference:end -->"
)

// docs/install.md carries the values reference generated from the chart's schema and
// defaults; this test fails when it is stale, and rewrites it with -update.
func TestValuesReferenceIsCurrent(t *testing.T) {
	ch, err := LoadChart(templates.ControlPlane, "")
	if err != nil {
		t.Fatal(err)
	}
	table, err := values.Reference(ch.Schema, ch.Values)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(referenceDoc)
	if err != nil {
		t.Fatal(err)
	}
	s := string(doc)
	i, j := strings.Index(s, referenceStart), strings.Index(s, referenceEnd)
	if i < 0 || j < i {
		t.Fatalf("%s lacks the values-reference markers", referenceDoc)
	}
	want := s[:i] + referenceStart + table + s[j:]
	if want == s {
		return
	}
	if golden.Updating() {
		if err := os.WriteFile(referenceDoc, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("%s: the values reference is stale; run go test ./render/install -run TestValuesReference -update", referenceDoc)
}

const (
	vizDoc           = "../../docs/viz.md"
	scrapeDocStart   = "<!-- scrape-config:start (generated: go test ./render/install -run TestVizDocScrapeConfig -update) -->\n"
	scrapeDocEnd     = "<!-- scrape-config:end -->"
	scrapeJobPreface = "scrape_configs:\n  - job_name: mesh-proxy\n    kubernetes_sd_configs:\n      - role: pod\n"
)

// docs/viz.md shows the scrape job for a Prometheus of the user's own: it must be the
// shared relabelling, as the install renders it. -update rewrites it.
func TestVizDocScrapeConfig(t *testing.T) {
	relabel, err := PrometheusRelabeling()
	if err != nil {
		t.Fatal(err)
	}
	var job strings.Builder
	job.WriteString("```yaml\n" + scrapeJobPreface)
	for _, line := range strings.SplitAfter(strings.TrimRight(string(relabel), "\n"), "\n") {
		job.WriteString("    " + line)
	}
	job.WriteString("\n```\n")
	doc, err := os.ReadFile(vizDoc)
	if err != nil {
		t.Fatal(err)
	}
	s := string(doc)
	i, j := strings.Index(s, scrapeDocStart), strings.Index(s, scrapeDocEnd)
	if i < 0 || j < i {
		t.Fatalf("%s lacks the scrape-config markers", vizDoc)
	}
	want := s[:i] + scrapeDocStart + job.String() + s[j:]
	if want == s {
		return
	}
	if golden.Updating() {
		if err := os.WriteFile(vizDoc, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("%s: the scrape config is stale; run go test ./render/install -run TestVizDocScrapeConfig -update", vizDoc)
}
