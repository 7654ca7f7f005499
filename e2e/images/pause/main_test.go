//go:build unix

package main

import (
	"os"
	"os/signal"
	"syscall"
	"testing"
	"time"
)

// TestMainReturnsOnSignal runs main in the test process and sends the process SIGTERM
// until main returns (its signal.Notify may not be in place for the first one). The
// test's own Notify keeps the signal from killing the process meanwhile.
func TestMainReturnsOnSignal(t *testing.T) {
	t.Parallel()
	guard := make(chan os.Signal, 1)
	signal.Notify(guard, syscall.SIGTERM)
	defer signal.Stop(guard)

	done := make(chan struct{})
	go func() {
		main()
		close(done)
	}()
	deadline := time.After(10 * time.Second)
	for {
		if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		select {
		case <-done:
			return
		case <-guard: // delivered; main may not have been listening yet
		case <-deadline:
			t.Fatal("main did not return on SIGTERM")
		}
	}
}
