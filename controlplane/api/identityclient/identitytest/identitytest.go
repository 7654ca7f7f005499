// Package identitytest is a test certificate authority and identity service for
// tests of identityclient and of its users (the proxy's mTLS): it behaves like the
// control plane's (it checks the token and the CSR's shape, and signs ECDSA P-256
// leaves with an issuer under a root that is the trust anchor) over real sockets and
// TLS.
//
// A token is accepted when it is Token(identity).
package identitytest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	meshv1 "github.com/meshplane/mesh/controlplane/api/mesh/v1"
)

// Token is the token the test service accepts for identity.
func Token(identity string) string { return "token:" + identity }

// CA is a root (the trust anchor) and an issuer it signed, both ECDSA P-256, valid
// for a day.
type CA struct {
	Root, Issuer *x509.Certificate
	IssuerKey    *ecdsa.PrivateKey
}

// NewCA makes a CA; name goes into the certificates' subjects.
func NewCA(t testing.TB, name string) *CA {
	t.Helper()
	rootKey := key(t)
	now := time.Now()
	rootTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name + " root"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	root := create(t, rootTmpl, rootTmpl, &rootKey.PublicKey, rootKey)
	issuerKey := key(t)
	issuer := create(t, &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: name + " issuer"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}, root, &issuerKey.PublicKey, rootKey)
	return &CA{Root: root, Issuer: issuer, IssuerKey: issuerKey}
}

// AnchorsPEM is the root, PEM encoded.
func (ca *CA) AnchorsPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Root.Raw})
}

// Sign issues a leaf for pub named name (subject and only DNS SAN), for server and
// client authentication, like the control plane's issuer.
func (ca *CA) Sign(t testing.TB, pub any, name string, lifetime time.Duration) *x509.Certificate {
	t.Helper()
	c, err := ca.sign(pub, name, lifetime)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (ca *CA) sign(pub any, name string, lifetime time.Duration) (*x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		return nil, fmt.Errorf("serial: %w", err)
	}
	now := time.Now()
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: name},
		DNSNames: []string{name}, NotBefore: now.Add(-time.Minute), NotAfter: now.Add(lifetime),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}, ca.Issuer, pub, ca.IssuerKey)
	if err != nil {
		return nil, fmt.Errorf("signing %s: %w", name, err)
	}
	return x509.ParseCertificate(der)
}

// Certificate is a new key and a leaf for name, with the issuer in the chain.
func (ca *CA) Certificate(t testing.TB, name string, lifetime time.Duration) tls.Certificate {
	t.Helper()
	k := key(t)
	leaf := ca.Sign(t, &k.PublicKey, name, lifetime)
	return tls.Certificate{Certificate: [][]byte{leaf.Raw, ca.Issuer.Raw}, PrivateKey: k, Leaf: leaf}
}

func key(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func create(t testing.TB, tmpl, parent *x509.Certificate, pub, priv any) *x509.Certificate {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, priv)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Service is a running identity service.
type Service struct {
	meshv1.UnimplementedIdentityServer

	// Addr is where it listens.
	Addr string

	ca       *CA
	lifetime atomic.Int64 // time.Duration
	calls    atomic.Int32
	mu       sync.Mutex
	tokens   []string
}

// StartService serves an identity service until the test ends, on ln (a new
// loopback listener if nil), presenting a serving certificate for servingName.
// Leaves live an hour unless SetLifetime says otherwise.
func StartService(t testing.TB, ca *CA, servingName string, ln net.Listener) *Service {
	t.Helper()
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
	}
	s := &Service{Addr: ln.Addr().String(), ca: ca}
	s.lifetime.Store(int64(time.Hour))
	cert := ca.Certificate(t, servingName, 24*time.Hour)
	g := grpc.NewServer(grpc.Creds(credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert}})))
	meshv1.RegisterIdentityServer(g, s)
	go func() { _ = g.Serve(ln) }()
	t.Cleanup(g.Stop)
	return s
}

// SetLifetime sets the lifetime of the leaves signed from now on.
func (s *Service) SetLifetime(d time.Duration) { s.lifetime.Store(int64(d)) }

// Calls is how many Certify calls were made.
func (s *Service) Calls() int { return int(s.calls.Load()) }

// Tokens are the tokens received, in order.
func (s *Service) Tokens() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.tokens...)
}

// Certify checks the request like the control plane does and signs the CSR.
func (s *Service) Certify(_ context.Context, req *meshv1.CertifyRequest) (*meshv1.CertifyResponse, error) {
	s.calls.Add(1)
	s.mu.Lock()
	s.tokens = append(s.tokens, string(req.GetToken()))
	s.mu.Unlock()
	if string(req.GetToken()) != Token(req.GetIdentity()) {
		return nil, status.Errorf(codes.Unauthenticated, "the token is not valid for %s", req.GetIdentity())
	}
	csr, err := x509.ParseCertificateRequest(req.GetCertificateSigningRequest())
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "malformed CSR: %v", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "the CSR's signature does not verify: %v", err)
	}
	name := req.GetIdentity()
	if csr.Subject.CommonName != name || len(csr.DNSNames) != 1 || csr.DNSNames[0] != name {
		return nil, status.Errorf(codes.InvalidArgument, "the CSR must name %s as its subject and only DNS name (has %q, %q)", name, csr.Subject.CommonName, csr.DNSNames)
	}
	if k, ok := csr.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
		return nil, status.Error(codes.InvalidArgument, fmt.Sprintf("the CSR's key is %T, want ECDSA P-256", csr.PublicKey))
	}
	leaf, err := s.ca.sign(csr.PublicKey, name, time.Duration(s.lifetime.Load()))
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return &meshv1.CertifyResponse{LeafCertificate: leaf.Raw, IntermediateCertificates: [][]byte{s.ca.Issuer.Raw},
		ValidUntil: timestamppb.New(leaf.NotAfter)}, nil
}

// LogBuffer collects the log of a client or process under test (an slog handler's
// writer, or a command's stderr) while the test reads it: safe for concurrent use.
type LogBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b = append(l.b, p...)
	return len(p), nil
}

func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.b)
}
