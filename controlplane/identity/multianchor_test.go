package identity

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	renderidentity "github.com/meshplane/mesh/render/identity"
)

// An issuer Secret whose ca.crt holds two anchors, with the issuer signed by the
// second, loads; the trust roots published to proxies are both anchors, in order.
func TestIssuerSecretWithSeveralAnchors(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	create := func() *renderidentity.Bundle {
		b, err := renderidentity.Create(renderidentity.CreateOptions{TrustDomain: "cluster.local", Namespace: "mesh-system", Now: now})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	old, next := create(), create()
	bundle := append(append([]byte(nil), old.AnchorCert...), next.AnchorCert...)
	iss, err := ParseSecret(&corev1.Secret{Data: map[string][]byte{corev1.TLSCertKey: next.IssuerCert, corev1.TLSPrivateKeyKey: next.IssuerKey, "ca.crt": bundle}})
	if err != nil {
		t.Fatal(err)
	}
	if len(iss.Anchors) != 2 {
		t.Fatalf("%d anchors, want 2", len(iss.Anchors))
	}
	if got := string(anchorsPEM(iss)); got != string(bundle) {
		t.Errorf("published bundle\n%s\nwant\n%s", got, bundle)
	}
	// An issuer of neither anchor is refused.
	third := create()
	if _, err := ParseSecret(&corev1.Secret{Data: map[string][]byte{corev1.TLSCertKey: third.IssuerCert, corev1.TLSPrivateKeyKey: third.IssuerKey, "ca.crt": bundle}}); err == nil {
		t.Error("an issuer of a third anchor loaded")
	}
}
