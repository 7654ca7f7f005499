package offline

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meshplane/mesh/checks"
	"github.com/meshplane/mesh/render/identity"
	"github.com/meshplane/mesh/render/inject"
	"github.com/meshplane/mesh/render/install"
	"github.com/meshplane/mesh/render/manifest"
	"github.com/meshplane/mesh/render/values"
)

var now = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

var testOptions = Options{KubernetesVersion: "1.36", MinCertValidity: 60 * 24 * time.Hour, Now: func() time.Time { return now }, CLIVersion: "v1.2.3"}

type files struct{}

func (files) ReadFile(name string) ([]byte, error) { return os.ReadFile(name) }
func (files) Stdin() io.Reader                     { return strings.NewReader("") }

// installed renders mesh install with o, as mesh install writes it.
func installed(t *testing.T, o install.Options) string {
	t.Helper()
	if o.Version == "" {
		o.Version = "v1.2.3"
	}
	res, err := install.Render(o, files{})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := manifest.WriteYAML(&b, res.Objects); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// run checks the manifests and returns the results by check ID.
func run(t *testing.T, manifests string) map[string]checks.Result {
	t.Helper()
	s, err := Load(context.Background(), manifest.Inputs{Filenames: []string{"-"}}, manifest.Env{Stdin: strings.NewReader(manifests)}, testOptions)
	if err != nil {
		t.Fatal(err)
	}
	suite, err := Suite(s)
	if err != nil {
		t.Fatal(err)
	}
	r := checks.Run(context.Background(), suite, checks.Options{Now: func() time.Time { return now }})
	out := map[string]checks.Result{}
	for _, res := range r.Results {
		out[res.Check.ID] = res
	}
	return out
}

// anchors writes a trust anchor (and issuer) made at made, valid for life.
func anchors(t *testing.T, made time.Time, life time.Duration) string {
	t.Helper()
	b, err := identity.Create(identity.CreateOptions{TrustDomain: "cluster.local", Namespace: "mesh-system", Now: made, AnchorLifetime: life, IssuerLifetime: life})
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(p, b.AnchorCert, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// inject's round-trip marker, meshplane.io/original-annotations, is a known annotation
// in each of the forms inject writes it: a token, or a record (metadata token, the
// mesh annotations inject added and changed).
func TestRoundTripMarkerPasses(t *testing.T) {
	in, err := inject.New(inject.Options{Config: map[string]string{"config.meshplane.io/opaque-ports": "3306"}})
	if err != nil {
		t.Fatal(err)
	}
	job := "apiVersion: batch/v1\nkind: Job\nmetadata: {name: j}\nspec:\n  template:\n    metadata: %s\n    spec: {restartPolicy: Never, containers: [{name: a, image: a:1}]}\n"
	for _, doc := range []string{"\n  name: p\n  annotations:", "\n  name: p\n  annotations: ~", "\n  name: p\n  annotations:   !!null NULL", " {name: p, annotations: Null}", " {name: p, annotations: { }}",
		"\n  name: p\n  annotations:\n    config.meshplane.io/opaque-ports: '25'", "\n  name: p\n  annotations:\n    config.meshplane.io/proxy-log-level: warn",
		fmt.Sprintf(job, "~"), fmt.Sprintf(job, "!!null"), strings.Replace(fmt.Sprintf(job, "{}"), "  template:\n    metadata: {}\n    spec:", "  template: {metadata: {}, spec:", 1) + "}"} {
		if !strings.HasPrefix(doc, "apiVersion") {
			doc = "apiVersion: v1\nkind: Pod\nmetadata:" + doc + "\nspec: {containers: [{name: a, image: a:1}]}\n"
		}
		out, _, err := in.YAML([]byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(out), inject.OriginalAnnotations) {
			t.Fatalf("no marker in\n%s", out)
		}
		if r := run(t, string(out))["data-plane.annotations"]; r.Status != checks.Passed {
			t.Errorf("%s: %s\n%s", r.Status, r.Message, out)
		}
	}
}

func TestInstallOutputPasses(t *testing.T) {
	for name, o := range map[string]install.Options{
		"default":      {},
		"ha":           {HA: true},
		"external":     {TrustAnchorsFile: "../../render/install/testdata/pki/ca.crt"},
		"cert-manager": {IssuerMode: install.IssuerCertManager},
		// The optional Prometheus and the PodMonitor: a custom resource of a CRD the
		// manifests do not hold (the Prometheus Operator's) is not judged, as
		// cert-manager's are not.
		"prometheus": {Values: values.Options{Values: []string{"prometheus.enabled=true,prometheus.podMonitor.enabled=true"}}},
	} {
		t.Run(name, func(t *testing.T) {
			for id, r := range run(t, installed(t, o)) {
				if r.Status == checks.Failed {
					t.Errorf("%s failed: %s", id, r.Message)
				}
			}
		})
	}
	// The identity checks really ran when there were anchors to check.
	if r := run(t, installed(t, install.Options{TrustAnchorsFile: "../../render/install/testdata/pki/ca.crt"}))["identity.trust-anchors"]; r.Status != checks.Passed {
		t.Errorf("identity.trust-anchors: %s %s", r.Status, r.Message)
	}
}

// Each broken variant fails its own check, with that check's hint.
func TestBrokenVariantsFailTheirCheck(t *testing.T) {
	base := installed(t, install.Options{})
	manual := func(version string) string {
		v, err := install.EffectiveValues(install.Options{Version: version}, files{})
		if err != nil {
			t.Fatal(err)
		}
		in, err := inject.New(inject.Options{Manual: &inject.Manual{Version: version, Namespace: "mesh-system", Values: v}})
		if err != nil {
			t.Fatal(err)
		}
		out, _, err := in.YAML([]byte("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: shop}\nspec:\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers: [{name: web, image: nginx:1.27}]\n"))
		if err != nil {
			t.Fatal(err)
		}
		return string(out)
	}
	tests := []struct {
		name, manifests, check, want string
	}{
		{"expired anchor", installed(t, install.Options{TrustAnchorsFile: anchors(t, now.Add(-400*24*time.Hour), 365*24*time.Hour)}), "identity.trust-anchors", "expired"},
		{"anchor expiring in 30 days", installed(t, install.Options{TrustAnchorsFile: anchors(t, now.Add(-335*24*time.Hour), 365*24*time.Hour)}), "identity.trust-anchors", "in less than"},
		{"missing Deployment", strings.Replace(base, "kind: Deployment\nmetadata:\n  name: mesh-destination", "kind: DaemonSet\nmetadata:\n  name: mesh-destination", 1), "control-plane.complete", "Deployment/mesh-system/mesh-destination is missing"},
		{"unknown field", strings.Replace(base, "  revisionHistoryLimit: 5\n", "  revisionHistoryLimit: 5\n  replicaz: 2\n", 1), "kubernetes.schema", "replicaz"},
		{"mismatched proxy version", base + "---\n" + manual("v1.0.0"), "data-plane.proxy-version", "runs proxy v1.0.0"},
		{"proxy version against the CLI", manual("v0.9.0"), "data-plane.proxy-version", "this CLI is v1.2.3"},
		{"unpinned image", strings.Replace(base, "ghcr.io/meshplane/controller:v1.2.3", "ghcr.io/meshplane/controller:latest", 1), "control-plane.images-pinned", "no version tag"},
		{"two versions", strings.Replace(base, `app.kubernetes.io/version: "v1.2.3"`, `app.kubernetes.io/version: "v1.2.2"`, 1), "control-plane.one-version", "versions differ"},
		{"webhook to nowhere", strings.Replace(base, "        name: mesh-injector\n        namespace: mesh-system\n        path: /inject", "        name: mesh-injectr\n        namespace: mesh-system\n        path: /inject", 1), "control-plane.webhook", "mesh-injectr"},
		{"private key", installed(t, install.Options{TrustAnchorsFile: "../../render/install/testdata/pki/ca.crt",
			IssuerCertFile: "../../render/install/testdata/pki/issuer.crt", IssuerKeyFile: "../../render/install/testdata/pki/issuer.key"}), "identity.no-private-keys", "holds a private key"},
		{"invalid namespace", strings.ReplaceAll(base, "namespace: mesh-system", "namespace: Bad_NS"), "kubernetes.api-rules", `Deployment/Bad_NS/mesh-identity: metadata.namespace: Invalid value: "Bad_NS"`},
		{"no kind", "apiVersion: v1\nmetadata: {name: x}\n", "kubernetes.schema", "stdin: document 1: (no kind)/x: kind: required field missing"},
		{"selector does not match", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: shop}\nspec:\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: api}}\n    spec: {containers: [{name: web, image: nginx}]}\n", "kubernetes.api-rules", "stdin: document 1: Deployment/shop/web: spec.template.metadata.labels: Invalid value"},
		{"bad annotation", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  annotations:\n    config.meshplane.io/opaque-ports: mysql\nspec: {containers: [{name: a, image: a:1}]}\n", "data-plane.annotations", "opaque-ports"},
		{"unknown annotation", "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n  annotations:\n    meshplane.io/injct: enabled\n", "data-plane.annotations", "unknown annotation meshplane.io/injct"},
		{"round-trip record edited", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  annotations:\n    meshplane.io/inject: enabled\n    meshplane.io/original-annotations: '{\"added\":[\"team\"]}'\nspec: {containers: [{name: a, image: a:1}]}\n", "data-plane.annotations", `added: team is not a mesh annotation`},
		{"round-trip record unknown field", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  annotations:\n    meshplane.io/inject: enabled\n    meshplane.io/original-annotations: '{\"metadata\":\"~\",\"x\":1}'\nspec: {containers: [{name: a, image: a:1}]}\n", "data-plane.annotations", `not a record`},
		{"round-trip record bad changed text", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  annotations:\n    meshplane.io/inject: enabled\n    meshplane.io/original-annotations: '{\"changed\":{\"config.meshplane.io/opaque-ports\":\"[1]\"}}'\nspec: {containers: [{name: a, image: a:1}]}\n", "data-plane.annotations", `is not a string scalar`},
		{"round-trip marker edited", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  annotations:\n    meshplane.io/inject: enabled\n    meshplane.io/original-annotations: \"{a: b}\"\nspec: {containers: [{name: a, image: a:1}]}\n", "data-plane.annotations", `meshplane.io/original-annotations "{a: b}": not a form inject writes`},
		{"CRD after its resource", "apiVersion: policy.meshplane.io/v1alpha1\nkind: ServiceProfile\nmetadata: {name: web.shop.svc.cluster.local, namespace: shop}\nspec: {routes: []}\n---\n" + installed(t, install.Options{Part: install.CRDs}), "kubernetes.crds-first", "comes before its CRD"},
		{"invalid custom resource", "apiVersion: policy.meshplane.io/v1alpha1\nkind: ServiceProfile\nmetadata: {name: web.shop.svc.cluster.local, namespace: shop}\nspec:\n  routes: [{name: r, condition: {pathRegex: /}, timeout: fast}]\n", "kubernetes.schema", "timeout"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			results := run(t, tc.manifests)
			r, ok := results[tc.check]
			if !ok {
				t.Fatalf("no check %s", tc.check)
			}
			if r.Status != checks.Failed || !strings.Contains(r.Message, tc.want) {
				t.Errorf("%s: %s %q, want failed with %q", tc.check, r.Status, r.Message, tc.want)
			}
			if r.Check.Hint != "https://meshplane.io/docs/checks#"+tc.check {
				t.Errorf("hint %s", r.Check.Hint)
			}
			for id, other := range results {
				if id != tc.check && other.Status == checks.Failed && !strings.HasPrefix(tc.name, "two versions") && tc.name != "mismatched proxy version" {
					t.Logf("also failed: %s: %s", id, other.Message)
				}
			}
		})
	}
}
