package offline

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meshplane/mesh/checks"
	"github.com/meshplane/mesh/render/identity"
	"github.com/meshplane/mesh/render/install"
)

// A bundle of two trust anchors, with the issuer signed by either one, passes the
// identity checks; an issuer of a third anchor fails identity.issuer.
func TestSeveralTrustAnchors(t *testing.T) {
	t.Parallel()
	create := func() *identity.Bundle {
		b, err := identity.Create(identity.CreateOptions{TrustDomain: "cluster.local", Namespace: "mesh-system", Now: now.Add(-time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	a, b, c := create(), create(), create()
	dir := t.TempDir()
	write := func(name string, data ...[]byte) string {
		p := filepath.Join(dir, name)
		var all []byte
		for _, d := range data {
			all = append(all, d...)
		}
		if err := os.WriteFile(p, all, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	bundle := write("bundle.crt", a.AnchorCert, b.AnchorCert)
	for name, issuer := range map[string]*identity.Bundle{"first": a, "second": b} {
		t.Run("issuer of the "+name+" anchor", func(t *testing.T) {
			t.Parallel()
			got := run(t, installed(t, install.Options{TrustAnchorsFile: bundle,
				IssuerCertFile: write(name+".crt", issuer.IssuerCert), IssuerKeyFile: write(name+".key", issuer.IssuerKey)}))
			for _, id := range []string{"identity.trust-anchors", "identity.issuer"} {
				if r := got[id]; r.Status != checks.Passed {
					t.Errorf("%s: %s %s", id, r.Status, r.Message)
				}
			}
		})
	}
	// The render refuses a foreign issuer, so swap one into a rendered Secret.
	t.Run("issuer of neither", func(t *testing.T) {
		t.Parallel()
		m := installed(t, install.Options{TrustAnchorsFile: bundle,
			IssuerCertFile: write("b2.crt", b.IssuerCert), IssuerKeyFile: write("b2.key", b.IssuerKey)})
		enc := base64.StdEncoding.EncodeToString
		swapped := strings.Replace(strings.Replace(m, enc(b.IssuerCert), enc(c.IssuerCert), 1), enc(b.IssuerKey), enc(c.IssuerKey), 1)
		if swapped == m {
			t.Fatal("the issuer was not swapped")
		}
		if r := run(t, swapped)["identity.issuer"]; r.Status != checks.Failed || !strings.Contains(r.Message, "not signed by any trust anchor") {
			t.Errorf("identity.issuer: %s %s", r.Status, r.Message)
		}
	})
}
