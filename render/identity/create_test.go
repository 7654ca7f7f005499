package identity

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"
)

var clock = time.Date(2031, time.March, 4, 5, 6, 7, 890_000_000, time.UTC)

func create(t *testing.T, o CreateOptions) *Bundle {
	t.Helper()
	if o.TrustDomain == "" {
		o.TrustDomain = "cluster.local"
	}
	if o.Namespace == "" {
		o.Namespace = "mesh"
	}
	if o.Now.IsZero() {
		o.Now = clock
	}
	b, err := Create(o)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	return b
}

func onlyCert(t *testing.T, name string, data []byte) *x509.Certificate {
	t.Helper()
	certs, err := ParseCertificates(name, data)
	if err != nil {
		t.Fatal(err)
	}
	if len(certs) != 1 {
		t.Fatalf("%s holds %d certificates, want 1", name, len(certs))
	}
	return certs[0]
}

func TestCreate(t *testing.T) {
	b := create(t, CreateOptions{TrustDomain: "example.org", Namespace: "mesh-system"})
	anchor := onlyCert(t, "anchor", b.AnchorCert)
	issuer := onlyCert(t, "issuer", b.IssuerCert)

	wantNotBefore := time.Date(2031, time.March, 4, 5, 1, 7, 0, time.UTC) // 5 minutes early, whole seconds
	tests := []struct {
		name       string
		c          *x509.Certificate
		cn         string
		notAfter   time.Time
		maxPathLen int
		zero       bool
	}{
		{"anchor", anchor, "root.example.org", wantNotBefore.Add(10 * 365 * 24 * time.Hour), 1, false},
		{"issuer", issuer, "identity.mesh-system.example.org", wantNotBefore.Add(365 * 24 * time.Hour), 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.c
			if c.Subject.CommonName != tt.cn {
				t.Errorf("CN = %q, want %q", c.Subject.CommonName, tt.cn)
			}
			if !c.NotBefore.Equal(wantNotBefore) {
				t.Errorf("NotBefore = %v, want %v", c.NotBefore, wantNotBefore)
			}
			if !c.NotAfter.Equal(tt.notAfter) {
				t.Errorf("NotAfter = %v, want %v", c.NotAfter, tt.notAfter)
			}
			if !c.BasicConstraintsValid || !c.IsCA {
				t.Errorf("not a CA: BasicConstraintsValid=%v IsCA=%v", c.BasicConstraintsValid, c.IsCA)
			}
			if c.MaxPathLen != tt.maxPathLen || c.MaxPathLenZero != tt.zero {
				t.Errorf("MaxPathLen = %d (zero %v), want %d (zero %v)", c.MaxPathLen, c.MaxPathLenZero, tt.maxPathLen, tt.zero)
			}
			if c.KeyUsage&x509.KeyUsageCertSign == 0 {
				t.Errorf("KeyUsage %b lacks CertSign", c.KeyUsage)
			}
			if c.KeyUsage&^(x509.KeyUsageCertSign|x509.KeyUsageCRLSign) != 0 {
				t.Errorf("KeyUsage %b allows more than signing certificates and CRLs", c.KeyUsage)
			}
			if len(c.ExtKeyUsage) != 0 {
				t.Errorf("ExtKeyUsage = %v, want none", c.ExtKeyUsage)
			}
			pub, ok := c.PublicKey.(*ecdsa.PublicKey)
			if !ok || pub.Curve != elliptic.P256() {
				t.Errorf("public key is %T, want ECDSA P-256", c.PublicKey)
			}
			if c.SignatureAlgorithm != x509.ECDSAWithSHA256 {
				t.Errorf("SignatureAlgorithm = %v", c.SignatureAlgorithm)
			}
			if c.SerialNumber.Sign() <= 0 {
				t.Errorf("serial number %v is not positive", c.SerialNumber)
			}
			if len(c.SubjectKeyId) == 0 {
				t.Error("no subject key id")
			}
		})
	}

	if anchor.SerialNumber.Cmp(issuer.SerialNumber) == 0 {
		t.Error("anchor and issuer share a serial number")
	}
	if err := anchor.CheckSignatureFrom(anchor); err != nil {
		t.Errorf("anchor is not self-signed: %v", err)
	}
	if issuer.Issuer.String() != anchor.Subject.String() {
		t.Errorf("issuer's Issuer = %s, want %s", issuer.Issuer, anchor.Subject)
	}
	if !bytes.Equal(issuer.AuthorityKeyId, anchor.SubjectKeyId) {
		t.Error("issuer's authority key id is not the anchor's subject key id")
	}
	if len(issuer.DNSNames) != 1 || issuer.DNSNames[0] != "identity.mesh-system.example.org" {
		t.Errorf("issuer DNSNames = %v", issuer.DNSNames)
	}

	// Keys: PKCS#8 PEM, P-256, each the pair of its certificate and not of the other.
	for _, k := range []struct {
		name  string
		pem   []byte
		cert  *x509.Certificate
		other *x509.Certificate
	}{
		{"anchor key", b.AnchorKey, anchor, issuer},
		{"issuer key", b.IssuerKey, issuer, anchor},
	} {
		block, rest := pem.Decode(k.pem)
		if block == nil || block.Type != "PRIVATE KEY" || len(bytes.TrimSpace(rest)) != 0 {
			t.Fatalf("%s is not a single PKCS#8 PEM block", k.name)
		}
		key, err := ParsePrivateKey(k.name, k.pem)
		if err != nil {
			t.Fatal(err)
		}
		ec, ok := key.(*ecdsa.PrivateKey)
		if !ok || ec.Curve != elliptic.P256() {
			t.Errorf("%s is %T, want ECDSA P-256", k.name, key)
		}
		if err := CheckKeyPair(k.cert, key); err != nil {
			t.Errorf("%s does not match its certificate: %v", k.name, err)
		}
		if err := CheckKeyPair(k.other, key); err == nil {
			t.Errorf("%s matches the other certificate", k.name)
		}
	}

	// The package's own checks accept the bundle.
	if err := CheckAnchors("anchor", []*x509.Certificate{anchor}); err != nil {
		t.Error(err)
	}
	if err := CheckIssuer([]*x509.Certificate{anchor}, []*x509.Certificate{issuer}); err != nil {
		t.Error(err)
	}
}

func TestCreateVerifies(t *testing.T) {
	b := create(t, CreateOptions{TrustDomain: "example.org", Namespace: "mesh", IssuerLifetime: 48 * time.Hour, AnchorLifetime: 96 * time.Hour})
	anchor := onlyCert(t, "anchor", b.AnchorCert)
	issuer := onlyCert(t, "issuer", b.IssuerCert)
	roots := x509.NewCertPool()
	roots.AddCert(anchor)

	verify := func(at time.Time) error {
		_, err := issuer.Verify(x509.VerifyOptions{
			Roots:       roots,
			CurrentTime: at,
			DNSName:     "identity.mesh.example.org",
			KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
		})
		return err
	}
	for _, tt := range []struct {
		name string
		at   time.Time
		ok   bool
	}{
		{"at the clock", clock, true},
		{"slightly before the clock (skew)", clock.Add(-4 * time.Minute), true},
		{"a day later", clock.Add(24 * time.Hour), true},
		{"before NotBefore", clock.Add(-6 * time.Minute), false},
		{"after the issuer expires", clock.Add(48 * time.Hour), false},
	} {
		err := verify(tt.at)
		if tt.ok && err != nil {
			t.Errorf("%s: Verify: %v", tt.name, err)
		}
		if !tt.ok && err == nil {
			t.Errorf("%s: Verify succeeded", tt.name)
		}
	}

	// The issuer can issue leaf certificates that verify through it...
	issuerKey, err := ParsePrivateKey("issuer key", b.IssuerKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := newCert(t, certSpec{cn: "web.ns.serviceaccount.identity.mesh.example.org", dns: []string{"web.ns.serviceaccount.identity.mesh.example.org"}, at: clock}, issuer, issuerKey)
	inter := x509.NewCertPool()
	inter.AddCert(issuer)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: clock.Add(time.Hour)}); err != nil {
		t.Errorf("leaf issued by the issuer does not verify: %v", err)
	}
	// ...but no further CA: its path length is 0.
	sub, subKey := newCert(t, certSpec{cn: "sub", ca: true, at: clock}, issuer, issuerKey)
	leaf2, _ := newCert(t, certSpec{cn: "leaf2", dns: []string{"leaf2"}, at: clock}, sub, subKey)
	inter.AddCert(sub)
	if _, err := leaf2.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: clock.Add(time.Hour)}); err == nil {
		t.Error("a CA below the issuer verifies, want the issuer's path length 0 to forbid it")
	}
}

func TestCreateLifetimes(t *testing.T) {
	tests := []struct {
		name                   string
		anchor, issuer         time.Duration
		wantAnchor, wantIssuer time.Duration
	}{
		{"defaults", 0, 0, 10 * 365 * 24 * time.Hour, 365 * 24 * time.Hour},
		{"both set", 30 * 24 * time.Hour, 7 * 24 * time.Hour, 30 * 24 * time.Hour, 7 * 24 * time.Hour},
		{"equal", 1000 * time.Hour, 1000 * time.Hour, 1000 * time.Hour, 1000 * time.Hour},
		{"issuer set, anchor default", 0, 2 * 365 * 24 * time.Hour, 10 * 365 * 24 * time.Hour, 2 * 365 * 24 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := create(t, CreateOptions{AnchorLifetime: tt.anchor, IssuerLifetime: tt.issuer})
			anchor := onlyCert(t, "anchor", b.AnchorCert)
			issuer := onlyCert(t, "issuer", b.IssuerCert)
			if got := anchor.NotAfter.Sub(anchor.NotBefore); got != tt.wantAnchor {
				t.Errorf("anchor lifetime = %v, want %v", got, tt.wantAnchor)
			}
			if got := issuer.NotAfter.Sub(issuer.NotBefore); got != tt.wantIssuer {
				t.Errorf("issuer lifetime = %v, want %v", got, tt.wantIssuer)
			}
			if issuer.NotAfter.After(anchor.NotAfter) {
				t.Errorf("issuer outlives the anchor: %v > %v", issuer.NotAfter, anchor.NotAfter)
			}
		})
	}
}

// The clock's zone does not matter: the certificates hold the same instant.
func TestCreateClockZone(t *testing.T) {
	zone := time.FixedZone("UTC+5:30", 5*3600+1800)
	b := create(t, CreateOptions{Now: clock.In(zone)})
	anchor := onlyCert(t, "anchor", b.AnchorCert)
	if want := clock.Add(-5 * time.Minute).Truncate(time.Second); !anchor.NotBefore.Equal(want) {
		t.Errorf("NotBefore = %v, want %v", anchor.NotBefore, want)
	}
}

type errReader struct{}

var errRand = errors.New("no entropy")

func (errReader) Read([]byte) (int, error) { return 0, errRand }

func TestCreateErrors(t *testing.T) {
	tests := []struct {
		name string
		o    CreateOptions
		want string
	}{
		{"no trust domain", CreateOptions{Namespace: "mesh", Now: clock}, "trust domain and namespace are required"},
		{"no namespace", CreateOptions{TrustDomain: "example.org", Now: clock}, "trust domain and namespace are required"},
		{"issuer outlives anchor", CreateOptions{TrustDomain: "d", Namespace: "n", Now: clock, AnchorLifetime: time.Hour, IssuerLifetime: 2 * time.Hour},
			"issuer lifetime 2h0m0s exceeds the trust anchor's 1h0m0s"},
		// The default issuer lifetime (a year) is longer than a short anchor lifetime.
		{"short anchor, default issuer", CreateOptions{TrustDomain: "d", Namespace: "n", Now: clock, AnchorLifetime: 24 * time.Hour},
			"exceeds the trust anchor's 24h0m0s"},
		{"failing random source", CreateOptions{TrustDomain: "d", Namespace: "n", Now: clock, Rand: errReader{}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Create(tt.o)
			if err == nil {
				t.Fatal("Create succeeded")
			}
			if b != nil {
				t.Error("a bundle returned with the error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

// Two bundles made with the same options are different keys and certificates.
func TestCreateFresh(t *testing.T) {
	a := create(t, CreateOptions{})
	b := create(t, CreateOptions{})
	if bytes.Equal(a.AnchorKey, b.AnchorKey) || bytes.Equal(a.IssuerKey, b.IssuerKey) || bytes.Equal(a.AnchorCert, b.AnchorCert) {
		t.Error("two Create calls gave the same material")
	}
	anchorA := onlyCert(t, "a", a.AnchorCert)
	issuerB := onlyCert(t, "b", b.IssuerCert)
	if err := CheckIssuer([]*x509.Certificate{anchorA}, []*x509.Certificate{issuerB}); err == nil {
		t.Error("an issuer from another bundle checks against this anchor")
	}
}

// Regression: negative lifetimes used to be accepted. `mesh identity
// create --anchor-lifetime=-1h --issuer-lifetime=-2h` passes them through, and Create
// returns a trust anchor and issuer whose NotAfter is before their NotBefore: material
// that is never valid, with no error.
func TestCreateRejectsNegativeLifetimes(t *testing.T) {
	tests := []struct {
		name           string
		anchor, issuer time.Duration
	}{
		{"both negative", -time.Hour, -2 * time.Hour},
		{"negative issuer", 0, -time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Create(CreateOptions{TrustDomain: "d", Namespace: "n", Now: clock, AnchorLifetime: tt.anchor, IssuerLifetime: tt.issuer})
			if err != nil {
				return
			}
			for _, c := range []*x509.Certificate{onlyCert(t, "anchor", b.AnchorCert), onlyCert(t, "issuer", b.IssuerCert)} {
				if !c.NotAfter.After(c.NotBefore) {
					t.Errorf("%s: NotAfter %v is not after NotBefore %v, and Create gave no error", c.Subject, c.NotAfter, c.NotBefore)
				}
			}
		})
	}
}
