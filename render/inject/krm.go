package inject

import (
	"bytes"
	"fmt"
	"io"

	"sigs.k8s.io/kustomize/kyaml/fn/framework"
	"sigs.k8s.io/kustomize/kyaml/kio"
	kyaml "sigs.k8s.io/kustomize/kyaml/yaml"
)

// KRM runs as a KRM function (kustomize, kpt, Argo CD and Flux pipelines): it reads a
// ResourceList from r, injects (or uninjects) every item with the same code as the
// CLI, and writes the ResourceList to w, warnings as results. configure builds the
// Injector from the functionConfig's settings: the data of a ConfigMap, or the spec
// of any other kind, as strings. On an error nothing is written.
func KRM(r io.Reader, w io.Writer, configure func(settings map[string]string) (*Injector, error)) error {
	p := framework.ResourceListProcessorFunc(func(rl *framework.ResourceList) error {
		settings, err := functionSettings(rl.FunctionConfig)
		if err != nil {
			return err
		}
		in, err := configure(settings)
		if err != nil {
			return fmt.Errorf("functionConfig: %w", err)
		}
		for i, item := range rl.Items {
			src, err := item.String()
			if err != nil {
				return fmt.Errorf("items[%d]: %w", i, err)
			}
			out, results, err := in.YAML([]byte(src))
			if err != nil {
				return fmt.Errorf("items[%d]: %w", i, err)
			}
			if len(out) != len(src) || string(out) != src {
				node, err := kyaml.Parse(string(out))
				if err != nil {
					return fmt.Errorf("items[%d]: %w", i, err)
				}
				rl.Items[i] = node
			}
			for _, res := range results {
				for _, warn := range res.Warnings {
					rl.Results = append(rl.Results, &framework.Result{
						Message:     warn,
						Severity:    framework.Warning,
						ResourceRef: &kyaml.ResourceIdentifier{TypeMeta: kyaml.TypeMeta{APIVersion: item.GetApiVersion(), Kind: res.Kind}, NameMeta: kyaml.NameMeta{Name: res.Name, Namespace: item.GetNamespace()}},
					})
				}
			}
		}
		return nil
	})
	var out bytes.Buffer
	if err := framework.Execute(p, &kio.ByteReadWriter{Reader: r, Writer: &out}); err != nil {
		return err
	}
	_, err := w.Write(out.Bytes())
	return err
}

// functionSettings reads a functionConfig's data (ConfigMap) or spec as strings.
func functionSettings(fc *kyaml.RNode) (map[string]string, error) {
	out := map[string]string{}
	if fc == nil || fc.IsNilOrEmpty() {
		return out, nil
	}
	field := "spec"
	if fc.GetKind() == "ConfigMap" {
		field = "data"
	}
	m := fc.Field(field)
	if m == nil || m.Value == nil || m.Value.IsNilOrEmpty() {
		return out, nil
	}
	err := m.Value.VisitFields(func(n *kyaml.MapNode) error {
		if n.Value.YNode().Kind != kyaml.ScalarNode {
			return fmt.Errorf("functionConfig %s.%s: want a string", field, n.Key.YNode().Value)
		}
		out[n.Key.YNode().Value] = n.Value.YNode().Value
		return nil
	})
	return out, err
}
