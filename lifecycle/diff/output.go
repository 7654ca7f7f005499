package diff

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Output formats.
const (
	FormatDiff = "diff" // unified diffs
	FormatJSON = "json" // the Report as JSON
)

// Write writes the report in the format: the unified diff of every object that
// differs (nothing when none does), or the whole report as JSON.
func Write(w io.Writer, format string, r *Report) error {
	switch format {
	case FormatJSON:
		b, err := json.MarshalIndent(r, "", "  ")
		if err != nil {
			return err
		}
		_, err = w.Write(append(b, '\n'))
		return err
	case FormatDiff, "":
		var b strings.Builder
		for _, o := range r.Objects {
			b.WriteString(o.Diff)
		}
		_, err := io.WriteString(w, b.String())
		return err
	default:
		return fmt.Errorf("unknown output format %q (want %s or %s)", format, FormatDiff, FormatJSON)
	}
}

// Summary writes what is not a diff, for stderr: each pending object and why, each
// conflict with the manager that owns the field, each prune candidate, and one line
// of counts.
func Summary(w io.Writer, r *Report) error {
	var b strings.Builder
	// Notes (objects added as given) by reason, in order: a namespace that does not
	// exist yet is one line, not one per object in it.
	var notes []string
	noted := map[string][]string{}
	for _, o := range r.Objects {
		if o.Status != Pending && o.Reason != "" {
			if noted[o.Reason] == nil {
				notes = append(notes, o.Reason)
			}
			noted[o.Reason] = append(noted[o.Reason], o.String())
		}
	}
	for _, n := range notes {
		if objs := noted[n]; len(objs) == 1 {
			fmt.Fprintf(&b, "Note: %s: %s\n", objs[0], n)
		} else {
			fmt.Fprintf(&b, "Note: %d objects (%s, ...): %s\n", len(objs), objs[0], n)
		}
	}
	for _, o := range r.Objects {
		if o.Status == Pending {
			fmt.Fprintf(&b, "Pending: %s: %s\n", o, o.Reason)
		}
		for _, c := range o.Conflicts {
			// The server's message after the manager: " using apps/v1", " with subresource …".
			rest := strings.TrimPrefix(c.Message, "conflict with "+strconv.Quote(c.Manager))
			fmt.Fprintf(&b, "Conflict: %s: %s is owned by %q%s; applying without force fails\n", o, c.Field, c.Manager, rest)
		}
	}
	for _, p := range r.Prune {
		fmt.Fprintf(&b, "Prune candidate: %s: in the cluster, not in the input\n", p)
	}
	n := r.Count()
	fmt.Fprintf(&b, "%d objects: %d changed, %d added, %d pending, %d conflicting, %d unchanged", len(r.Objects), n[Changed], n[Added], n[Pending], n[Conflict], n[Unchanged])
	if len(r.Prune) > 0 {
		fmt.Fprintf(&b, "; %d prune candidates", len(r.Prune))
	}
	b.WriteString("\n")
	_, err := io.WriteString(w, b.String())
	return err
}
