package dataplane

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"testing"
	"time"
)

// After the grace period every accepted connection is closed, one still waiting for
// its first bytes (protocol detection) too, and Serve returns only when their
// goroutines have: it does not leave them to the detection timeout.
func TestServeClosesDetectingConnsAndWaits(t *testing.T) {
	t.Parallel()
	p := New(Options{Log: slog.New(slog.DiscardHandler), DetectTimeout: time.Minute})
	in, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	out, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- p.Serve(ctx, in, out, 50*time.Millisecond) }()

	c, err := net.Dial("tcp", in.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	waitFor(t, func() bool { // accepted and tracked
		p.mu.Lock()
		defer p.mu.Unlock()
		return len(p.conns) == 1
	})
	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(closeWait):
		t.Fatal("Serve did not return after the grace period")
	}
	// The proxy closed it (a timeout here means it was left to detection).
	_ = c.SetReadDeadline(time.Now().Add(closeWait))
	if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("read from a connection the proxy should have closed: %v", err)
	}
	p.wg.Wait() // returns at once: Serve waited
}
