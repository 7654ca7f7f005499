package values

import (
	"fmt"
	"sort"
)

// Moved is a values key that a release renamed or removed: Key is the old dotted key;
// Replacement is the key that replaced it, or "" when it was removed, and then Why
// says why (and what to do instead). Since is the release that made the change.
type Moved struct {
	Key         string
	Replacement string
	Why         string
	Since       string
}

// Message is what an error says of a source that still sets the key.
func (m Moved) Message() string {
	if m.Replacement != "" {
		msg := fmt.Sprintf("renamed to %s", m.Replacement)
		if m.Since != "" {
			msg += " in " + m.Since
		}
		return msg + ": rename the key in your values"
	}
	msg := "removed"
	if m.Since != "" {
		msg += " in " + m.Since
	}
	if m.Why != "" {
		msg += ": " + m.Why
	}
	return msg + "; delete the key from your values"
}

// MovedKeys is the table of the control-plane chart's renamed and removed values keys,
// oldest first. A key that a release renames or removes gets an entry here in the same
// change, so that a values file written for an older release fails with the key's new
// name (or why it is gone) instead of "unknown key".
//
// No key has been renamed or removed yet (the chart's history only adds keys), so the
// table is empty; its tests use entries of their own.
//
// A renamed key is an error, not mapped to its replacement: the schema is strict, as
// Helm users expect of a chart with values.schema.json, and a values file in Git must
// say what is rendered. A function, not a variable: no mutable globals.
func MovedKeys() []Moved {
	return []Moved{}
}

// FindMoved lists the problems of a source that sets keys of the table, by key.
func FindMoved(src Source, table []Moved) []Problem {
	var out []Problem
	for _, m := range table {
		if _, ok := Lookup(src.Values, m.Key); ok {
			out = append(out, Problem{Key: m.Key, Message: m.Message()})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// MovedError is a source that sets renamed or removed keys.
// It wraps the *Error that names the source and each key.
type MovedError struct{ Err *Error }

func (e *MovedError) Error() string { return e.Err.Error() }
func (e *MovedError) Unwrap() error { return e.Err }
