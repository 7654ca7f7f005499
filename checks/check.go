// Package checks is the framework behind `mesh check`: a check is data (an ID, a
// category, a description, a docs hint, a severity, its dependencies and a Run func),
// and Run executes a list of them in order into a Report. Package checks/report
// renders a Report as a table, JSON, JUnit XML or a short summary.
package checks

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Severity says what a failed check means for the exit code.
type Severity int

// Severities. The zero value is Error, so a check is an error unless it says otherwise.
const (
	Error   Severity = iota // a failure fails the command
	Warning                 // a failure is reported; it fails the command only with --fail-on-warning
)

// String is "error" or "warning".
func (s Severity) String() string {
	switch s {
	case Error:
		return "error"
	case Warning:
		return "warning"
	default:
		return fmt.Sprintf("Severity(%d)", int(s))
	}
}

// Status is the outcome of one check.
type Status int

// Statuses.
const (
	Passed Status = iota
	Failed
	Skipped
)

// String is "passed", "failed" or "skipped".
func (s Status) String() string {
	switch s {
	case Passed:
		return "passed"
	case Failed:
		return "failed"
	case Skipped:
		return "skipped"
	default:
		return fmt.Sprintf("Status(%d)", int(s))
	}
}

// ErrSkipped is what a check returns (wrapped, with the reason) when it does not apply,
// e.g. fmt.Errorf("no webhook in these manifests: %w", checks.ErrSkipped), or Skip(reason).
// It is a sentinel, never reassigned.
var ErrSkipped = errors.New("skipped")

// Skip returns an error that skips the check on purpose, with reason as its message.
func Skip(reason string) error { return &skipError{reason: reason} }

type skipError struct{ reason string }

func (e *skipError) Error() string        { return e.reason }
func (e *skipError) Is(target error) bool { return target == ErrSkipped }

// skipReason is the message of a deliberate skip: the error's text without the
// trailing ": skipped" that wrapping ErrSkipped with fmt.Errorf adds.
func skipReason(err error) string {
	msg := err.Error()
	if msg == ErrSkipped.Error() {
		return msg
	}
	return strings.TrimSuffix(msg, ": "+ErrSkipped.Error())
}

// Check is one check of `mesh check`.
type Check struct {
	// ID is unique and stable, "<category>.<name>", e.g. "offline.images-pinned".
	ID string
	// Category groups checks in the output, e.g. "offline".
	Category string
	// Description says what is checked, as a statement that holds when it passes,
	// e.g. "images are pinned by digest".
	Description string
	// Hint is a docs URL with an anchor, e.g. https://meshplane.io/docs/checks#offline.images-pinned.
	Hint string
	// Severity of a failure.
	Severity Severity
	// DependsOn lists IDs of earlier checks; if one of them failed (or was skipped
	// because of its own dependencies) this check is skipped.
	DependsOn []string
	// Retry marks checks of a state that may become true: under Options.Wait they are
	// retried until they pass or the wait is over.
	Retry bool
	// Run returns nil when the check passes, an error saying what is wrong when it
	// fails, or an error wrapping ErrSkipped when it does not apply.
	Run func(ctx context.Context) error
}

// Result is the outcome of one check.
type Result struct {
	Check    Check
	Status   Status
	Message  string        // why it failed or was skipped; empty when it passed
	Duration time.Duration // from the first attempt's start to the last one's end, by Options.Now
	Attempts int           // times Run was called; 0 when the check was not run
}

// Report is the outcome of a list of checks, in the order they ran.
type Report struct {
	Results []Result
}

// Failed returns the failed results of the given severity, in order.
func (r Report) Failed(sev Severity) []Result {
	var out []Result
	for _, res := range r.Results {
		if res.Status == Failed && res.Check.Severity == sev {
			out = append(out, res)
		}
	}
	return out
}

// ExitCode is ExitPassed when no error-severity check failed (and, with
// failOnWarning, no warning-severity one either), and ExitFindings otherwise. A
// command that could not run at all (ExitUsage, ExitCluster) is the caller's business.
func (r Report) ExitCode(failOnWarning bool) int {
	if len(r.Failed(Error)) > 0 {
		return ExitFindings
	}
	if failOnWarning && len(r.Failed(Warning)) > 0 {
		return ExitFindings
	}
	return ExitPassed
}

// Validate reports programming errors in a list of checks: an empty ID, a duplicate
// ID, a missing Run, an unknown dependency, and a dependency that does not come
// earlier in the list (Run goes in order, so that also rules out cycles).
func Validate(checks []Check) error {
	var errs []error
	seen := make(map[string]bool, len(checks))
	all := make(map[string]bool, len(checks))
	for _, c := range checks {
		all[c.ID] = true
	}
	for i, c := range checks {
		if c.ID == "" {
			errs = append(errs, fmt.Errorf("check %d (%q): empty ID", i, c.Description))
			continue
		}
		if seen[c.ID] {
			errs = append(errs, fmt.Errorf("check %s: duplicate ID", c.ID))
		}
		if c.Run == nil {
			errs = append(errs, fmt.Errorf("check %s: no Run func", c.ID))
		}
		for _, dep := range c.DependsOn {
			switch {
			case dep == c.ID:
				errs = append(errs, fmt.Errorf("check %s: depends on itself", c.ID))
			case !all[dep]:
				errs = append(errs, fmt.Errorf("check %s: depends on unknown check %s", c.ID, dep))
			case !seen[dep]:
				errs = append(errs, fmt.Errorf("check %s: depends on %s, which comes after it", c.ID, dep))
			}
		}
		seen[c.ID] = true
	}
	return errors.Join(errs...)
}
