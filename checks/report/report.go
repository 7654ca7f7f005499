// Package report renders a checks.Report for people and for machines: a table grouped
// by category (Table), one JSON document (JSON), JUnit XML for CI systems (JUnit) and
// a summary of what did not pass (Short). Write picks one by its --output name.
package report

import (
	"fmt"
	"io"
	"strings"

	"github.com/meshplane/mesh/checks"
)

// Output format names, as given to Write.
const (
	FormatTable = "table"
	FormatJSON  = "json"
	FormatJUnit = "junit"
	FormatShort = "short"
)

// Formats lists the format names Write accepts, for flag help and completion.
func Formats() []string { return []string{FormatTable, FormatJSON, FormatJUnit, FormatShort} }

// Write renders r to w in the named format. color is used by the table only.
func Write(w io.Writer, format string, r checks.Report, color bool) error {
	switch format {
	case FormatTable:
		return Table(w, r, color)
	case FormatJSON:
		return JSON(w, r)
	case FormatJUnit:
		return JUnit(w, r)
	case FormatShort:
		return Short(w, r)
	default:
		return fmt.Errorf("unknown output format %q: want one of %s", format, strings.Join(Formats(), ", "))
	}
}

// category is the results of one category, in run order.
type category struct {
	name    string
	results []checks.Result
}

// byCategory groups results by category, categories in order of first appearance.
func byCategory(r checks.Report) []category {
	var cats []category
	index := map[string]int{}
	for _, res := range r.Results {
		i, ok := index[res.Check.Category]
		if !ok {
			i = len(cats)
			index[res.Check.Category] = i
			cats = append(cats, category{name: res.Check.Category})
		}
		cats[i].results = append(cats[i].results, res)
	}
	return cats
}

// outcome is how a result is shown: "success", "warning" (a failed warning check),
// "error" (a failed error check) or "skipped".
type outcome string

const (
	outcomeSuccess outcome = "success"
	outcomeWarning outcome = "warning"
	outcomeError   outcome = "error"
	outcomeSkipped outcome = "skipped"
)

func outcomeOf(res checks.Result) outcome {
	switch res.Status {
	case checks.Passed:
		return outcomeSuccess
	case checks.Skipped:
		return outcomeSkipped
	}
	if res.Check.Severity == checks.Warning {
		return outcomeWarning
	}
	return outcomeError
}

// counts of results by outcome.
type counts struct {
	passed, errors, warnings, skipped int
}

func (c counts) failed() int { return c.errors + c.warnings }

func (c *counts) add(res checks.Result) {
	switch outcomeOf(res) {
	case outcomeSuccess:
		c.passed++
	case outcomeWarning:
		c.warnings++
	case outcomeError:
		c.errors++
	case outcomeSkipped:
		c.skipped++
	}
}

func countAll(results []checks.Result) counts {
	var c counts
	for _, res := range results {
		c.add(res)
	}
	return c
}

// oneLine joins a multi-line message into one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
