package h2

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"testing"

	"github.com/meshplane/mesh/proxy/proxytest"
)

// TestH2SpecEngine runs h2spec against the engine alone: an h2c listener whose
// connections ServeConn serves with a handler that reads the request body and
// echoes it with a trailer, like the application behind the proxy (the proxy's surfaces are dataplane's TestH2Spec). Every case must
// pass, the strict one too.
func TestH2SpecEngine(t *testing.T) {
	bin := proxytest.H2SpecBinary(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); _ = l.Close() })
	srv := &Server{Handler: HTTPHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Trailer")
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		_, _ = fmt.Fprintf(w, "hello %s", b) // h2spec's flow-control cases need a body
		w.Header().Set("X-Trailer", "done")
	}))}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go srv.ServeConn(ctx, c)
		}
	}()
	n, failed := proxytest.RunH2Spec(t, bin, netip.MustParseAddrPort(l.Addr().String()))
	t.Logf("h2spec: %d/%d passed", n-len(failed), n)
	for _, f := range failed {
		t.Errorf("failed: %s", f)
	}
	if n < 146 {
		t.Errorf("h2spec ran %d cases, want 146 (145 and the strict one)", n)
	}
}
