package proxytest

import (
	"net"
	"net/http"
	"net/netip"
	"testing"
	"time"
)

// H2CApp serves h with net/http on a free loopback port, speaking HTTP/1 and h2c
// (HTTP/2 with prior knowledge); it stops at the end of the test.
func H2CApp(t testing.TB, h http.Handler) netip.AddrPort {
	t.Helper()
	var ps http.Protocols
	ps.SetHTTP1(true)
	ps.SetUnencryptedHTTP2(true)
	srv := &http.Server{Handler: h, Protocols: &ps}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return netip.MustParseAddrPort(l.Addr().String())
}

// WaitFor polls f until it is true, failing the test after 10 s.
func WaitFor(t testing.TB, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
