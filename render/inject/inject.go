// Package inject adds workloads to the mesh by editing their manifests: in annotation
// mode it marks pod templates (and, if asked, Namespaces) for the injector webhook.
// Documents are edited in place, so everything it does not change stays byte for byte.
// The injector webhook and `mesh inject` call this same code.
package inject

import (
	"fmt"
	"sort"
	"strings"

	yaml "go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	clientscheme "k8s.io/client-go/kubernetes/scheme"
)

// Annotations mesh reads.
const (
	InjectAnnotation = "meshplane.io/inject"
	Enabled          = "enabled"
	Disabled         = "disabled"
	ConfigPrefix     = "config.meshplane.io/"
)

// Options of an inject run.
type Options struct {
	// Namespaces also marks Namespace objects, so every pod created in them is injected.
	Namespaces bool
	// Config are config.meshplane.io/* annotations set on every injected pod template.
	Config map[string]string
	// Manual, when set, writes the proxy into the pod spec instead of only annotating.
	Manual *Manual
	// Uninject removes what inject (either mode) added, instead of injecting.
	Uninject bool
}

// Result is what happened to one object.
type Result struct {
	Doc        int // the document's place in the input, from 0
	Kind, Name string
	Changed    bool
	Action     string   // "injected", "updated", "uninjected", "unchanged", "skipped"
	Reason     string   // why skipped or unchanged; what changed, when updated
	Warnings   []string // worth telling the user
}

func (r Result) String() string {
	s := strings.ToLower(r.Kind) + "/" + r.Name + " " + r.Action
	if r.Reason != "" {
		s += " (" + r.Reason + ")"
	}
	return s
}

// podTemplatePath is where each workload kind keeps its pod template's metadata and spec.
var podTemplatePath = map[string][]string{
	"Deployment":            {"spec", "template"},
	"StatefulSet":           {"spec", "template"},
	"DaemonSet":             {"spec", "template"},
	"ReplicaSet":            {"spec", "template"},
	"ReplicationController": {"spec", "template"},
	"Job":                   {"spec", "template"},
	"CronJob":               {"spec", "jobTemplate", "spec", "template"},
	"Pod":                   {},
}

// Injector injects documents. It is safe for concurrent use.
type Injector struct {
	cache   itemCache
	opts    Options
	decoder runtime.Decoder
	scheme  *runtime.Scheme
}

// New returns an Injector. Config keys must start with config.meshplane.io/.
func New(opts Options) (*Injector, error) {
	for k := range opts.Config {
		if !strings.HasPrefix(k, ConfigPrefix) {
			return nil, fmt.Errorf("config annotation %q does not start with %s", k, ConfigPrefix)
		}
	}
	sch := clientscheme.Scheme
	return &Injector{
		opts:    opts,
		scheme:  sch,
		decoder: kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, sch, sch, kjson.SerializerOptions{Yaml: true, Strict: true}),
	}, nil
}

// YAML injects one YAML document and returns its new bytes (the same slice if nothing
// changed) and a result per object (several for a List).
func (in *Injector) YAML(src []byte) ([]byte, []Result, error) { return in.doc(src, false) }

// JSON injects one JSON document, editing its text as YAML does: the output is the
// input with the new keys spliced in, so its layout stays.
func (in *Injector) JSON(src []byte) ([]byte, []Result, error) { return in.doc(src, true) }

func (in *Injector) doc(src []byte, isJSON bool) ([]byte, []Result, error) {
	out, results, err := in.pass(src, isJSON)
	if err != nil {
		return nil, nil, err
	}
	stale := false
	for _, r := range results {
		stale = stale || r.Action == "stale"
	}
	if stale {
		// Mesh's old containers and volumes are gone from out: write the current ones.
		again, second, err := in.pass(out, isJSON)
		if err != nil {
			return nil, nil, err
		}
		if len(second) != len(results) {
			return nil, nil, fmt.Errorf("internal error: re-inject found %d objects, not %d", len(second), len(results))
		}
		for i, r := range results {
			if r.Action == "stale" {
				if second[i].Action != "injected" {
					return nil, nil, fmt.Errorf("%s/%s: cannot update the proxy in place", r.Kind, r.Name)
				}
				results[i].Action = "updated"
			}
		}
		out = again
	}
	return out, results, nil
}

// pass edits the document once.
func (in *Injector) pass(src []byte, isJSON bool) ([]byte, []Result, error) {
	d, err := parseYAMLDoc(src)
	if err != nil {
		return nil, nil, err
	}
	d.json = isJSON
	d.cache = &in.cache
	if d.root == nil || d.root.Kind != yaml.MappingNode {
		return nil, nil, fmt.Errorf("not a Kubernetes object (the document is not a mapping)")
	}
	results, err := in.object(d, d.root, src, "")
	if err != nil {
		return nil, nil, err
	}
	out, err := d.bytes()
	if err != nil {
		return nil, nil, err
	}
	if len(d.edits) > 0 {
		// A last guard: what was written must still be one mapping.
		var n yaml.Node
		if err := yaml.Unmarshal(out, &n); err != nil || n.Kind != yaml.DocumentNode || len(n.Content) != 1 || n.Content[0].Kind != yaml.MappingNode {
			return nil, nil, fmt.Errorf("internal error: the edited document does not parse (%v); please report it", err)
		}
	}
	return out, results, nil
}

func scalar(n *yaml.Node, path ...string) string {
	if v := at(n, path...); v != nil && v.Kind == yaml.ScalarNode {
		return v.Value
	}
	return ""
}

// object injects one object node; where is "" for a top-level object, or "items[i]: ".
func (in *Injector) object(d *yamlDoc, obj *yaml.Node, src []byte, where string) ([]Result, error) {
	apiVersion, kind, name := scalar(obj, "apiVersion"), scalar(obj, "kind"), scalar(obj, "metadata", "name")
	if kind == "" || apiVersion == "" {
		return nil, fmt.Errorf("%sapiVersion and kind are required", where)
	}
	if name == "" {
		name = scalar(obj, "metadata", "generateName")
	}
	if items := at(obj, "items"); strings.HasSuffix(kind, "List") && items != nil && items.Kind == yaml.SequenceNode {
		var all []Result
		for i, item := range items.Content {
			if isNull(item) {
				continue // kubectl and other tools write null items: pass them on
			}
			if item.Kind != yaml.MappingNode {
				return nil, fmt.Errorf("%sitems[%d]: not an object", where, i)
			}
			rs, err := in.object(d, item, nil, fmt.Sprintf("%sitems[%d]: ", where, i))
			if err != nil {
				return nil, err
			}
			all = append(all, rs...)
		}
		return all, nil
	}
	res := Result{Kind: kind, Name: name}
	if err := in.strictCheck(obj, src, apiVersion, kind); err != nil {
		return nil, fmt.Errorf("%s%s/%s: %w", where, kind, name, err)
	}
	if kind == "Namespace" {
		if !in.opts.Namespaces {
			res.Action, res.Reason = "skipped", "pass --namespaces to mesh every pod in it"
			if in.opts.Uninject {
				res.Reason = "pass --namespaces to include Namespaces"
			}
			return []Result{res}, nil
		}
		if in.opts.Uninject {
			r, err := in.uninject(d, obj, res)
			if err != nil {
				return nil, fmt.Errorf("%s%s/%s: %w", where, kind, name, err)
			}
			return []Result{r}, nil
		}
		return []Result{in.annotate(d, obj, res)}, nil
	}
	tp, ok := podTemplatePath[kind]
	if !ok || !isBuiltinGroup(apiVersion) {
		res.Action = "skipped"
		return []Result{res}, nil
	}
	tmpl := obj
	if len(tp) > 0 {
		if tmpl = at(obj, tp...); tmpl == nil {
			return nil, fmt.Errorf("%s%s/%s: %s is missing", where, kind, name, strings.Join(tp, "."))
		}
	}
	if in.opts.Uninject {
		r, err := in.uninject(d, tmpl, res)
		if err != nil {
			return nil, fmt.Errorf("%s%s/%s: %w", where, kind, name, err)
		}
		return []Result{r}, nil
	}
	if reason, warn := refusal(obj, tmpl); reason != "" {
		res.Action, res.Reason = "skipped", reason
		if warn {
			res.Warnings = append(res.Warnings, fmt.Sprintf("%s/%s not injected: %s", strings.ToLower(kind), name, reason))
		}
		return []Result{res}, nil
	}
	res.Warnings = append(res.Warnings, podWarnings(strings.ToLower(kind)+"/"+name, at(tmpl, "spec"))...)
	if in.opts.Manual != nil {
		r, err := in.manual(d, tmpl, res)
		if err != nil {
			return nil, fmt.Errorf("%s%s/%s: %w", where, kind, name, err)
		}
		return []Result{r}, nil
	}
	return []Result{in.annotate(d, tmpl, res)}, nil
}

// annotate sets the inject and config annotations on the metadata under node (the
// pod template, or the object itself).
func (in *Injector) annotate(d *yamlDoc, node *yaml.Node, res Result) Result {
	changed, err := d.setStrings(node, []string{"metadata", "annotations"}, in.annotations(kv{InjectAnnotation, Enabled}))
	switch {
	case err != nil:
		res.Action, res.Reason = "skipped", err.Error()
		res.Warnings = append(res.Warnings, fmt.Sprintf("%s/%s not injected: %v", strings.ToLower(res.Kind), res.Name, err))
	case changed:
		res.Changed, res.Action = true, "injected"
	default:
		res.Action, res.Reason = "unchanged", "already injected"
	}
	return res
}

// annotations are first, then the config annotations in key order.
func (in *Injector) annotations(first ...kv) []kv {
	keys := make([]string, 0, len(in.opts.Config))
	for k := range in.opts.Config {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		first = append(first, kv{k, in.opts.Config[k]})
	}
	return first
}

func isBuiltinGroup(apiVersion string) bool {
	gv, err := schema.ParseGroupVersion(apiVersion)
	if err != nil {
		return false
	}
	switch gv.Group {
	case "", "apps", "batch", "extensions":
		return true
	}
	return false
}

// refusal says why a pod template must not be injected, and whether to warn about it.
func refusal(obj, tmpl *yaml.Node) (string, bool) {
	for _, n := range []*yaml.Node{obj, tmpl} {
		if scalar(n, "metadata", "annotations", InjectAnnotation) == Disabled {
			return InjectAnnotation + ": disabled", true
		}
	}
	spec := at(tmpl, "spec")
	if scalar(spec, "hostNetwork") == "true" {
		return "it uses hostNetwork: true", true
	}
	for _, c := range containerNodes(spec) {
		switch scalar(c, "name") {
		case "linkerd-proxy":
			return "it already has Linkerd's proxy", true
		case "istio-proxy":
			return "it already has Istio's proxy", true
		}
	}
	return "", false
}

// containerNodes lists a pod spec's containers, then its init containers.
func containerNodes(spec *yaml.Node) []*yaml.Node {
	var out []*yaml.Node
	for _, list := range []string{"containers", "initContainers"} {
		if cs := at(spec, list); cs != nil && cs.Kind == yaml.SequenceNode {
			out = append(out, cs.Content...)
		}
	}
	return out
}

// eachPort calls fn for every port of every container of a pod spec.
func eachPort(spec *yaml.Node, fn func(container, port *yaml.Node)) {
	for _, c := range containerNodes(spec) {
		if ports := at(c, "ports"); ports != nil && ports.Kind == yaml.SequenceNode {
			for _, p := range ports.Content {
				fn(c, p)
			}
		}
	}
}

// podWarnings are things that work badly in the mesh but do not stop injection.
func podWarnings(who string, spec *yaml.Node) []string {
	var w []string
	if scalar(spec, "automountServiceAccountToken") == "false" {
		w = append(w, who+": automountServiceAccountToken is false; the proxy mounts its own projected token for identity")
	}
	eachPort(spec, func(c, p *yaml.Node) {
		if scalar(p, "protocol") == "UDP" {
			w = append(w, fmt.Sprintf("%s: container %s port %s is UDP, which the proxy does not carry", who, scalar(c, "name"), scalar(p, "containerPort")))
		}
	})
	return w
}

// strictCheck decodes built-in kinds strictly: unknown or mistyped fields are errors.
// Kinds the scheme does not know (CRDs) pass through unchecked.
func (in *Injector) strictCheck(obj *yaml.Node, src []byte, apiVersion, kind string) error {
	gv, err := schema.ParseGroupVersion(apiVersion)
	if err != nil {
		return fmt.Errorf("apiVersion %q: %w", apiVersion, err)
	}
	if !in.scheme.Recognizes(gv.WithKind(kind)) {
		return nil
	}
	if src == nil { // a List item: encode the node on its own
		if src, err = yaml.Marshal(spelledNulls(obj)); err != nil {
			return err
		}
	}
	if _, _, err := in.decoder.Decode(src, nil, nil); err != nil {
		return err
	}
	return nil
}

// spelledNulls is a copy of n whose nulls written as nothing are spelled "null":
// yaml.v3 encodes an empty null inside a flow mapping as an empty quoted string.
// Aliases are not followed; the nodes they refer to are copied where they stand.
func spelledNulls(n *yaml.Node) *yaml.Node {
	if n.Kind == yaml.AliasNode {
		return n
	}
	c := *n
	if isNull(n) && n.Value == "" {
		c.Value = "null"
	}
	if len(n.Content) > 0 {
		c.Content = make([]*yaml.Node, len(n.Content))
		for i, k := range n.Content {
			c.Content[i] = spelledNulls(k)
		}
	}
	return &c
}
