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
// A YAML stream keeps its layout: separators, comment-only documents and the bytes of
// every document that needs no change come out as they came in.
//
// report, if not nil, gets each object's result; results are not kept, so memory does
// not grow with the number of objects. Result.Doc gives the input order (reports of
// Namespace-only documents come last, once it is known whether they stand alone).
func (in *Injector) Stream(ctx context.Context, inputs manifest.Inputs, env manifest.Env, output string, w io.Writer, report func(Result)) error {
	f, err := os.CreateTemp("", "mesh-inject-*")
	if err != nil {
		return fmt.Errorf("spool file: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	sp := &spool{w: bufio.NewWriterSize(f, 256<<10), report: report, allJSON: true}
	nsIn, err := in.namespacesVariant()
	if err != nil {
		return err
	}
	inputs.Layout = true
	if err := in.process(ctx, inputs, env, output, nsIn, sp); err != nil {
		return err
	}
	if err := sp.w.Flush(); err != nil {
		return fmt.Errorf("spool file: %w", err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("spool file: %w", err)
	}
	useAlt := sp.reportPending()
	return writeOut(f, sp.entries, output, output == JSON || (output == Auto && sp.allJSON && sp.docs > 0), useAlt, w)
}

// namespacesVariant is the Injector for Namespace-only documents: Namespaces given on
// their own (no other object in the input) are meshed even without
// Options.Namespaces. Until the input has been read, both versions of such a document
// go to the spool, and their reports wait. It is nil when Options.Namespaces is set.
func (in *Injector) namespacesVariant() (*Injector, error) {
	if in.opts.Namespaces {
		return nil, nil
	}
	o := in.opts
	o.Namespaces = true
	return New(o)
}

// A job is one document on its way through the workers.
type job struct {
	d        manifest.Doc
	seq      int
	out, alt []byte
	rs, altR []Result
	err      error
	done     chan struct{}
}

// process injects the documents in parallel and hands them to the spool in input
// order. At most 2 jobs per worker are in flight, so memory stays proportional to the
// largest document. The error returned is the first in input order.
func (in *Injector) process(ctx context.Context, inputs manifest.Inputs, env manifest.Env, output string, nsIn *Injector, sp *spool) error {
	workers := runtime.GOMAXPROCS(0)
	work := make(chan *job, 2*workers)
	ordered := make(chan *job, 2*workers)
	var failed atomic.Bool
	for range workers {
		go func() {
			for j := range work {
				if !failed.Load() {
					in.run(j, output, nsIn)
				}
				close(j.done)
			}
		}()
	}
	spoolErr := make(chan error, 1)
	go func() {
		var first error
		for j := range ordered {
			<-j.done
			if first != nil {
				continue
			}
			if first = j.err; first == nil {
				first = sp.add(j)
			}
			if first != nil {
				failed.Store(true)
			}
		}
		spoolErr <- first
	}()
	seq := 0
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
	if err := <-spoolErr; err != nil {
		return err
	}
	return readErr
}

// run injects one job's document (and its Namespaces-meshed variant, if it holds only
// Namespaces).
func (in *Injector) run(j *job, output string, nsIn *Injector) {
	if j.d.Blank {
		if output != JSON {
			j.out = j.d.Raw
		}
		return
	}
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

// spool takes the documents in input order: their bytes go to the spool file, an
// entry per document says how to write them out, and reports go out (or wait, for
// Namespace-only documents).
type spool struct {
	w        *bufio.Writer
	entries  []entry
	report   func(Result)
	pending  [][2][]Result
	sawOther bool // an object other than a Namespace
	allJSON  bool
	docs     int // documents that are not blank
}

type entry struct {
	size      int64
	altSize   int64 // a Namespace-only document's annotated version follows it
	format    manifest.Format
	sep       []byte // what stood before the document in its YAML stream
	blank     bool
	flowStart bool // the document's first non-blank byte is "{" or "["
}

func (sp *spool) add(j *job) error {
	if !j.d.Blank {
		sp.docs++
		if j.d.Format != manifest.JSON {
			sp.allJSON = false
		}
	}
	_, err1 := sp.w.Write(j.out)
	_, err2 := sp.w.Write(j.alt)
	if err := errors.Join(err1, err2); err != nil {
		return fmt.Errorf("spool file: %w", err)
	}
	trimmed := bytes.TrimLeft(j.out, " \t\r\n")
	flowStart := len(trimmed) > 0 && (trimmed[0] == '{' || trimmed[0] == '[')
	sp.entries = append(sp.entries, entry{int64(len(j.out)), int64(len(j.alt)), j.d.Format, j.d.Sep, j.d.Blank, flowStart})
	switch {
	case j.alt != nil:
		sp.pending = append(sp.pending, [2][]Result{j.rs, j.altR})
	case len(j.rs) > 0:
		sp.sawOther = true
		fallthrough
	default:
		if sp.report != nil {
			for _, r := range j.rs {
				sp.report(r)
			}
		}
	}
	return nil
}

// reportPending reports the Namespace-only documents, now that the whole input is
// known, and tells whether their Namespaces-meshed versions are the ones to write.
func (sp *spool) reportPending() bool {
	useAlt := !sp.sawOther && len(sp.pending) > 0
	if sp.report != nil {
		for _, p := range sp.pending {
			rs := p[0]
			if useAlt {
				rs = p[1]
			}
			for _, r := range rs {
				sp.report(r)
			}
		}
	}
	return useAlt
}

// writeOut copies the spooled documents to w: a YAML stream with the input's
// separators, or JSON (a v1 List for several documents with -o json).
func writeOut(spool io.Reader, entries []entry, output string, jsonOut, useAlt bool, w io.Writer) error {
	bw := bufio.NewWriterSize(w, 256<<10)
	list := false
	if output == JSON {
		n := 0
		for _, e := range entries {
			if !e.blank {
				n++
			}
		}
		list = n != 1
	}
	if list {
		_, _ = bw.WriteString("{\n  \"apiVersion\": \"v1\",\n  \"kind\": \"List\",\n  \"items\": [\n") // bufio keeps the error for Flush
	}
	written := 0        // documents written
	lastNewline := true // the output so far ends with a line break (or is empty)
	for _, e := range entries {
		if e.altSize > 0 && useAlt { // skip the document, write its annotated version
			if _, err := io.CopyN(io.Discard, spool, e.size); err != nil {
				return fmt.Errorf("spool file: %w", err)
			}
			e.size, e.altSize = e.altSize, 0
		}
		if jsonOut && e.blank {
			if _, err := io.CopyN(io.Discard, spool, e.size+e.altSize); err != nil {
				return fmt.Errorf("spool file: %w", err)
			}
			continue
		}
		buf := make([]byte, e.size)
		if _, err := io.ReadFull(spool, buf); err != nil {
			return fmt.Errorf("spool file: %w", err)
		}
		if _, err := io.CopyN(io.Discard, spool, e.altSize); err != nil {
			return fmt.Errorf("spool file: %w", err)
		}
		switch {
		case list:
			if written > 0 {
				_, _ = bw.WriteString(",\n") // bufio keeps the error for Flush
			}
			_, _ = bw.WriteString("    ")
			var b bytes.Buffer
			if err := json.Indent(&b, buf, "    ", "  "); err != nil {
				return err
			}
			_, _ = bw.Write(b.Bytes())
		case jsonOut:
			if output == JSON { // compact in the spool: indent on its own
				var b bytes.Buffer
				if err := json.Indent(&b, buf, "", "  "); err != nil {
					return err
				}
				buf = b.Bytes()
			}
			_, _ = bw.Write(buf)
			_, _ = bw.WriteString("\n")
		default:
			sep := e.sep
			if e.format != manifest.YAML || output == JSON {
				sep = nil
			}
			if len(bytes.TrimPrefix(sep, []byte{0xEF, 0xBB, 0xBF})) == 0 && (written > 0 || (e.format == manifest.YAML && e.flowStart)) {
				// A document with no separator of its own: after another, or first
				// but starting with "{" or "[" (it would be read back as JSON).
				sep = append(append([]byte(nil), sep...), "---\n"...)
			}
			if len(sep) > 0 && !lastNewline {
				_, _ = bw.WriteString("\n")
			}
			_, _ = bw.Write(sep)
			_, _ = bw.Write(buf)
			if len(sep) > 0 || len(buf) > 0 {
				lastNewline = bytes.HasSuffix(buf, []byte("\n")) || (len(buf) == 0 && bytes.HasSuffix(sep, []byte("\n")))
			}
		}
		written++
	}
	if list {
		_, _ = bw.WriteString("\n  ]\n}\n") // bufio keeps the error for Flush
	}
	return bw.Flush()
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

// convert turns a document into the forced output format.
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
	return doc, nil
}
