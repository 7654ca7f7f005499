package discovery

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/meshplane/mesh/controlplane/api/identityclient"
	"github.com/meshplane/mesh/controlplane/api/identityclient/identitytest"
	meshv1 "github.com/meshplane/mesh/controlplane/api/mesh/v1"
)

// TestMTLSAndServerRestart talks to a destination service that requires client
// certificates (as the real one does), through identityclient.GRPCCredentials, and
// restarts it: the set is kept while it is down and replaced when it is back.
func TestMTLSAndServerRestart(t *testing.T) {
	const (
		idName  = "mesh-identity.mesh.serviceaccount.identity.cluster.local"
		dstName = "mesh-destination.mesh.serviceaccount.identity.cluster.local"
		local   = "web.ns.serviceaccount.identity.cluster.local"
	)
	ca := identitytest.NewCA(t, "test")
	svc := identitytest.StartService(t, ca, idName, nil)
	dir := t.TempDir()
	for f, b := range map[string][]byte{"token": []byte(identitytest.Token(local)), "anchors.pem": ca.AnchorsPEM()} {
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	id, err := identityclient.New(identityclient.Config{LocalName: local, TokenFile: filepath.Join(dir, "token"),
		TrustAnchorsFile: filepath.Join(dir, "anchors.pem"), Addr: svc.Addr, Name: idName})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- id.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	for deadline := time.Now().Add(5 * time.Second); !id.Ready(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no identity")
		}
	}

	anchors := x509.NewCertPool()
	anchors.AddCert(ca.Root)
	f := &fakeDestination{gets: make(chan *stream, 16), profiles: make(chan *stream, 16)}
	serve := func(ln net.Listener) *grpc.Server {
		s := grpc.NewServer(grpc.Creds(credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS13,
			Certificates: []tls.Certificate{ca.Certificate(t, dstName, time.Hour)},
			ClientAuth:   tls.RequireAndVerifyClientCert, ClientCAs: anchors})))
		meshv1.RegisterDestinationServer(s, f)
		go func() { _ = s.Serve(ln) }()
		return s
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dstAddr := ln.Addr().String()
	s := serve(ln)
	defer func() { s.Stop() }()

	c, err := New(Options{Addr: dstAddr, Creds: id.GRPCCredentials(dstName), MinBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	set, release := c.Resolve("web.ns.svc.cluster.local:80")
	defer release()
	next(t, f.gets).send <- add(nil, &meshv1.WeightedAddr{Addr: addr("10.0.0.1", 80)})
	waitFor(t, set, "an endpoint", func() bool { return len(set.Endpoints()) == 1 })

	s.Stop()
	time.Sleep(300 * time.Millisecond) // several failed reconnections
	if got := addrs(set); len(got) != 1 || !set.InMesh() {
		t.Fatalf("last known set lost: %v", got)
	}
	if ln, err = net.Listen("tcp", dstAddr); err != nil {
		t.Fatal(err)
	}
	s = serve(ln)
	next(t, f.gets).send <- add(nil, &meshv1.WeightedAddr{Addr: addr("10.0.0.2", 80)})
	waitFor(t, set, "the fresh set", func() bool {
		got := addrs(set)
		return len(got) == 1 && got[0] == "10.0.0.2:80"
	})
}
