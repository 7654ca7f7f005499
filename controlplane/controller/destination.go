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
	"github.com/meshplane/mesh/controlplane/api/identityclient"
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
	client, err := c.client()
	if err != nil {
		return err
	}
	dyn, err := c.dynamicClient()
	if err != nil {
		return err
	}
	idCfg, err := destinationIdentity(c, v.ClusterDomain, v.Identity.TrustDomain, os.Getenv)
	if err != nil {
		return err
	}
	idCfg.Log, idCfg.Now = log, time.Now
	id, err := identityclient.New(idCfg)
	if err != nil {
		return err
	}
	srv := destination.New(destination.Options{Client: client, Dynamic: dyn, ClusterDomain: v.ClusterDomain, TrustDomain: v.Identity.TrustDomain, Log: log})
	g := grpc.NewServer(append(destination.ServerOptions(), grpc.Creds(credentials.NewTLS(destination.ServerTLS(id))))...)
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
	go func() { errs <- id.Run(ctx) }()
	go func() {
		errs <- (&admin.Server{Registry: prometheus.NewRegistry(), Ready: func() error {
			if !synced.Load() {
				return errors.New("informers not synced yet (is the ServiceProfile CRD installed?)")
			}
			if !id.Ready() {
				return identityclient.ErrNotReady
			}
			return nil
		}}).Serve(ctx, adminLis)
	}()
	go func() { errs <- g.Serve(lis) }()
	// Stopping: end the discovery streams first, so that proxies move to another
	// replica at once (GracefulStop would wait for them with no updates flowing).
	go func() { <-ctx.Done(); srv.Close() }()
	log.Info("serving", "grpc", lis.Addr().String(), "admin", adminLis.Addr().String(), "identity", idCfg.Addr)
	err = serveUntilDone(ctx, g, errs)
	cancel()
	return err
}

// destinationIdentity configures the identity client that gets destination's own
// certificate, as a proxy's: the identity service (envIdentityAddr, default
// mesh-identity.NAMESPACE.svc.CLUSTER-DOMAIN.:8080), the token file
// (envTokenFile, default defaultTokenFile) and the trust anchors: the file
// envAnchorsFile if set, else the values' identity.trustAnchorsPEM if set, else the
// mounted trust-roots ConfigMap. The file may not exist yet (the ConfigMap volume is
// optional: identity publishes it): destination then waits for it, not ready.
func destinationIdentity(c common, clusterDomain, trustDomain string, getenv func(string) string) (identityclient.Config, error) {
	cfg := identityclient.Config{
		LocalName: identity.Name("mesh-destination", c.namespace, trustDomain),
		Addr:      getenv(envIdentityAddr),
		Name:      identity.Name("mesh-identity", c.namespace, trustDomain),
		TokenFile: getenv(envTokenFile),
	}
	if cfg.Addr == "" {
		cfg.Addr = fmt.Sprintf("mesh-identity.%s.svc.%s.:8080", c.namespace, clusterDomain)
	}
	if cfg.TokenFile == "" {
		cfg.TokenFile = defaultTokenFile
	}
	if cfg.TrustAnchorsFile = getenv(envAnchorsFile); cfg.TrustAnchorsFile != "" {
		cfg.TrustAnchorsFileOptional = true
		return cfg, nil
	}
	b, err := os.ReadFile(c.config)
	if err != nil {
		return cfg, fmt.Errorf("--config: %w", err)
	}
	var v struct {
		Identity struct {
			TrustAnchorsPEM string `json:"trustAnchorsPEM"`
		} `json:"identity"`
	}
	if err := yaml.Unmarshal(b, &v); err != nil {
		return cfg, fmt.Errorf("--config %s: %w", c.config, err)
	}
	if v.Identity.TrustAnchorsPEM != "" {
		cfg.TrustAnchorsPEM = []byte(v.Identity.TrustAnchorsPEM)
		return cfg, nil
	}
	cfg.TrustAnchorsFile, cfg.TrustAnchorsFileOptional = defaultAnchorsFile, true
	return cfg, nil
}

// dynamicClient is a dynamic client with the same configuration as client.
func (c *common) dynamicClient() (dynamic.Interface, error) {
	cfg, err := c.restConfig()
	if err != nil {
		return nil, err
	}
	return dynamic.NewForConfig(cfg)
}
