package install

import (
	"crypto/x509"
	"fmt"
	"io"
	"strings"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chartutil"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/meshplane/mesh/render/identity"
	"github.com/meshplane/mesh/render/values"
	"github.com/meshplane/mesh/templates"
)

// Identity issuer modes.
const (
	IssuerBootstrap   = "bootstrap"
	IssuerExternal    = "external"
	IssuerCertManager = "cert-manager"
)

// controlPlaneValues loads the control-plane chart and the user's values over it, each
// source validated against the schema on its own so errors name the source.
// It settles o.Namespace: -n, else the namespace the values record, else
// DefaultNamespace; -n and the values must agree.
func controlPlaneValues(o *Options, r values.Reader) (*chart.Chart, map[string]any, []string, error) {
	if r == nil {
		r = noFiles{}
	}
	ch, err := LoadChart(templates.ControlPlane, o.Version)
	if err != nil {
		return nil, nil, nil, err
	}
	schema, err := values.CompileSchema(ch.Schema)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("chart %s: %w", ch.Name(), err)
	}
	schema = schema.WithMoved(o.moved())
	var sources []values.Source
	if o.HA {
		data, err := chartFile(ch, "values-ha.yaml")
		if err != nil {
			return nil, nil, nil, err
		}
		src, err := values.Parse("--ha (values-ha.yaml)", data)
		if err != nil {
			return nil, nil, nil, err
		}
		sources = append(sources, src)
	}
	user, err := o.Values.Sources(r)
	if err != nil {
		return nil, nil, nil, err
	}
	sources = append(sources, user...)
	flags, err := flagSources(*o, r, values.Origin(sources, "identity.issuer.mode") != "")
	if err != nil {
		return nil, nil, nil, err
	}
	sources = append(sources, flags...)
	for _, s := range sources {
		if err := schema.Validate(s); err != nil {
			return nil, nil, nil, err
		}
	}
	merged := values.Merge(sources...)
	if err := settleNamespace(o, sources, merged); err != nil {
		return nil, nil, nil, err
	}
	effective, err := chartutil.CoalesceValues(ch, merged)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("values: %w", err)
	}
	if err := schema.Validate(values.Source{Name: "values (all sources merged)", Values: effective}); err != nil {
		return nil, nil, nil, err
	}
	warnings, err := checkIdentity(effective, sources)
	if err != nil {
		return nil, nil, nil, err
	}
	return ch, merged, warnings, nil
}

// settleNamespace sets o.Namespace from -n, the values' namespace or the default, and
// checks -n is a DNS-1123 label that agrees with the values.
func settleNamespace(o *Options, sources []values.Source, merged map[string]any) error {
	recorded, _ := merged["namespace"].(string)
	switch {
	case o.Namespace == "" && recorded != "":
		o.Namespace = recorded // validated with its source by the schema
	case o.Namespace == "":
		o.Namespace = DefaultNamespace
	default:
		if err := checkNamespace(o.Namespace); err != nil {
			return err
		}
		if recorded != "" && recorded != o.Namespace {
			return fmt.Errorf("--namespace %s, but %s sets namespace to %s: drop one, or make them agree", o.Namespace, values.Origin(sources, "namespace"), recorded)
		}
	}
	return nil
}

// checkNamespace: -n is a DNS-1123 label, as the API server requires of namespaces.
func checkNamespace(ns string) error {
	if msgs := validation.IsDNS1123Label(ns); len(msgs) > 0 {
		return fmt.Errorf("--namespace (-n) %q is not a valid namespace name: %s", ns, strings.Join(msgs, "; "))
	}
	return nil
}

// crdsTakeNoValues: the CRDs chart has no settings, so every value source and value
// flag is an error for `mesh install crds` rather than silently ignored.
func crdsTakeNoValues(o Options, r values.Reader) error {
	if r == nil {
		r = noFiles{}
	}
	ch, err := LoadChart(templates.CRDs, o.Version)
	if err != nil {
		return err
	}
	schema, err := values.CompileSchema(ch.Schema)
	if err != nil {
		return fmt.Errorf("chart %s: %w", ch.Name(), err)
	}
	sources, err := o.Values.Sources(r)
	if err != nil {
		return err
	}
	for _, s := range sources {
		if err := schema.Validate(s); err != nil {
			return fmt.Errorf("mesh install crds takes no values (the CRDs have no settings): %w", err)
		}
	}
	flags := []struct {
		name string
		set  bool
	}{
		{"--ha", o.HA}, {"--registry", o.Registry != ""}, {"--image-tag", o.ImageTag != ""},
		{"--identity-trust-domain", o.TrustDomain != ""}, {"--identity-issuer", o.IssuerMode != ""},
		{"--identity-trust-anchors-file", o.TrustAnchorsFile != ""},
		{"--identity-issuer-certificate-file", o.IssuerCertFile != ""}, {"--identity-issuer-key-file", o.IssuerKeyFile != ""},
	}
	for _, f := range flags {
		if f.set {
			return fmt.Errorf("%s does not apply to mesh install crds: it sets the control plane's values", f.name)
		}
	}
	return nil
}

// flagSources turns the dedicated flags into value sources, one per flag, applied last.
func flagSources(o Options, r values.Reader, modeSetByValues bool) ([]values.Source, error) {
	var out []values.Source
	add := func(name, path string, v any) {
		m := map[string]any{}
		values.Set(m, path, v)
		out = append(out, values.Source{Name: name, Values: m})
	}
	read := func(flag, file string) (string, error) {
		b, err := r.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("%s %s: %w", flag, file, err)
		}
		return string(b), nil
	}
	if o.Registry != "" {
		add("--registry", "image.registry", o.Registry)
	}
	if o.ImageTag != "" {
		add("--image-tag", "image.tag", o.ImageTag)
	}
	if o.TrustDomain != "" {
		add("--identity-trust-domain", "identity.trustDomain", o.TrustDomain)
	}
	if o.TrustAnchorsFile != "" {
		pem, err := read("--identity-trust-anchors-file", o.TrustAnchorsFile)
		if err != nil {
			return nil, err
		}
		add("--identity-trust-anchors-file "+o.TrustAnchorsFile, "identity.trustAnchorsPEM", pem)
		if o.IssuerMode == "" && !modeSetByValues {
			add("--identity-trust-anchors-file (implies --identity-issuer external)", "identity.issuer.mode", IssuerExternal)
		}
	}
	if o.IssuerMode != "" {
		add("--identity-issuer", "identity.issuer.mode", o.IssuerMode)
	}
	if o.IssuerCertFile != "" {
		pem, err := read("--identity-issuer-certificate-file", o.IssuerCertFile)
		if err != nil {
			return nil, err
		}
		add("--identity-issuer-certificate-file "+o.IssuerCertFile, "identity.issuer.tls.crtPEM", pem)
	}
	if o.IssuerKeyFile != "" {
		pem, err := read("--identity-issuer-key-file", o.IssuerKeyFile)
		if err != nil {
			return nil, err
		}
		add("--identity-issuer-key-file "+o.IssuerKeyFile, "identity.issuer.tls.keyPEM", pem)
	}
	return out, nil
}

// checkIdentity checks that the identity values fit the issuer mode and that the
// anchors, issuer certificate and key given belong together. It returns warnings.
func checkIdentity(v map[string]any, sources []values.Source) ([]string, error) {
	str := func(path string) string {
		s, _ := values.Lookup(v, path)
		t, _ := s.(string)
		return t
	}
	origin := func(path string) string {
		if o := values.Origin(sources, path); o != "" {
			return o
		}
		return "values.yaml default"
	}
	mode := str("identity.issuer.mode")
	anchorsPEM := str("identity.trustAnchorsPEM")
	crtPEM := str("identity.issuer.tls.crtPEM")
	keyPEM := str("identity.issuer.tls.keyPEM")
	modeErr := func(path, why string) error {
		return fmt.Errorf("%s: %s is set, but identity.issuer.mode is %s (from %s): %s", origin(path), path, mode, origin("identity.issuer.mode"), why)
	}
	switch mode {
	case IssuerBootstrap:
		if anchorsPEM != "" {
			return nil, modeErr("identity.trustAnchorsPEM", "the controller makes its own trust anchor; use --identity-issuer external to bring yours")
		}
		if crtPEM != "" || keyPEM != "" {
			return nil, modeErr("identity.issuer.tls", "the controller makes its own issuer; use --identity-issuer external to bring yours")
		}
		return nil, nil
	case IssuerCertManager:
		if crtPEM != "" || keyPEM != "" {
			return nil, modeErr("identity.issuer.tls", "cert-manager issues the issuer certificate")
		}
	case IssuerExternal:
		if anchorsPEM == "" {
			return nil, fmt.Errorf("identity.issuer.mode is external (from %s) but no trust anchors are given: pass --identity-trust-anchors-file", origin("identity.issuer.mode"))
		}
	}
	var anchors []*x509.Certificate
	if anchorsPEM != "" {
		src := origin("identity.trustAnchorsPEM")
		certs, err := identity.ParseCertificates(src, []byte(anchorsPEM))
		if err != nil {
			return nil, err
		}
		if err := identity.CheckAnchors(src, certs); err != nil {
			return nil, err
		}
		anchors = certs
	}
	if keyPEM != "" && crtPEM == "" {
		return nil, fmt.Errorf("%s: an issuer key needs its certificate: pass --identity-issuer-certificate-file too", origin("identity.issuer.tls.keyPEM"))
	}
	var warnings []string
	if crtPEM != "" {
		chain, err := identity.ParseCertificates(origin("identity.issuer.tls.crtPEM"), []byte(crtPEM))
		if err != nil {
			return nil, err
		}
		if keyPEM != "" {
			keySrc := origin("identity.issuer.tls.keyPEM")
			key, err := identity.ParsePrivateKey(keySrc, []byte(keyPEM))
			if err != nil {
				return nil, err
			}
			if err := identity.CheckKeyPair(chain[0], key); err != nil {
				return nil, fmt.Errorf("%s and %s do not match: %w", keySrc, origin("identity.issuer.tls.crtPEM"), err)
			}
			warnings = append(warnings, "the output holds the identity issuer's private key (a Secret): keep it out of Git, or seal or encrypt it")
		}
		if err := identity.CheckIssuer(anchors, chain); err != nil {
			return nil, fmt.Errorf("%s and %s do not match: %w", origin("identity.issuer.tls.crtPEM"), origin("identity.trustAnchorsPEM"), err)
		}
	}
	return warnings, nil
}

// noFiles is the Reader of a render given none: every file read is an error.
type noFiles struct{}

func (noFiles) ReadFile(name string) ([]byte, error) {
	return nil, fmt.Errorf("%s: this render reads no files", name)
}
func (noFiles) Stdin() io.Reader { return strings.NewReader("") }
