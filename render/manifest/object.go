// Package manifest holds Kubernetes objects as the documents they were rendered or read
// as, orders them for apply, and writes them as a YAML stream, a JSON List or a
// kustomize-ready directory.
package manifest

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"

	"sigs.k8s.io/yaml"
)

// Object is one Kubernetes object and the YAML document it came as.
type Object struct {
	APIVersion string
	Kind       string
	Namespace  string
	Name       string
	// YAML is the document's text, without a leading "---", ending in a newline.
	YAML []byte
	// Source names where the document came from (a template or file, and its index).
	Source string
}

// Group is the API group of the object ("" for the core group).
func (o Object) Group() string {
	if i := strings.IndexByte(o.APIVersion, '/'); i >= 0 {
		return o.APIVersion[:i]
	}
	return ""
}

// String is kind/name, with the namespace when there is one.
func (o Object) String() string {
	if o.Namespace != "" {
		return fmt.Sprintf("%s/%s/%s", o.Kind, o.Namespace, o.Name)
	}
	return fmt.Sprintf("%s/%s", o.Kind, o.Name)
}

type header struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"metadata"`
}

// SplitYAML splits a YAML stream into its documents, dropping those that hold only
// comments or white space, and reads each one's identity. source names the stream in
// errors; documents are numbered from 1 among all documents of the stream.
func SplitYAML(source string, data []byte) ([]Object, error) {
	var objs []Object
	err := eachYAML(source, nil, bufio.NewReader(bytes.NewReader(data)), func(d Doc) error {
		if d.Blank {
			return nil
		}
		var h header
		if err := yaml.Unmarshal(d.Raw, &h); err != nil {
			return fmt.Errorf("%s: %w", d, err)
		}
		if h.APIVersion == "" || h.Kind == "" {
			return fmt.Errorf("%s: apiVersion and kind are required", d)
		}
		if h.Metadata.Name == "" {
			return fmt.Errorf("%s (%s): metadata.name is required", d, h.Kind)
		}
		objs = append(objs, Object{
			APIVersion: h.APIVersion,
			Kind:       h.Kind,
			Namespace:  h.Metadata.Namespace,
			Name:       h.Metadata.Name,
			YAML:       trimDocument(d.Raw),
			Source:     fmt.Sprintf("%s (document %d)", source, d.Index),
		})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return objs, nil
}

// separator tells whether line is a document separator, and returns the content that
// follows it on the same line (empty for a bare separator or a comment).
func separator(line []byte) ([]byte, bool) {
	if !bytes.HasPrefix(line, []byte("---")) {
		return nil, false
	}
	rest := line[3:]
	trimmed := bytes.TrimLeft(rest, " \t")
	switch {
	case len(bytes.TrimRight(rest, " \t\r\n")) == 0:
		return nil, true
	case len(trimmed) == len(rest): // "---x": not a separator
		return nil, false
	case trimmed[0] == '#':
		return nil, true
	default:
		return trimmed, true
	}
}

func isBlank(doc []byte) bool {
	for _, line := range bytes.Split(doc, []byte("\n")) {
		t := bytes.TrimSpace(line)
		if len(t) > 0 && t[0] != '#' {
			return false
		}
	}
	return true
}

// trimDocument drops leading blank lines and trailing white space, and ends the
// document with exactly one newline.
func trimDocument(doc []byte) []byte {
	for {
		i := bytes.IndexByte(doc, '\n')
		if i < 0 || len(bytes.TrimSpace(doc[:i])) > 0 {
			break
		}
		doc = doc[i+1:]
	}
	out := bytes.TrimRight(doc, " \t\r\n")
	return append(append([]byte{}, out...), '\n')
}
