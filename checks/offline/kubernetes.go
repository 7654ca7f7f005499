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
		if o.Kind != "CustomResourceDefinition" {
			continue // the ApplySet's parent
		}
		var m map[string]any
		if err := yaml.Unmarshal(o.YAML, &m); err != nil {
			return nil, err
		}
		out[crdKeyOf(m)] = m
	}
	return out, nil
}

// schemaFindings checks an object against the schemas of its kind: the Kubernetes
// version's for built-in kinds, its CRD's for custom resources (a CRD earlier in the
// manifests, else mesh's own). Custom resources of CRDs not seen yet are not judged.
func schemaFindings(s *Set, o Object) []string {
	var errs []schema.FieldError
	var err error
	key := crdKey{groupOf(o.APIVersion), o.Kind}
	if crd, ok := s.crds[key]; ok {
		if errs, err = s.schema.ValidateCustom(crd.Body, o.Body); err != nil {
			return []string{fmt.Sprintf("%s: %v", crd.Source, err)}
		}
	} else if crd, ok := s.meshCRDs[key]; ok {
		if errs, err = s.schema.ValidateCustom(crd, o.Body); err != nil {
			return []string{err.Error()}
		}
	} else if o.APIVersion == "" || o.Kind == "" || s.schema.Known(o.APIVersion, o.Kind) {
		errs = s.schema.Validate(o.Body)
	} else {
		return nil // a custom resource of a CRD we do not have: not ours to judge
	}
	return fieldFindings(o, errs)
}

// apiRuleFindings checks a built-in object with the API server's own rules beyond the
// schema (schema.Validator.Semantic).
func apiRuleFindings(s *Set, o Object) []string {
	if o.APIVersion == "" || o.Kind == "" || !s.schema.Known(o.APIVersion, o.Kind) {
		return nil
	}
	return fieldFindings(o, s.schema.Semantic(o.Body))
}

func fieldFindings(o Object, errs []schema.FieldError) []string {
	out := make([]string, 0, len(errs))
	for _, e := range errs {
		out = append(out, fmt.Sprintf("%s: %s", describe(o), e))
	}
	return out
}

// crdOrderFindings records CRDs as they come, and finds custom resources that come
// before their CRD.
func crdOrderFindings(s *Set, o Object) []string {
	if o.Kind == "CustomResourceDefinition" {
		key := crdKeyOf(o.Body)
		if _, seen := s.crds[key]; !seen {
			s.crds[key] = o
		}
		var out []string
		for _, cr := range s.pending[key] {
			out = append(out, fmt.Sprintf("%s comes before its CRD %s (%s)", cr, o.Name, o.Source))
		}
		delete(s.pending, key)
		return out
	}
	key := crdKey{groupOf(o.APIVersion), o.Kind}
	if _, ok := s.crds[key]; ok || o.Kind == "" || s.schema.Known(o.APIVersion, o.Kind) {
		return nil
	}
	s.pending[key] = append(s.pending[key], fmt.Sprintf("%s (%s)", o, o.Source))
	return nil
}

func kubernetesChecks(s *Set) []checks.Check {
	const cat = "kubernetes"
	return []checks.Check{
		check("kubernetes.schema", cat, fmt.Sprintf("every object is valid for Kubernetes %s", s.schema.Version()), checks.Error, func(context.Context) error {
			return s.findings["kubernetes.schema"].err()
		}),
		check("kubernetes.api-rules", cat, "every built-in object passes the API server's validation rules", checks.Error, func(context.Context) error {
			return s.findings["kubernetes.api-rules"].err()
		}),
		check("kubernetes.crds-first", cat, "CRDs come before their custom resources", checks.Error, func(context.Context) error {
			return s.findings["kubernetes.crds-first"].err()
		}),
	}
}
