package inject

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"

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
func (in *Injector) Stream(ctx context.Context, inputs manifest.Inputs, env manifest.Env, output string, w io.Writer) ([]Result, error) {
	spool, err := os.CreateTemp("", "mesh-inject-*")
	if err != nil {
		return nil, fmt.Errorf("spool file: %w", err)
	}
	defer os.Remove(spool.Name())
	defer spool.Close()

	type entry struct {
		size      int64
		format    manifest.Format
		flowStart bool // the document's first non-blank byte is "{" or "["
	}
	var entries []entry
	var results []Result
	allJSON := true
	sw := bufio.NewWriterSize(spool, 256<<10)
	err = inputs.Each(ctx, env, func(d manifest.Doc) error {
		var out []byte
		var rs []Result
		var err error
		if d.Format == manifest.JSON {
			out, rs, err = in.JSON(d.Raw)
		} else {
			allJSON = false
			out, rs, err = in.YAML(d.Raw)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", d, err)
		}
		if out, err = convert(out, d.Format, output); err != nil {
			return fmt.Errorf("%s: %w", d, err)
		}
		if _, err := sw.Write(out); err != nil {
			return fmt.Errorf("spool file: %w", err)
		}
		trimmed := bytes.TrimLeft(out, " \t\r\n")
		flowStart := len(trimmed) > 0 && (trimmed[0] == '{' || trimmed[0] == '[')
		entries = append(entries, entry{int64(len(out)), d.Format, flowStart})
		results = append(results, rs...)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := sw.Flush(); err != nil {
		return nil, fmt.Errorf("spool file: %w", err)
	}
	if _, err := spool.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("spool file: %w", err)
	}

	jsonOut := output == JSON || (output == Auto && allJSON && len(entries) > 0)
	bw := bufio.NewWriterSize(w, 256<<10)
	list := output == JSON && len(entries) != 1
	if list {
		_, _ = bw.WriteString("{\n  \"apiVersion\": \"v1\",\n  \"kind\": \"List\",\n  \"items\": [\n") // bufio keeps the error for Flush
	}
	for i, e := range entries {
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
				return nil, fmt.Errorf("spool file: %w", err)
			}
			prefix := ""
			if list {
				prefix = "    "
				_, _ = bw.WriteString(prefix) // bufio keeps the error for Flush
			}
			var b bytes.Buffer
			if err := json.Indent(&b, buf, prefix, "  "); err != nil {
				return nil, err
			}
			_, _ = bw.Write(b.Bytes()) // bufio keeps the error for Flush
		} else if _, err := io.CopyN(bw, spool, e.size); err != nil {
			return nil, fmt.Errorf("spool file: %w", err)
		}
		if jsonOut && !list {
			_, _ = bw.WriteString("\n") // bufio keeps the error for Flush
		}
	}
	if list {
		_, _ = bw.WriteString("\n  ]\n}\n") // bufio keeps the error for Flush
	}
	if err := bw.Flush(); err != nil {
		return nil, err
	}
	return results, nil
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
