package report

import (
	"fmt"
	"io"

	"github.com/meshplane/mesh/checks"
)

// Short writes one line per failed or skipped check, "<error|warning|skipped>: <id>:
// <message>", then "N passed, N failed, N skipped", and nothing else.
func Short(w io.Writer, r checks.Report) error {
	ew := &errWriter{w: w}
	for _, res := range r.Results {
		o := outcomeOf(res)
		if o == outcomeSuccess {
			continue
		}
		line := fmt.Sprintf("%s: %s", o, res.Check.ID)
		if msg := oneLine(res.Message); msg != "" {
			line += ": " + msg
		}
		ew.println(line)
	}
	c := countAll(r.Results)
	ew.println(fmt.Sprintf("%d passed, %d failed, %d skipped", c.passed, c.failed(), c.skipped))
	if ew.err != nil {
		return fmt.Errorf("writing check summary: %w", ew.err)
	}
	return nil
}
