package identity

import (
	"bytes"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

type certSpec struct {
	cn  string
	ca  bool
	dns []string
	at  time.Time
	// noBasicConstraints leaves the basic constraints extension out, even for ca.
	noBasicConstraints bool
	key                crypto.Signer // nil: a new P-256 key
}

var serial atomic.Int64

// newCert makes a certificate from spec, signed by parent's key (self-signed when parent
// is nil), and returns it with its key.
func newCert(t *testing.T, spec certSpec, parent *x509.Certificate, parentKey crypto.Signer) (*x509.Certificate, crypto.Signer) {
	t.Helper()
	key := spec.key
	if key == nil {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		key = k
	}
	at := spec.at
	if at.IsZero() {
		at = clock
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial.Add(1)),
		Subject:               pkix.Name{CommonName: spec.cn},
		NotBefore:             at.Add(-time.Hour),
		NotAfter:              at.Add(24 * time.Hour),
		DNSNames:              spec.dns,
		BasicConstraintsValid: !spec.noBasicConstraints,
		IsCA:                  spec.ca,
	}
	if spec.ca {
		tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	} else {
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c, key
}

func certPEM(certs ...*x509.Certificate) []byte {
	var b bytes.Buffer
	for _, c := range certs {
		_ = pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	return b.Bytes()
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func TestParseCertificates(t *testing.T) {
	root, rootKey := newCert(t, certSpec{cn: "root", ca: true}, nil, nil)
	inter, _ := newCert(t, certSpec{cn: "inter", ca: true}, root, rootKey)
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	sec1, err := x509.MarshalECPrivateKey(ecKey)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("bundle in order, with text around the blocks", func(t *testing.T) {
		data := "Certificate:\n    Data: (openssl -text output)\n" + string(certPEM(inter)) + "\nsome text\n" + string(certPEM(root)) + "trailing\n"
		certs, err := ParseCertificates("bundle.pem", []byte(data))
		if err != nil {
			t.Fatal(err)
		}
		if len(certs) != 2 || certs[0].Subject.CommonName != "inter" || certs[1].Subject.CommonName != "root" {
			t.Errorf("got %d certificates %v", len(certs), certs)
		}
	})

	tests := []struct {
		name string
		data []byte
		want []string
	}{
		{"empty", nil, []string{"ca.crt: no PEM certificate found"}},
		{"no PEM", []byte("just some text\n"), []string{"ca.crt: no PEM certificate found"}},
		{"DER instead of PEM", root.Raw, []string{"ca.crt: no PEM certificate found"}},
		{"PKCS#8 key after a certificate", append(certPEM(root), pemBlock("PRIVATE KEY", pkcs8)...),
			[]string{"ca.crt: PEM block 2 is a private key (PRIVATE KEY)", "only certificates"}},
		{"SEC 1 key first", append(pemBlock("EC PRIVATE KEY", sec1), certPEM(root)...),
			[]string{"ca.crt: PEM block 1 is a private key (EC PRIVATE KEY)"}},
		{"RSA key", pemBlock("RSA PRIVATE KEY", []byte{1, 2, 3}),
			[]string{"ca.crt: PEM block 1 is a private key (RSA PRIVATE KEY)"}},
		{"certificate request", pemBlock("CERTIFICATE REQUEST", []byte{1, 2, 3}),
			[]string{`ca.crt: PEM block 1 is a "CERTIFICATE REQUEST", want CERTIFICATE`}},
		{"corrupt certificate", append(certPEM(root), pemBlock("CERTIFICATE", []byte("garbage"))...),
			[]string{"ca.crt: certificate 2: "}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			certs, err := ParseCertificates("ca.crt", tt.data)
			if err == nil {
				t.Fatalf("ParseCertificates succeeded with %d certificates", len(certs))
			}
			if certs != nil {
				t.Error("certificates returned with the error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestParsePrivateKey(t *testing.T) {
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	must := func(b []byte, err error) []byte {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name string
		data []byte
		pub  crypto.PublicKey
	}{
		{"PKCS#8 ECDSA", pemBlock("PRIVATE KEY", must(x509.MarshalPKCS8PrivateKey(ecKey))), ecKey.Public()},
		{"SEC 1 ECDSA", pemBlock("EC PRIVATE KEY", must(x509.MarshalECPrivateKey(ecKey))), ecKey.Public()},
		{"PKCS#1 RSA", pemBlock("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey)), rsaKey.Public()},
		{"PKCS#8 RSA", pemBlock("PRIVATE KEY", must(x509.MarshalPKCS8PrivateKey(rsaKey))), rsaKey.Public()},
		{"PKCS#8 Ed25519", pemBlock("PRIVATE KEY", must(x509.MarshalPKCS8PrivateKey(edKey))), edKey.Public()},
		{"text before the block", append([]byte("# issuer key\n"), pemBlock("PRIVATE KEY", must(x509.MarshalPKCS8PrivateKey(ecKey)))...), ecKey.Public()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, err := ParsePrivateKey("issuer.key", tt.data)
			if err != nil {
				t.Fatalf("ParsePrivateKey: %v", err)
			}
			pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
			if !ok || !pub.Equal(tt.pub) {
				t.Errorf("parsed key %T is not the key written", key)
			}
		})
	}
}

// Regression: `openssl ecparam -name prime256v1 -genkey` writes an
// "EC PARAMETERS" block before the "EC PRIVATE KEY" block. ParsePrivateKey looks only at
// the first PEM block and used to reject the file ("PEM block is a \"EC PARAMETERS\", want a
// private key"), although it holds a SEC 1 EC key. crypto/tls.X509KeyPair skips such
// blocks; ParsePrivateKey should too.
func TestParsePrivateKeyAfterECParameters(t *testing.T) {
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sec1, err := x509.MarshalECPrivateKey(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	// DER of the named curve OID 1.2.840.10045.3.1.7 (prime256v1), as openssl writes it.
	params := []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}
	data := append(pemBlock("EC PARAMETERS", params), pemBlock("EC PRIVATE KEY", sec1)...)
	key, err := ParsePrivateKey("issuer.key", data)
	if err != nil {
		t.Fatalf("ParsePrivateKey of openssl ecparam -genkey output: %v", err)
	}
	if !ecKey.PublicKey.Equal(key.Public()) {
		t.Error("parsed the wrong key")
	}
}

func TestParsePrivateKeyErrors(t *testing.T) {
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sec1, err := x509.MarshalECPrivateKey(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	xKey, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	x25519, err := x509.MarshalPKCS8PrivateKey(xKey)
	if err != nil {
		t.Fatal(err)
	}
	root, _ := newCert(t, certSpec{cn: "root", ca: true}, nil, nil)
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "issuer.key: no PEM private key found"},
		{"not PEM", []byte("-----BEGIN nothing"), "issuer.key: no PEM private key found"},
		{"a certificate", certPEM(root), `issuer.key: PEM block is a "CERTIFICATE", want a private key`},
		{"encrypted PKCS#8", pemBlock("ENCRYPTED PRIVATE KEY", []byte{1}), `issuer.key: PEM block is a "ENCRYPTED PRIVATE KEY"`},
		{"SEC 1 key labelled PKCS#8", pemBlock("PRIVATE KEY", sec1), "issuer.key: "},
		{"corrupt SEC 1", pemBlock("EC PRIVATE KEY", []byte("garbage")), "issuer.key: "},
		{"corrupt PKCS#1", pemBlock("RSA PRIVATE KEY", []byte("garbage")), "issuer.key: "},
		{"X25519 cannot sign", pemBlock("PRIVATE KEY", x25519), "issuer.key: unsupported private key type *ecdh.PrivateKey"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, err := ParsePrivateKey("issuer.key", tt.data)
			if err == nil {
				t.Fatalf("ParsePrivateKey succeeded: %T", key)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestCheckAnchors(t *testing.T) {
	root, rootKey := newCert(t, certSpec{cn: "root", ca: true}, nil, nil)
	root2, _ := newCert(t, certSpec{cn: "root2", ca: true}, nil, nil)
	leaf, _ := newCert(t, certSpec{cn: "leaf.example.org", dns: []string{"leaf.example.org"}}, root, rootKey)
	noBC, _ := newCert(t, certSpec{cn: "no-constraints", ca: true, noBasicConstraints: true}, nil, nil)

	if err := CheckAnchors("ca.crt", []*x509.Certificate{root, root2}); err != nil {
		t.Errorf("two CA anchors: %v", err)
	}
	tests := []struct {
		name    string
		anchors []*x509.Certificate
		want    string
	}{
		{"leaf certificate", []*x509.Certificate{leaf}, "ca.crt: certificate 1 (CN=leaf.example.org) is not a CA certificate"},
		{"leaf after a CA", []*x509.Certificate{root, leaf}, "ca.crt: certificate 2 (CN=leaf.example.org) is not a CA certificate"},
		{"no basic constraints", []*x509.Certificate{root, root2, noBC}, "ca.crt: certificate 3 (CN=no-constraints) is not a CA certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckAnchors("ca.crt", tt.anchors)
			if err == nil || err.Error() != tt.want {
				t.Errorf("CheckAnchors = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestCheckKeyPair(t *testing.T) {
	root, rootKey := newCert(t, certSpec{cn: "root", ca: true}, nil, nil)
	_, otherKey := newCert(t, certSpec{cn: "other", ca: true}, nil, nil)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	rsaCert, _ := newCert(t, certSpec{cn: "rsa", ca: true, key: rsaKey}, nil, nil)

	if err := CheckKeyPair(root, rootKey); err != nil {
		t.Errorf("matching pair: %v", err)
	}
	if err := CheckKeyPair(rsaCert, rsaKey); err != nil {
		t.Errorf("matching RSA pair: %v", err)
	}
	for _, tt := range []struct {
		name string
		cert *x509.Certificate
		key  crypto.Signer
	}{
		{"another ECDSA key", root, otherKey},
		{"an RSA key for an ECDSA certificate", root, rsaKey},
		{"an ECDSA key for an RSA certificate", rsaCert, rootKey},
	} {
		err := CheckKeyPair(tt.cert, tt.key)
		if err == nil || !strings.Contains(err.Error(), "is not the private key of certificate CN=") {
			t.Errorf("%s: CheckKeyPair = %v", tt.name, err)
		}
	}
}

func TestCheckIssuer(t *testing.T) {
	root, rootKey := newCert(t, certSpec{cn: "root", ca: true}, nil, nil)
	inter, interKey := newCert(t, certSpec{cn: "inter", ca: true}, root, rootKey)
	issuerViaInter, _ := newCert(t, certSpec{cn: "issuer-via-inter", ca: true}, inter, interKey)
	issuerDirect, _ := newCert(t, certSpec{cn: "issuer-direct", ca: true}, root, rootKey)
	otherRoot, otherKey := newCert(t, certSpec{cn: "other-root", ca: true}, nil, nil)
	foreignIssuer, _ := newCert(t, certSpec{cn: "foreign-issuer", ca: true}, otherRoot, otherKey)
	leaf, _ := newCert(t, certSpec{cn: "leaf"}, root, rootKey)
	// A CA whose certificate is signed by a non-CA (leaf) key: not a valid chain.
	_, leafKey := newCert(t, certSpec{cn: "leaf-signer"}, root, rootKey)
	leafCert, _ := newCert(t, certSpec{cn: "leaf-signer", key: leafKey}, root, rootKey)
	signedByLeaf, _ := newCert(t, certSpec{cn: "signed-by-leaf", ca: true}, leafCert, leafKey)

	// Two CAs that sign each other, so a walk up the chain goes round in circles.
	_, kA := newCert(t, certSpec{cn: "a", ca: true}, nil, nil)
	_, kB := newCert(t, certSpec{cn: "b", ca: true}, nil, nil)
	tmplA, _ := newCert(t, certSpec{cn: "a", ca: true, key: kA}, nil, nil)
	tmplB, _ := newCert(t, certSpec{cn: "b", ca: true, key: kB}, nil, nil)
	aByB, _ := newCert(t, certSpec{cn: "a", ca: true, key: kA}, tmplB, kB)
	bByA, _ := newCert(t, certSpec{cn: "b", ca: true, key: kB}, tmplA, kA)
	issuerByA, _ := newCert(t, certSpec{cn: "issuer-by-a", ca: true}, tmplA, kA)

	certs := func(c ...*x509.Certificate) []*x509.Certificate { return c }
	tests := []struct {
		name    string
		anchors []*x509.Certificate
		chain   []*x509.Certificate
		want    string // "" for success
	}{
		{"signed by the anchor", certs(root), certs(issuerDirect), ""},
		{"signed by the second anchor", certs(otherRoot, root), certs(issuerDirect), ""},
		{"the issuer is an anchor", certs(root), certs(root), ""},
		{"through an intermediate", certs(root), certs(issuerViaInter, inter), ""},
		{"through an intermediate, anchor in the chain too", certs(root), certs(issuerViaInter, inter, root), ""},
		{"unrelated certificates in the chain", certs(root), certs(issuerViaInter, foreignIssuer, otherRoot, inter), ""},
		{"intermediate missing", certs(root), certs(issuerViaInter),
			"issuer certificate CN=issuer-via-inter is not signed by any trust anchor (issued by CN=inter)"},
		{"foreign issuer", certs(root), certs(foreignIssuer),
			"issuer certificate CN=foreign-issuer is not signed by any trust anchor (issued by CN=other-root)"},
		{"foreign issuer with its own root in the chain", certs(root), certs(foreignIssuer, otherRoot),
			"issuer certificate CN=foreign-issuer is not signed by any trust anchor"},
		{"no anchors", nil, certs(issuerDirect), "is not signed by any trust anchor"},
		{"leaf as issuer", certs(root), certs(leaf), "issuer certificate CN=leaf is not a CA certificate"},
		{"empty chain", certs(root), nil, "no issuer certificate"},
		{"signed by a non-CA certificate", certs(root), certs(signedByLeaf, leafCert), "is not signed by any trust anchor"},
		{"cross-signed loop", certs(root), certs(issuerByA, aByB, bByA), "is not signed by any trust anchor"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckIssuer(tt.anchors, tt.chain)
			if tt.want == "" {
				if err != nil {
					t.Errorf("CheckIssuer: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("CheckIssuer = %v, want %q", err, tt.want)
			}
		})
	}
}

// CheckIssuer uses no clock: an expired issuer and anchor still check.
func TestCheckIssuerIgnoresValidity(t *testing.T) {
	old := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
	root, rootKey := newCert(t, certSpec{cn: "old-root", ca: true, at: old}, nil, nil)
	issuer, _ := newCert(t, certSpec{cn: "old-issuer", ca: true, at: old}, root, rootKey)
	if err := CheckIssuer([]*x509.Certificate{root}, []*x509.Certificate{issuer}); err != nil {
		t.Errorf("CheckIssuer of expired certificates: %v", err)
	}
}
