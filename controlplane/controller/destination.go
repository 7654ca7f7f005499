package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"

	"github.com/meshplane/mesh/controlplane/admin"
	meshv1 "github.com/meshplane/mesh/controlplane/api/mesh/v1"
	"github.com/meshplane/mesh/controlplane/destination"
	"github.com/meshplane/mesh/controlplane/identity"
)

// Environment of the destination subcommand: how it gets its certificate. (Read
// from the environment: the shared flag runner gives destination no flags of its own.)
const (
	// The identity service's gRPC address; default mesh-identity.NAMESPACE.svc.CLUSTER-DOMAIN.:8080.
	envIdentityAddr = "MESH_IDENTITY_ADDR"
	// The projected ServiceAccount token with the identity audience; default defaultTokenFile.
	envTokenFile = "MESH_IDENTITY_TOKEN_FILE"
	// PEM trust anchors, re-read when they change; default the values'
	// identity.trustAnchorsPEM if set, else defaultAnchorsFile.
	envAnchorsFile = "MESH_IDENTITY_TRUST_ANCHORS_FILE"

	// Where the Deployment mounts the token and the mesh-identity-trust-roots ConfigMap.
	defaultTokenFile   = "/var/run/secrets/tokens/mesh-identity-token"
	defaultAnchorsFile = "/var/run/mesh/identity/trust-roots/ca-bundle.crt"
)

// destinationMain serves Destination.Get and GetProfile over mTLS: its certificate comes
// from identity (as a proxy's does) and clients must present one from the same anchors.
func destinationMain(ctx context.Context, c common, log *slog.Logger) error {
	v, err := c.values()
	if err != nil {
		return err
	}
	if c.namespace == "" {
		return errors.New("no namespace: set --namespace or MESH_NAMESPACE")
	}
	anchors, err := destinationAnchors(c.config, os.Getenv(envAnchorsFile))
	if err != nil {
		return err
	}
	client, err := c.client()
	if err != nil {
		return err
	}
	dyn, err := c.dynamicClient()
	if err != nil {
		return err
	}
	addr, tokenFile := os.Getenv(envIdentityAddr), os.Getenv(envTokenFile)
	if tokenFile == "" {
		tokenFile = defaultTokenFile
	}
	if addr == "" {
		addr = fmt.Sprintf("mesh-identity.%s.svc.%s.:8080", c.namespace, v.ClusterDomain)
	}
	cert := &destination.Certificate{Name: identity.Name("mesh-destination", c.namespace, v.Identity.TrustDomain), IdentityAddr: addr,
		IdentityName: identity.Name("mesh-identity", c.namespace, v.Identity.TrustDomain), TokenFile: tokenFile, Anchors: anchors,
		Log: log, Now: time.Now}
	srv := destination.New(destination.Options{Client: client, Dynamic: dyn, ClusterDomain: v.ClusterDomain, TrustDomain: v.Identity.TrustDomain, Log: log})
	g := grpc.NewServer(append(destination.ServerOptions(), grpc.Creds(credentials.NewTLS(destination.ServerTLS(cert, anchors))))...)
	meshv1.RegisterDestinationServer(g, srv)
	lis, adminLis, err := c.listen()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var synced atomic.Bool
	go func() { synced.Store(srv.Start(ctx)) }()
	errs := make(chan error, 3)
	go func() { errs <- cert.Run(ctx) }()
	go func() {
		errs <- (&admin.Server{Registry: prometheus.NewRegistry(), Ready: func() error {
			if !synced.Load() {
				return errors.New("informers not synced yet (is the ServiceProfile CRD installed?)")
			}
			return cert.Ready()
		}}).Serve(ctx, adminLis)
	}()
	go func() { errs <- g.Serve(lis) }()
	log.Info("serving", "grpc", lis.Addr().String(), "admin", adminLis.Addr().String(), "identity", addr)
	err = serveUntilDone(ctx, g, errs)
	cancel()
	return err
}

// destinationAnchors are the trust anchors: the file if given, else the values'
// identity.trustAnchorsPEM if set, else the mounted trust-roots ConfigMap.
func destinationAnchors(config, file string) (*destination.Anchors, error) {
	if file != "" {
		return &destination.Anchors{File: file}, nil
	}
	b, err := os.ReadFile(config)
	if err != nil {
		return nil, fmt.Errorf("--config: %w", err)
	}
	var v struct {
		Identity struct {
			TrustAnchorsPEM string `json:"trustAnchorsPEM"`
		} `json:"identity"`
	}
	if err := yaml.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("--config %s: %w", config, err)
	}
	if v.Identity.TrustAnchorsPEM != "" {
		return &destination.Anchors{PEM: v.Identity.TrustAnchorsPEM}, nil
	}
	return &destination.Anchors{File: defaultAnchorsFile}, nil
}

// dynamicClient is a dynamic client with the same configuration as client.
func (c *common) dynamicClient() (dynamic.Interface, error) {
	cfg, err := c.restConfig()
	if err != nil {
		return nil, err
	}
	return dynamic.NewForConfig(cfg)
}
