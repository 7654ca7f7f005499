package prune

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/meshplane/mesh/render/manifest"
)

// Read reads every object of the inputs (files, directories, URLs, standard input, a
// kustomization), with List kinds expanded, as mesh check -f reads them. A document
// that does not decode, or an object without apiVersion, kind or metadata.name, is an
// error naming its source and document.
func Read(ctx context.Context, in manifest.Inputs, env manifest.Env) ([]manifest.Object, error) {
	var objs []manifest.Object
	err := in.Each(ctx, env, func(d manifest.Doc) error {
		var body map[string]any
		if err := yaml.Unmarshal(d.Raw, &body); err != nil {
			return fmt.Errorf("%s: %w", d, err)
		}
		if body == nil {
			return nil // comments only
		}
		if k, _ := body["kind"].(string); strings.HasSuffix(k, "List") && body["items"] != nil {
			items, ok := body["items"].([]any)
			if !ok {
				return fmt.Errorf("%s: items is not a list", d)
			}
			for i, it := range items {
				if it == nil {
					continue // kubectl skips null items too
				}
				m, ok := it.(map[string]any)
				if !ok {
					return fmt.Errorf("%s: items[%d] is not an object", d, i)
				}
				o, err := object(m, fmt.Sprintf("%s, items[%d]", d, i))
				if err != nil {
					return err
				}
				objs = append(objs, o)
			}
			return nil
		}
		o, err := object(body, d.String())
		if err != nil {
			return err
		}
		objs = append(objs, o)
		return nil
	})
	return objs, err
}

func object(m map[string]any, source string) (manifest.Object, error) {
	str := func(v any) string { s, _ := v.(string); return s }
	meta, _ := m["metadata"].(map[string]any)
	o := manifest.Object{APIVersion: str(m["apiVersion"]), Kind: str(m["kind"]), Namespace: str(meta["namespace"]), Name: str(meta["name"]), Source: source}
	if o.APIVersion == "" || o.Kind == "" {
		return o, fmt.Errorf("%s: apiVersion and kind are required", source)
	}
	if o.Name == "" {
		return o, fmt.Errorf("%s (%s): metadata.name is required", source, o.Kind)
	}
	b, err := json.Marshal(m) // JSON is YAML: the object's document
	if err != nil {
		return o, fmt.Errorf("%s: %w", source, err)
	}
	o.YAML = append(b, '\n')
	return o, nil
}
