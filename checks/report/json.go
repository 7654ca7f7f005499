package report

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/meshplane/mesh/checks"
)

// jsonReport is the JSON document; the field order here is the order in the output.
type jsonReport struct {
	Success    bool           `json:"success"`
	Categories []jsonCategory `json:"categories"`
}

type jsonCategory struct {
	Name   string      `json:"name"`
	Checks []jsonCheck `json:"checks"`
}

type jsonCheck struct {
	ID          string `json:"id"`
	Description string `json:"description"`
	Severity    string `json:"severity"`
	Result      string `json:"result"` // success, warning, error or skipped
	Message     string `json:"message"`
	Hint        string `json:"hint"`
	Attempts    int    `json:"attempts"`
}

// JSON writes r as one indented JSON document:
//
//	{"success": bool, "categories": [{"name": ..., "checks": [{"id", "description",
//	 "severity", "result", "message", "hint", "attempts"}]}]}
//
// success is false when an error-severity check failed; result is "success",
// "warning" (a failed warning check), "error" (a failed error check) or "skipped".
// Every key is always present.
func JSON(w io.Writer, r checks.Report) error {
	doc := jsonReport{Success: r.ExitCode(false) == 0, Categories: []jsonCategory{}}
	for _, cat := range byCategory(r) {
		jc := jsonCategory{Name: cat.name, Checks: make([]jsonCheck, 0, len(cat.results))}
		for _, res := range cat.results {
			jc.Checks = append(jc.Checks, jsonCheck{
				ID:          res.Check.ID,
				Description: res.Check.Description,
				Severity:    res.Check.Severity.String(),
				Result:      string(outcomeOf(res)),
				Message:     res.Message,
				Hint:        res.Check.Hint,
				Attempts:    res.Attempts,
			})
		}
		doc.Categories = append(doc.Categories, jc)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("writing check JSON: %w", err)
	}
	return nil
}
