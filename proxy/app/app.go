// Package app is mesh-proxy's entry point: `mesh-proxy run` (the sidecar), `mesh-proxy
// init` (the iptables rules, in the init container) and `mesh-proxy version`. Only
// main exits; Run returns the exit code.
package app

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/meshplane/mesh/controlplane/api/identityclient"
	"github.com/meshplane/mesh/controlplane/api/proxyenv"
	tapapi "github.com/meshplane/mesh/controlplane/api/tap"
	"github.com/meshplane/mesh/proxy/config"
	"github.com/meshplane/mesh/proxy/dataplane"
	"github.com/meshplane/mesh/proxy/discovery"
	"github.com/meshplane/mesh/proxy/iptables"
	"github.com/meshplane/mesh/proxy/metrics"
	"github.com/meshplane/mesh/proxy/sockio"
	"github.com/meshplane/mesh/proxy/tap"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

// Streams are the process's outputs and environment.
type Streams struct {
	Out, Err  io.Writer
	LookupEnv config.LookupEnv
}

// Version is set by main from the linker flag.
type Version string

// command is one subcommand of mesh-proxy.
type command struct {
	name, short string
	// help writes the command's help (to stdout, when asked for).
	help func(w io.Writer)
	// run runs the command with the arguments after its name; it is not called for
	// -h or --help.
	run func(ctx context.Context, args []string, s Streams, version Version) int
}

// commands are mesh-proxy's subcommands, in the order the usage lists them.
func commands() []command {
	return []command{
		{"run", "run the proxy (configured by MESH_PROXY_* environment variables)", runHelp, func(ctx context.Context, args []string, s Streams, version Version) int {
			if len(args) > 0 {
				fmt.Fprintf(s.Err, "mesh-proxy run: unknown command %q (run takes no arguments: configure it with MESH_PROXY_* variables)\nRun 'mesh-proxy run --help' for usage.\n", args[0])
				return exitUsage
			}
			if err := runProxy(ctx, s, string(version)); err != nil {
				fmt.Fprintf(s.Err, "mesh-proxy: %v\n", err)
				return exitError
			}
			return exitOK
		}},
		{"init", "install the iptables rules that redirect the pod's traffic to the proxy", initHelp, func(ctx context.Context, args []string, s Streams, _ Version) int {
			return runInit(ctx, args, s)
		}},
		{"version", "print the version", func(w io.Writer) {
			fmt.Fprint(w, "Usage: mesh-proxy version\n\nPrints the version.\n")
		}, func(_ context.Context, args []string, s Streams, version Version) int {
			if len(args) > 0 {
				fmt.Fprintf(s.Err, "mesh-proxy version: unknown command %q (version takes no arguments)\nRun 'mesh-proxy version --help' for usage.\n", args[0])
				return exitUsage
			}
			fmt.Fprintln(s.Out, version)
			return exitOK
		}},
	}
}

func usage() string {
	var b strings.Builder
	b.WriteString("Usage: mesh-proxy COMMAND\n\nCommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(&b, "  %-9s %s\n", c.name, c.short)
	}
	b.WriteString("\nRun 'mesh-proxy COMMAND --help' for a command's help.\n")
	return b.String()
}

func runHelp(w io.Writer) {
	fmt.Fprint(w, "Usage: mesh-proxy run\n\nRuns the proxy until SIGTERM, then drains. It takes no arguments: the injector\nconfigures it with these environment variables:\n\n")
	for _, name := range proxyenv.Names() {
		fmt.Fprintf(w, "  %s\n", name)
	}
}

// isHelp tells whether args ask for help: -h, -help or --help before any "--".
func isHelp(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "-h", "-help", "--help":
			return true
		}
	}
	return false
}

// Run runs one command and returns the exit code. Help (-h, --help, help COMMAND) and
// the version go to stdout; errors go to stderr.
func Run(ctx context.Context, args []string, s Streams, version Version) int {
	if len(args) == 0 {
		fmt.Fprint(s.Err, usage())
		return exitUsage
	}
	name, rest := args[0], args[1:]
	switch name {
	case "-h", "-help", "--help":
		fmt.Fprint(s.Out, usage())
		return exitOK
	case "help":
		if len(rest) == 0 {
			fmt.Fprint(s.Out, usage())
			return exitOK
		}
		name, rest = rest[0], []string{"--help"}
	}
	for _, c := range commands() {
		if c.name != name {
			continue
		}
		if name != "init" && isHelp(rest) { // init's flag parser knows its own help
			c.help(s.Out)
			return exitOK
		}
		return c.run(ctx, rest, s, version)
	}
	fmt.Fprintf(s.Err, "mesh-proxy: unknown command %q\nRun 'mesh-proxy --help' for usage.\n", name)
	return exitUsage
}

// logLevel reads a level, or a Linkerd-style directive list such as
// "warn,mesh=info", where mesh=LEVEL (the proxy's own logs) wins over the default.
func logLevel(s string) slog.Level {
	l := slog.LevelInfo
	var def, own string
	for _, part := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		switch {
		case !ok:
			def = k
		case k == "mesh":
			own = v
		}
	}
	for _, v := range []string{def, own} {
		var parsed slog.Level
		if v != "" && parsed.UnmarshalText([]byte(v)) == nil {
			l = parsed
		}
	}
	return l
}

func logger(w io.Writer, level, format string) *slog.Logger {
	l := logLevel(level)
	o := &slog.HandlerOptions{Level: l}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, o))
	}
	return slog.New(slog.NewTextHandler(w, o))
}

// runProxy runs the proxy until ctx ends (SIGTERM in main) or one of its parts fails,
// then drains. Every goroutine it starts belongs to one errgroup that it waits for
// before it returns, and every error of a part is returned: a non-zero exit.
func runProxy(ctx context.Context, s Streams, version string) error {
	cfg, err := config.FromEnv(s.LookupEnv)
	if err != nil {
		return err
	}
	log := logger(s.Err, cfg.LogLevel, cfg.LogFormat)
	id, err := identityclient.New(identityclient.Config{LocalName: cfg.LocalName, TokenFile: cfg.TokenFile, Dir: cfg.IdentityDir,
		TrustAnchorsPEM: cfg.TrustAnchorsPEM, TrustAnchorsFile: cfg.TrustAnchorsFile, Addr: cfg.IdentityAddr, Name: cfg.IdentityName,
		Now: time.Now, Log: log.With("component", "identity")})
	if err != nil {
		return err
	}
	var disc *discovery.Client
	if cfg.DestinationAddr != "" {
		token, err := json.Marshal(map[string]string{"ns": cfg.PodNamespace, "pod": cfg.PodName})
		if err != nil {
			return fmt.Errorf("discovery: context token: %w", err)
		}
		disc, err = discovery.New(discovery.Options{Addr: cfg.DestinationAddr, Creds: id.GRPCCredentials(cfg.DestinationName),
			ContextToken: string(token), Log: log.With("component", "discovery")})
		if err != nil {
			return err
		}
		defer func() {
			if err := disc.Close(); err != nil {
				log.Warn("closing discovery", "err", err)
			}
		}()
	}
	reg := metrics.New()

	in, out, adminLis, err := listen(ctx, cfg)
	if err != nil {
		return err
	}
	var lc net.ListenConfig
	tapLis, err := lc.Listen(ctx, "tcp", cfg.TapAddr)
	if err != nil {
		_ = in.Close()
		_ = out.Close()
		_ = adminLis.Close()
		return fmt.Errorf("tap listener: %w", err)
	}
	// The tap stream's writes use raw system calls, as the data path's do: through
	// net.TCPConn each write woke the runtime's sysmon thread, which then polled for
	// a millisecond (docs/benchmarks.md, tap overhead).
	tapLis = sockio.Listen(tapLis)
	hub := tap.New(tap.Options{Rate: cfg.TapMaxEventsPerSecond, Redact: cfg.TapRedactHeaders})

	// serveCtx ends at SIGTERM or when a part fails: from that moment /ready answers
	// 503 (before the data plane closes its listeners) and the data plane drains.
	// Identity, its metric and the admin server outlive the drain (bgCtx): in-flight
	// connections may still need the certificate, and probes the admin port.
	serveCtx, fail := context.WithCancelCause(ctx)
	defer fail(nil)
	bgCtx, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBG()
	var g errgroup.Group
	part := func(run func() error) {
		g.Go(func() error {
			err := run()
			if err != nil {
				log.Error("stopping: a part of the proxy failed", "err", err)
				fail(err)
			}
			return err
		})
	}

	draining := func() bool { return serveCtx.Err() != nil }
	admin := &http.Server{Handler: adminMux(id, reg, draining), ReadHeaderTimeout: 5 * time.Second}
	part(func() error { return id.Run(bgCtx) }) // its errors say "identity: "
	part(func() error {
		if err := admin.Serve(adminLis); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("admin server: %w", err)
		}
		return nil
	})
	// The tap API: loopback only (config refuses other addresses), reached through
	// the Kubernetes API's pods/portforward. Its streams last until the client goes
	// away, so the server is closed, not shut down.
	tapMux := http.NewServeMux()
	tapMux.Handle("GET "+tapapi.Path, hub.Handler(0))
	tapSrv := &http.Server{Handler: tapMux, ReadHeaderTimeout: 5 * time.Second}
	part(func() error {
		if err := tapSrv.Serve(tapLis); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("tap server: %w", err)
		}
		return nil
	})
	part(func() error { // the certificate's expiry metric
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			if e := id.Expiry(); !e.IsZero() {
				reg.IdentityExpiry(e)
			}
			select {
			case <-bgCtx.Done():
				return nil
			case <-t.C:
			}
		}
	})

	p := dataplane.New(dataplane.Options{
		Identity: id, Metrics: reg, OrigDst: iptables.OriginalDst,
		InboundOrigDst: addrOrZero(cfg.InboundOrigDst), OutboundOrigDst: addrOrZero(cfg.OutboundOrigDst),
		OpaquePorts: cfg.OpaquePorts, HTTP2Ports: cfg.HTTP2Ports, ProfileNetworks: cfg.ProfileNetworks, DetectTimeout: cfg.DetectTimeout,
		InboundConnectTimeout: cfg.InboundConnectTimeout, OutboundConnectTimeout: cfg.OutboundConnectTimeout,
		Log: log, Discovery: discoveryOrNil(disc), Tap: hub,
	})
	log.Info("mesh-proxy starting", "version", version, "identity", cfg.LocalName, "inbound", in.Addr().String(),
		"outbound", out.Addr().String(), "admin", adminLis.Addr().String(), "tap", tapLis.Addr().String())
	serveErr := p.Serve(serveCtx, in, out, cfg.ShutdownGrace)
	if serveErr != nil {
		serveErr = fmt.Errorf("data plane: %w", serveErr)
	}
	log.Info("mesh-proxy stopped")

	sctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := admin.Shutdown(sctx); err != nil {
		log.Warn("admin server: shutdown; closing it", "err", err)
		_ = admin.Close()
	}
	_ = tapSrv.Close()
	stopBG()
	return errors.Join(serveErr, g.Wait())
}

// listen opens the inbound, outbound and admin listeners, or none.
func listen(ctx context.Context, cfg *config.Config) (in, out, admin net.Listener, err error) {
	var lc net.ListenConfig
	if in, err = lc.Listen(ctx, "tcp", cfg.InboundAddr); err != nil {
		return nil, nil, nil, fmt.Errorf("inbound listener: %w", err)
	}
	if out, err = lc.Listen(ctx, "tcp", cfg.OutboundAddr); err != nil {
		_ = in.Close()
		return nil, nil, nil, fmt.Errorf("outbound listener: %w", err)
	}
	if admin, err = lc.Listen(ctx, "tcp", cfg.AdminAddr); err != nil {
		_ = in.Close()
		_ = out.Close()
		return nil, nil, nil, fmt.Errorf("admin listener: %w", err)
	}
	return in, out, admin, nil
}

// discoveryOrNil keeps a nil *discovery.Client a usable (empty) resolver.
func discoveryOrNil(c *discovery.Client) dataplane.Discovery { return c }

func addrOrZero(s string) netip.AddrPort {
	ap, _ := netip.ParseAddrPort(s)
	return ap
}

func adminMux(id *identityclient.Identity, reg *metrics.Registry, draining func() bool) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /live", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "live\n") })
	mux.HandleFunc("GET /ready", func(w http.ResponseWriter, _ *http.Request) {
		if draining() || !id.Ready() {
			http.Error(w, "not ready: "+strings.TrimSpace(readyReason(id, draining())), http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ready\n")
	})
	mux.Handle("GET /metrics", reg.Handler())
	// The current certificate chain (no key), for `mesh check --proxy`.
	mux.HandleFunc("GET /identity", func(w http.ResponseWriter, _ *http.Request) {
		c, err := id.Certificate()
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/x-pem-file")
		for _, der := range c.Certificate {
			_ = pem.Encode(w, &pem.Block{Type: "CERTIFICATE", Bytes: der})
		}
	})
	return mux
}

func readyReason(id *identityclient.Identity, draining bool) string {
	if draining {
		return "shutting down"
	}
	if !id.Ready() {
		return identityclient.ErrNotReady.Error()
	}
	return ""
}
