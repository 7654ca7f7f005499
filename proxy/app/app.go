// Package app is mesh-proxy's entry point: `mesh-proxy run` (the sidecar), `mesh-proxy
// init` (the iptables rules, in the init container) and `mesh-proxy version`. Only
// main exits; Run returns the exit code.
package app

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"github.com/meshplane/mesh/controlplane/api/identityclient"
	"github.com/meshplane/mesh/proxy/config"
	"github.com/meshplane/mesh/proxy/dataplane"
	"github.com/meshplane/mesh/proxy/discovery"
	"github.com/meshplane/mesh/proxy/iptables"
	"github.com/meshplane/mesh/proxy/metrics"
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

const usage = `Usage: mesh-proxy COMMAND

Commands:
  run       run the proxy (configured by MESH_PROXY_* environment variables)
  init      install the iptables rules that redirect the pod's traffic to the proxy
  version   print the version
`

// Run runs one command and returns the exit code.
func Run(ctx context.Context, args []string, s Streams, version Version) int {
	if len(args) == 0 {
		fmt.Fprint(s.Err, usage)
		return exitUsage
	}
	switch args[0] {
	case "run":
		if len(args) > 1 {
			fmt.Fprintf(s.Err, "mesh-proxy run takes no arguments (configure it with MESH_PROXY_* variables)\n")
			return exitUsage
		}
		if err := runProxy(ctx, s, string(version)); err != nil {
			fmt.Fprintf(s.Err, "mesh-proxy: %v\n", err)
			return exitError
		}
		return exitOK
	case "init":
		return runInit(ctx, args[1:], s)
	case "version":
		fmt.Fprintln(s.Out, version)
		return exitOK
	case "-h", "--help", "help":
		fmt.Fprint(s.Out, usage)
		return exitOK
	default:
		fmt.Fprintf(s.Err, "mesh-proxy: unknown command %q\n%s", args[0], usage)
		return exitUsage
	}
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
		token, _ := json.Marshal(map[string]string{"ns": cfg.PodNamespace, "pod": cfg.PodName})
		disc, err = discovery.New(discovery.Options{Addr: cfg.DestinationAddr, Creds: id.GRPCCredentials(cfg.DestinationName),
			ContextToken: string(token), Log: log.With("component", "discovery")})
		if err != nil {
			return err
		}
		defer func() { _ = disc.Close() }()
	}
	reg := metrics.New()

	var lc net.ListenConfig
	in, err := lc.Listen(ctx, "tcp", cfg.InboundAddr)
	if err != nil {
		return fmt.Errorf("inbound listener: %w", err)
	}
	out, err := lc.Listen(ctx, "tcp", cfg.OutboundAddr)
	if err != nil {
		_ = in.Close()
		return fmt.Errorf("outbound listener: %w", err)
	}
	adminLis, err := lc.Listen(ctx, "tcp", cfg.AdminAddr)
	if err != nil {
		_ = in.Close()
		_ = out.Close()
		return fmt.Errorf("admin listener: %w", err)
	}

	idCtx, stopID := context.WithCancel(context.WithoutCancel(ctx))
	defer stopID()
	go func() { _ = id.Run(idCtx) }()

	var draining atomic.Bool
	admin := &http.Server{Handler: adminMux(id, reg, draining.Load), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = admin.Serve(adminLis) }()
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			if e := id.Expiry(); !e.IsZero() {
				reg.IdentityExpiry(e)
			}
			select {
			case <-idCtx.Done():
				return
			case <-t.C:
			}
		}
	}()

	p := dataplane.New(dataplane.Options{
		Identity: id, Metrics: reg, OrigDst: iptables.OriginalDst,
		InboundOrigDst: addrOrZero(cfg.InboundOrigDst), OutboundOrigDst: addrOrZero(cfg.OutboundOrigDst),
		OpaquePorts: cfg.OpaquePorts, HTTP2Ports: cfg.HTTP2Ports, ProfileNetworks: cfg.ProfileNetworks, DetectTimeout: cfg.DetectTimeout,
		InboundConnectTimeout: cfg.InboundConnectTimeout, OutboundConnectTimeout: cfg.OutboundConnectTimeout,
		Log: log, Discovery: discoveryOrNil(disc),
	})
	log.Info("mesh-proxy starting", "version", version, "identity", cfg.LocalName, "inbound", in.Addr().String(),
		"outbound", out.Addr().String(), "admin", adminLis.Addr().String())
	err = p.Serve(ctx, in, out, cfg.ShutdownGrace)
	draining.Store(true)
	log.Info("mesh-proxy stopped")
	sctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = admin.Shutdown(sctx)
	return err
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
