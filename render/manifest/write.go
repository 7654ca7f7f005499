package manifest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"

	"sigs.k8s.io/yaml"
)

// WriteYAML writes the objects as one YAML stream, documents separated by "---".
func WriteYAML(w io.Writer, objs []Object) error {
	var buf bytes.Buffer
	for _, o := range objs {
		buf.WriteString("---\n")
		buf.Write(o.YAML)
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// JSON converts the object's document to JSON.
func (o Object) JSON() ([]byte, error) {
	j, err := yaml.YAMLToJSON(o.YAML)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o.Source, err)
	}
	return j, nil
}

// WriteJSONList writes the objects as one indented JSON document of kind v1 List.
func WriteJSONList(w io.Writer, objs []Object) error {
	items := make([]json.RawMessage, 0, len(objs))
	for _, o := range objs {
		j, err := o.JSON()
		if err != nil {
			return err
		}
		items = append(items, j)
	}
	list := struct {
		APIVersion string            `json:"apiVersion"`
		Kind       string            `json:"kind"`
		Items      []json.RawMessage `json:"items"`
	}{"v1", "List", items}
	b, err := json.MarshalIndent(list, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding List: %w", err)
	}
	_, err = w.Write(append(b, '\n'))
	return err
}
