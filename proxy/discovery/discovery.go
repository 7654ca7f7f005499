// Package discovery is the proxy's client of the destination service: it watches the
// endpoints (Get) and profile (GetProfile) of each authority the proxy routes to,
// shares one stream per authority, keeps the last known answer when a stream drops,
// and reconnects with backoff.
package discovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	meshv1 "github.com/meshplane/mesh/controlplane/api/mesh/v1"
)

// Endpoint is one address to send traffic to.
type Endpoint struct {
	Addr   netip.AddrPort
	Weight uint32
	// Identity is set only for meshed endpoints: verify it with mTLS.
	Identity string
	// H2: the peer proxy accepts HTTP/2 (upgrade HTTP/1 between proxies).
	H2 bool
	// Opaque: proxy bytes without detection; OpaqueInboundPort is the peer proxy's port.
	Opaque            bool
	OpaqueInboundPort uint32
	Zone              string
	// Labels: namespace, service, pod, workload kind and name...
	Labels map[string]string
}

// DefaultWeight is an endpoint's weight when the destination service sends none.
const DefaultWeight = 10000

// Set is the live answer for one authority. Its methods are safe for concurrent use;
// the zero Set (and a nil one) never answers.
type Set struct {
	snap     atomic.Pointer[snapshot]
	answered chan struct{} // closed at the first answer
	once     sync.Once
}

// snapshot is one immutable state of a Set.
type snapshot struct {
	endpoints []Endpoint
	inMesh    bool
	changed   chan struct{} // closed when the next snapshot replaces this one
}

func newSet() *Set {
	s := &Set{answered: make(chan struct{})}
	s.snap.Store(&snapshot{changed: make(chan struct{})})
	return s
}

// notInMesh is an answered set saying "not a mesh destination".
func notInMesh() *Set {
	s := newSet()
	s.publish(nil, false)
	return s
}

// publish replaces the snapshot and wakes the Changed waiters. Only one goroutine (the
// set's stream) publishes.
func (s *Set) publish(eps []Endpoint, inMesh bool) {
	old := s.snap.Swap(&snapshot{endpoints: eps, inMesh: inMesh, changed: make(chan struct{})})
	close(old.changed)
	s.once.Do(func() { close(s.answered) })
}

// Endpoints is the current snapshot (do not modify).
func (s *Set) Endpoints() []Endpoint {
	if s == nil {
		return nil
	}
	if p := s.snap.Load(); p != nil {
		return p.endpoints
	}
	return nil
}

// InMesh is false when the destination service said the authority is not a mesh
// destination (connect to the original address), or nothing is known yet.
func (s *Set) InMesh() bool {
	if s == nil {
		return false
	}
	p := s.snap.Load()
	return p != nil && p.inMesh
}

// Changed is closed at the next change; call it again for the one after. Read the
// snapshot after taking the channel, so that no change is missed.
func (s *Set) Changed() <-chan struct{} {
	if s == nil {
		return nil
	}
	if p := s.snap.Load(); p != nil {
		return p.changed
	}
	return nil
}

// Wait blocks until the first answer or ctx's end; false if none came.
func (s *Set) Wait(ctx context.Context) bool {
	if s == nil || s.answered == nil {
		return false
	}
	select {
	case <-s.answered:
		return true
	case <-ctx.Done():
		select {
		case <-s.answered:
			return true
		default:
			return false
		}
	}
}

// Route is one profile route.
type Route struct {
	Name   string
	Method string // "" matches any
	// Path matches the whole path; nil matches any.
	Path      *regexp.Regexp
	Retryable bool
	Timeout   time.Duration // 0: none
}

// Profile is an authority's routes and retry budget.
type Profile struct {
	// Name is the service's fully qualified name ("" for no service profile).
	Name       string
	Routes     []Route
	RetryRatio float64
	MinRetries int
	RetryTTL   time.Duration
	Opaque     bool
}

// Client watches authorities through the destination service.
type Client struct {
	o    Options
	log  *slog.Logger
	conn *grpc.ClientConn
	api  meshv1.DestinationClient

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	closed   bool
	sets     map[string]*setWatch
	profiles map[string]*profileWatch
}

// Options configure the client.
type Options struct {
	Addr string // destination service host:port
	// Creds secure the connection (identityclient.GRPCCredentials); nil is plaintext, for
	// tests only.
	Creds        credentials.TransportCredentials
	ContextToken string        // JSON {"ns":..., "pod":...}
	IdleTimeout  time.Duration // drop a watch unused this long (default 60s)
	Log          *slog.Logger
	Now          func() time.Time // default time.Now
	// MinBackoff and MaxBackoff bound the reconnection delay (defaults 100ms, 10s).
	MinBackoff, MaxBackoff time.Duration
}

// New dials lazily; a nil *Client (no destination service configured) resolves
// nothing, so every authority is "not in the mesh". An empty Addr gives a nil
// *Client and no error.
func New(o Options) (*Client, error) {
	if o.Addr == "" {
		return nil, nil
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 60 * time.Second
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 100 * time.Millisecond
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = max(10*time.Second, o.MinBackoff)
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	creds := o.Creds
	if creds == nil {
		creds = insecure.NewCredentials()
	}
	conn, err := grpc.NewClient(o.Addr, grpc.WithTransportCredentials(creds), grpc.WithConnectParams(grpc.ConnectParams{
		// Reconnect as eagerly as the streams retry (gRPC's default waits up to 120s).
		Backoff:           backoff.Config{BaseDelay: o.MinBackoff, Multiplier: 1.6, Jitter: 0.2, MaxDelay: o.MaxBackoff},
		MinConnectTimeout: 10 * time.Second,
	}))
	if err != nil {
		return nil, fmt.Errorf("discovery: destination service %s: %w", o.Addr, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Client{o: o, log: o.Log.With("component", "discovery"), conn: conn, api: meshv1.NewDestinationClient(conn),
		ctx: ctx, cancel: cancel, sets: map[string]*setWatch{}, profiles: map[string]*profileWatch{}}, nil
}

// Close ends all streams.
func (c *Client) Close() error {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	c.cancel()
	c.wg.Wait()
	if err := c.conn.Close(); err != nil {
		return fmt.Errorf("discovery: closing: %w", err)
	}
	return nil
}

// watch runs one stream per authority: open, receive until it fails, and reopen
// with backoff until ctx ends. recv returns nil at a clean end.
func (c *Client) watch(ctx context.Context, kind, authority string, open func(context.Context) (recv func() error, err error)) {
	backoff := c.o.MinBackoff
	failures := 0
	for {
		recv, err := open(ctx)
		if err == nil {
			for err = recv(); err == nil; err = recv() {
				if failures > 0 {
					c.log.Info("stream re-established", "kind", kind, "authority", authority)
				}
				failures = 0
				backoff = c.o.MinBackoff
			}
		}
		if ctx.Err() != nil {
			return
		}
		failures++
		args := []any{"kind", kind, "authority", authority, "attempt", failures, "retry_in", backoff, "err", err}
		if failures == 1 || backoff == c.o.MaxBackoff {
			c.log.Warn("stream failed; keeping the last answer and reconnecting", args...)
		} else {
			c.log.Debug("stream failed; reconnecting", args...)
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(backoff*2, c.o.MaxBackoff)
	}
}

// errEnded is a stream's clean end (the server returned).
var errEnded = errors.New("the destination service ended the stream")
