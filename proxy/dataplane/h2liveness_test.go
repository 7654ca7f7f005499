package dataplane

import (
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/meshplane/mesh/proxy/h2"
	"golang.org/x/net/http2"
)

var fastH2 = h2.Timeouts{Write: 300 * time.Millisecond, KeepAliveInterval: 100 * time.Millisecond, KeepAliveTimeout: 100 * time.Millisecond}

// A client that stops reading while the proxy sends it a response is cut off
// after the write timeout: the proxy's write does not wait forever, the upstream
// stream is cancelled, and the connection ends.
func TestH2ServerWriteTimeoutClosesStuckPeer(t *testing.T) {
	t.Parallel()
	appDone := make(chan struct{})
	appAddr := h2App(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		defer close(appDone)
		chunk := make([]byte, 64<<10)
		for range 4096 { // 256 MiB, far more than the socket buffers hold
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}))
	tp := runProxy(t, Options{InboundOrigDst: appAddr, HTTP2: fastH2}, time.Second)

	c := dialH2Raw(t, tp.in.Addr().String(), http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1<<31 - 1})
	c.write(func() error { return c.fr.WriteWindowUpdate(0, 1<<31-1-65535) })
	c.request(1, "GET", "/big", true)
	select { // not reading: the proxy's writes block, then time out
	case <-appDone:
	case <-time.After(10 * time.Second):
		t.Fatal("the upstream stream was never cancelled: the proxy still waits on its write")
	}
	n, err := io.Copy(io.Discard, c.nc)
	if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection still open after the write timeout (read %d bytes)", n)
	}
	if n >= 256<<20 {
		t.Errorf("read the whole response (%d bytes): the connection was never cut", n)
	}
}
