package offline

import (
	"context"
	"fmt"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/meshplane/mesh/checks"
	"github.com/meshplane/mesh/checks/schema"
	"github.com/meshplane/mesh/render/install"
)

// crdKey is a custom resource's group and kind.
type crdKey struct{ group, kind string }

func crdKeyOf(crd map[string]any) crdKey {
	return crdKey{str(crd, "spec", "group"), str(crd, "spec", "names", "kind")}
}

func groupOf(apiVersion string) string {
	if i := strings.IndexByte(apiVersion, '/'); i >= 0 {
		return apiVersion[:i]
	}
	return ""
}

// meshCRDs are the CRDs this CLI installs, for custom resources whose CRD is not in
// the manifests.
func meshCRDs(version string) (map[crdKey]map[string]any, error) {
	res, err := install.Render(install.Options{Version: version, Part: install.CRDs}, nil)
	if err != nil {
		return nil, fmt.Errorf("mesh CRDs: %w", err)
	}
	out := map[crdKey]map[string]any{}
	for _, o := range res.Objects {
		var m map[string]any
		if err := yaml.Unmarshal(o.YAML, &m); err != nil {
			return nil, err
		}
		out[crdKeyOf(m)] = m
	}
	return out, nil
}

func kubernetesChecks(s *Set, opts Options) ([]checks.Check, error) {
	const cat = "kubernetes"
	v, err := schema.New(opts.KubernetesVersion)
	if err != nil {
		return nil, err
	}
	builtinCRDs, err := meshCRDs(opts.CLIVersion)
	if err != nil {
		return nil, err
	}
	crds := map[crdKey]Object{}
	for _, o := range s.Find("CustomResourceDefinition", "") {
		crds[crdKeyOf(o.Body)] = o
	}
	return []checks.Check{
		check("kubernetes.schema", cat, fmt.Sprintf("every object is valid for Kubernetes %s", v.Version()), checks.Error, func(context.Context) error {
			var p problems
			for _, o := range s.Objects {
				key := crdKey{groupOf(o.APIVersion), o.Kind}
				var errs []schema.FieldError
				if crd, ok := crds[key]; ok {
					if errs, err = v.ValidateCustom(crd.Body, o.Body); err != nil {
						return fmt.Errorf("%s: %w", crd.Source, err)
					}
				} else if crd, ok := builtinCRDs[key]; ok {
					if errs, err = v.ValidateCustom(crd, o.Body); err != nil {
						return err
					}
				} else if v.Known(o.APIVersion, o.Kind) {
					errs = v.Validate(o.Body)
				} else {
					continue // a custom resource of a CRD we do not have: not ours to judge
				}
				for _, e := range errs {
					p = append(p, fmt.Sprintf("%s: %s: %s", o.Source, o, e))
				}
			}
			return p.err()
		}),
		check("kubernetes.crds-first", cat, "CRDs come before their custom resources", checks.Error, func(context.Context) error {
			var p problems
			for _, o := range s.Objects {
				if crd, ok := crds[crdKey{groupOf(o.APIVersion), o.Kind}]; ok && crd.Index > o.Index {
					p = append(p, fmt.Sprintf("%s (%s) comes before its CRD %s (%s)", o, o.Source, crd.Name, crd.Source))
				}
			}
			return p.err()
		}),
	}, nil
}
