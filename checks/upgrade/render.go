package upgrade

import (
	"bytes"
	"errors"
	"io"

	"github.com/meshplane/mesh/render/install"
	"github.com/meshplane/mesh/render/values"
)

// Render renders the new install for the suite, from the options alone (never from
// the cluster), and returns the user's values sources, for the values check. A render
// that fails only because the values set renamed or removed keys returns no result and
// no error: the values check names the keys. Any other failure is an error.
func Render(o install.Options, r values.Reader) (*install.Result, []values.Source, error) {
	cr := OnceReader(r)
	sources, err := o.Values.Sources(cr)
	if err != nil {
		return nil, nil, err
	}
	res, err := install.Render(o, cr)
	var moved *values.MovedError
	if errors.As(err, &moved) {
		return nil, sources, nil
	}
	if err != nil {
		return nil, nil, err
	}
	return res, sources, nil
}

// OnceReader wraps r to read each file and standard input once: later reads get the
// same bytes. Render reads the values twice (for the check, for the render) through it.
func OnceReader(r values.Reader) values.Reader {
	if o, ok := r.(*onceReader); ok {
		return o
	}
	return &onceReader{r: r, files: map[string][]byte{}}
}

// onceReader reads each file and standard input once, so that the values are read
// twice (for the check, for the render) from the same bytes.
type onceReader struct {
	r     values.Reader
	files map[string][]byte
	stdin []byte
	err   error
	read  bool
}

func (c *onceReader) ReadFile(name string) ([]byte, error) {
	if b, ok := c.files[name]; ok {
		return b, nil
	}
	b, err := c.r.ReadFile(name)
	if err != nil {
		return nil, err
	}
	c.files[name] = b
	return b, nil
}

func (c *onceReader) Stdin() io.Reader {
	if !c.read {
		c.read = true
		c.stdin, c.err = io.ReadAll(c.r.Stdin())
	}
	if c.err != nil {
		return errReader{c.err}
	}
	return bytes.NewReader(c.stdin)
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }
