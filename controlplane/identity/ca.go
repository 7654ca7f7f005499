// Package identity is the identity controller's CA service: it checks a proxy's
// ServiceAccount token and CSR and signs a short-lived certificate for the identity
// SA.NS.serviceaccount.identity.TRUST-DOMAIN.
package identity

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"time"
)

// Issuer is the certificate and key identity signs with, and the trust anchors it
// chains to.
type Issuer struct {
	Cert          *x509.Certificate
	Key           crypto.Signer
	Intermediates []*x509.Certificate // between Cert and the anchors, if any
	Anchors       []*x509.Certificate
}

// ErrIssuerExpired is returned when the issuer cannot sign any more.
var ErrIssuerExpired = errors.New("the issuer certificate has expired")

// Sign issues a leaf for name to the CSR's public key: valid from now-skew until
// now+lifetime, but never past the issuer's own expiry.
func (i *Issuer) Sign(csr *x509.CertificateRequest, name string, now time.Time, lifetime, skew time.Duration) (*x509.Certificate, error) {
	if !now.Before(i.Cert.NotAfter) {
		return nil, fmt.Errorf("%w (%s)", ErrIssuerExpired, i.Cert.NotAfter.UTC().Format(time.RFC3339))
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, err
	}
	notAfter := now.Add(lifetime)
	if notAfter.After(i.Cert.NotAfter) {
		notAfter = i.Cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name},
		DNSNames:     []string{name},
		NotBefore:    now.Add(-skew),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, i.Cert, csr.PublicKey, i.Key)
	if err != nil {
		return nil, fmt.Errorf("signing: %w", err)
	}
	return x509.ParseCertificate(der)
}
