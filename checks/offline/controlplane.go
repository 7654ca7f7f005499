package offline

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/meshplane/mesh/checks"
	"github.com/meshplane/mesh/render/inject"
)

const hintBase = "https://meshplane.io/docs/checks#"

func check(id, category, desc string, sev checks.Severity, run func(context.Context) error, deps ...string) checks.Check {
	return checks.Check{ID: id, Category: category, Description: desc, Hint: hintBase + id, Severity: sev, DependsOn: deps, Run: run}
}

// controlPlane returns the objects of mesh's control plane, found by their labels and names.
func (s *Set) controlPlane() []Object {
	var out []Object
	for _, o := range s.Objects {
		if str(o.Body, "metadata", "labels", "app.kubernetes.io/part-of") == "mesh" && o.Kind != "CustomResourceDefinition" {
			out = append(out, o)
		}
	}
	return out
}

// controlPlaneVersion is the version the control plane's objects carry ("" if none).
func (s *Set) controlPlaneVersion() string {
	for _, o := range s.controlPlane() {
		if o.Kind == "Deployment" {
			if v := str(o.Body, "metadata", "labels", "app.kubernetes.io/version"); v != "" {
				return v
			}
		}
	}
	return ""
}

func controlPlaneChecks(s *Set) []checks.Check {
	const cat = "control-plane"
	noCP := func() error {
		if len(s.controlPlane()) == 0 {
			return checks.Skip("no mesh control plane in these manifests")
		}
		return nil
	}
	return []checks.Check{
		check("control-plane.complete", cat, "the control plane is complete", checks.Error, func(context.Context) error {
			if err := noCP(); err != nil {
				return err
			}
			var missing problems
			need := map[string][]string{"MutatingWebhookConfiguration": {"mesh-proxy-injector"}, "ConfigMap": {"mesh-config"}}
			for _, c := range []string{"identity", "destination", "injector"} {
				for _, kind := range []string{"Deployment", "Service", "ServiceAccount"} {
					need[kind] = append(need[kind], "mesh-"+c)
				}
			}
			kinds := make([]string, 0, len(need))
			for k := range need {
				kinds = append(kinds, k)
			}
			sort.Strings(kinds)
			ns := "" // the control plane's namespace, as its objects say
			for _, o := range s.controlPlane() {
				if o.Namespace != "" {
					ns = o.Namespace
					break
				}
			}
			for _, kind := range kinds {
				for _, name := range need[kind] {
					if len(s.Find(kind, name)) == 0 {
						objNS := ns
						if kind == "MutatingWebhookConfiguration" {
							objNS = "" // cluster-scoped
						}
						missing = append(missing, checks.ObjectName(kind, objNS, name)+" is missing")
					}
				}
			}
			return missing.err()
		}),
		check("control-plane.one-version", cat, "every control-plane object is of one version", checks.Error, func(context.Context) error {
			if err := noCP(); err != nil {
				return err
			}
			versions := map[string][]string{}
			for _, o := range s.controlPlane() {
				if v := str(o.Body, "metadata", "labels", "app.kubernetes.io/version"); v != "" {
					versions[v] = append(versions[v], o.String())
				}
			}
			if len(versions) <= 1 {
				return nil
			}
			var p problems
			for v, objs := range versions {
				p = append(p, fmt.Sprintf("%s: %s", v, strings.Join(objs, ", ")))
			}
			sort.Strings(p)
			return fmt.Errorf("versions differ: %s", strings.Join(p, "; "))
		}, "control-plane.complete"),
		check("control-plane.images-pinned", cat, "mesh images are pinned to a version", checks.Error, func(context.Context) error {
			return s.findings["control-plane.images-pinned"].err()
		}),
		check("control-plane.webhook", cat, "the injector webhook points at the injector Service", checks.Error, func(context.Context) error {
			hooks := s.Find("MutatingWebhookConfiguration", "mesh-proxy-injector")
			if len(hooks) == 0 {
				return checks.Skip("no mesh-proxy-injector webhook in these manifests")
			}
			var p problems
			whs, _ := get(hooks[0].Body, "webhooks").([]any)
			if len(whs) == 0 {
				return fmt.Errorf("the webhook configuration has no webhooks")
			}
			for _, w := range whs {
				wm, _ := w.(map[string]any)
				svc, _ := get(wm, "clientConfig", "service").(map[string]any)
				if svc == nil {
					p = append(p, fmt.Sprintf("webhook %s has no clientConfig.service", str(wm, "name")))
					continue
				}
				name, ns := str(svc, "name"), str(svc, "namespace")
				port := 443
				if v, ok := svc["port"].(float64); ok {
					port = int(v)
				}
				var found *Object
				for _, o := range s.Find("Service", name) {
					if o.Namespace == ns {
						found = &o
						break
					}
				}
				if found == nil && s.services[ns+"/"+name] {
					continue // a Service of the user's, not mesh's: its ports are not kept
				}
				if found == nil {
					p = append(p, fmt.Sprintf("webhook %s calls %s, which is not in these manifests", str(wm, "name"), checks.ObjectName("Service", ns, name)))
					continue
				}
				ok := false
				ports, _ := get(found.Body, "spec", "ports").([]any)
				for _, sp := range ports {
					if v, _ := get(sp.(map[string]any), "port").(float64); int(v) == port {
						ok = true
					}
				}
				if !ok {
					p = append(p, fmt.Sprintf("webhook %s calls port %d, which %s does not have", str(wm, "name"), port, checks.ObjectName("Service", ns, name)))
				}
				if sel, _ := get(found.Body, "spec", "selector").(map[string]any); len(sel) == 0 || !selects(s, ns, sel, "mesh-injector") {
					p = append(p, fmt.Sprintf("%s does not select the mesh-injector pods", checks.ObjectName("Service", ns, name)))
				}
			}
			return p.err()
		}),
	}
}

// selects tells whether the selector matches the pod template labels of Deployment name.
func selects(s *Set, ns string, sel map[string]any, name string) bool {
	for _, d := range s.Find("Deployment", name) {
		if d.Namespace != ns {
			continue
		}
		labels, _ := get(d.Body, "spec", "template", "metadata", "labels").(map[string]any)
		all := true
		for k, v := range sel {
			if labels[k] != v {
				all = false
			}
		}
		if all {
			return true
		}
	}
	return false
}

// pinned: a digest, or a tag that is not "latest".
func pinned(image string) bool {
	if strings.Contains(image, "@sha256:") {
		return true
	}
	tag := inject.ImageTag(image)
	return tag != "" && tag != "latest"
}

// imageFindings: the control plane's containers and an injected proxy run pinned images.
func imageFindings(_ *Set, o Object) []string {
	t := podTemplate(o)
	spec, _ := get(t, "spec").(map[string]any)
	isCP := str(o.Body, "metadata", "labels", "app.kubernetes.io/part-of") == "mesh"
	var p []string
	for _, c := range containers(spec) {
		name, _ := c["name"].(string)
		image, _ := c["image"].(string)
		if !isCP && name != "mesh-proxy" && name != "mesh-init" {
			continue
		}
		if !pinned(image) {
			p = append(p, fmt.Sprintf("%s container %s: image %q has no version tag or digest", o, name, image))
		}
	}
	return p
}
