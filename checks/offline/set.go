// Package offline is `mesh check -f`: checks of manifests a user is about to commit,
// with no cluster. Each category of checks is in its own file; Suite assembles them.
package offline

import (
	"context"
	"fmt"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/meshplane/mesh/render/manifest"
)

// Object is one object of the manifests, parsed.
type Object struct {
	manifest.Object
	Doc   manifest.Doc
	Index int // place in the input, from 0
	Body  map[string]any
}

// Set is every object of the manifests, in input order.
type Set struct {
	Objects []Object
}

// Load reads every object of the inputs (List kinds expanded). A document that does
// not parse is an error naming it: the command then cannot run.
func Load(ctx context.Context, in manifest.Inputs, env manifest.Env) (*Set, error) {
	s := &Set{}
	err := in.Each(ctx, env, func(d manifest.Doc) error {
		var body map[string]any
		if err := yaml.Unmarshal(d.Raw, &body); err != nil {
			return fmt.Errorf("%s: %w", d, err)
		}
		if body == nil {
			return nil
		}
		var items []map[string]any
		if k, _ := body["kind"].(string); strings.HasSuffix(k, "List") && body["items"] != nil {
			list, ok := body["items"].([]any)
			if !ok {
				return fmt.Errorf("%s: items is not a list", d)
			}
			for i, it := range list {
				m, ok := it.(map[string]any)
				if !ok {
					return fmt.Errorf("%s: items[%d] is not an object", d, i)
				}
				items = append(items, m)
			}
		} else {
			items = []map[string]any{body}
		}
		for _, m := range items {
			o := Object{Doc: d, Index: len(s.Objects), Body: m}
			o.APIVersion, _ = m["apiVersion"].(string)
			o.Kind, _ = m["kind"].(string)
			o.Name = str(m, "metadata", "name")
			o.Namespace = str(m, "metadata", "namespace")
			o.Source = d.String()
			s.Objects = append(s.Objects, o)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Find returns the objects of a kind (and name, if not empty).
func (s *Set) Find(kind, name string) []Object {
	var out []Object
	for _, o := range s.Objects {
		if o.Kind == kind && (name == "" || o.Name == name) {
			out = append(out, o)
		}
	}
	return out
}

// Options of the offline suite.
type Options struct {
	KubernetesVersion string
	MinCertValidity   time.Duration
	Now               func() time.Time
	CLIVersion        string // the version this CLI installs; the control plane should match it
}

// get walks maps by keys.
func get(m map[string]any, path ...string) any {
	var cur any = m
	for _, k := range path {
		cm, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = cm[k]
	}
	return cur
}

func str(m map[string]any, path ...string) string {
	s, _ := get(m, path...).(string)
	return s
}

// podTemplate returns the pod template (metadata + spec) of a workload, or nil.
func podTemplate(o Object) map[string]any {
	var path []string
	switch o.Kind {
	case "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "ReplicationController", "Job":
		path = []string{"spec", "template"}
	case "CronJob":
		path = []string{"spec", "jobTemplate", "spec", "template"}
	case "Pod":
		return o.Body
	default:
		return nil
	}
	t, _ := get(o.Body, path...).(map[string]any)
	return t
}

// containers lists a pod spec's containers and init containers.
func containers(spec map[string]any) []map[string]any {
	var out []map[string]any
	for _, list := range []string{"initContainers", "containers"} {
		cs, _ := spec[list].([]any)
		for _, c := range cs {
			if m, ok := c.(map[string]any); ok {
				out = append(out, m)
			}
		}
	}
	return out
}

// problems joins several findings into one check error.
type problems []string

func (p problems) err() error {
	if len(p) == 0 {
		return nil
	}
	return fmt.Errorf("%s", strings.Join(p, "; "))
}
