// Package offline is `mesh check -f`: checks of manifests a user is about to commit,
// with no cluster. Each category of checks is in its own file; Suite assembles them.
package offline

import (
	"context"
	"fmt"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/meshplane/mesh/checks/schema"
	"github.com/meshplane/mesh/render/manifest"
)

// Object is one object of the manifests, parsed.
type Object struct {
	manifest.Object
	Doc   manifest.Doc
	Index int // place in the input, from 0
	Body  map[string]any
}

// Set is what the checks know of the manifests after one pass over them: the
// findings of the checks that judge one object at a time, and the few objects the
// checks across objects need (the control plane, CRDs, webhooks, the identity
// ConfigMaps and Secret, the names of Services, and mesh-* Services and the injector
// Deployment trimmed to their ports, selectors and labels). Memory grows with the largest document, not with
// the input: a stream of any length is read one document at a time.
type Set struct {
	// Objects are the objects kept for the checks across objects, in input order.
	Objects []Object
	// Count is the number of objects read.
	Count int

	opts     Options
	schema   *schema.Validator
	meshCRDs map[crdKey]map[string]any
	crds     map[crdKey]Object // CRDs read so far
	findings map[string]problems
	pending  map[crdKey][]string // custom resources read before any CRD of theirs
	injected []injectedWorkload
	services map[string]bool // NAMESPACE/NAME of every Service
}

// injectedWorkload is a workload with the proxy, and the proxy version it runs.
type injectedWorkload struct {
	object, version string
}

// Findings returns what the per-object check id found, in input order, one finding
// per problem: "FILE: document N: KIND/NAMESPACE/NAME: FIELD: MESSAGE".
func (s *Set) Findings(id string) []string { return s.findings[id] }

// Load reads every object of the inputs (List kinds expanded) once, one document at a
// time, and runs the checks that judge one object on each. A document that does not
// parse is an error naming it: the command then cannot run.
func Load(ctx context.Context, in manifest.Inputs, env manifest.Env, opts Options) (*Set, error) {
	v, err := schema.New(opts.KubernetesVersion)
	if err != nil {
		return nil, err
	}
	builtin, err := meshCRDs(opts.CLIVersion)
	if err != nil {
		return nil, err
	}
	s := &Set{opts: opts, schema: v, meshCRDs: builtin, crds: map[crdKey]Object{}, findings: map[string]problems{}, pending: map[crdKey][]string{}, services: map[string]bool{}}
	checkers := objectCheckers()
	err = in.Each(ctx, env, func(d manifest.Doc) error {
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
				if it == nil {
					continue // kubectl and other tools emit null items; kubectl skips them too
				}
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
			o := Object{Doc: d, Index: s.Count, Body: m}
			o.APIVersion, _ = m["apiVersion"].(string)
			o.Kind, _ = m["kind"].(string)
			o.Name = str(m, "metadata", "name")
			o.Namespace = str(m, "metadata", "namespace")
			o.Source = d.String()
			s.Count++
			for _, c := range checkers {
				s.findings[c.id] = append(s.findings[c.id], c.run(s, o)...)
			}
			s.keep(o)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// keep holds on to o if a check across objects needs it, trimmed to what it needs.
func (s *Set) keep(o Object) {
	if o.Kind == "Service" {
		s.services[o.Namespace+"/"+o.Name] = true
	}
	isCP := str(o.Body, "metadata", "labels", "app.kubernetes.io/part-of") == "mesh"
	switch {
	case isCP, o.Kind == "CustomResourceDefinition", o.Kind == "MutatingWebhookConfiguration",
		o.Kind == "ConfigMap" && (o.Name == "mesh-config" || o.Name == "mesh-identity-trust-roots"),
		o.Kind == "Secret" && o.Name == "mesh-identity-issuer":
	case o.Kind == "Service" && strings.HasPrefix(o.Name, "mesh-"):
		o.Body = trim(o.Body, []string{"spec", "ports"}, []string{"spec", "selector"})
	case o.Kind == "Deployment" && o.Name == "mesh-injector":
		o.Body = trim(o.Body, []string{"spec", "template", "metadata", "labels"})
	default:
		return
	}
	o.Doc.Raw = nil
	s.Objects = append(s.Objects, o)
}

// trim keeps an object's apiVersion, kind, metadata and the fields at paths.
func trim(body map[string]any, paths ...[]string) map[string]any {
	out := map[string]any{"apiVersion": body["apiVersion"], "kind": body["kind"], "metadata": body["metadata"]}
	for _, p := range paths {
		if v := get(body, p...); v != nil {
			setPath(out, p, v)
		}
	}
	return out
}

func setPath(m map[string]any, path []string, v any) {
	for _, k := range path[:len(path)-1] {
		next, ok := m[k].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[k] = next
		}
		m = next
	}
	m[path[len(path)-1]] = v
}

// Find returns the kept objects of a kind (and name, if not empty).
func (s *Set) Find(kind, name string) []Object {
	var out []Object
	for _, o := range s.Objects {
		if o.Kind == kind && (name == "" || o.Name == name) {
			out = append(out, o)
		}
	}
	return out
}

// objectChecker is the part of a check that judges one object.
type objectChecker struct {
	id  string
	run func(*Set, Object) []string
}

// objectCheckers are the per-object parts of the checks, in the order they run.
func objectCheckers() []objectChecker {
	return []objectChecker{
		{"kubernetes.schema", schemaFindings},
		{"kubernetes.api-rules", apiRuleFindings},
		{"kubernetes.crds-first", crdOrderFindings},
		{"control-plane.images-pinned", imageFindings},
		{"identity.no-private-keys", privateKeyFindings},
		{"data-plane.annotations", annotationFindings},
		{"data-plane.proxy-version", proxyVersionFindings},
	}
}

// describe names an object in a finding: where it is, and its kind, namespace and name.
func describe(o Object) string {
	kind := o.Kind
	if kind == "" {
		kind = "(no kind)"
	}
	name := o.Name
	if name == "" {
		name = "(no name)"
	}
	if o.Namespace != "" {
		return fmt.Sprintf("%s: %s/%s/%s", o.Source, kind, o.Namespace, name)
	}
	return fmt.Sprintf("%s: %s/%s", o.Source, kind, name)
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
