package proxytest

import (
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/meshplane/mesh/controlplane/api/identityclient/identitytest"
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
		"MESH_PROXY_INBOUND_LISTEN_ADDR":    FreeAddr(t),
		"MESH_PROXY_OUTBOUND_LISTEN_ADDR":   FreeAddr(t),
		"MESH_PROXY_ADMIN_LISTEN_ADDR":      FreeAddr(t),
		"MESH_PROXY_INBOUND_ORIG_DST":       appAddr,
		"MESH_PROXY_IDENTITY_SVC_ADDR":      c.IdentityAddr,
		"MESH_PROXY_IDENTITY_SVC_NAME":      IdentityName,
		"MESH_PROXY_IDENTITY_TOKEN_FILE":    token,
		"MESH_PROXY_IDENTITY_LOCAL_NAME":    ProxyLocalName,
		"MESH_PROXY_IDENTITY_TRUST_ANCHORS": string(c.AnchorsPEM),
		"MESH_PROXY_DESTINATION_SVC_ADDR":   c.DestinationAddr,
		"MESH_PROXY_DESTINATION_SVC_NAME":   DestinationName,
		"MESH_PROXY_SHUTDOWN_GRACE_PERIOD":  "1s",
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
