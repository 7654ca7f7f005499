package identityclient

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/meshplane/mesh/controlplane/api/identityclient/identitytest"
	meshv1 "github.com/meshplane/mesh/controlplane/api/mesh/v1"
)

func TestNewAnchorsErrorsNameTheSource(t *testing.T) {
	_, err := New(Config{LocalName: "a", TrustAnchorsPEM: []byte("nope")})
	if err == nil || !strings.Contains(err.Error(), "inline trust anchors") {
		t.Errorf("inline: %v", err)
	}
	f := filepath.Join(t.TempDir(), "anchors.pem")
	_, err = New(Config{LocalName: "a", TrustAnchorsFile: f})
	if err == nil || !strings.Contains(err.Error(), f) {
		t.Errorf("missing file: %v", err)
	}
	writeTest(t, f, []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"))
	_, err = New(Config{LocalName: "a", TrustAnchorsFile: f})
	if err == nil || !strings.Contains(err.Error(), f) || !strings.Contains(err.Error(), "want CERTIFICATE") {
		t.Errorf("bad file: %v", err)
	}
}

func TestCertify(t *testing.T) {
	ca := newCA(t, "a")
	svc, addr := startService(t, ca, serviceName, nil)
	id := newIdentity(t, "web", addr, ca.AnchorsPEM(), func(c *Config) { c.Dir = t.TempDir() })
	if id.Ready() || !id.Expiry().IsZero() {
		t.Fatal("ready before Run")
	}
	if _, err := id.Certificate(); !errors.Is(err, ErrNotReady) {
		t.Fatalf("Certificate before Run: %v", err)
	}
	run(t, id)
	c, err := id.Certificate()
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Leaf.DNSNames; len(got) != 1 || got[0] != name("web", "ns") {
		t.Errorf("leaf names %q", got)
	}
	if len(c.Certificate) != 2 {
		t.Errorf("chain of %d, want leaf + issuer", len(c.Certificate))
	}
	if d := time.Until(id.Expiry()); d < 50*time.Minute || d > time.Hour {
		t.Errorf("expiry in %v", d)
	}
	if id.LocalName() != name("web", "ns") {
		t.Errorf("LocalName %q", id.LocalName())
	}
	if svc.Calls() != 1 {
		t.Errorf("%d calls", svc.Calls())
	}
	for _, f := range []string{"key.pem", "cert.pem"} {
		if _, err := os.Stat(filepath.Join(id.cfg.Dir, f)); err != nil {
			t.Error(err)
		}
	}
}

func TestTokenReadFreshEachTime(t *testing.T) {
	ca := newCA(t, "a")
	svc, addr := startService(t, ca, serviceName, nil)
	svc.SetLifetime(time.Second)
	id := newIdentity(t, "web", addr, ca.AnchorsPEM(), nil)
	run(t, id)
	// A rotated token that the service refuses: renewals fail, and are retried.
	writeTest(t, id.cfg.TokenFile, []byte("rotated"))
	eventually(t, 5*time.Second, "a call with the rotated token", func() bool {
		tokens := svc.Tokens()
		return tokens[len(tokens)-1] == "rotated"
	})
	writeTest(t, id.cfg.TokenFile, []byte(identitytest.Token(id.LocalName())))
	first := id.Expiry()
	eventually(t, 5*time.Second, "renewal with the good token", func() bool { return id.Expiry().After(first) })
}

func TestRenewalKeepsConnections(t *testing.T) {
	ca := newCA(t, "a")
	svc, addr := startService(t, ca, serviceName, nil)
	svc.SetLifetime(1500 * time.Millisecond)
	server := newIdentity(t, "server", addr, ca.AnchorsPEM(), nil)
	client := newIdentity(t, "client", addr, ca.AnchorsPEM(), nil)
	run(t, server)
	run(t, client)

	saddr, states := serve(t, server.ServerConfig([]string{"test"}))
	old, err := dial(saddr, client.ClientConfig(server.LocalName(), []string{"test"}))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = old.Close() }()
	oldServer := old.ConnectionState().PeerCertificates[0].SerialNumber
	oldClient := (<-states).PeerCertificates[0].SerialNumber

	// Both renew (at 70% of 1.5s), then the old certificates expire.
	se, ce := server.Expiry(), client.Expiry()
	eventually(t, 5*time.Second, "renewals", func() bool { return server.Expiry().After(se) && client.Expiry().After(ce) })
	time.Sleep(time.Until(se.Add(100 * time.Millisecond)))

	if got := echo(t, old, "still here"); got != client.LocalName()+":still here" {
		t.Errorf("old connection answered %q", got)
	}
	fresh, err := dial(saddr, client.ClientConfig(server.LocalName(), []string{"test"}))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = fresh.Close() }()
	if fresh.ConnectionState().PeerCertificates[0].SerialNumber.Cmp(oldServer) == 0 {
		t.Error("a new handshake got the old server certificate")
	}
	if (<-states).PeerCertificates[0].SerialNumber.Cmp(oldClient) == 0 {
		t.Error("a new handshake got the old client certificate")
	}
	if got := echo(t, fresh, "new"); got != client.LocalName()+":new" {
		t.Errorf("new connection answered %q", got)
	}
}

func TestServiceWithWrongNameRefused(t *testing.T) {
	ca := newCA(t, "a")
	svc, addr := startService(t, ca, "impostor.mesh.serviceaccount.identity."+trustDomain, nil)
	id := newIdentity(t, "web", addr, ca.AnchorsPEM(), nil)
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(id.serviceTLS())))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	err = id.certify(context.Background(), meshv1.NewIdentityClient(conn), key, nil)
	if err == nil || !strings.Contains(err.Error(), "impostor") {
		t.Fatalf("certify: %v", err)
	}
	if svc.Calls() != 0 {
		t.Error("the token was sent to the impostor")
	}
	// And Run keeps retrying without becoming ready.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := id.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if id.Ready() || svc.Calls() != 0 {
		t.Error("certified by an impostor")
	}
}

func TestServiceDownAtStart(t *testing.T) {
	ca := newCA(t, "a")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	id := newIdentity(t, "web", addr, ca.AnchorsPEM(), nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- id.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	time.Sleep(300 * time.Millisecond)
	if id.Ready() {
		t.Fatal("ready without a service")
	}
	if ln, err = net.Listen("tcp", addr); err != nil {
		t.Fatal(err)
	}
	startService(t, ca, serviceName, ln)
	eventually(t, 10*time.Second, "ready", id.Ready)
}

func TestMTLS(t *testing.T) {
	ca := newCA(t, "a")
	_, addr := startService(t, ca, serviceName, nil)
	server := newIdentity(t, "server", addr, ca.AnchorsPEM(), nil)
	client := newIdentity(t, "client", addr, ca.AnchorsPEM(), nil)
	run(t, server)
	run(t, client)
	saddr, states := serve(t, server.ServerConfig([]string{"mesh/1"}))

	c, err := dial(saddr, client.ClientConfig(server.LocalName(), []string{"mesh/1"}))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	cs := c.ConnectionState()
	if PeerIdentity(cs) != server.LocalName() || cs.NegotiatedProtocol != "mesh/1" || cs.Version != tls.VersionTLS13 {
		t.Errorf("client side: peer %q, alpn %q, version %x", PeerIdentity(cs), cs.NegotiatedProtocol, cs.Version)
	}
	if got := PeerIdentity(<-states); got != client.LocalName() {
		t.Errorf("server side: peer %q", got)
	}

	// A client expecting another identity refuses the server.
	if _, err := dial(saddr, client.ClientConfig(name("other", "ns"), nil)); err == nil || !strings.Contains(err.Error(), "want") {
		t.Errorf("other serverName: %v", err)
	}

	if _, err := dial(saddr, client.ClientConfig("", nil)); err == nil {
		t.Error("an empty serverName accepted the server")
	}

	// A client without a certificate is let in; the server sees no identity.
	anon, err := dial(saddr, &tls.Config{MinVersion: tls.VersionTLS13, InsecureSkipVerify: true})
	if err != nil {
		t.Fatalf("anonymous client: %v", err)
	}
	defer func() { _ = anon.Close() }()
	if got := PeerIdentity(<-states); got != "" {
		t.Errorf("anonymous peer %q", got)
	}
	if got := echo(t, anon, "hi"); got != ":hi" {
		t.Errorf("anonymous echo %q", got)
	}

	// Certificates from another CA: refused both ways.
	other := newCA(t, "b")
	_, oaddr := startService(t, other, serviceName, nil)
	stranger := newIdentity(t, "stranger", oaddr, other.AnchorsPEM(), nil)
	run(t, stranger)
	if _, err := dial(saddr, stranger.ClientConfig(server.LocalName(), nil)); err == nil {
		t.Error("a server from another CA was accepted")
	}
	// The stranger trusting our CA still has its client certificate refused.
	stranger.anchors.Store(must(ParseAnchors(append(other.AnchorsPEM(), ca.AnchorsPEM()...))))
	if _, err := dial(saddr, stranger.ClientConfig(server.LocalName(), nil)); err == nil {
		t.Error("a client certificate from another CA was accepted")
	}
	straddr, _ := serve(t, stranger.ServerConfig(nil))
	if _, err := dial(straddr, client.ClientConfig(stranger.LocalName(), nil)); err == nil {
		t.Error("a server certificate from another CA was accepted")
	}
}

func TestGRPCCredentials(t *testing.T) {
	ca := newCA(t, "a")
	_, addr := startService(t, ca, serviceName, nil)
	server := newIdentity(t, "dst", addr, ca.AnchorsPEM(), nil)
	client := newIdentity(t, "client", addr, ca.AnchorsPEM(), nil)
	run(t, server)
	run(t, client)
	// A gRPC server with the proxy's server config, echoing the caller's identity
	// through the Identity service's error (any unary call does).
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer(grpc.Creds(credentials.NewTLS(server.ServerConfig([]string{"h2"}))))
	meshv1.RegisterIdentityServer(s, meshv1.UnimplementedIdentityServer{})
	go func() { _ = s.Serve(ln) }()
	defer s.Stop()
	for _, tc := range []struct {
		creds credentials.TransportCredentials
		ok    bool
	}{{client.GRPCCredentials(server.LocalName()), true}, {client.GRPCCredentials(name("x", "y")), false}, {insecure.NewCredentials(), false}} {
		conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(tc.creds))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err = meshv1.NewIdentityClient(conn).Certify(ctx, &meshv1.CertifyRequest{})
		cancel()
		_ = conn.Close()
		// Unimplemented means the call reached the server.
		if reached := err != nil && strings.Contains(err.Error(), "Unimplemented"); reached != tc.ok {
			t.Errorf("case %v: %v", tc.ok, err)
		}
	}
}

func TestAnchorRotation(t *testing.T) {
	ca, next := newCA(t, "a"), newCA(t, "b")
	_, addr := startService(t, ca, serviceName, nil)
	_, naddr := startService(t, next, serviceName, nil)
	server := newIdentity(t, "server", addr, ca.AnchorsPEM(), nil)
	// The client already has a certificate from the next CA and trusts both.
	client := newIdentity(t, "client", naddr, append(ca.AnchorsPEM(), next.AnchorsPEM()...), nil)
	run(t, server)
	run(t, client)
	saddr, _ := serve(t, server.ServerConfig(nil))
	if _, err := dial(saddr, client.ClientConfig(server.LocalName(), nil)); err == nil {
		t.Fatal("accepted before the rotation")
	}
	writeTest(t, server.cfg.TrustAnchorsFile, append(ca.AnchorsPEM(), next.AnchorsPEM()...))
	eventually(t, 5*time.Second, "the rotated anchors", func() bool {
		c, err := dial(saddr, client.ClientConfig(server.LocalName(), nil))
		if err == nil {
			_ = c.Close()
		}
		return err == nil
	})
	// A broken file keeps the anchors.
	writeTest(t, server.cfg.TrustAnchorsFile, []byte("garbage"))
	time.Sleep(100 * time.Millisecond)
	c, err := dial(saddr, client.ClientConfig(server.LocalName(), nil))
	if err != nil {
		t.Fatalf("after a broken anchors file: %v", err)
	}
	_ = c.Close()
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
