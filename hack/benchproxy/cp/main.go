// Command cp is a stub control plane for hack/bench-proxy.sh: a benchmark helper, not
// a product. It
//
//   - creates an ECDSA P-256 CA and writes its anchor PEM (--anchor-file);
//   - serves mesh.v1.Identity/Certify over TLS 1.3, signing any well-formed CSR for
//     24h. The token is NOT checked: the real identity service (controlplane/identity)
//     is tested elsewhere; here only the data path is measured;
//   - serves mesh.v1.Destination over TLS 1.3 (client certificates requested and, when
//     presented, verified against the CA): Get answers a static map from --endpoint
//     flags and then holds the stream open; GetProfile answers an empty profile and
//     holds;
//   - with --certs-dir, also writes certificates for the peer proxies (haproxy, nginx):
//     for each --cert NAME, NAME.crt, NAME.key and NAME.pem (cert then key), plus ca.pem.
//
// Endpoint syntax: PATH=IP:PORT[,identity=NAME][,h2|,opaque=INBOUND_PORT]
//
//	--endpoint 127.0.0.1:9480=127.0.0.1:4143,identity=server.bench.serviceaccount.identity.cluster.local,h2
//
// A path without an --endpoint gets NoEndpoints{exists:false} (not a mesh destination).
// With no --identity-addr and --dst-addr, cp only writes the certificates and exits.
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"log"
	"math/big"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	meshv1 "github.com/meshplane/mesh/controlplane/api/mesh/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

type multi []string

func (m *multi) String() string     { return strings.Join(*m, " ") }
func (m *multi) Set(s string) error { *m = append(*m, s); return nil }

type ca struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newCA() (*ca, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "bench-proxy trust anchor"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(7 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &ca{cert: cert, key: key, pool: pool}, nil
}

// sign issues a 24h leaf for name (subject CN and single DNS SAN), server and client auth.
func (c *ca) sign(pub any, name string) (*x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name},
		DNSNames:     []string{name},
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, pub, c.key)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

func (c *ca) leaf(name string) (tls.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	cert, err := c.sign(&key.PublicKey, name)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	return tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: key, Leaf: cert}, key, nil
}

func pemBytes(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

type identitySvc struct {
	meshv1.UnimplementedIdentityServer
	ca *ca
}

func (s *identitySvc) Certify(_ context.Context, req *meshv1.CertifyRequest) (*meshv1.CertifyResponse, error) {
	csr, err := x509.ParseCertificateRequest(req.GetCertificateSigningRequest())
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "CSR: %v", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "CSR signature: %v", err)
	}
	name := req.GetIdentity()
	if name == "" {
		return nil, status.Error(codes.InvalidArgument, "no identity")
	}
	if len(csr.DNSNames) > 0 && (len(csr.DNSNames) != 1 || csr.DNSNames[0] != name) {
		return nil, status.Errorf(codes.InvalidArgument, "CSR names %v, asked for %q", csr.DNSNames, name)
	}
	leaf, err := s.ca.sign(csr.PublicKey, name)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "sign: %v", err)
	}
	log.Printf("identity: certified %s until %s", name, leaf.NotAfter.UTC().Format(time.RFC3339))
	return &meshv1.CertifyResponse{LeafCertificate: leaf.Raw, ValidUntil: timestamppb.New(leaf.NotAfter)}, nil
}

type endpoint struct {
	addr     netip.AddrPort
	identity string
	h2       bool
	opaque   bool
	inbound  uint32
}

type destinationSvc struct {
	meshv1.UnimplementedDestinationServer
	endpoints map[string]endpoint
}

func (s *destinationSvc) Get(req *meshv1.GetDestination, stream meshv1.Destination_GetServer) error {
	ep, ok := s.endpoints[req.GetPath()]
	var up *meshv1.Update
	if !ok {
		log.Printf("destination: Get %q: not a mesh destination", req.GetPath())
		up = &meshv1.Update{Update: &meshv1.Update_NoEndpoints{NoEndpoints: &meshv1.NoEndpoints{Exists: false}}}
	} else {
		log.Printf("destination: Get %q -> %s", req.GetPath(), ep.addr)
		wa := &meshv1.WeightedAddr{
			Addr:         &meshv1.TcpAddress{Ip: ep.addr.Addr().AsSlice(), Port: uint32(ep.addr.Port())},
			Weight:       10000,
			MetricLabels: map[string]string{"pod": "bench-server"},
		}
		if ep.identity != "" {
			wa.TlsIdentity = &meshv1.TlsIdentity{Name: ep.identity}
		}
		switch {
		case ep.opaque:
			wa.ProtocolHint = &meshv1.ProtocolHint{Protocol: &meshv1.ProtocolHint_Opaque_{Opaque: &meshv1.ProtocolHint_Opaque{InboundPort: ep.inbound}}}
		case ep.h2:
			wa.ProtocolHint = &meshv1.ProtocolHint{Protocol: &meshv1.ProtocolHint_H2_{H2: &meshv1.ProtocolHint_H2{}}}
		}
		up = &meshv1.Update{Update: &meshv1.Update_Add{Add: &meshv1.AddressSet{
			Addrs:        []*meshv1.WeightedAddr{wa},
			MetricLabels: map[string]string{"namespace": "bench", "service": "bench"},
		}}}
	}
	if err := stream.Send(up); err != nil {
		return err
	}
	<-stream.Context().Done()
	return nil
}

func (s *destinationSvc) GetProfile(req *meshv1.GetDestination, stream meshv1.Destination_GetProfileServer) error {
	prof := &meshv1.DestinationProfile{}
	if ep, ok := s.endpoints[req.GetPath()]; ok && ep.opaque {
		prof.OpaqueProtocol = true
	}
	if err := stream.Send(prof); err != nil {
		return err
	}
	<-stream.Context().Done()
	return nil
}

func parseEndpoint(s string) (string, endpoint, error) {
	path, rest, ok := strings.Cut(s, "=")
	if !ok || path == "" {
		return "", endpoint{}, fmt.Errorf("%q: want PATH=IP:PORT[,identity=NAME][,h2|,opaque=PORT]", s)
	}
	parts := strings.Split(rest, ",")
	var ep endpoint
	var err error
	if ep.addr, err = netip.ParseAddrPort(parts[0]); err != nil {
		return "", endpoint{}, fmt.Errorf("%q: %v", s, err)
	}
	for _, p := range parts[1:] {
		k, v, _ := strings.Cut(p, "=")
		switch k {
		case "identity":
			ep.identity = v
		case "h2":
			ep.h2 = true
		case "opaque":
			ep.opaque = true
			if v == "" {
				ep.inbound = uint32(ep.addr.Port())
			} else {
				n, err := strconv.ParseUint(v, 10, 16)
				if err != nil {
					return "", endpoint{}, fmt.Errorf("%q: opaque port: %v", s, err)
				}
				ep.inbound = uint32(n)
			}
		default:
			return "", endpoint{}, fmt.Errorf("%q: unknown option %q", s, k)
		}
	}
	return path, ep, nil
}

func writeFile(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o600)
}

func run() error {
	var (
		anchorFile   = flag.String("anchor-file", "", "write the trust anchor PEM here (required)")
		identityAddr = flag.String("identity-addr", "", "serve Identity on this address (e.g. 127.0.0.1:8180)")
		identityName = flag.String("identity-name", "mesh-identity.mesh.serviceaccount.identity.cluster.local", "the identity service's certificate name")
		dstAddr      = flag.String("dst-addr", "", "serve Destination on this address (e.g. 127.0.0.1:8186)")
		dstName      = flag.String("dst-name", "mesh-destination.mesh.serviceaccount.identity.cluster.local", "the destination service's certificate name")
		certsDir     = flag.String("certs-dir", "", "write ca.pem and NAME.{crt,key,pem} for each --cert here")
		readyFile    = flag.String("ready-file", "", "touch this file once listening")
		endpoints    multi
		certs        multi
	)
	flag.Var(&endpoints, "endpoint", "PATH=IP:PORT[,identity=NAME][,h2|,opaque=PORT] (repeatable)")
	flag.Var(&certs, "cert", "a certificate name to write into --certs-dir (repeatable)")
	flag.Parse()
	if *anchorFile == "" {
		return errors.New("--anchor-file is required")
	}
	eps := map[string]endpoint{}
	for _, e := range endpoints {
		path, ep, err := parseEndpoint(e)
		if err != nil {
			return err
		}
		eps[path] = ep
	}
	c, err := newCA()
	if err != nil {
		return err
	}
	anchorPEM := pemBytes("CERTIFICATE", c.cert.Raw)
	if err := writeFile(*anchorFile, anchorPEM); err != nil {
		return err
	}
	if *certsDir != "" {
		if err := writeFile(filepath.Join(*certsDir, "ca.pem"), anchorPEM); err != nil {
			return err
		}
		for _, name := range certs {
			leaf, key, err := c.leaf(name)
			if err != nil {
				return err
			}
			kder, err := x509.MarshalECPrivateKey(key)
			if err != nil {
				return err
			}
			crt, k := pemBytes("CERTIFICATE", leaf.Leaf.Raw), pemBytes("EC PRIVATE KEY", kder)
			for file, data := range map[string][]byte{name + ".crt": crt, name + ".key": k, name + ".pem": append(append([]byte{}, crt...), k...)} {
				if err := writeFile(filepath.Join(*certsDir, file), data); err != nil {
					return err
				}
			}
		}
	}
	if *identityAddr == "" && *dstAddr == "" {
		return nil
	}

	serve := func(addr, name string, register func(*grpc.Server)) (*grpc.Server, error) {
		cert, _, err := c.leaf(name)
		if err != nil {
			return nil, err
		}
		cfg := &tls.Config{
			MinVersion:   tls.VersionTLS13,
			Certificates: []tls.Certificate{cert},
			ClientAuth:   tls.VerifyClientCertIfGiven,
			ClientCAs:    c.pool,
		}
		lis, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, err
		}
		srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(cfg)))
		register(srv)
		go func() {
			if err := srv.Serve(lis); err != nil {
				log.Printf("serve %s: %v", addr, err)
			}
		}()
		log.Printf("serving %s as %s", addr, name)
		return srv, nil
	}
	var servers []*grpc.Server
	if *identityAddr != "" {
		s, err := serve(*identityAddr, *identityName, func(s *grpc.Server) { meshv1.RegisterIdentityServer(s, &identitySvc{ca: c}) })
		if err != nil {
			return err
		}
		servers = append(servers, s)
	}
	if *dstAddr != "" {
		s, err := serve(*dstAddr, *dstName, func(s *grpc.Server) { meshv1.RegisterDestinationServer(s, &destinationSvc{endpoints: eps}) })
		if err != nil {
			return err
		}
		servers = append(servers, s)
	}
	if *readyFile != "" {
		if err := writeFile(*readyFile, []byte("ready\n")); err != nil {
			return err
		}
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	for _, s := range servers {
		s.Stop()
	}
	return nil
}

func main() {
	log.SetFlags(log.Ltime | log.Lmicroseconds)
	log.SetPrefix("bench-cp ")
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench-cp:", err)
		os.Exit(2)
	}
}
