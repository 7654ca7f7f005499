package identityclient

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/meshplane/mesh/controlplane/api/identityclient/identitytest"
)

const (
	trustDomain = "cluster.local"
	serviceName = "mesh-identity.mesh.serviceaccount.identity." + trustDomain
)

func name(sa, ns string) string { return sa + "." + ns + ".serviceaccount.identity." + trustDomain }

// startService starts an identity service of ca whose serving name is servingName.
func startService(t *testing.T, ca *identitytest.CA, servingName string, ln net.Listener) (*identitytest.Service, string) {
	t.Helper()
	s := identitytest.StartService(t, ca, servingName, ln)
	return s, s.Addr
}

func newCA(t *testing.T, name string) *identitytest.CA { return identitytest.NewCA(t, name) }

// newIdentity builds an Identity for sa.ns whose token file and anchors are in a
// temporary directory.
func newIdentity(t *testing.T, sa, addr string, anchors []byte, mod func(*Config)) *Identity {
	t.Helper()
	dir := t.TempDir()
	n := name(sa, "ns")
	cfg := Config{LocalName: n, TokenFile: filepath.Join(dir, "token"), TrustAnchorsFile: filepath.Join(dir, "anchors.pem"),
		Addr: addr, Name: serviceName, MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
		AnchorsPollInterval: 20 * time.Millisecond}
	writeTest(t, cfg.TokenFile, []byte(identitytest.Token(n)))
	writeTest(t, cfg.TrustAnchorsFile, anchors)
	if mod != nil {
		mod(&cfg)
	}
	id, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// run runs id until the test ends and waits until it is ready.
func run(t *testing.T, id *Identity) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- id.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	eventually(t, 5*time.Second, "ready", id.Ready)
}

func eventually(t *testing.T, d time.Duration, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func writeTest(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// serve accepts TLS connections with cfg and echoes lines, prefixed with the peer's
// identity; the server-side connection states go to states.
func serve(t *testing.T, cfg *tls.Config) (addr string, states chan tls.ConnectionState) {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	states = make(chan tls.ConnectionState, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer func() { _ = c.Close() }()
				tc := c.(*tls.Conn)
				if err := tc.Handshake(); err != nil {
					return
				}
				states <- tc.ConnectionState()
				buf := make([]byte, 1024)
				for {
					n, err := tc.Read(buf)
					if err != nil {
						return
					}
					if _, err := tc.Write([]byte(PeerIdentity(tc.ConnectionState()) + ":" + string(buf[:n]))); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String(), states
}

// echo writes msg and reads the answer.
func echo(t *testing.T, c *tls.Conn, msg string) string {
	t.Helper()
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatalf("write: %v", err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 1024)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return string(buf[:n])
}

func dial(addr string, cfg *tls.Config) (*tls.Conn, error) {
	d := &net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, cfg)
	if err != nil {
		return nil, err
	}
	// A TLS 1.3 server refuses a client certificate after the client's handshake is
	// done: read once so that the refusal (an alert) surfaces here.
	_ = c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if _, err := c.Read(make([]byte, 1)); err != nil && !isTimeout(err) {
		_ = c.Close()
		return nil, err
	}
	_ = c.SetReadDeadline(time.Time{})
	return c, nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
