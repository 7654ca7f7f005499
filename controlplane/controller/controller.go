// Package controller is mesh-controller: one binary, a subcommand per control-plane
// component (identity, destination, injector), each the process of one
// Deployment that `mesh install` renders. Run is the whole program; only main exits.
package controller

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"
)

// common are the flags every component takes (the chart passes them).
type common struct {
	config, listenAddr, admin, logLevel, logFormat, kubeconfig, namespace string
}

func (c *common) flags(fs *flag.FlagSet) {
	fs.StringVar(&c.config, "config", "/var/run/mesh/config/values.yaml", "the install's values (the mesh-config ConfigMap)")
	fs.StringVar(&c.listenAddr, "listen-addr", ":8080", "the component's gRPC/HTTPS address")
	fs.StringVar(&c.admin, "admin-addr", ":9990", "the admin address: /live, /ready, /metrics")
	fs.StringVar(&c.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&c.logFormat, "log-format", "plain", "plain or json")
	fs.StringVar(&c.kubeconfig, "kubeconfig", "", "kubeconfig (default: in-cluster)")
	fs.StringVar(&c.namespace, "namespace", os.Getenv("MESH_NAMESPACE"), "the control plane's namespace (default $MESH_NAMESPACE)")
}

// values is what the components read of the install's values.
type values struct {
	ClusterDomain string `json:"clusterDomain"`
	Identity      struct {
		TrustDomain   string `json:"trustDomain"`
		TokenAudience string `json:"tokenAudience"`
		Issuer        struct {
			Mode               string `json:"mode"`
			SecretName         string `json:"secretName"`
			IssuanceLifetime   string `json:"issuanceLifetime"`
			ClockSkewAllowance string `json:"clockSkewAllowance"`
		} `json:"issuer"`
	} `json:"identity"`
}

func (c *common) values() (*values, error) {
	b, err := os.ReadFile(c.config)
	if err != nil {
		return nil, fmt.Errorf("--config: %w", err)
	}
	var v values
	if err := yaml.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("--config %s: %w", c.config, err)
	}
	return &v, nil
}

func (c *common) logger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch c.logFormat {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "plain":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format must be plain or json, not %q", c.logFormat)
}

// restConfig is --kubeconfig's configuration, or the in-cluster one.
func (c *common) restConfig() (*rest.Config, error) {
	var cfg *rest.Config
	var err error
	if c.kubeconfig != "" {
		cfg, err = clientcmd.BuildConfigFromFlags("", c.kubeconfig)
	} else {
		cfg, err = rest.InClusterConfig()
	}
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	return cfg, nil
}

func (c *common) client() (kubernetes.Interface, error) {
	cfg, err := c.restConfig()
	if err != nil {
		return nil, err
	}
	return kubernetes.NewForConfig(cfg)
}

// component parses a component's flags (the common ones, plus extra), builds its
// logger and runs main; it returns the exit code: 0 after a graceful stop, 1 on failure,
// 2 on bad usage.
func component(ctx context.Context, name string, args []string, stderr io.Writer, extra func(*flag.FlagSet),
	main func(ctx context.Context, c common, log *slog.Logger) error) int {
	var c common
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	c.flags(fs)
	if extra != nil {
		extra(fs)
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	log, err := c.logger(stderr)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	log = log.With("component", name)
	if err := main(ctx, c, log); err != nil {
		log.Error(name+" failed", "err", err)
		return 1
	}
	log.Info(name + " stopped")
	return 0
}

// listen opens the component's address and its admin address.
func (c *common) listen() (net.Listener, net.Listener, error) {
	lis, err := net.Listen("tcp", c.listenAddr)
	if err != nil {
		return nil, nil, err
	}
	adminLis, err := net.Listen("tcp", c.admin)
	if err != nil {
		_ = lis.Close()
		return nil, nil, err
	}
	return lis, adminLis, nil
}

// serveUntilDone waits for ctx to end or a server to fail (the first error on errs), then
// stops g gracefully, finishing the calls in flight within a bound.
func serveUntilDone(ctx context.Context, g *grpc.Server, errs <-chan error) error {
	var err error
	select {
	case <-ctx.Done():
	case err = <-errs:
	}
	done := make(chan struct{})
	go func() { g.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		g.Stop()
	}
	return err
}

// Run runs the component named by args[0] until ctx ends (SIGTERM in main), and
// returns the exit code: 0 after a graceful stop, 1 on failure, 2 on bad usage.
func Run(ctx context.Context, args []string, stderr io.Writer, now func() time.Time) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: mesh-controller identity|destination|injector [flags]")
		return 2
	}
	switch args[0] {
	case "identity":
		return component(ctx, "identity", args[1:], stderr, nil, func(ctx context.Context, c common, log *slog.Logger) error {
			return identityMain(ctx, c, log, now)
		})
	case "destination":
		return component(ctx, "destination", args[1:], stderr, nil, destinationMain)
	case "injector":
		var o injectorFlags
		return component(ctx, "injector", args[1:], stderr, o.flags, func(ctx context.Context, c common, log *slog.Logger) error {
			return injectorMain(ctx, c, o, log, now)
		})
	}
	fmt.Fprintf(stderr, "mesh-controller: unknown component %q (want %s)\n", args[0], strings.Join([]string{"identity", "destination", "injector"}, ", "))
	return 2
}
