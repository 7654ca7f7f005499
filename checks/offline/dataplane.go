package offline

import (
	"context"
	"fmt"
	"sort"

	"github.com/meshplane/mesh/checks"
	"github.com/meshplane/mesh/render/inject"
)

func dataPlaneChecks(s *Set) []checks.Check {
	const cat = "data-plane"
	return []checks.Check{
		check("data-plane.annotations", cat, "mesh annotations are known and valid", checks.Error, func(context.Context) error {
			return s.findings["data-plane.annotations"].err()
		}),
		check("data-plane.proxy-version", cat, "injected workloads run the control plane's proxy version", checks.Error, func(context.Context) error {
			if len(s.injected) == 0 {
				return checks.Skip("no workload with the proxy in these manifests")
			}
			want, from := s.controlPlaneVersion(), "the control plane in these manifests"
			if want == "" {
				want, from = s.opts.CLIVersion, "this CLI"
			}
			var p problems
			for _, w := range s.injected {
				if w.version != want {
					p = append(p, fmt.Sprintf("%s runs proxy %s, %s is %s", w.object, w.version, from, want))
				}
			}
			return p.err()
		}),
	}
}

// annotationFindings: mesh annotations of an object and its pod template are known
// keys with valid values.
func annotationFindings(_ *Set, o Object) []string {
	sources := map[string]map[string]any{"metadata": nil}
	sources["metadata"], _ = get(o.Body, "metadata", "annotations").(map[string]any)
	if t := podTemplate(o); t != nil && o.Kind != "Pod" {
		sources["pod template"], _ = get(t, "metadata", "annotations").(map[string]any)
	}
	var p []string
	for where, ann := range sources {
		keys := make([]string, 0, len(ann))
		for k := range ann {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			v, _ := ann[k].(string)
			if err := inject.CheckAnnotation(k, v); err != nil {
				p = append(p, fmt.Sprintf("%s %s: %v", o, where, err))
			}
		}
	}
	sort.Strings(p)
	return p
}

// proxyVersionFindings records the proxy version of each injected workload; the check
// compares them with the control plane's once every object is read.
func proxyVersionFindings(s *Set, o Object) []string {
	t := podTemplate(o)
	spec, _ := get(t, "spec").(map[string]any)
	for _, c := range containers(spec) {
		if c["name"] != inject.ProxyContainer {
			continue
		}
		got := str(t, "metadata", "annotations", inject.ProxyVersion)
		if got == "" {
			image, _ := c["image"].(string)
			got = inject.ImageTag(image)
		}
		s.injected = append(s.injected, injectedWorkload{object: o.String(), version: got})
	}
	return nil
}
