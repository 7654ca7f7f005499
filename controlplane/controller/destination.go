package controller

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/meshplane/mesh/controlplane/admin"
	meshv1 "github.com/meshplane/mesh/controlplane/api/mesh/v1"
	"github.com/meshplane/mesh/controlplane/destination"
)

// destinationMain serves Destination.Get. The stream is plaintext gRPC for now: the
// proxy's mTLS to the control plane comes with the proxy.
func destinationMain(ctx context.Context, c common, log *slog.Logger) error {
	v, err := c.values()
	if err != nil {
		return err
	}
	client, err := c.client()
	if err != nil {
		return err
	}
	srv := destination.New(client, v.ClusterDomain, v.Identity.TrustDomain)
	g := grpc.NewServer()
	meshv1.RegisterDestinationServer(g, srv)
	lis, adminLis, err := c.listen()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var synced atomic.Bool
	go func() { synced.Store(srv.Start(ctx)) }()
	errs := make(chan error, 2)
	go func() {
		errs <- (&admin.Server{Registry: prometheus.NewRegistry(), Ready: func() error {
			if !synced.Load() {
				return errors.New("informers not synced yet")
			}
			return nil
		}}).Serve(ctx, adminLis)
	}()
	go func() { errs <- g.Serve(lis) }()
	log.Info("serving", "grpc", lis.Addr().String(), "admin", adminLis.Addr().String())
	err = serveUntilDone(ctx, g, errs)
	cancel()
	return err
}
