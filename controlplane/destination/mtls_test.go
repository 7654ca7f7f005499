package destination

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	corev1 "k8s.io/api/core/v1"

	"github.com/meshplane/mesh/controlplane/api/identityclient"
	meshv1 "github.com/meshplane/mesh/controlplane/api/mesh/v1"
	"github.com/meshplane/mesh/controlplane/identity"
	renderidentity "github.com/meshplane/mesh/render/identity"
)

// reviewer accepts one token, for one ServiceAccount, and counts the reviews.
type reviewer struct {
	token, user string
	reviews     atomic.Int32
}

func (r *reviewer) Review(_ context.Context, token string, aud []string) (string, bool, error) {
	r.reviews.Add(1)
	return r.user, token == r.token && len(aud) == 1 && aud[0] == "identity.meshplane.io", nil
}

// testCA is an issuer and its anchors, from the same code as mesh install's.
func testCA(t testing.TB) (*identity.Issuer, []byte) {
	t.Helper()
	b, err := renderidentity.Create(renderidentity.CreateOptions{TrustDomain: "cluster.local", Namespace: "mesh-system", Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	iss, err := identity.ParseSecret(&corev1.Secret{Data: map[string][]byte{corev1.TLSCertKey: b.IssuerCert, corev1.TLSPrivateKeyKey: b.IssuerKey, "ca.crt": b.AnchorCert}})
	if err != nil {
		t.Fatal(err)
	}
	return iss, b.AnchorCert
}

// leaf issues a certificate for name.
func leaf(t testing.TB, iss *identity.Issuer, name string) tls.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	c, err := iss.Sign(&x509.CertificateRequest{PublicKey: &key.PublicKey}, name, time.Now(), time.Hour, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{c.Raw, iss.Cert.Raw}, PrivateKey: key, Leaf: c}
}

// identityServer serves the real Certify over TLS on loopback.
func identityServer(t testing.TB, iss *identity.Issuer, rev identity.TokenReviewer, lifetime time.Duration) string {
	t.Helper()
	serving := leaf(t, iss, identity.Name("mesh-identity", "mesh-system", "cluster.local"))
	g := grpc.NewServer(grpc.Creds(credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{serving}})))
	meshv1.RegisterIdentityServer(g, &identity.Server{TrustDomain: "cluster.local", Audience: "identity.meshplane.io", Lifetime: lifetime,
		Reviewer: rev, Issuer: func() (*identity.Issuer, error) { return iss, nil }, Now: time.Now})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = g.Serve(lis) }()
	t.Cleanup(g.Stop)
	return lis.Addr().String()
}

// The destination's certificate comes from the real identity Certify through the
// proxy's identity client, configured as mesh-controller destination does: the
// trust-roots file is missing at start (the ConfigMap is optional and not published
// yet), a refused token is retried until the file is right, and the certificate is
// renewed. The server then takes only TLS 1.3 clients with a certificate from the
// anchors, and trusts a new anchor once the file has it.
func TestServerTLSWithIdentityClient(t *testing.T) {
	t.Parallel()
	iss, anchorPEM := testCA(t)
	dir := t.TempDir()
	tokenFile, anchorsFile := filepath.Join(dir, "token"), filepath.Join(dir, "ca-bundle.crt")
	if err := os.WriteFile(tokenFile, []byte("wrong"), 0o600); err != nil {
		t.Fatal(err)
	}
	rev := &reviewer{token: "right", user: "system:serviceaccount:mesh-system:mesh-destination"}
	name := identity.Name("mesh-destination", "mesh-system", "cluster.local")
	id, err := identityclient.New(identityclient.Config{LocalName: name, TokenFile: tokenFile,
		TrustAnchorsFile: anchorsFile, TrustAnchorsFileOptional: true,
		Addr: identityServer(t, iss, rev, 2*time.Second), Name: identity.Name("mesh-identity", "mesh-system", "cluster.local"),
		Log: slog.New(slog.DiscardHandler), Now: time.Now,
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond, AnchorsPollInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- id.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	ready := func() error {
		if !id.Ready() {
			return identityclient.ErrNotReady
		}
		return nil
	}

	if ready() == nil || rev.reviews.Load() != 0 {
		t.Fatal("certified, or a token sent, without trust anchors")
	}
	if err := os.WriteFile(anchorsFile, anchorPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "a refused token is retried", func() error {
		if rev.reviews.Load() < 2 {
			return errors.New("fewer than 2 reviews")
		}
		return nil
	})
	if ready() == nil {
		t.Fatal("ready with a refused token")
	}
	if err := os.WriteFile(tokenFile, []byte("right\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "certificate issued", ready)
	first, _ := id.Certificate()
	if first.Leaf.Subject.CommonName != name || first.Leaf.DNSNames[0] != name {
		t.Fatalf("issued for %s %v", first.Leaf.Subject.CommonName, first.Leaf.DNSNames)
	}
	// Renewed at 70% of its 2s life.
	waitUntil(t, "renewal", func() error {
		if c, _ := id.Certificate(); c.Leaf.SerialNumber.Cmp(first.Leaf.SerialNumber) == 0 {
			return errors.New("not renewed yet")
		}
		return nil
	})

	// The destination server with that certificate.
	srv, _, _ := fakeServer(t)
	if !srv.Start(ctx) {
		t.Fatal("not synced")
	}
	g := grpc.NewServer(grpc.Creds(credentials.NewTLS(ServerTLS(id))))
	meshv1.RegisterDestinationServer(g, srv)
	lis, _ := net.Listen("tcp", "127.0.0.1:0")
	go func() { _ = g.Serve(lis) }()
	defer g.Stop()

	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(anchorPEM)
	proxy := leaf(t, iss, identity.Name("web", "default", "cluster.local"))
	otherCA, otherAnchorPEM := testCA(t)
	call := func(cfg *tls.Config) error {
		conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
		if err != nil {
			return err
		}
		defer conn.Close()
		cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
		defer ccancel()
		stream, err := meshv1.NewDestinationClient(conn).Get(cctx, &meshv1.GetDestination{Path: "192.0.2.1:80"})
		if err != nil {
			return err
		}
		u, err := stream.Recv()
		if err == nil && (u.GetNoEndpoints() == nil || u.GetNoEndpoints().Exists) {
			err = errors.New("unexpected answer " + u.String())
		}
		return err
	}
	good := &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: roots, ServerName: name, Certificates: []tls.Certificate{proxy}}
	if err := call(good); err != nil {
		t.Fatalf("a proxy with its identity certificate: %v", err)
	}
	for what, cfg := range map[string]*tls.Config{
		"no client certificate":         {MinVersion: tls.VersionTLS13, RootCAs: roots, ServerName: name},
		"a certificate from another CA": {MinVersion: tls.VersionTLS13, RootCAs: roots, ServerName: name, Certificates: []tls.Certificate{leaf(t, otherCA, identity.Name("web", "default", "cluster.local"))}},
		"TLS 1.2":                       {MaxVersion: tls.VersionTLS12, RootCAs: roots, ServerName: name, Certificates: []tls.Certificate{proxy}},
		"another server identity":       {MinVersion: tls.VersionTLS13, RootCAs: roots, ServerName: identity.Name("mesh-identity", "mesh-system", "cluster.local"), Certificates: []tls.Certificate{proxy}},
	} {
		if err := call(cfg); err == nil {
			t.Errorf("%s: accepted", what)
		}
	}
	// The anchors file changes (the kubelet updates the mounted ConfigMap): a new
	// anchor is trusted without a restart, once the file is polled.
	if err := os.WriteFile(anchorsFile, append(append([]byte{}, anchorPEM...), otherAnchorPEM...), 0o600); err != nil {
		t.Fatal(err)
	}
	other := leaf(t, otherCA, identity.Name("web", "default", "cluster.local"))
	waitUntil(t, "a certificate from a new anchor in the file is accepted", func() error {
		return call(&tls.Config{MinVersion: tls.VersionTLS13, RootCAs: roots, ServerName: name, Certificates: []tls.Certificate{other}})
	})
}
