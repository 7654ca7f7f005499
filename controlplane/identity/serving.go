package identity

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"sync"
	"time"
)

// ServingCert is the identity service's own TLS certificate, for its service identity
// (mesh-identity.NS.serviceaccount.identity.TRUST-DOMAIN), signed by the current
// issuer. It is renewed at half its life, or as soon as the issuer changes.
type ServingCert struct {
	Source   *Source
	Name     string
	Lifetime time.Duration
	Now      func() time.Time

	mu     sync.Mutex
	cert   *tls.Certificate
	until  time.Time
	issuer *Issuer
}

// GetCertificate is for tls.Config.GetCertificate.
func (s *ServingCert) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	iss, err := s.Source.Issuer()
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.Now()
	if s.cert != nil && s.issuer == iss && now.Before(s.until) {
		return s.cert, nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	leaf, err := iss.Sign(&x509.CertificateRequest{PublicKey: &key.PublicKey}, s.Name, now, s.Lifetime, time.Minute)
	if err != nil {
		return nil, fmt.Errorf("serving certificate: %w", err)
	}
	chain := [][]byte{leaf.Raw, iss.Cert.Raw}
	for _, c := range iss.Intermediates {
		chain = append(chain, c.Raw)
	}
	s.cert = &tls.Certificate{Certificate: chain, PrivateKey: key, Leaf: leaf}
	s.until = now.Add(leaf.NotAfter.Sub(now) / 2)
	s.issuer = iss
	return s.cert, nil
}
