// Package install renders mesh's CRDs and control plane from the embedded Helm charts
// into Kubernetes objects in apply order. Rendering is a pure function of the version,
// the options and the files they name: no clock, no randomness, no generated keys.
package install

import (
	"fmt"
	"sort"
	"strings"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"

	"github.com/meshplane/mesh/render/manifest"
	"github.com/meshplane/mesh/render/values"
	"github.com/meshplane/mesh/templates"
)

// Part selects what to render.
type Part string

const (
	All          Part = "all"
	CRDs         Part = "crds"
	ControlPlane Part = "control-plane"
)

// DefaultNamespace is where the control plane goes unless told otherwise.
const DefaultNamespace = "mesh-system"

// ReleaseName is the Helm release name the CLI renders as; `helm install mesh ...`
// with the same charts and values gives the same objects.
const ReleaseName = "mesh"

// Options are everything a render depends on besides the files they name.
type Options struct {
	Version string // the mesh version: the charts' appVersion and the image tag
	// Namespace is -n: the control plane's namespace, a DNS-1123 label. Empty means the
	// one the values record (`namespace`, as --print-values writes it), else
	// DefaultNamespace.
	Namespace string
	Part      Part
	HA        bool
	Values    values.Options

	Registry         string // --registry: image.registry
	ImageTag         string // --image-tag: image.tag
	TrustDomain      string // --identity-trust-domain
	IssuerMode       string // --identity-issuer: bootstrap, external or cert-manager
	TrustAnchorsFile string // --identity-trust-anchors-file
	IssuerCertFile   string // --identity-issuer-certificate-file
	IssuerKeyFile    string // --identity-issuer-key-file

	// ArgoCDSyncWaves (--argocd-sync-waves) gives every object the Argo CD sync wave
	// of its kind (SyncWave): CRDs, then configuration, workloads, webhooks.
	ArgoCDSyncWaves bool

	// WithoutApplySet renders no ApplySet: no parents, no part-of labels (what
	// `kubectl apply --prune --applyset` needs, as it labels the objects itself).
	WithoutApplySet bool

	// Moved is the table of renamed and removed values keys that sources are checked
	// against; nil means values.MovedKeys(), the chart's own (tests give their own).
	Moved []values.Moved
}

func (o Options) moved() []values.Moved {
	if o.Moved == nil {
		return values.MovedKeys()
	}
	return o.Moved
}

// Result is a render: the objects in apply order, the control plane's effective values,
// and warnings for the user (never part of the output).
type Result struct {
	Objects  []manifest.Object
	Values   map[string]any
	Warnings []string
	// Namespace is the control plane's: -n, else the one the values record, else
	// DefaultNamespace.
	Namespace string
}

// Render renders the selected part.
func Render(o Options, r values.Reader) (*Result, error) {
	if o.Part == "" {
		o.Part = All
	}
	if o.Part != All && o.Part != CRDs && o.Part != ControlPlane {
		return nil, fmt.Errorf("unknown part %q (want %s, %s or %s)", o.Part, All, CRDs, ControlPlane)
	}
	if o.Part == CRDs {
		if err := crdsTakeNoValues(o, r); err != nil {
			return nil, err
		}
		if o.Namespace == "" {
			o.Namespace = DefaultNamespace
		}
		if err := checkNamespace(o.Namespace); err != nil {
			return nil, err
		}
	}
	res := &Result{}
	var cp *chart.Chart
	var vals map[string]any
	if o.Part != CRDs {
		// First: the values settle the namespace, which the CRDs render with too.
		var err error
		if cp, vals, res.Warnings, err = controlPlaneValues(&o, r); err != nil {
			return nil, err
		}
	}
	if o.Part == All || o.Part == CRDs {
		ch, err := LoadChart(templates.CRDs, o.Version)
		if err != nil {
			return nil, err
		}
		objs, err := renderChart(ch, map[string]any{}, o.Namespace)
		if err != nil {
			return nil, err
		}
		if objs, err = withApplySet(o, CRDsApplySet(), crdKinds, objs); err != nil {
			return nil, err
		}
		res.Objects = append(res.Objects, objs...)
	}
	if o.Part == All || o.Part == ControlPlane {
		objs, err := renderChart(cp, vals, o.Namespace)
		if err != nil {
			return nil, err
		}
		if objs, err = withApplySet(o, ControlPlaneApplySet(o.Namespace), controlPlaneKindsFor(objs), objs); err != nil {
			return nil, err
		}
		res.Objects = append(res.Objects, objs...)
		if res.Values, err = chartutil.CoalesceValues(cp, vals); err != nil {
			return nil, fmt.Errorf("values: %w", err)
		}
	}
	if o.ArgoCDSyncWaves {
		var err error
		if res.Objects, err = withSyncWaves(res.Objects); err != nil {
			return nil, err
		}
	}
	manifest.Sort(res.Objects)
	res.Namespace = o.Namespace
	return res, nil
}

// EffectiveValues returns the control plane's values after every source and default,
// with `namespace` set to the control plane's namespace, so that values printed by
// `mesh install --print-values` say where the control plane is. The issuer's private
// key is among them if a source gave one: see WithoutPrivateKey.
func EffectiveValues(o Options, r values.Reader) (map[string]any, error) {
	ch, vals, _, err := controlPlaneValues(&o, r)
	if err != nil {
		return nil, err
	}
	v, err := chartutil.CoalesceValues(ch, vals)
	if err != nil {
		return nil, err
	}
	v["namespace"] = o.Namespace
	return v, nil
}

// PrivateKeyPath is the values key of the issuer's private key.
const PrivateKeyPath = "identity.issuer.tls.keyPEM"

// WithoutPrivateKey returns v without the issuer's private key, and whether it had
// one. v is not changed.
func WithoutPrivateKey(v map[string]any) (map[string]any, bool) {
	key, _ := values.Lookup(v, PrivateKeyPath)
	if k, _ := key.(string); k == "" {
		return v, false
	}
	out := values.Merge(values.Source{Values: v})
	tls, _ := values.Lookup(out, "identity.issuer.tls")
	delete(tls.(map[string]any), "keyPEM")
	return out, true
}

func renderChart(ch *chart.Chart, vals map[string]any, namespace string) ([]manifest.Object, error) {
	top, err := chartutil.ToRenderValuesWithSchemaValidation(ch, vals, chartutil.ReleaseOptions{
		Name: ReleaseName, Namespace: namespace, Revision: 1, IsInstall: true,
	}, chartutil.DefaultCapabilities, true) // validated by controlPlaneValues, source by source
	if err != nil {
		return nil, fmt.Errorf("chart %s: %w", ch.Name(), err)
	}
	rendered, err := engine.Render(ch, top)
	if err != nil {
		return nil, fmt.Errorf("chart %s: %w", ch.Name(), err)
	}
	names := make([]string, 0, len(rendered))
	for name := range rendered {
		if strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml") {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	var objs []manifest.Object
	for _, name := range names {
		o, err := manifest.SplitYAML(name, []byte(rendered[name]))
		if err != nil {
			return nil, fmt.Errorf("chart %s rendered invalid YAML: %w", ch.Name(), err)
		}
		objs = append(objs, o...)
	}
	return objs, nil
}
