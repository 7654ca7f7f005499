package controller

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/meshplane/mesh/controlplane/admin"
	meshv1 "github.com/meshplane/mesh/controlplane/api/mesh/v1"
	"github.com/meshplane/mesh/controlplane/identity"
)

func duration(s string, def time.Duration) (time.Duration, error) {
	if s == "" {
		return def, nil
	}
	return time.ParseDuration(s)
}

func identityMain(ctx context.Context, c common, log *slog.Logger, now func() time.Time) error {
	v, err := c.values()
	if err != nil {
		return err
	}
	if c.namespace == "" {
		return errors.New("no namespace: set --namespace or MESH_NAMESPACE")
	}
	lifetime, err := duration(v.Identity.Issuer.IssuanceLifetime, 24*time.Hour)
	if err != nil {
		return fmt.Errorf("identity.issuer.issuanceLifetime: %w", err)
	}
	skew, err := duration(v.Identity.Issuer.ClockSkewAllowance, 20*time.Second)
	if err != nil {
		return fmt.Errorf("identity.issuer.clockSkewAllowance: %w", err)
	}
	client, err := c.client()
	if err != nil {
		return err
	}

	reg := prometheus.NewRegistry()
	issued := prometheus.NewCounter(prometheus.CounterOpts{Name: "mesh_identity_certificates_issued_total", Help: "Workload certificates issued."})
	failures := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mesh_identity_certify_failures_total", Help: "Refused or failed Certify calls, by gRPC code."}, []string{"reason"})
	expiry := prometheus.NewGauge(prometheus.GaugeOpts{Name: "mesh_identity_issuer_expiry_timestamp_seconds", Help: "When the current issuer certificate expires (Unix time)."})
	reg.MustRegister(issued, failures, expiry)

	src := &identity.Source{Client: client, Namespace: c.namespace, SecretName: v.Identity.Issuer.SecretName, Bootstrap: v.Identity.Issuer.Mode == "bootstrap",
		TrustDomain: v.Identity.TrustDomain, Now: now}
	roots := identity.NewTrustRoots(client, src, c.namespace, log)
	src.OnChange = func(i *identity.Issuer) {
		expiry.Set(float64(i.Cert.NotAfter.Unix()))
		log.Info("issuer loaded", "subject", i.Cert.Subject.String(), "notAfter", i.Cert.NotAfter)
		roots.Kick()
	}
	srv := &identity.Server{TrustDomain: v.Identity.TrustDomain, Audience: v.Identity.TokenAudience, Lifetime: lifetime, ClockSkew: skew,
		Reviewer: identity.APIReviewer{Client: client}, Issuer: src.Issuer, Now: now}
	serving := &identity.ServingCert{Source: src, Name: identity.Name("mesh-identity", c.namespace, v.Identity.TrustDomain), Lifetime: 24 * time.Hour, Now: now}

	g := grpc.NewServer(
		grpc.Creds(credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS13, GetCertificate: serving.GetCertificate})),
		grpc.UnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			resp, err := h(ctx, req)
			if err != nil {
				failures.WithLabelValues(status.Code(err).String()).Inc()
				log.Warn("certify refused", "err", err)
			} else {
				issued.Inc()
			}
			return resp, err
		}),
	)
	meshv1.RegisterIdentityServer(g, srv)

	lis, adminLis, err := c.listen()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, 4)
	go func() { errs <- src.Run(ctx) }()
	// One writer of the trust-root ConfigMaps: the Lease's holder.
	go func() { errs <- leader(ctx, client, c.namespace, "mesh-identity", log, roots.Run) }()
	go func() {
		errs <- (&admin.Server{Registry: reg, Ready: func() error { _, err := src.Issuer(); return err }}).Serve(ctx, adminLis)
	}()
	go func() { errs <- g.Serve(lis) }()
	log.Info("serving", "grpc", lis.Addr().String(), "admin", adminLis.Addr().String(), "namespace", c.namespace)

	err = serveUntilDone(ctx, g, errs)
	cancel()
	return err
}
