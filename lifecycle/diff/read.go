package diff

import (
	"context"
	"fmt"
	"strings"

	utiljson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/yaml"

	"github.com/meshplane/mesh/render/manifest"
)

// Object is one object to diff: its identity (for the order and the report) and its
// body, decoded as the API server's JSON is (integers are int64).
type Object struct {
	manifest.Object
	Body map[string]any
}

// Read reads every object of the inputs, as mesh check -f and mesh inject -f read them
// (files, directories, URLs, standard input, a kustomization), List kinds expanded. A
// document that does not decode, or an object without apiVersion, kind or
// metadata.name, is an error naming its source and document.
func Read(ctx context.Context, in manifest.Inputs, env manifest.Env) ([]Object, error) {
	var objs []Object
	err := in.Each(ctx, env, func(d manifest.Doc) error {
		body, err := decode(d.Raw)
		if err != nil {
			return fmt.Errorf("%s: %w", d, err)
		}
		if body == nil {
			return nil
		}
		items, index, isList := []map[string]any{body}, []int{0}, false
		if k, _ := body["kind"].(string); strings.HasSuffix(k, "List") && body["items"] != nil {
			list, ok := body["items"].([]any)
			if !ok {
				return fmt.Errorf("%s: items is not a list", d)
			}
			items, index, isList = nil, nil, true
			for i, it := range list {
				if it == nil {
					continue // kubectl skips null items too
				}
				m, ok := it.(map[string]any)
				if !ok {
					return fmt.Errorf("%s: items[%d] is not an object", d, i)
				}
				items, index = append(items, m), append(index, i)
			}
		}
		for i, m := range items {
			where := d.String()
			if isList {
				where = fmt.Sprintf("%s, items[%d]", d, index[i])
			}
			o, err := newObject(m, where)
			if err != nil {
				return err
			}
			objs = append(objs, o)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return objs, nil
}

// FromManifest decodes rendered objects (render/install's).
func FromManifest(in []manifest.Object) ([]Object, error) {
	objs := make([]Object, 0, len(in))
	for _, mo := range in {
		body, err := decode(mo.YAML)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", mo.Source, err)
		}
		o, err := newObject(body, mo.Source)
		if err != nil {
			return nil, err
		}
		objs = append(objs, o)
	}
	return objs, nil
}

// decode reads one YAML or JSON document; nil for an empty one.
func decode(raw []byte) (map[string]any, error) {
	j, err := yaml.YAMLToJSON(raw)
	if err != nil {
		return nil, err
	}
	var body map[string]any
	if err := utiljson.Unmarshal(j, &body); err != nil {
		return nil, fmt.Errorf("not a Kubernetes object: %w", err)
	}
	return body, nil
}

func newObject(body map[string]any, source string) (Object, error) {
	o := Object{Body: body}
	o.Source = source
	o.APIVersion, _ = body["apiVersion"].(string)
	o.Kind, _ = body["kind"].(string)
	md, _ := body["metadata"].(map[string]any)
	o.Name, _ = md["name"].(string)
	o.Namespace, _ = md["namespace"].(string)
	if o.APIVersion == "" || o.Kind == "" {
		return o, fmt.Errorf("%s: apiVersion and kind are required", source)
	}
	if o.Name == "" {
		return o, fmt.Errorf("%s (%s): metadata.name is required (generateName cannot be diffed)", source, o.Kind)
	}
	return o, nil
}
