package identityclient

import (
	"testing"
)

// A proxy whose bundle holds two trust anchors (a rotation's middle steps) verifies
// peers whose chains end in either, on both sides of the connection, and still
// refuses a peer of a third CA.
func TestTwoAnchorsBothVerify(t *testing.T) {
	t.Parallel()
	a, b, c := newCA(t, "a"), newCA(t, "b"), newCA(t, "c")
	bundle := append(a.AnchorsPEM(), b.AnchorsPEM()...)
	_, aAddr := startService(t, a, serviceName, nil)
	_, bAddr := startService(t, b, serviceName, nil)
	_, cAddr := startService(t, c, serviceName, nil)

	// The proxy under test: certified by A, trusting A and B.
	proxy := newIdentity(t, "proxy", aAddr, bundle, nil)
	peerA := newIdentity(t, "peer-a", aAddr, bundle, nil) // chain ends in A
	peerB := newIdentity(t, "peer-b", bAddr, bundle, nil) // chain ends in B
	peerC := newIdentity(t, "peer-c", cAddr, append(bundle, c.AnchorsPEM()...), nil)
	for _, id := range []*Identity{proxy, peerA, peerB, peerC} {
		run(t, id)
	}
	proxyAddr, states := serve(t, proxy.ServerConfig(nil))

	// Inbound: clients of A and of B are verified, and seen with their identity.
	for _, peer := range []*Identity{peerA, peerB} {
		conn, err := dial(proxyAddr, peer.ClientConfig(proxy.LocalName(), nil))
		if err != nil {
			t.Fatalf("%s dialling the proxy: %v", peer.LocalName(), err)
		}
		if got := PeerIdentity(<-states); got != peer.LocalName() {
			t.Errorf("the proxy saw %q, want %q", got, peer.LocalName())
		}
		if got, want := echo(t, conn, "hi"), peer.LocalName()+":hi"; got != want {
			t.Errorf("echo %q, want %q", got, want)
		}
		_ = conn.Close()
	}

	// Outbound: the proxy verifies servers of A and of B by their identity.
	for _, peer := range []*Identity{peerA, peerB} {
		addr, _ := serve(t, peer.ServerConfig(nil))
		conn, err := dial(addr, proxy.ClientConfig(peer.LocalName(), nil))
		if err != nil {
			t.Fatalf("the proxy dialling %s: %v", peer.LocalName(), err)
		}
		if got := PeerIdentity(conn.ConnectionState()); got != peer.LocalName() {
			t.Errorf("the proxy verified %q, want %q", got, peer.LocalName())
		}
		_ = conn.Close()
	}

	// C is in neither anchor's chain: refused both ways.
	if _, err := dial(proxyAddr, peerC.ClientConfig(proxy.LocalName(), nil)); err == nil {
		t.Error("a client of a third CA was accepted")
	}
	cAddrServe, _ := serve(t, peerC.ServerConfig(nil))
	if _, err := dial(cAddrServe, proxy.ClientConfig(peerC.LocalName(), nil)); err == nil {
		t.Error("a server of a third CA was accepted")
	}
}
