// Package proxytest is a small in-process control plane for the proxy's tests: an
// Identity service that signs any well-formed CSR for the identity it names (with a
// fresh test CA), and a Destination service answering from a table the test edits.
// The real services are tested against a real API server in controlplane/.
package proxytest

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
	"net/netip"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

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
	// Lifetime of issued leaves.
	Lifetime time.Duration

	caCert *x509.Certificate
	caKey  *ecdsa.PrivateKey
	stops  []func()

	mu     sync.Mutex
	table  map[string][]Endpoint // path -> endpoints; absent: not in the mesh
	prof   map[string]*meshv1.DestinationProfile
	subs   map[string]map[chan struct{}]struct{}
	issued int
}

// Start runs both services on loopback until Stop.
func Start() (*ControlPlane, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "root.test.identity"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	ca, _ := x509.ParseCertificate(der)
	c := &ControlPlane{caCert: ca, caKey: key, Lifetime: time.Hour, table: map[string][]Endpoint{}, prof: map[string]*meshv1.DestinationProfile{}, subs: map[string]map[chan struct{}]struct{}{},
		AnchorsPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
	idLis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	dstLis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	c.IdentityAddr, c.DestinationAddr = idLis.Addr().String(), dstLis.Addr().String()

	idCert, err := c.serving(IdentityName)
	if err != nil {
		return nil, err
	}
	dstCert, err := c.serving(DestinationName)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	idSrv := grpc.NewServer(grpc.Creds(credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{idCert}})))
	meshv1.RegisterIdentityServer(idSrv, identityServer{c: c})
	dstSrv := grpc.NewServer(grpc.Creds(credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{dstCert},
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool})))
	meshv1.RegisterDestinationServer(dstSrv, destinationServer{c: c})
	go func() { _ = idSrv.Serve(idLis) }()
	go func() { _ = dstSrv.Serve(dstLis) }()
	c.stops = []func(){idSrv.Stop, dstSrv.Stop}
	return c, nil
}

// Stop ends both services.
func (c *ControlPlane) Stop() {
	for _, s := range c.stops {
		s()
	}
}

// Issued is how many certificates the identity service signed.
func (c *ControlPlane) Issued() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.issued
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

func (c *ControlPlane) sign(pub any, name string, lifetime time.Duration) (*x509.Certificate, error) {
	now := time.Now()
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(lifetime),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.caCert, pub, c.caKey)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

func (c *ControlPlane) serving(name string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	leaf, err := c.sign(&key.PublicKey, name, 24*time.Hour)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: key, Leaf: leaf}, nil
}

type identityServer struct {
	meshv1.UnimplementedIdentityServer
	c *ControlPlane
}

func (s identityServer) Certify(_ context.Context, req *meshv1.CertifyRequest) (*meshv1.CertifyResponse, error) {
	csr, err := x509.ParseCertificateRequest(req.GetCertificateSigningRequest())
	if err != nil || csr.CheckSignature() != nil {
		return nil, status.Error(codes.InvalidArgument, "malformed CSR")
	}
	if csr.Subject.CommonName != req.GetIdentity() || len(csr.DNSNames) != 1 || csr.DNSNames[0] != req.GetIdentity() {
		return nil, status.Errorf(codes.PermissionDenied, "CSR is not for %q", req.GetIdentity())
	}
	if len(req.GetToken()) == 0 {
		return nil, status.Error(codes.Unauthenticated, "no token")
	}
	leaf, err := s.c.sign(csr.PublicKey, req.GetIdentity(), s.c.Lifetime)
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	s.c.mu.Lock()
	s.c.issued++
	s.c.mu.Unlock()
	return &meshv1.CertifyResponse{LeafCertificate: leaf.Raw, ValidUntil: timestamppb.New(leaf.NotAfter)}, nil
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

// String describes the control plane.
func (c *ControlPlane) String() string {
	return fmt.Sprintf("identity %s, destination %s", c.IdentityAddr, c.DestinationAddr)
}
