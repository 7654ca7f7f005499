// Package iostreams is the one IO type every command gets: standard input, output and
// error, whether each is a terminal, and file reading. Colour is used only on a TTY.
package iostreams

import (
	"bytes"
	"io"
	"os"

	"golang.org/x/term"
)

// IOStreams carries a command's input and output. stdout carries only data; progress,
// warnings and reports go to ErrOut.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer

	outTTY bool
	errTTY bool
}

// System is the process's own streams.
func System() *IOStreams {
	return &IOStreams{
		In:     os.Stdin,
		Out:    os.Stdout,
		ErrOut: os.Stderr,
		outTTY: isTerminal(os.Stdout),
		errTTY: isTerminal(os.Stderr),
	}
}

// Test returns streams over buffers, none of them a terminal.
func Test() (s *IOStreams, in, out, errOut *bytes.Buffer) {
	in, out, errOut = &bytes.Buffer{}, &bytes.Buffer{}, &bytes.Buffer{}
	return &IOStreams{In: in, Out: out, ErrOut: errOut}, in, out, errOut
}

// SetTTY marks stdout and stderr as terminals or not (for tests).
func (s *IOStreams) SetTTY(out, err bool) { s.outTTY, s.errTTY = out, err }

// IsStdoutTTY tells whether standard output is a terminal.
func (s *IOStreams) IsStdoutTTY() bool { return s.outTTY }

// ColorEnabled tells whether messages on ErrOut may use colour: only on a terminal,
// and never when NO_COLOR is set.
func (s *IOStreams) ColorEnabled() bool {
	return s.errTTY && os.Getenv("NO_COLOR") == ""
}

// Stdin is standard input, for "-" arguments.
func (s *IOStreams) Stdin() io.Reader { return s.In }

// ReadFile reads a named file.
func (s *IOStreams) ReadFile(name string) ([]byte, error) { return os.ReadFile(name) }

func isTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }
