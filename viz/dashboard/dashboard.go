// Package dashboard is `mesh dashboard`'s server: a local web UI, served by the CLI
// on a loopback address with the user's kubeconfig (nothing deployed, nothing
// exposed). Its pages (plain HTML, CSS and JavaScript embedded in the binary, no
// CDN) show the namespaces and workloads with their golden metrics, a topology graph
// of the edges between workloads, and a workload's routes and live tap, refreshed
// on their own.
//
// The JSON endpoints give what `mesh stat`, `mesh edges` and `mesh routes` print
// with -o json (the same encoders of viz/stat), and /api/tap the events of `mesh
// tap -o json` as an NDJSON stream. They are backed by Metrics (viz/stat's Direct)
// and viz/tap's Stream with a Dialer.
//
// Only requests whose Host is the address the server listens on (or localhost with
// its port) are served, and no cross-site request: a page of another site, or a DNS
// name rebound to 127.0.0.1, gets 403.
package dashboard

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/dynamic"

	"github.com/meshplane/mesh/viz/stat"
	"github.com/meshplane/mesh/viz/tap"
)

//go:embed static
var static embed.FS

// Metrics gives the golden metrics; *stat.Direct is one.
type Metrics interface {
	Stat(ctx context.Context, q stat.Query) ([]stat.Row, error)
	Edges(ctx context.Context, ns, kind string, window time.Duration) ([]stat.Edge, error)
	Routes(ctx context.Context, dyn dynamic.Interface, r stat.Resource, window time.Duration) ([]stat.RouteRow, error)
}

// Defaults of Config.
const (
	DefaultWindow  = 10 * time.Second
	DefaultRefresh = 5 * time.Second
)

// Config is what the server shows and where it gets it.
type Config struct {
	Metrics Metrics
	// Dynamic reads ServiceProfiles for the routes (nil: only routes with traffic).
	Dynamic dynamic.Interface
	// TapPods finds the meshed pods of a resource (KIND/NAME) in a namespace
	// (viz/tap.Resolve); TapDialer reaches their tap ports (viz/tap.PortForward).
	TapPods   func(ctx context.Context, namespace, resource string) ([]tap.Pod, error)
	TapDialer tap.Dialer
	// Namespace is the one shown first; Window the window of the rates
	// (DefaultWindow if zero); Refresh the pause of the pages between two
	// refreshes (DefaultRefresh if zero).
	Namespace string
	Window    time.Duration
	Refresh   time.Duration
	// Log receives the tap's warnings and the sources' failures (discarded if nil).
	Log io.Writer
}

// Handler serves the dashboard to the hosts of the address it listens on.
type Handler struct {
	cfg   Config
	hosts map[string]bool
	mux   *http.ServeMux
}

// NewHandler makes the handler for a server listening on addr (a *net.TCPAddr):
// requests must name it, or localhost with its port, as their Host.
func NewHandler(cfg Config, addr net.Addr) (*Handler, error) {
	ta, ok := addr.(*net.TCPAddr)
	if !ok {
		return nil, fmt.Errorf("dashboard: address %v is not TCP", addr)
	}
	if cfg.Window <= 0 {
		cfg.Window = DefaultWindow
	}
	if cfg.Refresh <= 0 {
		cfg.Refresh = DefaultRefresh
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	port := strconv.Itoa(ta.Port)
	h := &Handler{cfg: cfg, hosts: map[string]bool{net.JoinHostPort(ta.IP.String(), port): true}, mux: http.NewServeMux()}
	if ta.IP.IsLoopback() {
		h.hosts["localhost:"+port] = true
	}
	sub, err := fs.Sub(static, "static")
	if err != nil {
		return nil, fmt.Errorf("dashboard: the embedded assets: %w", err)
	}
	h.mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(sub)))
	h.mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		http.ServeFileFS(w, r, sub, "index.html")
	})
	h.mux.HandleFunc("GET /api/config", h.config)
	h.mux.HandleFunc("GET /api/namespaces", h.namespaces)
	h.mux.HandleFunc("GET /api/stat", h.stat)
	h.mux.HandleFunc("GET /api/edges", h.edges)
	h.mux.HandleFunc("GET /api/routes", h.routes)
	h.mux.HandleFunc("GET /api/tap", h.tap)
	return h, nil
}

// ServeHTTP refuses other hosts and cross-site requests (403), then serves.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !h.hosts[strings.ToLower(r.Host)] {
		http.Error(w, "dashboard: host "+strconv.Quote(r.Host)+" refused: open the URL mesh dashboard printed", http.StatusForbidden)
		return
	}
	if site := r.Header.Get("Sec-Fetch-Site"); site == "cross-site" || site == "same-site" {
		http.Error(w, "dashboard: cross-site request refused", http.StatusForbidden)
		return
	}
	if o := r.Header.Get("Origin"); o != "" && !h.hosts[strings.ToLower(strings.TrimPrefix(o, "http://"))] {
		http.Error(w, "dashboard: origin "+strconv.Quote(o)+" refused", http.StatusForbidden)
		return
	}
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'")
	h.mux.ServeHTTP(w, r)
}

// Serve serves h on l until ctx ends, then shuts down (open taps are cancelled).
func Serve(ctx context.Context, l net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second,
		BaseContext: func(net.Listener) context.Context { return ctx }}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return fmt.Errorf("dashboard: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("dashboard: %w", err)
	}
	return nil
}

// httpError is an error with its status.
type httpError struct {
	status int
	err    error
}

func (e *httpError) Error() string { return e.err.Error() }
func (e *httpError) Unwrap() error { return e.err }

func badRequest(format string, args ...any) error {
	return &httpError{http.StatusBadRequest, fmt.Errorf(format, args...)}
}

// fail writes err as {"error": "..."}: 400 for a bad request, 502 when the
// cluster or the proxies failed.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil {
		return // the page went away
	}
	status := http.StatusBadGateway
	var he *httpError
	if errors.As(err, &he) {
		status = he.status
	} else {
		fmt.Fprintf(h.cfg.Log, "dashboard: %s: %v\n", r.URL.Path, err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
}
