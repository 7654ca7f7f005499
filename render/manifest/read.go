package manifest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// Format is how a document is written.
type Format int

const (
	YAML Format = iota
	JSON
)

// Doc is one document of the input, as read.
type Doc struct {
	Source string // file path, URL, "stdin" or "kustomize DIR"
	Index  int    // 1-based, among the documents of Source
	Raw    []byte // the document's bytes, without separators
	Format Format
	// With Inputs.Layout, for YAML: Sep is what stood before Raw in the stream (a
	// byte-order mark, the separator line, or the "--- " before content on its line;
	// empty for a first document without one), and Blank marks a document of only
	// comments and white space. Writing each Sep and Raw in order gives the stream back.
	Sep   []byte
	Blank bool
}

func (d Doc) String() string { return fmt.Sprintf("%s: document %d", d.Source, d.Index) }

// Inputs are kubectl's input flags: -f (file, directory, https URL or "-"), -R, -k.
type Inputs struct {
	Filenames []string
	Recursive bool
	Kustomize string
	// Layout also passes on the YAML stream's comment-only and empty documents and
	// each document's separator (Doc.Blank, Doc.Sep), for writing it back unchanged.
	Layout bool
}

// Env is what reading needs from outside: standard input and an HTTP client.
type Env struct {
	Stdin io.Reader
	HTTP  *http.Client // nil means a client with a 30 s timeout
}

// MaxDocumentSize bounds one document, so a runaway input fails instead of eating memory.
const MaxDocumentSize = 256 << 20

// Each calls fn for every document of the inputs, in order, holding one document in
// memory at a time. It stops at the first error, which names the source.
func (in Inputs) Each(ctx context.Context, env Env, fn func(Doc) error) error {
	if len(in.Filenames) == 0 && in.Kustomize == "" {
		return errors.New("no input: pass -f FILE|DIR|URL|-, a file argument, or -k DIR")
	}
	if !in.Layout { // blank documents and separators are not the caller's business
		next := fn
		fn = func(d Doc) error {
			if d.Blank {
				return nil
			}
			d.Sep = nil
			return next(d)
		}
	}
	if in.Kustomize != "" {
		if err := eachKustomize(in.Kustomize, fn); err != nil {
			return err
		}
	}
	stdinUsed := false
	for _, name := range in.Filenames {
		if err := ctx.Err(); err != nil {
			return err
		}
		switch {
		case name == "-":
			if stdinUsed {
				return errors.New("-f -: standard input can be read only once")
			}
			stdinUsed = true
			if err := eachInStream("stdin", env.Stdin, fn); err != nil {
				return err
			}
		case strings.HasPrefix(name, "https://") || strings.HasPrefix(name, "http://"):
			if err := eachURL(ctx, env, name, fn); err != nil {
				return err
			}
		default:
			if err := eachPath(name, in.Recursive, fn); err != nil {
				return err
			}
		}
	}
	return nil
}

func eachKustomize(dir string, fn func(Doc) error) error {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return fmt.Errorf("kustomize %s: %w", dir, err)
	}
	b, err := m.AsYaml()
	if err != nil {
		return fmt.Errorf("kustomize %s: %w", dir, err)
	}
	return eachInStream("kustomize "+dir, bytes.NewReader(b), fn)
}

func eachURL(ctx context.Context, env Env, url string, fn func(Doc) error) error {
	client := env.HTTP
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("%s: %w", url, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: HTTP %s", url, resp.Status)
	}
	return eachInStream(url, resp.Body, fn)
}

// isManifestFile is what a directory contributes: .yaml, .yml and .json files.
func isManifestFile(name string) bool {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".yaml", ".yml", ".json":
		return true
	}
	return false
}

func eachPath(path string, recursive bool, fn func(Doc) error) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !st.IsDir() {
		return eachFile(path, fn)
	}
	return filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != path && !recursive {
				return filepath.SkipDir
			}
			return nil
		}
		if !isManifestFile(p) {
			return nil
		}
		return eachFile(p, fn)
	})
}

func eachFile(path string, fn func(Doc) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return eachInStream(path, f, fn)
}

// eachInStream reads a YAML stream, or JSON (one value or several concatenated),
// whichever the first non-blank byte says.
func eachInStream(source string, r io.Reader, fn func(Doc) error) error {
	br := bufio.NewReaderSize(r, 64<<10)
	bom, first, err := firstByte(br)
	if errors.Is(err, io.EOF) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s: %w", source, err)
	}
	if first == '{' || first == '[' {
		return eachJSON(source, br, fn)
	}
	return eachYAML(source, bom, br, fn)
}

// firstByte skips a UTF-8 byte-order mark (returned) and peeks past white space at
// the first byte of content.
func firstByte(br *bufio.Reader) ([]byte, byte, error) {
	var bom []byte
	if b, _ := br.Peek(3); bytes.Equal(b, []byte{0xEF, 0xBB, 0xBF}) {
		_, _ = br.Discard(3)
		bom = b
	}
	for n := 1; ; n++ {
		b, err := br.Peek(n)
		if len(b) < n {
			if errors.Is(err, bufio.ErrBufferFull) {
				return bom, ' ', nil // white space filling the whole buffer: read it as YAML
			}
			return bom, 0, err
		}
		switch c := b[n-1]; c {
		case ' ', '\t', '\r', '\n':
			continue
		default:
			return bom, c, nil
		}
	}
}

func eachJSON(source string, r io.Reader, fn func(Doc) error) error {
	dec := json.NewDecoder(r)
	for i := 1; ; i++ {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err == io.EOF {
			return nil
		} else if err != nil {
			return fmt.Errorf("%s: document %d: %w", source, i, err)
		}
		if len(raw) > MaxDocumentSize {
			return fmt.Errorf("%s: document %d is larger than %d MiB", source, i, MaxDocumentSize>>20)
		}
		if err := fn(Doc{Source: source, Index: i, Raw: raw, Format: JSON}); err != nil {
			return err
		}
	}
}

// eachYAML splits a YAML stream at separator lines, one document in memory at a time.
// Documents are numbered as SplitYAML numbers them: blank text before a leading
// separator is not a document; blank documents are counted, and passed on only as
// Doc.Blank. bom, if any, was read before r.
func eachYAML(source string, bom []byte, r *bufio.Reader, fn func(Doc) error) error {
	var doc []byte
	sep := append([]byte(nil), bom...)
	index, seen := 0, false
	emit := func(counted bool) error {
		if counted {
			index++
		}
		defer func() { doc = doc[:0] }()
		d := Doc{Source: source, Index: index, Raw: append([]byte(nil), doc...), Format: YAML, Sep: sep, Blank: isBlank(doc)}
		if d.Blank && len(d.Raw) == 0 && len(d.Sep) == 0 {
			return nil
		}
		return fn(d)
	}
	for {
		line, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// A line longer than the buffer: gather it whole.
			full := append([]byte(nil), line...)
			for errors.Is(err, bufio.ErrBufferFull) {
				line, err = r.ReadSlice('\n')
				full = append(full, line...)
				if len(full) > MaxDocumentSize {
					return fmt.Errorf("%s: document %d is larger than %d MiB", source, index+1, MaxDocumentSize>>20)
				}
			}
			line = full
		}
		if err != nil && err != io.EOF {
			return fmt.Errorf("%s: %w", source, err)
		}
		if content, ok := separator(line); ok {
			if e := emit(seen || !isBlank(doc)); e != nil {
				return e
			}
			seen = true
			sep = append([]byte(nil), line[:len(line)-len(content)]...)
			doc = append(doc, content...)
		} else {
			doc = append(doc, line...)
			if len(doc) > MaxDocumentSize {
				return fmt.Errorf("%s: document %d is larger than %d MiB", source, index+1, MaxDocumentSize>>20)
			}
		}
		if errors.Is(err, io.EOF) {
			if len(doc) > 0 || seen {
				return emit(true)
			}
			return nil
		}
	}
}

// Describe names the inputs in a message: files, directories, URLs, standard input
// and the kustomization.
func (in Inputs) Describe() string {
	var names []string
	if in.Kustomize != "" {
		names = append(names, "the kustomization "+in.Kustomize)
	}
	for _, f := range in.Filenames {
		if f == "-" {
			f = "standard input"
		}
		names = append(names, f)
	}
	return strings.Join(names, ", ")
}

// NoObjects is the error for inputs that hold no object, for commands where nothing
// to work on would hide a wrong path or an empty render (verb: "to check", "to diff").
func (in Inputs) NoObjects(verb string) error {
	if verb != "" {
		verb += " "
	}
	return fmt.Errorf("no Kubernetes objects %sin %s: the input is empty, holds only comments, or is a directory without .yaml, .yml or .json files (-R reads subdirectories)", verb, in.Describe())
}
