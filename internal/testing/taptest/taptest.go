// Package taptest is the tap side of the cli/tap and cli/top tests: a real proxy tap
// endpoint (proxy/tap's Hub and handler) on a loopback socket, a viz/tap.Dialer that
// reaches pods' tap ports on loopback addresses instead of through a port-forward,
// and a buffer a test may read while a command writes it.
package taptest

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	api "github.com/meshplane/mesh/controlplane/api/tap"
	"github.com/meshplane/mesh/proxy/tap"
	vtap "github.com/meshplane/mesh/viz/tap"
)

// Proxy is a proxy's tap API on 127.0.0.1.
type Proxy struct {
	Hub  *tap.Hub
	Addr string
}

// Start serves a tap Hub with options o until the test ends.
func Start(t *testing.T, o tap.Options) *Proxy {
	t.Helper()
	hub := tap.New(o)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: hub.Handler(10 * time.Millisecond), ReadHeaderTimeout: time.Second}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(func() { _ = srv.Close() })
	return &Proxy{Hub: hub, Addr: lis.Addr().String()}
}

// PublishWhenSubscribed publishes evs, in order, once the proxy has a subscriber
// (it gives up after 10 s).
func (p *Proxy) PublishWhenSubscribed(evs []*api.Event) {
	go func() {
		deadline := time.Now().Add(10 * time.Second)
		for !p.Hub.Active() && time.Now().Before(deadline) {
			time.Sleep(2 * time.Millisecond)
		}
		for _, e := range evs {
			p.Hub.Publish(e)
		}
	}()
}

// LoopDialer maps pod names to their tap ports' loopback addresses; a pod it does
// not know is refused as the API server refuses a port-forward.
type LoopDialer map[string]string

// DialTap implements viz/tap.Dialer.
func (d LoopDialer) DialTap(ctx context.Context, p vtap.Pod) (net.Conn, error) {
	addr, ok := d[p.Name]
	if !ok {
		return nil, errors.New(`pods "` + p.Name + `" is forbidden: cannot create resource "pods/portforward"`)
	}
	var nd net.Dialer
	return nd.DialContext(ctx, "tcp", addr)
}

// Pods resolves any resource to these pods of the namespace asked.
func Pods(names ...string) func(context.Context, string, string) ([]vtap.Pod, error) {
	return func(_ context.Context, ns, _ string) ([]vtap.Pod, error) {
		var out []vtap.Pod
		for _, n := range names {
			out = append(out, vtap.Pod{Namespace: ns, Name: n})
		}
		return out, nil
	}
}

// SyncBuffer is a buffer a test reads while a command writes it.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }
