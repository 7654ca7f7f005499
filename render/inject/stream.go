package inject

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync/atomic"

	"sigs.k8s.io/yaml"

	"github.com/meshplane/mesh/render/manifest"
)

// Output formats of Stream: Auto keeps the input's (JSON if every document is JSON).
const (
	Auto = ""
	YAML = "yaml"
	JSON = "json"
)

// Stream injects every document of the inputs and writes the result to w, all or
// nothing: documents are processed one at a time into a spool file, and w sees nothing
// unless every document succeeded. Memory stays proportional to the largest document.
//
// report, if not nil, gets each object's result; results are not kept, so memory does
// not grow with the number of objects. Result.Doc gives the input order (reports of
// Namespace-only documents come last, once it is known whether they stand alone).
func (in *Injector) Stream(ctx context.Context, inputs manifest.Inputs, env manifest.Env, output string, w io.Writer, report func(Result)) error {
	spool, err := os.CreateTemp("", "mesh-inject-*")
	if err != nil {
		return fmt.Errorf("spool file: %w", err)
	}
	defer os.Remove(spool.Name())
	defer spool.Close()

	type entry struct {
		size      int64
		altSize   int64 // a Namespace-only document's annotated version follows it
		format    manifest.Format
		flowStart bool // the document's first non-blank byte is "{" or "["
	}
	// Namespaces given on their own (no other object in the input) are meshed even
	// without Options.Namespaces. Until the input has been read, both versions of a
	// Namespace-only document go to the spool, and their reports wait.
	var nsIn *Injector
	if !in.opts.Namespaces {
		o := in.opts
		o.Namespaces = true
		var err error
		if nsIn, err = New(o); err != nil {
			return err
		}
	}
	sawOther := false
	var pending [][2][]Result
	var entries []entry
	allJSON := true
	sw := bufio.NewWriterSize(spool, 256<<10)

	// Documents are independent: workers inject them in parallel while one writer
	// takes them in input order. At most 2 jobs per worker are in flight, so memory
	// stays proportional to the largest document. The error reported is the first
	// in input order.
	type job struct {
		d        manifest.Doc
		seq      int
		out, alt []byte
		rs, altR []Result
		err      error
		done     chan struct{}
	}
	workers := runtime.GOMAXPROCS(0)
	work := make(chan *job, 2*workers)
	ordered := make(chan *job, 2*workers)
	var failed atomic.Bool
	seq := 0
	for range workers {
		go func() {
			for j := range work {
				if !failed.Load() {
					j.out, j.rs, j.err = in.one(j.d, output)
					if j.err == nil && nsIn != nil && onlyNamespaces(j.rs) {
						j.alt, j.altR, j.err = nsIn.one(j.d, output)
					}
					for i := range j.rs {
						j.rs[i].Doc = j.seq
					}
					for i := range j.altR {
						j.altR[i].Doc = j.seq
					}
				}
				close(j.done)
			}
		}()
	}
	writeErr := make(chan error, 1)
	go func() {
		var first error
		for j := range ordered {
			<-j.done
			if first != nil {
				continue
			}
			if j.err != nil {
				first = j.err
				failed.Store(true)
				continue
			}
			if j.d.Format != manifest.JSON {
				allJSON = false
			}
			_, err1 := sw.Write(j.out)
			_, err2 := sw.Write(j.alt)
			if err := errors.Join(err1, err2); err != nil {
				first = fmt.Errorf("spool file: %w", err)
				failed.Store(true)
				continue
			}
			trimmed := bytes.TrimLeft(j.out, " \t\r\n")
			flowStart := len(trimmed) > 0 && (trimmed[0] == '{' || trimmed[0] == '[')
			entries = append(entries, entry{int64(len(j.out)), int64(len(j.alt)), j.d.Format, flowStart})
			switch {
			case j.alt != nil:
				pending = append(pending, [2][]Result{j.rs, j.altR})
			case len(j.rs) > 0:
				sawOther = true
				fallthrough
			default:
				if report != nil {
					for _, r := range j.rs {
						report(r)
					}
				}
			}
		}
		writeErr <- first
	}()
	readErr := inputs.Each(ctx, env, func(d manifest.Doc) error {
		if failed.Load() {
			return errStop
		}
		j := &job{d: d, seq: seq, done: make(chan struct{})}
		seq++
		ordered <- j
		work <- j
		return nil
	})
	close(work)
	close(ordered)
	if err := <-writeErr; err != nil {
		return err
	}
	if readErr != nil {
		return readErr
	}
	if err := sw.Flush(); err != nil {
		return fmt.Errorf("spool file: %w", err)
	}
	if _, err := spool.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("spool file: %w", err)
	}

	useAlt := !sawOther && len(pending) > 0
	if report != nil {
		for _, p := range pending {
			rs := p[0]
			if useAlt {
				rs = p[1]
			}
			for _, r := range rs {
				report(r)
			}
		}
	}
	jsonOut := output == JSON || (output == Auto && allJSON && len(entries) > 0)
	bw := bufio.NewWriterSize(w, 256<<10)
	list := output == JSON && len(entries) != 1
	if list {
		_, _ = bw.WriteString("{\n  \"apiVersion\": \"v1\",\n  \"kind\": \"List\",\n  \"items\": [\n") // bufio keeps the error for Flush
	}
	for i, e := range entries {
		if e.altSize > 0 && useAlt { // skip the document, write its annotated version
			if _, err := io.CopyN(io.Discard, spool, e.size); err != nil {
				return fmt.Errorf("spool file: %w", err)
			}
			e.size, e.altSize = e.altSize, 0
		}
		switch {
		case list && i > 0:
			_, _ = bw.WriteString(",\n") // bufio keeps the error for Flush
		case !jsonOut && i > 0:
			_, _ = bw.WriteString("---\n") // bufio keeps the error for Flush
		case !jsonOut && i == 0 && e.format == manifest.YAML && e.flowStart:
			// A YAML stream whose first document starts with "{" or "[" would be read
			// back (by mesh or kubectl) as JSON: say it is YAML.
			_, _ = bw.WriteString("---\n") // bufio keeps the error for Flush
		}
		if output == JSON { // compact in the spool: indent as an item or on its own
			buf := make([]byte, e.size)
			if _, err := io.ReadFull(spool, buf); err != nil {
				return fmt.Errorf("spool file: %w", err)
			}
			prefix := ""
			if list {
				prefix = "    "
				_, _ = bw.WriteString(prefix) // bufio keeps the error for Flush
			}
			var b bytes.Buffer
			if err := json.Indent(&b, buf, prefix, "  "); err != nil {
				return err
			}
			_, _ = bw.Write(b.Bytes()) // bufio keeps the error for Flush
		} else if _, err := io.CopyN(bw, spool, e.size); err != nil {
			return fmt.Errorf("spool file: %w", err)
		}
		if jsonOut && !list {
			_, _ = bw.WriteString("\n") // bufio keeps the error for Flush
		}
		if _, err := io.CopyN(io.Discard, spool, e.altSize); err != nil {
			return fmt.Errorf("spool file: %w", err)
		}
	}
	if list {
		_, _ = bw.WriteString("\n  ]\n}\n") // bufio keeps the error for Flush
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	return nil
}

// onlyNamespaces tells whether a document's objects are all Namespaces.
func onlyNamespaces(rs []Result) bool {
	for _, r := range rs {
		if r.Kind != "Namespace" {
			return false
		}
	}
	return len(rs) > 0
}

// errStop ends reading once a document has failed; the failure is what is reported.
var errStop = errors.New("stopped")

// one injects one document and converts it to the output format.
func (in *Injector) one(d manifest.Doc, output string) ([]byte, []Result, error) {
	var out []byte
	var rs []Result
	var err error
	if d.Format == manifest.JSON {
		out, rs, err = in.JSON(d.Raw)
	} else {
		out, rs, err = in.YAML(d.Raw)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", d, err)
	}
	if out, err = convert(out, d.Format, output); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", d, err)
	}
	return out, rs, nil
}

// convert turns a document into the forced output format; it also makes every YAML
// document end in a newline so the stream's separators stand on their own lines.
func convert(doc []byte, from manifest.Format, output string) ([]byte, error) {
	switch {
	case output == YAML && from == manifest.JSON:
		return yaml.JSONToYAML(doc)
	case output == JSON:
		if from == manifest.YAML {
			j, err := yaml.YAMLToJSON(doc)
			if err != nil {
				return nil, err
			}
			doc = j
		}
		var b bytes.Buffer
		if err := json.Compact(&b, doc); err != nil {
			return nil, err
		}
		return b.Bytes(), nil
	}
	if from == manifest.YAML && len(doc) > 0 && doc[len(doc)-1] != '\n' {
		doc = append(doc, '\n')
	}
	return doc, nil
}
