package identity

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"strings"
	"testing"
	"time"
)

func TestDescribe(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	root, rootKey := newCert(t, certSpec{cn: "root", ca: true, at: at}, nil, nil)
	issuer, _ := newCert(t, certSpec{cn: "issuer", ca: true, at: at}, root, rootKey)
	other, _ := newCert(t, certSpec{cn: "other", ca: true, at: at}, nil, nil)
	life := root.NotAfter.Sub(root.NotBefore)
	for _, tc := range []struct {
		now    time.Time
		status string
	}{
		{root.NotBefore.Add(-time.Second), StatusNotYet},
		{root.NotBefore, StatusValid},
		{root.NotAfter.Add(-time.Hour), StatusExpiring},
		{root.NotAfter, StatusExpired},
	} {
		if got := Describe(root, Clock{Now: tc.now, Window: 2 * time.Hour}); got.Status != tc.status {
			t.Errorf("at %s: %s, want %s", tc.now, got.Status, tc.status)
		}
	}
	d := Describe(root, Clock{Now: root.NotBefore, Window: time.Hour})
	if d.Subject != "CN=root" || d.Issuer != "CN=root" || !d.IsCA || d.KeyType != "ECDSA P-256" || d.SHA256 != Fingerprint(root) ||
		len(d.SHA256) != 64 || d.Serial != root.SerialNumber.Text(16) || d.TimeLeft != HumanDuration(life) {
		t.Errorf("describe %+v", d)
	}
	if got := Describe(root, Clock{Now: root.NotAfter.Add(time.Hour)}).TimeLeft; got != "0s" {
		t.Errorf("time left after expiry %q", got)
	}
	if a, err := ChainsTo([]*x509.Certificate{other, root}, []*x509.Certificate{issuer}); err != nil || !a.Equal(root) {
		t.Errorf("ChainsTo = %v, %v", a, err)
	}
	if _, err := ChainsTo([]*x509.Certificate{other}, []*x509.Certificate{issuer}); err == nil {
		t.Error("ChainsTo a foreign anchor")
	}
	if !SameCertificates([]*x509.Certificate{root, other}, []*x509.Certificate{other, root}) || SameCertificates([]*x509.Certificate{root}, []*x509.Certificate{other}) ||
		SameCertificates([]*x509.Certificate{root, root}, []*x509.Certificate{root, other}) {
		t.Error("SameCertificates")
	}
	warn := ExpiryWarnings("trust anchor", []*x509.Certificate{root, other}, Clock{Now: root.NotAfter.Add(-time.Hour), Window: 48 * time.Hour})
	if len(warn) != 2 || !strings.Contains(warn[0], "trust anchor CN=root expires on") || !strings.Contains(warn[0], "in 1h 0m, within the 2d 0h warning window") {
		t.Errorf("warnings %q", warn)
	}
}

func TestKeyTypeAndDuration(t *testing.T) {
	t.Parallel()
	ec, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rs, _ := rsa.GenerateKey(rand.Reader, 1024)
	ed, _, _ := ed25519.GenerateKey(rand.Reader)
	for pub, want := range map[any]string{&ec.PublicKey: "ECDSA P-384", &rs.PublicKey: "RSA 1024", "x": "string"} {
		if got := KeyType(pub); got != want {
			t.Errorf("KeyType = %q, want %q", got, want)
		}
	}
	if got := KeyType(ed); got != "Ed25519" {
		t.Errorf("KeyType(ed25519) = %q", got)
	}
	for d, want := range map[time.Duration]string{90 * time.Second: "1m30s", 25*time.Hour + 30*time.Minute: "1d 1h", 3*time.Hour + 5*time.Minute + 7*time.Second: "3h 5m"} {
		if got := HumanDuration(d); got != want {
			t.Errorf("HumanDuration(%s) = %q, want %q", d, got, want)
		}
	}
}
