// Package proxytest is a small in-process control plane for the proxy's tests: the
// identitytest Identity service (a fresh test CA), and a Destination service over mTLS
// answering from a table the test edits. The real services are tested against a real
// API server in controlplane/.
package proxytest

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/meshplane/mesh/controlplane/api/identityclient/identitytest"
	meshv1 "github.com/meshplane/mesh/controlplane/api/mesh/v1"
)

// Names of the test control plane's services.
const (
	IdentityName    = "mesh-identity.mesh.serviceaccount.identity.cluster.local"
	DestinationName = "mesh-destination.mesh.serviceaccount.identity.cluster.local"
)

// Endpoint is one address the Destination service returns.
type Endpoint struct {
	Addr     netip.AddrPort
	Identity string
	Opaque   bool
	Labels   map[string]string
}

// ControlPlane is the running test control plane.
type ControlPlane struct {
	AnchorsPEM      []byte
	IdentityAddr    string
	DestinationAddr string
	// Identity is the identity service (identitytest): calls, tokens, lifetimes.
	Identity *identitytest.Service

	mu    sync.Mutex
	table map[string][]Endpoint // path -> endpoints; absent: not in the mesh
	prof  map[string]*meshv1.DestinationProfile
	subs  map[string]map[chan struct{}]struct{}
}

// Start runs both services on loopback until the test ends. Proxies authenticate
// with the token identitytest.Token(their identity).
func Start(t testing.TB) *ControlPlane {
	t.Helper()
	ca := identitytest.NewCA(t, "root.test.identity")
	c := &ControlPlane{AnchorsPEM: ca.AnchorsPEM(), table: map[string][]Endpoint{},
		prof: map[string]*meshv1.DestinationProfile{}, subs: map[string]map[chan struct{}]struct{}{}}
	c.Identity = identitytest.StartService(t, ca, IdentityName, nil)
	c.IdentityAddr = c.Identity.Addr
	dstLis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c.DestinationAddr = dstLis.Addr().String()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(c.AnchorsPEM)
	dstSrv := grpc.NewServer(grpc.Creds(credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS13,
		Certificates: []tls.Certificate{ca.Certificate(t, DestinationName, 24*time.Hour)},
		ClientAuth:   tls.RequireAndVerifyClientCert, ClientCAs: pool})))
	meshv1.RegisterDestinationServer(dstSrv, destinationServer{c: c})
	go func() { _ = dstSrv.Serve(dstLis) }()
	t.Cleanup(dstSrv.Stop)
	return c
}

// Set makes path (host:port) resolve to eps (none: a known service without endpoints).
func (c *ControlPlane) Set(path string, eps ...Endpoint) {
	c.mu.Lock()
	c.table[path] = eps
	c.notify(path)
	c.mu.Unlock()
}

// Unset makes path "not in the mesh".
func (c *ControlPlane) Unset(path string) {
	c.mu.Lock()
	delete(c.table, path)
	c.notify(path)
	c.mu.Unlock()
}

func (c *ControlPlane) notify(path string) {
	for ch := range c.subs[path] {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

type destinationServer struct {
	meshv1.UnimplementedDestinationServer
	c *ControlPlane
}

func (s destinationServer) Get(req *meshv1.GetDestination, stream grpc.ServerStreamingServer[meshv1.Update]) error {
	c := s.c
	path := req.GetPath()
	ch := make(chan struct{}, 1)
	c.mu.Lock()
	if c.subs[path] == nil {
		c.subs[path] = map[chan struct{}]struct{}{}
	}
	c.subs[path][ch] = struct{}{}
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.subs[path], ch)
		c.mu.Unlock()
	}()
	var sent map[netip.AddrPort]bool
	for {
		c.mu.Lock()
		eps, known := c.table[path]
		c.mu.Unlock()
		now := map[netip.AddrPort]bool{}
		var add []*meshv1.WeightedAddr
		for _, e := range eps {
			now[e.Addr] = true
			add = append(add, weighted(e))
		}
		var remove []*meshv1.WeightedAddr
		for a := range sent {
			if !now[a] {
				remove = append(remove, &meshv1.WeightedAddr{Addr: tcp(a)})
			}
		}
		var ups []*meshv1.Update
		switch {
		case !known:
			ups = append(ups, &meshv1.Update{Update: &meshv1.Update_NoEndpoints{NoEndpoints: &meshv1.NoEndpoints{Exists: false}}})
		case len(eps) == 0:
			ups = append(ups, &meshv1.Update{Update: &meshv1.Update_NoEndpoints{NoEndpoints: &meshv1.NoEndpoints{Exists: true}}})
		default:
			if len(remove) > 0 {
				ups = append(ups, &meshv1.Update{Update: &meshv1.Update_Remove{Remove: &meshv1.AddressSet{Addrs: remove}}})
			}
			ups = append(ups, &meshv1.Update{Update: &meshv1.Update_Add{Add: &meshv1.AddressSet{Addrs: add}}})
		}
		for _, u := range ups {
			if err := stream.Send(u); err != nil {
				return err
			}
		}
		sent = now
		select {
		case <-ch:
		case <-stream.Context().Done():
			return nil
		}
	}
}

// SetProfile makes path's profile p (nil: none).
func (c *ControlPlane) SetProfile(path string, p *meshv1.DestinationProfile) {
	c.mu.Lock()
	c.prof[path] = p
	c.notify("profile:" + path)
	c.mu.Unlock()
}

func (s destinationServer) GetProfile(req *meshv1.GetDestination, stream grpc.ServerStreamingServer[meshv1.DestinationProfile]) error {
	c := s.c
	key := "profile:" + req.GetPath()
	ch := make(chan struct{}, 1)
	c.mu.Lock()
	if c.subs[key] == nil {
		c.subs[key] = map[chan struct{}]struct{}{}
	}
	c.subs[key][ch] = struct{}{}
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.subs[key], ch)
		c.mu.Unlock()
	}()
	for {
		c.mu.Lock()
		p := c.prof[req.GetPath()]
		c.mu.Unlock()
		if p == nil {
			p = &meshv1.DestinationProfile{}
		}
		if err := stream.Send(p); err != nil {
			return err
		}
		select {
		case <-ch:
		case <-stream.Context().Done():
			return nil
		}
	}
}

func tcp(a netip.AddrPort) *meshv1.TcpAddress {
	ip := a.Addr().AsSlice()
	return &meshv1.TcpAddress{Ip: ip, Port: uint32(a.Port())}
}

func weighted(e Endpoint) *meshv1.WeightedAddr {
	w := &meshv1.WeightedAddr{Addr: tcp(e.Addr), Weight: 10000, MetricLabels: e.Labels}
	if e.Identity != "" {
		w.TlsIdentity = &meshv1.TlsIdentity{Name: e.Identity}
		w.ProtocolHint = &meshv1.ProtocolHint{Protocol: &meshv1.ProtocolHint_H2_{H2: &meshv1.ProtocolHint_H2{}}}
	}
	if e.Opaque {
		w.ProtocolHint = &meshv1.ProtocolHint{Protocol: &meshv1.ProtocolHint_Opaque_{Opaque: &meshv1.ProtocolHint_Opaque{}}}
	}
	return w
}
