package dataplane

import (
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/meshplane/mesh/proxy/proxytest"
)

// TestH2Spec runs h2spec (github.com/summerwind/h2spec) against every HTTP/2 surface
// of the proxy: the outbound h2c listener, the inbound listener, and the outbound →
// mTLS → inbound chain, each on a port declared HTTP/2 (MESH_PROXY_HTTP2_PORTS) and
// on a port left to protocol detection. On a declared port every case must pass. On
// a detecting port every case but one must: h2spec 3.5/2 sends
// "INVALID CONNECTION PREFACE\r\n\r\n", which is not HTTP/2 (nor anything else
// the proxy knows), so detection forwards it as opaque TCP and the application
// answers; closing it would break every text protocol a client speaks first.
func TestH2Spec(t *testing.T) {
	bin := proxytest.H2SpecBinary(t)
	cp := startCP(t)
	appAddr := app(t)
	appPort := map[uint16]bool{appAddr.Port(): true}
	client, server, svc := meshPair(t, cp, appAddr)
	outbound := startProxy(t, cp, clientID, appAddr, appAddr) // to an address outside the mesh
	declared := func(ports map[uint16]bool) func(*Options) {
		return func(o *Options) { o.HTTP2Ports = ports }
	}
	h2Outbound := startProxy(t, cp, clientID, appAddr, appAddr, declared(appPort))
	h2Inbound := startProxy(t, cp, serverID, appAddr, netip.AddrPort{}, declared(appPort), func(o *Options) {
		// As if redirected by iptables from the application's port.
		o.OrigDst = func(*net.TCPConn) (netip.AddrPort, error) { return appAddr, nil }
	})
	h2Client := startProxy(t, cp, clientID, netip.AddrPort{}, svc, declared(map[uint16]bool{svc.Port(): true}))
	const invalidPreface = "http2/3.5 Sends invalid connection preface"
	for _, tc := range []struct {
		name     string
		addr     netip.AddrPort
		detected bool
	}{
		{"outbound-http2-port", netip.MustParseAddrPort(h2Outbound.out.Addr().String()), false},
		{"inbound-http2-port", h2Inbound.inAddr(), false},
		{"chain-http2-port", netip.MustParseAddrPort(h2Client.out.Addr().String()), false},
		{"outbound-detected", netip.MustParseAddrPort(outbound.out.Addr().String()), true},
		{"inbound-detected", server.inAddr(), true},
		{"chain-detected", netip.MustParseAddrPort(client.out.Addr().String()), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, failed := proxytest.RunH2Spec(t, bin, tc.addr)
			t.Logf("h2spec %s: %d/%d passed", tc.name, n-len(failed), n)
			for _, f := range failed {
				if tc.detected && strings.HasPrefix(f, invalidPreface+":") {
					continue
				}
				t.Errorf("failed: %s", f)
			}
			if n < 146 && os.Getenv("MESH_H2SPEC_CASES") == "" {
				t.Errorf("h2spec ran %d cases, want 146 (145 and the strict one)", n)
			}
		})
	}
}
