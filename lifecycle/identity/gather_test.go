package identity

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshplane/mesh/internal/testing/testcluster"
	"github.com/meshplane/mesh/lifecycle/diff"
	"github.com/meshplane/mesh/render/identity"
	"github.com/meshplane/mesh/render/install"
)

type files struct{}

func (files) ReadFile(name string) ([]byte, error) { return os.ReadFile(name) }
func (files) Stdin() io.Reader                     { return strings.NewReader("") }

// rotationRender renders mesh install in ns with the old and new anchors and the new
// issuer (its key too, so that the Secret is rendered).
func rotationRender(t *testing.T, ns string) []diff.Object {
	t.Helper()
	bundle := filepath.Join(t.TempDir(), "bundle.crt")
	if err := os.WriteFile(bundle, cat(pki(t, "old/ca.crt"), pki(t, "new/ca.crt")), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := install.Render(install.Options{Version: "v1.2.3", Namespace: ns, TrustAnchorsFile: bundle,
		IssuerCertFile: "testdata/pki/new/issuer.crt", IssuerKeyFile: "testdata/pki/new/issuer.key"}, files{})
	if err != nil {
		t.Fatal(err)
	}
	objs, err := diff.FromManifest(res.Objects)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func fingerprint(t *testing.T, pemData []byte) string {
	t.Helper()
	c, err := identity.ParseCertificates("t", pemData)
	if err != nil {
		t.Fatal(err)
	}
	return identity.Fingerprint(c[0])
}

// checkRotation checks the report of rotationRender's material: both anchors, the
// issuer chaining to the new one, and what each namespace is published.
func checkRotation(t *testing.T, r *Report, ns string, published map[string]bool) {
	t.Helper()
	if len(r.Errors) != 0 {
		t.Errorf("errors: %q", r.Errors)
	}
	if r.Anchors == nil || len(r.Anchors.Certificates) != 2 || r.Anchors.Source != "ConfigMap/"+ns+"/mesh-identity-trust-roots ca-bundle.crt" {
		t.Fatalf("anchors %+v", r.Anchors)
	}
	if r.Anchors.Certificates[0].SHA256 != fingerprint(t, pki(t, "old/ca.crt")) || r.Anchors.Certificates[1].SHA256 != fingerprint(t, pki(t, "new/ca.crt")) {
		t.Errorf("anchors %+v", r.Anchors.Certificates)
	}
	if r.Issuer == nil || r.Issuer.Source != "Secret/"+ns+"/mesh-identity-issuer tls.crt" || !r.Issuer.ChainValid || r.Issuer.ChainsTo != fingerprint(t, pki(t, "new/ca.crt")) {
		t.Errorf("issuer %+v", r.Issuer)
	}
	if r.IssuerAnchors == nil || r.IssuerAnchors.Source != "Secret/"+ns+"/mesh-identity-issuer ca.crt" || len(r.IssuerAnchors.Certificates) != 2 {
		t.Errorf("issuer anchors %+v", r.IssuerAnchors)
	}
	got := map[string]bool{}
	for _, b := range r.Published {
		for _, n := range b.Namespaces {
			if _, ours := published[n]; ours {
				got[n] = b.TrustsIssuer
			}
		}
	}
	if len(got) != len(published) {
		t.Errorf("published %+v, want %v", r.Published, published)
	}
	for n, trusts := range published {
		if got[n] != trusts {
			t.Errorf("namespace %s trusts the issuer: %v, want %v", n, got[n], trusts)
		}
	}
}

func TestFromObjects(t *testing.T) {
	t.Parallel()
	m, err := FromObjects(rotationRender(t, "mesh-system"), "")
	if err != nil {
		t.Fatal(err)
	}
	checkRotation(t, Inspect(m, june), "mesh-system", map[string]bool{"mesh-system": true})

	// Without the trust-roots ConfigMap and the Secret, mesh-config's values serve.
	var rest []diff.Object
	for _, o := range rotationRender(t, "mesh-system") {
		if o.Name != TrustRootsMap && o.Name != IssuerSecret {
			rest = append(rest, o)
		}
	}
	m, err = FromObjects(rest, "")
	if err != nil {
		t.Fatal(err)
	}
	if m.Anchors == nil || m.Anchors.Source != "ConfigMap/mesh-system/mesh-config values.yaml identity.trustAnchorsPEM" ||
		m.Issuer == nil || m.Issuer.Source != "ConfigMap/mesh-system/mesh-config values.yaml identity.issuer.tls.crtPEM" {
		t.Errorf("material from values: %+v", m)
	}
	if r := Inspect(m, june); len(r.Errors) != 0 || !r.Issuer.ChainValid {
		t.Errorf("errors %q", r.Errors)
	}

	// Files replace what the manifests give.
	m, _ = FromObjects(rotationRender(t, "mesh-system"), "")
	if err := (Files{TrustAnchors: "testdata/pki/new/ca.crt", IssuerCert: "testdata/pki/old/issuer.crt"}).Apply(&m); err != nil {
		t.Fatal(err)
	}
	if r := Inspect(m, june); r.ExitCode() != ExitProblems || r.Anchors.Source != "testdata/pki/new/ca.crt" || r.Issuer.ChainValid {
		t.Errorf("with files: %+v", r)
	}
	if err := (Files{TrustAnchors: "testdata/nope.crt"}).Apply(&m); err == nil || !strings.Contains(err.Error(), "--trust-anchors-file: open testdata/nope.crt") {
		t.Errorf("missing file: %v", err)
	}
}

// Against the real API server: the rendered Secret and ConfigMaps applied, and a
// trust-roots ConfigMap lagging behind in a meshed namespace, read back.
func TestFromCluster(t *testing.T) {
	t.Parallel()
	cs := testcluster.Clientset(t)
	ns, shop := testcluster.Namespace(t, cs), testcluster.Namespace(t, cs)
	ctx := context.Background()
	for _, o := range rotationRender(t, ns) {
		switch {
		case o.Kind == "Secret" && o.Name == IssuerSecret:
			var s corev1.Secret
			if err := decode(t, o, &s); err != nil {
				t.Fatal(err)
			}
			if _, err := cs.CoreV1().Secrets(ns).Create(ctx, &s, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		case o.Kind == "ConfigMap" && (o.Name == TrustRootsMap || o.Name == ConfigMap):
			var c corev1.ConfigMap
			if err := decode(t, o, &c); err != nil {
				t.Fatal(err)
			}
			if _, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, &c, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	lagging := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: TrustRootsMap, Namespace: shop}, Data: map[string]string{TrustRootsKey: string(pki(t, "old/ca.crt"))}}
	if _, err := cs.CoreV1().ConfigMaps(shop).Create(ctx, lagging, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	m, err := FromCluster(ctx, cs, ns)
	if err != nil {
		t.Fatal(err)
	}
	r := Inspect(m, june)
	want := "the trust roots published in " + shop + " do not hold"
	if len(r.Errors) != 1 || !strings.Contains(r.Errors[0], want) {
		t.Fatalf("errors %q, want one with %q", r.Errors, want)
	}
	r.Errors = nil
	checkRotation(t, r, ns, map[string]bool{ns: true, shop: false})

	// The control plane's namespace without the objects: nothing to inspect.
	empty := testcluster.Namespace(t, cs)
	m, err = FromCluster(ctx, cs, empty)
	if err != nil {
		t.Fatal(err)
	}
	if m.Anchors != nil || m.Issuer != nil || m.IssuerAnchors != nil {
		t.Errorf("material of an empty namespace: %+v", m)
	}
}

// decode converts a rendered object into a typed one.
func decode(t *testing.T, o diff.Object, into any) error {
	t.Helper()
	b, err := json.Marshal(o.Body)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, into)
}
