package destination

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	meshv1 "github.com/meshplane/mesh/controlplane/api/mesh/v1"
)

// Anchors are the mesh's trust anchors: the PEM file (the mounted
// mesh-identity-trust-roots ConfigMap, re-read when it changes) or, without a file,
// fixed PEM text (the values' identity.trustAnchorsPEM).
type Anchors struct {
	File string
	PEM  string

	mu   sync.Mutex
	raw  []byte
	pool *x509.CertPool
}

// Pool returns the current anchors.
func (a *Anchors) Pool() (*x509.CertPool, error) {
	raw := []byte(a.PEM)
	if a.File != "" {
		var err error
		if raw, err = os.ReadFile(a.File); err != nil {
			return nil, fmt.Errorf("trust anchors: %w", err)
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.pool != nil && bytes.Equal(raw, a.raw) {
		return a.pool, nil
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(raw) {
		return nil, fmt.Errorf("trust anchors %s: no PEM certificate", a.File)
	}
	a.raw, a.pool = raw, pool
	return pool, nil
}

// Certificate is a workload certificate from the identity service: the destination
// service's own, obtained exactly as a proxy obtains its own (Identity.Certify with a
// CSR and the projected ServiceAccount token) and renewed at half its life.
type Certificate struct {
	Name         string // the identity asked for: SA.NS.serviceaccount.identity.TRUST-DOMAIN
	IdentityAddr string // the identity service's gRPC address
	IdentityName string // the identity service's identity, checked with TLS
	TokenFile    string // the projected ServiceAccount token (identity audience), re-read each time
	Anchors      *Anchors
	Log          *slog.Logger
	Now          func() time.Time
	RetryMin     time.Duration // first delay after a failure (default 1s), doubled up to RetryMax
	RetryMax     time.Duration // default 30s

	mu   sync.RWMutex
	cert *tls.Certificate
}

// Run obtains the certificate and renews it until ctx ends. Failures are logged and
// retried with backoff; the previous certificate is served meanwhile.
func (c *Certificate) Run(ctx context.Context) error {
	retryMin, retryMax := c.RetryMin, c.RetryMax
	if retryMin <= 0 {
		retryMin = time.Second
	}
	if retryMax < retryMin {
		retryMax = max(30*time.Second, retryMin)
	}
	delay := retryMin
	for {
		var wait time.Duration
		leaf, err := c.renew(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			c.Log.Warn("obtaining the serving certificate from identity", "err", err, "retry", delay)
			wait, delay = delay, min(2*delay, retryMax)
		} else {
			delay = retryMin
			now := c.Now()
			wait = leaf.NotAfter.Sub(now) / 2
			c.Log.Info("serving certificate issued", "identity", c.Name, "notAfter", leaf.NotAfter, "renewIn", wait.Round(time.Second))
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// renew asks identity for a certificate for a new key.
func (c *Certificate) renew(ctx context.Context) (*x509.Certificate, error) {
	pool, err := c.Anchors.Pool()
	if err != nil {
		return nil, err
	}
	token, err := os.ReadFile(c.TokenFile)
	if err != nil {
		return nil, fmt.Errorf("token: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: c.Name}, DNSNames: []string{c.Name}}, key)
	if err != nil {
		return nil, fmt.Errorf("CSR: %w", err)
	}
	creds := credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS13, RootCAs: pool, ServerName: c.IdentityName})
	conn, err := grpc.NewClient(c.IdentityAddr, grpc.WithTransportCredentials(creds))
	if err != nil {
		return nil, fmt.Errorf("identity %s: %w", c.IdentityAddr, err)
	}
	defer conn.Close()
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := meshv1.NewIdentityClient(conn).Certify(cctx, &meshv1.CertifyRequest{Identity: c.Name, Token: bytes.TrimSpace(token), CertificateSigningRequest: csr})
	if err != nil {
		return nil, fmt.Errorf("identity %s: Certify: %w", c.IdentityAddr, err)
	}
	leaf, err := x509.ParseCertificate(resp.GetLeafCertificate())
	if err != nil {
		return nil, fmt.Errorf("the issued certificate: %w", err)
	}
	inter := x509.NewCertPool()
	chain := [][]byte{leaf.Raw}
	for _, der := range resp.GetIntermediateCertificates() {
		ic, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("an intermediate certificate: %w", err)
		}
		inter.AddCert(ic)
		chain = append(chain, der)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, DNSName: c.Name, CurrentTime: c.Now(),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		return nil, fmt.Errorf("the issued certificate does not verify: %w", err)
	}
	c.mu.Lock()
	c.cert = &tls.Certificate{Certificate: chain, PrivateKey: key, Leaf: leaf}
	c.mu.Unlock()
	return leaf, nil
}

// GetCertificate is for tls.Config.GetCertificate.
func (c *Certificate) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.cert == nil {
		return nil, errors.New("no serving certificate yet")
	}
	return c.cert, nil
}

// Ready reports whether a certificate was issued (for /ready).
func (c *Certificate) Ready() error {
	_, err := c.GetCertificate(nil)
	return err
}

// ServerTLS is the gRPC server's TLS: TLS 1.3 only, the certificate, and a client
// certificate required and verified against the current anchors (a proxy presents its
// identity certificate).
func ServerTLS(cert *Certificate, anchors *Anchors) *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS13, GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
		pool, err := anchors.Pool()
		if err != nil {
			return nil, err
		}
		return &tls.Config{MinVersion: tls.VersionTLS13, NextProtos: []string{"h2"}, GetCertificate: cert.GetCertificate,
			ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}, nil
	}}
}
