package report

import (
	"io"

	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"
)

// style renders text; a lipgloss.Style.
type style interface {
	Render(strs ...string) string
}

// styles are every style the table uses, in this one place.
type styles struct {
	header  style // category names
	passed  style // √
	warning style // ‼ and a failed warning's message
	failed  style // × and a failed error's message
	skipped style // - and the reason
	hint    style // the docs link
}

// newStyles builds the table's lipgloss styles. The caller decides about colour (only
// on a TTY, never with NO_COLOR): with color false every style is plain text, and with
// color true the ANSI 16-colour profile is forced, whatever lipgloss would detect.
func newStyles(color bool) styles {
	r := lipgloss.NewRenderer(io.Discard)
	if color {
		r.SetColorProfile(termenv.ANSI)
	} else {
		r.SetColorProfile(termenv.Ascii)
	}
	return styles{
		header:  r.NewStyle().Bold(true),
		passed:  r.NewStyle().Foreground(lipgloss.Color("2")), // green
		warning: r.NewStyle().Foreground(lipgloss.Color("3")), // yellow
		failed:  r.NewStyle().Foreground(lipgloss.Color("1")), // red
		skipped: r.NewStyle().Faint(true),
		hint:    r.NewStyle().Faint(true),
	}
}

// Symbols of each outcome in the table and the summary.
const (
	symbolPassed  = "√"
	symbolWarning = "‼"
	symbolFailed  = "×"
	symbolSkipped = "-"
)

// mark is an outcome's symbol and style.
func (s styles) mark(o outcome) (string, style) {
	switch o {
	case outcomeSuccess:
		return symbolPassed, s.passed
	case outcomeWarning:
		return symbolWarning, s.warning
	case outcomeError:
		return symbolFailed, s.failed
	default:
		return symbolSkipped, s.skipped
	}
}
