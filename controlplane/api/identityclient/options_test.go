package identityclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	meshv1 "github.com/meshplane/mesh/controlplane/api/mesh/v1"

	"github.com/meshplane/mesh/controlplane/api/identityclient/identitytest"
)

func TestConfigDefaultsAndRenewAt(t *testing.T) {
	t.Parallel()
	ca := newCA(t, "a")
	id, err := New(Config{LocalName: "a", TrustAnchorsPEM: ca.AnchorsPEM()})
	if err != nil {
		t.Fatal(err)
	}
	c := id.cfg
	if c.AnchorsPollInterval != DefaultAnchorsPollInterval || c.MinBackoff != DefaultMinBackoff || c.MaxBackoff != DefaultMaxBackoff ||
		c.RenewAt != DefaultRenewAt || c.CertifyTimeout != DefaultCertifyTimeout {
		t.Errorf("defaults: %+v", c)
	}
	for _, bad := range []float64{-0.1, 1, 1.5} {
		if _, err := New(Config{LocalName: "a", TrustAnchorsPEM: ca.AnchorsPEM(), RenewAt: bad}); err == nil || !strings.Contains(err.Error(), "RenewAt") {
			t.Errorf("RenewAt %v: %v", bad, err)
		}
	}

	// Renewal is at RenewAt of the remaining validity, never sooner than MinBackoff.
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		renewAt float64
		left    time.Duration
		want    time.Duration
	}{
		{0, 10 * time.Hour, 7 * time.Hour},
		{0.5, 10 * time.Hour, 5 * time.Hour},
		{0.5, -time.Hour, time.Second},
		{0.9, time.Second, time.Second},
	} {
		id, err := New(Config{LocalName: "a", TrustAnchorsPEM: ca.AnchorsPEM(), RenewAt: tc.renewAt, MinBackoff: time.Second,
			Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		if got := id.renewIn(&held{until: now.Add(tc.left)}); got != tc.want {
			t.Errorf("RenewAt %v with %v left: renew in %v, want %v", tc.renewAt, tc.left, got, tc.want)
		}
	}
}

// An optional anchors file may be missing at start: nothing verifies (the identity
// service included, so no token is sent) until it appears, then Run certifies.
func TestOptionalAnchorsFileAppears(t *testing.T) {
	t.Parallel()
	ca := newCA(t, "a")
	svc, addr := startService(t, ca, serviceName, nil)
	missing := filepath.Join(t.TempDir(), "anchors.pem")
	var logs identitytest.LogBuffer
	id := newIdentity(t, "web", addr, ca.AnchorsPEM(), func(c *Config) {
		c.TrustAnchorsFile, c.TrustAnchorsFileOptional = missing, true
		c.Log = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	if id.Anchors() != nil {
		t.Fatal("anchors without a file")
	}
	peer := ca.Certificate(t, name("peer", "ns"), time.Hour)
	if err := id.verifyPeer([]*x509.Certificate{peer.Leaf}, "", x509.ExtKeyUsageClientAuth); !errors.Is(err, errNoAnchors) {
		t.Errorf("a peer verified without anchors: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- id.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	eventually(t, 5*time.Second, "two failed attempts", func() bool {
		return strings.Count(logs.String(), "no trust anchors yet") >= 2
	})
	if id.Ready() || svc.Calls() != 0 {
		t.Fatalf("ready %v, %d calls without anchors", id.Ready(), svc.Calls())
	}
	if n := strings.Count(logs.String(), "cannot read the trust anchors"); n != 0 {
		t.Errorf("the missing file was logged %d times by the poller (New said it waits)", n)
	}
	writeTest(t, missing, ca.AnchorsPEM())
	eventually(t, 5*time.Second, "ready once the anchors file appears", id.Ready)
	if id.Anchors() == nil {
		t.Error("no anchors after the file appeared")
	}
}

// A problem with the anchors file is logged once until it changes.
func TestAnchorsProblemsLoggedOnce(t *testing.T) {
	t.Parallel()
	ca := newCA(t, "a")
	var logs identitytest.LogBuffer
	id := newIdentity(t, "web", "127.0.0.1:1", ca.AnchorsPEM(), func(c *Config) {
		c.Log = slog.New(slog.NewTextHandler(&logs, nil))
	})
	writeTest(t, id.cfg.TrustAnchorsFile, []byte("garbage"))
	id.reloadAnchors()
	id.reloadAnchors()
	if err := os.Remove(id.cfg.TrustAnchorsFile); err != nil {
		t.Fatal(err)
	}
	id.reloadAnchors()
	id.reloadAnchors()
	out := logs.String()
	if strings.Count(out, "do not parse") != 1 || strings.Count(out, "cannot read") != 1 {
		t.Errorf("logs:\n%s", out)
	}
	if id.Anchors() == nil {
		t.Error("the anchors were dropped")
	}
	writeTest(t, id.cfg.TrustAnchorsFile, append(ca.AnchorsPEM(), newCA(t, "b").AnchorsPEM()...))
	id.reloadAnchors()
	if !strings.Contains(logs.String(), "trust anchors reloaded") {
		t.Errorf("logs:\n%s", logs.String())
	}
}

// ServerConfigRequireClientCert serves any workload of the anchors (with ALPN, TLS
// 1.3 only), and refuses clients without a certificate or with one from elsewhere.
func TestServerConfigRequireClientCert(t *testing.T) {
	t.Parallel()
	ca, other := newCA(t, "a"), newCA(t, "b")
	_, addr := startService(t, ca, serviceName, nil)
	_, oaddr := startService(t, other, serviceName, nil)
	server := newIdentity(t, "dst", addr, ca.AnchorsPEM(), nil)
	client := newIdentity(t, "web", addr, ca.AnchorsPEM(), nil)
	stranger := newIdentity(t, "stranger", oaddr, append(other.AnchorsPEM(), ca.AnchorsPEM()...), nil)
	run(t, server)
	run(t, client)
	run(t, stranger)
	saddr, states := serve(t, server.ServerConfigRequireClientCert([]string{"h2"}))

	c, err := dial(saddr, client.ClientConfig(server.LocalName(), []string{"h2"}))
	if err != nil {
		t.Fatalf("a workload of the anchors: %v", err)
	}
	defer func() { _ = c.Close() }()
	if cs := c.ConnectionState(); cs.NegotiatedProtocol != "h2" || cs.Version != tls.VersionTLS13 {
		t.Errorf("alpn %q, version %x", cs.NegotiatedProtocol, cs.Version)
	}
	if got := PeerIdentity(<-states); got != client.LocalName() {
		t.Errorf("server side: peer %q", got)
	}
	if got := echo(t, c, "hi"); got != client.LocalName()+":hi" {
		t.Errorf("echo %q", got)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca.AnchorsPEM())
	for what, cfg := range map[string]*tls.Config{
		"no client certificate":         {MinVersion: tls.VersionTLS13, RootCAs: roots, ServerName: server.LocalName()},
		"a certificate from another CA": stranger.ClientConfig(server.LocalName(), nil),
		"TLS 1.2": {MaxVersion: tls.VersionTLS12, RootCAs: roots, ServerName: server.LocalName(),
			Certificates: []tls.Certificate{ca.Certificate(t, name("web", "ns"), time.Hour)}},
	} {
		if c, err := dial(saddr, cfg); err == nil {
			_ = c.Close()
			t.Errorf("%s: accepted", what)
		}
	}
}

// hangingService accepts Certify calls and never answers them.
type hangingService struct {
	meshv1.UnimplementedIdentityServer
	calls atomic.Int32
}

func (h *hangingService) Certify(ctx context.Context, _ *meshv1.CertifyRequest) (*meshv1.CertifyResponse, error) {
	h.calls.Add(1)
	<-ctx.Done()
	return nil, status.Error(codes.Canceled, "gone")
}

// A Certify call that hangs is abandoned after CertifyTimeout and retried.
func TestCertifyTimeout(t *testing.T) {
	t.Parallel()
	ca := newCA(t, "a")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cert := ca.Certificate(t, serviceName, time.Hour)
	g := grpc.NewServer(grpc.Creds(credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert}})))
	hang := &hangingService{}
	meshv1.RegisterIdentityServer(g, hang)
	go func() { _ = g.Serve(ln) }()
	t.Cleanup(g.Stop)

	id := newIdentity(t, "web", ln.Addr().String(), ca.AnchorsPEM(), func(c *Config) { c.CertifyTimeout = 100 * time.Millisecond })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- id.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	// Without the timeout the first call would hang for the test's life.
	eventually(t, 5*time.Second, "a retry after a hanging call", func() bool { return hang.calls.Load() >= 3 })
	if id.Ready() {
		t.Error("ready without an answer")
	}
}
