// Package controller is mesh-controller: one binary, a subcommand per control-plane
// component (identity, destination, injector), each the process of one
// Deployment that `mesh install` renders. Run is the whole program; only main exits.
package controller

import (
	"bytes"
	"context"
	"errors"
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

	"github.com/meshplane/mesh/controlplane/api/version"
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

// component is one subcommand of mesh-controller.
type component struct {
	name, short string
	// extra adds the component's own flags (nil: only the common ones) and returns
	// the component's main with those flags bound.
	extra func(*flag.FlagSet, func() time.Time) func(ctx context.Context, c common, log *slog.Logger) error
}

// components are mesh-controller's subcommands, in the order the usage lists them.
func components() []component {
	return []component{
		{"identity", "the certificate authority: Certify, the issuer and the trust-root ConfigMaps",
			func(_ *flag.FlagSet, now func() time.Time) func(context.Context, common, *slog.Logger) error {
				return func(ctx context.Context, c common, log *slog.Logger) error { return identityMain(ctx, c, log, now) }
			}},
		{"destination", "discovery: Destination.Get and GetProfile for the proxies",
			func(*flag.FlagSet, func() time.Time) func(context.Context, common, *slog.Logger) error {
				return destinationMain
			}},
		{"injector", "the admission webhook that injects the proxy into pods",
			func(fs *flag.FlagSet, now func() time.Time) func(context.Context, common, *slog.Logger) error {
				var o injectorFlags
				o.flags(fs)
				return func(ctx context.Context, c common, log *slog.Logger) error { return injectorMain(ctx, c, o, log, now) }
			}},
	}
}

// usage is mesh-controller's own help.
func usage() string {
	var b strings.Builder
	b.WriteString("Usage: mesh-controller COMPONENT [flags]\n\nRuns one component of the mesh control plane.\n\nComponents:\n")
	for _, c := range components() {
		fmt.Fprintf(&b, "  %-12s %s\n", c.name, c.short)
	}
	fmt.Fprintf(&b, "\nCommands:\n  %-12s %s\n", "version", "print the version")
	b.WriteString("\nRun 'mesh-controller COMPONENT --help' for a component's flags.\n")
	return b.String()
}

// run parses a component's flags (the common ones, plus its own), builds its logger
// and runs it; it returns the exit code: 0 after a graceful stop (or for --help, whose
// text goes to stdout), 1 on failure, 2 on bad usage (said on stderr).
func (comp component) run(ctx context.Context, args []string, stdout, stderr io.Writer, now func() time.Time) int {
	var c common
	fs := flag.NewFlagSet("mesh-controller "+comp.name, flag.ContinueOnError)
	var out bytes.Buffer // the flag package's help or error, for stdout or stderr
	fs.SetOutput(&out)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: mesh-controller %s [flags]\n\nRuns %s.\n\nFlags:\n", comp.name, comp.short)
		fs.PrintDefaults()
	}
	c.flags(fs)
	runMain := comp.extra(fs, now)
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		_, _ = stdout.Write(out.Bytes())
		return 0
	case err != nil:
		fmt.Fprintf(stderr, "mesh-controller %s: %v\nRun 'mesh-controller %s --help' for usage.\n", comp.name, err, comp.name)
		return 2
	case fs.NArg() > 0:
		fmt.Fprintf(stderr, "mesh-controller %s: unknown command %q (a component takes flags only)\nRun 'mesh-controller %s --help' for usage.\n", comp.name, fs.Arg(0), comp.name)
		return 2
	}
	log, err := c.logger(stderr)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	log = log.With("component", comp.name)
	if err := runMain(ctx, c, log); err != nil {
		log.Error(comp.name+" failed", "err", err)
		return 1
	}
	log.Info(comp.name + " stopped")
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
// returns the exit code: 0 after a graceful stop, 1 on failure, 2 on bad usage. Help
// (-h, --help, help) goes to stdout; logs and errors go to stderr.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer, now func() time.Time) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage())
		return 2
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		if len(args) > 1 && args[0] == "help" {
			return Run(ctx, []string{args[1], "--help"}, stdout, stderr, now)
		}
		fmt.Fprint(stdout, usage())
		return 0
	}
	if args[0] == "version" {
		return runVersion(args[1:], stdout, stderr)
	}
	var names []string
	for _, c := range components() {
		if c.name == args[0] {
			return c.run(ctx, args[1:], stdout, stderr, now)
		}
		names = append(names, c.name)
	}
	names = append(names, "version")
	fmt.Fprintf(stderr, "mesh-controller: unknown command %q (want %s)\nRun 'mesh-controller --help' for usage.\n", args[0], strings.Join(names, ", "))
	return 2
}

// runVersion is `mesh-controller version [-o json|yaml|short]`: the version on
// stdout, in the formats and from the source `mesh version` uses; 0, or 2 on bad
// usage (said on stderr).
func runVersion(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("mesh-controller version", flag.ContinueOnError)
	var out bytes.Buffer
	fs.SetOutput(&out)
	var output string
	fs.StringVar(&output, "output", "", "output format: json, yaml or short")
	fs.StringVar(&output, "o", "", "shorthand for -output")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: mesh-controller version [flags]\n\nPrints the version.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		_, _ = stdout.Write(out.Bytes())
		return 0
	case err == nil && fs.NArg() > 0:
		err = fmt.Errorf("unknown command %q (version takes flags only)", fs.Arg(0))
	case err == nil:
		err = version.CheckOutput(output)
	}
	if err != nil {
		fmt.Fprintf(stderr, "mesh-controller version: %v\nRun 'mesh-controller version --help' for usage.\n", err)
		return 2
	}
	if err := version.Write(stdout, version.Current("controller"), output); err != nil {
		fmt.Fprintf(stderr, "mesh-controller version: %v\n", err)
		return 1
	}
	return 0
}
