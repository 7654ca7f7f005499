package identity

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"time"
)

// CreateOptions describe a new trust anchor and issuer.
type CreateOptions struct {
	TrustDomain    string
	Namespace      string        // control-plane namespace, part of the issuer's name
	AnchorLifetime time.Duration // default 10 years
	IssuerLifetime time.Duration // default 1 year
	Now            time.Time     // injected clock
	Rand           io.Reader     // nil means crypto/rand
}

// Bundle is a trust anchor and an issuer signed by it, PEM encoded.
type Bundle struct {
	AnchorCert, AnchorKey []byte
	IssuerCert, IssuerKey []byte
}

// Create makes an ECDSA P-256 trust anchor (CA, path length 1) and an issuer (CA, path
// length 0) signed by it, both usable only to sign certificates.
func Create(o CreateOptions) (*Bundle, error) {
	if o.TrustDomain == "" || o.Namespace == "" {
		return nil, fmt.Errorf("trust domain and namespace are required")
	}
	if o.AnchorLifetime == 0 {
		o.AnchorLifetime = 10 * 365 * 24 * time.Hour
	}
	if o.IssuerLifetime == 0 {
		o.IssuerLifetime = 365 * 24 * time.Hour
	}
	if o.AnchorLifetime < 0 || o.IssuerLifetime < 0 {
		return nil, fmt.Errorf("lifetimes must be positive (trust anchor %s, issuer %s)", o.AnchorLifetime, o.IssuerLifetime)
	}
	if o.Now.IsZero() {
		return nil, fmt.Errorf("no clock: CreateOptions.Now is zero")
	}
	if o.IssuerLifetime > o.AnchorLifetime {
		return nil, fmt.Errorf("issuer lifetime %s exceeds the trust anchor's %s", o.IssuerLifetime, o.AnchorLifetime)
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	notBefore := o.Now.Add(-5 * time.Minute).UTC().Truncate(time.Second)

	anchorKey, err := ecdsa.GenerateKey(elliptic.P256(), o.Rand)
	if err != nil {
		return nil, fmt.Errorf("trust anchor key: %w", err)
	}
	anchorTmpl, err := caTemplate(o.Rand, "root."+o.TrustDomain, notBefore, o.AnchorLifetime, 1)
	if err != nil {
		return nil, err
	}
	anchorDER, err := x509.CreateCertificate(o.Rand, anchorTmpl, anchorTmpl, &anchorKey.PublicKey, anchorKey)
	if err != nil {
		return nil, fmt.Errorf("trust anchor: %w", err)
	}
	anchor, err := x509.ParseCertificate(anchorDER)
	if err != nil {
		return nil, fmt.Errorf("trust anchor: %w", err)
	}

	issuerKey, err := ecdsa.GenerateKey(elliptic.P256(), o.Rand)
	if err != nil {
		return nil, fmt.Errorf("issuer key: %w", err)
	}
	issuerName := fmt.Sprintf("identity.%s.%s", o.Namespace, o.TrustDomain)
	issuerTmpl, err := caTemplate(o.Rand, issuerName, notBefore, o.IssuerLifetime, 0)
	if err != nil {
		return nil, err
	}
	issuerTmpl.DNSNames = []string{issuerName}
	issuerDER, err := x509.CreateCertificate(o.Rand, issuerTmpl, anchor, &issuerKey.PublicKey, anchorKey)
	if err != nil {
		return nil, fmt.Errorf("issuer: %w", err)
	}

	b := &Bundle{
		AnchorCert: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: anchorDER}),
		IssuerCert: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: issuerDER}),
	}
	if b.AnchorKey, err = encodeKey(anchorKey); err != nil {
		return nil, err
	}
	if b.IssuerKey, err = encodeKey(issuerKey); err != nil {
		return nil, err
	}
	return b, nil
}

func caTemplate(r io.Reader, cn string, notBefore time.Time, lifetime time.Duration, maxPathLen int) (*x509.Certificate, error) {
	serial, err := rand.Int(r, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("serial number: %w", err)
	}
	return &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             notBefore,
		NotAfter:              notBefore.Add(lifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            maxPathLen,
		MaxPathLenZero:        maxPathLen == 0,
	}, nil
}

func encodeKey(k *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("encoding key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}
