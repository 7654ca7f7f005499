package controller

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/meshplane/mesh/controlplane/admin"
	"github.com/meshplane/mesh/controlplane/injector"
	"github.com/meshplane/mesh/render/inject"
)

// injectorFlags are the injector's own flags.
type injectorFlags struct {
	webhook, extraNames, version string
	certSync                     time.Duration
}

func (o *injectorFlags) flags(fs *flag.FlagSet) {
	fs.StringVar(&o.webhook, "webhook", "mesh-proxy-injector", "the MutatingWebhookConfiguration whose caBundle the injector keeps")
	fs.StringVar(&o.extraNames, "serving-names", "", "more names (DNS or IP) for the serving certificate, comma-separated")
	fs.DurationVar(&o.certSync, "cert-sync-interval", time.Minute, "how often to re-read the serving Secret (rotating the certificate when due) and check the caBundle")
	fs.StringVar(&o.version, "mesh-version", os.Getenv("MESH_VERSION"), "the mesh version: the proxy image tag (default $MESH_VERSION)")
}

func injectorMain(ctx context.Context, c common, o injectorFlags, log *slog.Logger, now func() time.Time) error {
	webhookName, extraNames, version := o.webhook, o.extraNames, o.version
	if c.namespace == "" {
		return errors.New("no namespace: set --namespace or MESH_NAMESPACE")
	}
	if version == "" {
		return errors.New("no mesh version: set --mesh-version or MESH_VERSION")
	}
	raw, err := os.ReadFile(c.config)
	if err != nil {
		return fmt.Errorf("--config: %w", err)
	}
	var vals map[string]any
	if err := yaml.Unmarshal(raw, &vals); err != nil {
		return fmt.Errorf("--config %s: %w", c.config, err)
	}
	v, err := c.values()
	if err != nil {
		return err
	}
	client, err := c.client()
	if err != nil {
		return err
	}
	in, err := inject.New(inject.Options{Manual: &inject.Manual{Version: version, Namespace: c.namespace, Values: vals}})
	if err != nil {
		return err
	}

	// The serving certificate's names: the Service's, and --serving-names.
	certManager := v.Identity.Issuer.Mode == "cert-manager"
	names := []string{fmt.Sprintf("mesh-injector.%s.svc", c.namespace)}
	for _, n := range strings.Split(extraNames, ",") {
		if n = strings.TrimSpace(n); n != "" {
			names = append(names, n)
		}
	}
	reg := prometheus.NewRegistry()
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mesh_injector_admission_requests_total",
		Help: "Admission requests, by result: injected, skipped or error."}, []string{"result"})
	for _, r := range []string{injector.ResultInjected, injector.ResultSkipped, injector.ResultError} {
		requests.WithLabelValues(r) // every result from the start, at 0
	}
	expiry := prometheus.NewGauge(prometheus.GaugeOpts{Name: "mesh_injector_serving_cert_expiry_timestamp_seconds",
		Help: "When the serving certificate in use expires (Unix time)."})
	reg.MustRegister(requests, expiry)

	// The serving certificate, rotated before it expires, and the webhook's caBundle
	// (cert-manager renews the Secret and fills the caBundle otherwise).
	serving := &injector.ServingCert{Client: client, Namespace: c.namespace, Names: names, Webhook: webhookName, Create: !certManager,
		Now: now, Log: log, OnLoad: func(leaf *x509.Certificate) {
			expiry.Set(float64(leaf.NotAfter.Unix()))
			log.Info("serving certificate loaded", "names", names, "notAfter", leaf.NotAfter, "caBundle", !certManager)
		}}

	wh := &injector.Webhook{Injector: in, Log: log, OnResult: func(r string) { requests.WithLabelValues(r).Inc() },
		NamespaceAnnotations: func(ctx context.Context, name string) (map[string]string, error) {
			ns, err := client.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return nil, err
			}
			return ns.Annotations, nil
		}}
	mux := http.NewServeMux()
	mux.Handle("POST /inject", wh)
	lis, adminLis, err := c.listen()
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second,
		TLSConfig: &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: serving.GetCertificate}}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, 3)
	go serving.Run(ctx, o.certSync)
	go func() {
		errs <- (&admin.Server{Registry: reg, Ready: serving.Ready}).Serve(ctx, adminLis)
	}()
	go func() {
		if err := srv.ServeTLS(lis, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errs <- err
		}
	}()
	log.Info("serving", "https", lis.Addr().String(), "admin", adminLis.Addr().String())
	select {
	case <-ctx.Done():
	case err = <-errs:
	}
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	_ = srv.Shutdown(sctx)
	cancel()
	return err
}
