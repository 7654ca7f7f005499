package report

import (
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/meshplane/mesh/checks"
)

// Table writes r for people: per category (in order of first appearance) a header,
// then one line per check with its symbol (√ passed, ‼ failed warning, × failed error,
// - skipped) and description; under a failed check its message and hint, under a
// skipped one its reason; last a summary line. Colour only when color is true.
func Table(w io.Writer, r checks.Report, color bool) error {
	st := newStyles(color)
	ew := &errWriter{w: w}
	for i, cat := range byCategory(r) {
		if i > 0 {
			ew.println()
		}
		name := cat.name
		if name == "" {
			name = "other"
		}
		ew.println(st.header.Render(name))
		ew.println(st.header.Render(strings.Repeat("-", utf8.RuneCountInString(name))))
		for _, res := range cat.results {
			writeTableLine(ew, st, res)
		}
	}
	if len(r.Results) > 0 {
		ew.println()
	}
	ew.println(summary(st, countAll(r.Results)))
	if ew.err != nil {
		return fmt.Errorf("writing check table: %w", ew.err)
	}
	return nil
}

func writeTableLine(ew *errWriter, st styles, res checks.Result) {
	o := outcomeOf(res)
	symbol, sty := st.mark(o)
	ew.println(sty.Render(symbol), res.Check.Description)
	if o == outcomeSuccess {
		return
	}
	for _, line := range strings.Split(strings.TrimRight(res.Message, "\n"), "\n") {
		if line != "" {
			ew.println("   ", sty.Render(line))
		}
	}
	if o != outcomeSkipped && res.Check.Hint != "" {
		ew.println("   ", st.hint.Render("see "+res.Check.Hint+" for hints"))
	}
}

// summary is the last line: "Status check results are √" when everything passed,
// else the overall symbol and the counts.
func summary(st styles, c counts) string {
	o := outcomeSuccess
	switch {
	case c.errors > 0:
		o = outcomeError
	case c.warnings > 0:
		o = outcomeWarning
	}
	symbol, sty := st.mark(o)
	line := "Status check results are " + sty.Render(symbol)
	if c.failed() == 0 && c.skipped == 0 {
		return line
	}
	parts := []string{fmt.Sprintf("%d passed", c.passed)}
	if c.errors > 0 {
		parts = append(parts, plural(c.errors, "error", "errors"))
	}
	if c.warnings > 0 {
		parts = append(parts, plural(c.warnings, "warning", "warnings"))
	}
	if c.skipped > 0 {
		parts = append(parts, fmt.Sprintf("%d skipped", c.skipped))
	}
	return line + " (" + strings.Join(parts, ", ") + ")"
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// errWriter writes lines until the first error, which it keeps.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) println(a ...any) {
	if e.err == nil {
		_, e.err = fmt.Fprintln(e.w, a...)
	}
}
