package controller

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/meshplane/mesh/controlplane/admin"
	"github.com/meshplane/mesh/controlplane/injector"
	"github.com/meshplane/mesh/render/inject"
)

// injectorFlags are the injector's own flags.
type injectorFlags struct{ webhook, extraNames, version string }

func (o *injectorFlags) flags(fs *flag.FlagSet) {
	fs.StringVar(&o.webhook, "webhook", "mesh-proxy-injector", "the MutatingWebhookConfiguration whose caBundle the injector keeps")
	fs.StringVar(&o.extraNames, "serving-names", "", "more names (DNS or IP) for the serving certificate, comma-separated")
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

	// The serving certificate, and the webhook's caBundle (cert-manager fills it otherwise).
	certManager := v.Identity.Issuer.Mode == "cert-manager"
	names := []string{fmt.Sprintf("mesh-injector.%s.svc", c.namespace)}
	for _, n := range strings.Split(extraNames, ",") {
		if n = strings.TrimSpace(n); n != "" {
			names = append(names, n)
		}
	}
	var ready atomic.Bool
	var cert atomic.Pointer[tls.Certificate]
	setup := func(ctx context.Context) error {
		crt, ca, err := injector.EnsureServingCert(ctx, client, c.namespace, names, now(), !certManager)
		if err != nil {
			return err
		}
		cert.Store(&crt)
		if !certManager {
			if err := injector.PatchCABundle(ctx, client, webhookName, ca); err != nil {
				return err
			}
		}
		ready.Store(true)
		return nil
	}

	reg := prometheus.NewRegistry()
	wh := &injector.Webhook{Injector: in, Log: log, NamespaceAnnotations: func(ctx context.Context, name string) (map[string]string, error) {
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
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, TLSConfig: &tls.Config{MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			if c := cert.Load(); c != nil {
				return c, nil
			}
			return nil, errors.New("no serving certificate yet")
		}}}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, 3)
	go func() {
		// Retry the setup until it works (the webhook configuration may not exist yet).
		for ctx.Err() == nil {
			if err := setup(ctx); err == nil {
				log.Info("serving certificate ready", "names", names, "caBundle", !certManager)
				return
			} else {
				log.Warn("serving certificate", "err", err)
			}
			select {
			case <-ctx.Done():
			case <-time.After(2 * time.Second):
			}
		}
	}()
	go func() {
		errs <- (&admin.Server{Registry: reg, Ready: func() error {
			if !ready.Load() {
				return errors.New("no serving certificate or caBundle yet")
			}
			return nil
		}}).Serve(ctx, adminLis)
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
