// Command demoapp is the server app of hack/demo.sh and of the e2e tests: a server that
// knows nothing of the mesh. Over HTTP it answers every request with what it saw
// (method, path, Host and the peer's address) and logs one line per request on stderr,
// "app: PEER-IP METHOD PATH STATUS", so the demo can show where connections came from.
//
// Optionally (-grpc) it also serves gRPC (grpc.health.v1.Health and the interop
// grpc.testing.TestService's EmptyCall and UnaryCall) and (-tcp) a raw TCP line
// protocol where the server speaks first: "HELLO NAME POD\n" on accept, then
// "NAME POD: LINE\n" for every line it reads.
//
// Every answer names the replica (POD_NAME, or the host name): the X-Served-By HTTP
// header, the x-served-by gRPC header metadata and the TCP answers. HTTP endpoints:
//
//	/healthz      200 "ok" (for kubelet probes; never delayed)
//	/delay?d=DUR  this replica waits DUR before every later HTTP, gRPC (TestService) and
//	              TCP answer; d=0 clears it, no d reports it
//	/status/NNN   answers with status NNN (200-599)
//	/sleep?d=DUR  waits DUR, then answers 200
//	/flaky        500 on the 1st, 3rd, 5th... request, 200 on the others
//	anything else 200 "hello from NAME: ..."
//
// On SIGTERM or SIGINT it keeps serving for -drain-delay (so endpoints can be removed
// while it still answers), then shuts the servers down gracefully and exits 0.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/grpc"
)

// app is one replica's state, shared by its HTTP, gRPC and TCP servers.
type app struct {
	name   string
	pod    string
	logger *log.Logger
	delay  atomic.Int64  // nanoseconds applied before answering; 0 means none
	flaky  atomic.Uint64 // requests /flaky received
}

// options are the lifecycle settings of run.
type options struct {
	drainDelay      time.Duration // serving on after the signal
	shutdownTimeout time.Duration // for graceful shutdown, then connections are closed
}

// listeners are what run serves on; grpc and tcp may be nil (disabled).
type listeners struct {
	http, grpc, tcp net.Listener
}

func main() {
	addr := flag.String("addr", "0.0.0.0:8080", "HTTP listen address")
	name := flag.String("name", "web", "the name it greets with")
	grpcAddr := flag.String("grpc", "", "gRPC listen address (Health and grpc.testing.TestService); empty disables")
	tcpAddr := flag.String("tcp", "", "listen address of the server-speaks-first TCP line protocol; empty disables")
	drain := flag.Duration("drain-delay", 3*time.Second, "how long to keep serving after SIGTERM/SIGINT before shutting down")
	shutdown := flag.Duration("shutdown-timeout", 15*time.Second, "how long graceful shutdown may take before connections are closed")
	flag.Parse()
	logger := log.New(os.Stderr, "app: ", 0)
	a := &app{name: *name, pod: podName(), logger: logger}
	ls, err := listen(*addr, *grpcAddr, *tcpAddr)
	if err != nil {
		logger.Fatal(err)
	}
	logger.Printf("listening on %s", *addr)
	if ls.grpc != nil {
		logger.Printf("grpc listening on %s", *grpcAddr)
	}
	if ls.tcp != nil {
		logger.Printf("tcp listening on %s", *tcpAddr)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // a second signal kills at once
	}()
	err = run(ctx, a, options{drainDelay: *drain, shutdownTimeout: *shutdown}, ls)
	stop()
	if err != nil {
		logger.Print(err)
		os.Exit(1)
	}
	logger.Print("stopped")
}

// podName is the replica's name: POD_NAME, else the host name.
func podName() string {
	if p := os.Getenv("POD_NAME"); p != "" {
		return p
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "unknown"
}

// listen opens the listeners; empty gRPC and TCP addresses leave theirs nil.
func listen(httpAddr, grpcAddr, tcpAddr string) (listeners, error) {
	var ls listeners
	var err error
	if ls.http, err = net.Listen("tcp", httpAddr); err != nil {
		return ls, fmt.Errorf("http: %w", err)
	}
	if grpcAddr != "" {
		if ls.grpc, err = net.Listen("tcp", grpcAddr); err != nil {
			_ = ls.http.Close()
			return ls, fmt.Errorf("grpc: %w", err)
		}
	}
	if tcpAddr != "" {
		if ls.tcp, err = net.Listen("tcp", tcpAddr); err != nil {
			_ = ls.http.Close()
			if ls.grpc != nil {
				_ = ls.grpc.Close()
			}
			return ls, fmt.Errorf("tcp: %w", err)
		}
	}
	return ls, nil
}

// run serves on ls until ctx ends, keeps serving for the drain delay, then shuts
// everything down gracefully. A server failing ends it early, with that error.
func run(ctx context.Context, a *app, opts options, ls listeners) error {
	errc := make(chan error, 3)
	var wg sync.WaitGroup
	start := func(what string, serve func() error) {
		wg.Go(func() {
			if err := serve(); err != nil {
				errc <- fmt.Errorf("%s server: %w", what, err)
			}
		})
	}
	var stops []func(context.Context) error

	httpSrv := &http.Server{Handler: a.httpHandler(), ReadHeaderTimeout: 10 * time.Second}
	start("http", func() error {
		if err := httpSrv.Serve(ls.http); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	stops = append(stops, func(ctx context.Context) error {
		if err := httpSrv.Shutdown(ctx); err != nil {
			_ = httpSrv.Close()
			return fmt.Errorf("http shutdown: %w", err)
		}
		return nil
	})
	if ls.grpc != nil {
		grpcSrv, hs := a.newGRPCServer()
		start("grpc", func() error { return grpcSrv.Serve(ls.grpc) })
		stops = append(stops, func(ctx context.Context) error {
			hs.Shutdown() // health checks answer NOT_SERVING from now on
			return stopGRPC(ctx, grpcSrv)
		})
	}
	if ls.tcp != nil {
		tcpSrv := newTCPServer(a, ls.tcp)
		start("tcp", tcpSrv.serve)
		stops = append(stops, tcpSrv.shutdown)
	}

	var failed error
	select {
	case <-ctx.Done():
		a.logger.Printf("signal: serving on for %s, then shutting down", opts.drainDelay)
		t := time.NewTimer(opts.drainDelay)
		select {
		case <-t.C:
		case failed = <-errc:
		}
		t.Stop()
	case failed = <-errc:
	}

	sctx, cancel := context.WithTimeout(context.Background(), opts.shutdownTimeout)
	defer cancel()
	errs := make([]error, len(stops))
	var sw sync.WaitGroup
	for i, stop := range stops {
		sw.Go(func() { errs[i] = stop(sctx) })
	}
	sw.Wait()
	wg.Wait()
	close(errc)
	errs = append(errs, failed)
	for err := range errc {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// stopGRPC stops s gracefully, or at once when ctx ends first.
func stopGRPC(ctx context.Context, s *grpc.Server) error {
	done := make(chan struct{})
	go func() {
		s.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.Stop()
		<-done
		return fmt.Errorf("grpc graceful stop: %w", ctx.Err())
	}
}

// wait applies the replica's delay, if any; it ends early, with ctx's error, when ctx does.
func (a *app) wait(ctx context.Context) error {
	d := time.Duration(a.delay.Load())
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("delay: %w", ctx.Err())
	}
}
