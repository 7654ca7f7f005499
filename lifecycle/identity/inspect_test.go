package identity

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/meshplane/mesh/checks"
	"github.com/meshplane/mesh/internal/testing/golden"
	"github.com/meshplane/mesh/render/identity"
)

// June 2026: the old anchor (to 2026-12-31) and issuer (to 2026-10-27) and the new
// ones (anchor to 2036, issuer to 2026-11-26) are all valid beyond the window.
var june = identity.Clock{Now: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC), Window: checks.DefaultMinCertValidity}

func pki(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/pki/" + path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func cat(bs ...[]byte) []byte { return bytes.Join(bs, nil) }

func TestInspect(t *testing.T) {
	t.Parallel()
	oldCA, newCA := pki(t, "old/ca.crt"), pki(t, "new/ca.crt")
	oldIss, newIss := pki(t, "old/issuer.crt"), pki(t, "new/issuer.crt")
	p := func(src string, b []byte) *PEM { return &PEM{Source: src, Data: b} }
	pub := func(ns string, b []byte) Published {
		return Published{Namespace: ns, PEM: PEM{Source: "ConfigMap/" + ns + "/x", Data: b}}
	}
	november := identity.Clock{Now: time.Date(2026, 11, 15, 0, 0, 0, 0, time.UTC), Window: checks.DefaultMinCertValidity}
	tests := []struct {
		name     string
		m        Material
		clk      identity.Clock
		chainsTo []byte // the anchor the issuer chains to, nil for none
		errors   []string
		warnings []string
	}{
		{"one anchor", Material{Anchors: p("a", oldCA), Issuer: p("i", oldIss), IssuerAnchors: p("s", oldCA), Published: []Published{pub("shop", oldCA)}},
			june, oldCA, nil, nil},
		{"bundle of two, issuer of the old", Material{Anchors: p("a", cat(oldCA, newCA)), Issuer: p("i", oldIss), IssuerAnchors: p("s", cat(oldCA, newCA))},
			june, oldCA, nil, nil},
		{"bundle of two, issuer of the new", Material{Anchors: p("a", cat(oldCA, newCA)), Issuer: p("i", newIss), IssuerAnchors: p("s", cat(oldCA, newCA)), Published: []Published{pub("shop", cat(oldCA, newCA))}},
			june, newCA, nil, nil},
		{"bootstrap: the Secret's anchors only", Material{Issuer: p("i", oldIss), IssuerAnchors: p("s", oldCA)}, june, oldCA, nil, nil},
		{"old anchor removed too early", Material{Anchors: p("a", newCA), Issuer: p("i", oldIss), IssuerAnchors: p("s", newCA)},
			june, nil, []string{"i: issuer certificate CN=identity.mesh-system.cluster.local is not signed by any trust anchor"}, nil},
		{"published bundle lags", Material{Anchors: p("a", cat(oldCA, newCA)), Issuer: p("i", newIss), IssuerAnchors: p("s", cat(oldCA, newCA)), Published: []Published{pub("shop", oldCA), pub("web", oldCA)}},
			june, newCA, []string{"the trust roots published in shop, web do not hold CN=root.cluster.local"}, []string{"the trust roots published in shop, web differ from the issuer's anchors"}},
		{"the Secret's ca.crt lacks the issuer's anchor", Material{Anchors: p("a", cat(oldCA, newCA)), Issuer: p("i", newIss), IssuerAnchors: p("s", oldCA)},
			june, newCA, []string{"s does not hold CN=root.cluster.local (sha256 ", "the identity controller refuses this issuer"}, []string{"a and s hold different anchors"}},
		{"november: old anchor expiring, old issuer expired", Material{Anchors: p("a", cat(oldCA, newCA)), Issuer: p("i", oldIss)},
			november, oldCA, []string{"i: issuer CN=identity.mesh-system.cluster.local expired on 2026-10-27T23:55:00Z"},
			[]string{"a: trust anchor CN=root.cluster.local expires on 2026-12-31T23:55:00Z, in 46d 23h, within the 60d 0h warning window"}},
		{"nothing", Material{}, june, nil, []string{"no trust anchors found"}, nil},
		{"garbage", Material{Anchors: p("a", []byte("nope")), Issuer: p("i", oldIss)}, june, nil,
			[]string{"a: no PEM certificate found", "i: no trust anchors to check the issuer against"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := Inspect(tc.m, tc.clk)
			all := func(got []string) string { return strings.Join(got, "\n") }
			for _, w := range tc.errors {
				if !strings.Contains(all(r.Errors), w) {
					t.Errorf("errors\n%s\nwant %q", all(r.Errors), w)
				}
			}
			for _, w := range tc.warnings {
				if !strings.Contains(all(r.Warnings), w) {
					t.Errorf("warnings\n%s\nwant %q", all(r.Warnings), w)
				}
			}
			if len(tc.errors) == 0 && len(r.Errors) > 0 {
				t.Errorf("unexpected errors: %s", all(r.Errors))
			}
			if len(tc.warnings) == 0 && len(r.Warnings) > 0 {
				t.Errorf("unexpected warnings: %s", all(r.Warnings))
			}
			if want := map[bool]int{true: ExitProblems, false: ExitOK}[len(tc.errors) > 0]; r.ExitCode() != want {
				t.Errorf("exit %d, want %d", r.ExitCode(), want)
			}
			if tc.chainsTo != nil {
				certs, _ := identity.ParseCertificates("want", tc.chainsTo)
				if r.Issuer == nil || !r.Issuer.ChainValid || r.Issuer.ChainsTo != identity.Fingerprint(certs[0]) {
					t.Errorf("issuer %+v, want it to chain to %s", r.Issuer, identity.Fingerprint(certs[0]))
				}
			} else if r.Issuer != nil && r.Issuer.ChainValid {
				t.Errorf("issuer chains to %s, want no valid chain", r.Issuer.ChainsTo)
			}
		})
	}
}

// The middle of a rotation as the three formats show it: the same content in each.
func TestWriteGolden(t *testing.T) {
	t.Parallel()
	bundle := cat(pki(t, "old/ca.crt"), pki(t, "new/ca.crt"))
	m := Material{
		Anchors:       &PEM{Source: "ConfigMap/mesh-system/mesh-identity-trust-roots ca-bundle.crt", Data: bundle},
		Issuer:        &PEM{Source: "Secret/mesh-system/mesh-identity-issuer tls.crt", Data: pki(t, "new/issuer.crt")},
		IssuerAnchors: &PEM{Source: "Secret/mesh-system/mesh-identity-issuer ca.crt", Data: bundle},
		Published: []Published{
			{Namespace: "mesh-system", PEM: PEM{Source: "ConfigMap/mesh-system/mesh-identity-trust-roots ca-bundle.crt", Data: bundle}},
			{Namespace: "shop", PEM: PEM{Source: "ConfigMap/shop/mesh-identity-trust-roots ca-bundle.crt", Data: pki(t, "old/ca.crt")}},
		},
	}
	r := Inspect(m, june)
	var outs [3]bytes.Buffer
	for i, f := range []string{FormatTable, FormatJSON, FormatYAML} {
		if err := Write(&outs[i], f, r); err != nil {
			t.Fatal(err)
		}
		golden.Assert(t, "inspect-rotation."+map[string]string{FormatTable: "txt", FormatJSON: "json", FormatYAML: "yaml"}[f], outs[i].Bytes())
	}
	var fromJSON, fromYAML Report
	if err := json.Unmarshal(outs[1].Bytes(), &fromJSON); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(outs[2].Bytes(), &fromYAML); err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(fromJSON)
	b, _ := json.Marshal(fromYAML)
	if !bytes.Equal(a, b) {
		t.Errorf("JSON and YAML differ:\n%s\n%s", a, b)
	}
	for _, want := range []string{"not hold CN=root.cluster.local", "shop"} {
		if !strings.Contains(outs[0].String(), want) {
			t.Errorf("table lacks %q", want)
		}
	}
	if err := Write(&outs[0], "xml", r); err == nil {
		t.Error("xml accepted")
	}
}
