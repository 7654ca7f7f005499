package proxytest

import (
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/meshplane/mesh/controlplane/api/identityclient/identitytest"
	"github.com/meshplane/mesh/controlplane/api/proxyenv"
)

// ProxyLocalName is the identity ProxyEnv gives the proxy.
const ProxyLocalName = "web.default.serviceaccount.identity.cluster.local"

// ProxyEnv configures `mesh-proxy run` against c on free loopback ports, with a good
// token, inbound traffic going to appAddr (MESH_PROXY_INBOUND_ORIG_DST).
func (c *ControlPlane) ProxyEnv(t testing.TB, appAddr string) map[string]string {
	t.Helper()
	token := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(token, []byte(identitytest.Token(ProxyLocalName)), 0o600); err != nil {
		t.Fatal(err)
	}
	return map[string]string{
		proxyenv.InboundListenAddr:    FreeAddr(t),
		proxyenv.OutboundListenAddr:   FreeAddr(t),
		proxyenv.AdminListenAddr:      FreeAddr(t),
		proxyenv.TapListenAddr:        FreeAddr(t),
		proxyenv.InboundOrigDst:       appAddr,
		proxyenv.IdentitySvcAddr:      c.IdentityAddr,
		proxyenv.IdentitySvcName:      IdentityName,
		proxyenv.IdentityTokenFile:    token,
		proxyenv.IdentityLocalName:    ProxyLocalName,
		proxyenv.IdentityTrustAnchors: string(c.AnchorsPEM),
		proxyenv.DestinationSvcAddr:   c.DestinationAddr,
		proxyenv.DestinationSvcName:   DestinationName,
		proxyenv.ShutdownGracePeriod:  "1s",
	}
}

// FreeAddr is a loopback address with a port free a moment ago.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().String()
}
