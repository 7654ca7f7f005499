// Command loadgen generates traffic inside the e2e cluster and counts what came back,
// per answering pod, for the tests to read over HTTP.
//
//	loadgen -mode http|grpc|tcp -target T [-rps 20] [-concurrency 4] [-duration 0]
//	        [-count 0] [-listen :8081]
//	loadgen -once -mode http|grpc|tcp -target T
//
// Modes: http GETs the URL T (one keep-alive client; the pod is the X-Served-By
// header; ok is 2xx); grpc calls grpc.testing.TestService/UnaryCall on host:port T
// (one ClientConn, insecure: the mesh adds TLS; the pod is the x-served-by header
// metadata; ok is OK); tcp opens a connection to host:port T per request, reads the
// greeting "HELLO NAME POD", writes a line and reads "NAME POD: LINE" (ok is that
// answer). Every request times out after 5s.
//
// On -listen it serves GET /stats, the JSON {"requests","ok","failed","errors":
// {KEY: N},"byPod":{POD: N},"latencyMs":{"p50","p95","p99"}} where KEY is the HTTP
// status, gRPC code or a short error of the failures; POST /reset, which zeroes the
// stats and answers with what they were; GET /healthz; and POST /run?mode=M&target=T&
// count=N[&concurrency=C][&rps=R][&header=NAME:VALUE...], which sends N requests
// (with those headers, in http mode) with fresh counters and answers with those. Without -target it only serves (a client the tests drive by /run).
//
// It sends until -duration is over or -count requests were sent (0: no limit), or
// until SIGTERM/SIGINT, waits for the requests in flight, prints the final stats on
// stdout and exits 0. With -once it sends one request, prints "POD STATUS" (POD "-"
// when none said) and exits 0 when it was ok, 1 otherwise.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

type config struct {
	mode        string
	target      string
	rps         float64 // total; 0 means as fast as the workers go
	concurrency int
	duration    time.Duration // 0 means until stopped
	count       int64         // requests to send; 0 means no limit
	listen      string        // stats address; empty disables
	once        bool
}

func main() {
	var cfg config
	flag.StringVar(&cfg.mode, "mode", "http", "http, grpc or tcp")
	flag.StringVar(&cfg.target, "target", "", "http: a URL; grpc and tcp: host:port")
	flag.Float64Var(&cfg.rps, "rps", 20, "requests per second in total; 0 for no limit")
	flag.IntVar(&cfg.concurrency, "concurrency", 4, "requests in flight at most")
	flag.DurationVar(&cfg.duration, "duration", 0, "how long to send; 0 until killed")
	flag.Int64Var(&cfg.count, "count", 0, "how many requests to send; 0 for no limit")
	flag.StringVar(&cfg.listen, "listen", ":8081", "address of /stats, /reset and /healthz; empty disables")
	flag.BoolVar(&cfg.once, "once", false, "send one request, print the pod and status, exit 0 if it was ok")
	flag.Parse()
	logger := log.New(os.Stderr, "loadgen: ", 0)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, cfg, os.Stdout, logger)
	stop()
	if err != nil {
		logger.Print(err)
		os.Exit(1)
	}
}

// idle is the requester of a loadgen without -target.
type idle struct{}

func (idle) do(context.Context) result { return result{} }
func (idle) close() error              { return nil }

func (c config) validate() error {
	switch {
	case c.target == "" && (c.once || c.listen == ""):
		return errors.New("-target is required (without -listen, or with -once)")
	case c.concurrency < 1:
		return fmt.Errorf("-concurrency %d: want at least 1", c.concurrency)
	case c.rps < 0:
		return fmt.Errorf("-rps %g: want 0 or more", c.rps)
	case c.duration < 0:
		return fmt.Errorf("-duration %s: want 0 or more", c.duration)
	case c.count < 0:
		return fmt.Errorf("-count %d: want 0 or more", c.count)
	}
	return nil
}

func run(ctx context.Context, cfg config, stdout io.Writer, logger *log.Logger) (err error) {
	if err := cfg.validate(); err != nil {
		return err
	}
	var req requester = idle{}
	if cfg.target != "" {
		if req, err = newRequester(cfg.mode, cfg.target, cfg.concurrency); err != nil {
			return err
		}
	}
	defer func() { err = errors.Join(err, req.close()) }()

	if cfg.once {
		r := req.do(ctx)
		pod := r.pod
		if pod == "" {
			pod = "-"
		}
		if _, err := fmt.Fprintf(stdout, "%s %s\n", pod, r.key); err != nil {
			return fmt.Errorf("stdout: %w", err)
		}
		if !r.ok {
			return fmt.Errorf("request not ok: %s", r.key)
		}
		return nil
	}

	st := newStats()
	if cfg.listen != "" {
		ln, err := net.Listen("tcp", cfg.listen)
		if err != nil {
			return fmt.Errorf("stats: %w", err)
		}
		srv := &http.Server{Handler: st.handler(), ReadHeaderTimeout: 10 * time.Second}
		served := make(chan error, 1)
		go func() { served <- srv.Serve(ln) }()
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = srv.Shutdown(sctx)
			if serr := <-served; !errors.Is(serr, http.ErrServerClosed) {
				err = errors.Join(err, fmt.Errorf("stats server: %w", serr))
			}
		}()
		logger.Printf("stats on %s", ln.Addr())
	}

	loadCtx := ctx
	if cfg.duration > 0 {
		var cancel context.CancelFunc
		loadCtx, cancel = context.WithTimeout(ctx, cfg.duration)
		defer cancel()
	}
	if cfg.target == "" {
		logger.Printf("no -target: serving /run only")
		<-ctx.Done()
		return nil
	}
	logger.Printf("%s %s: %g rps, concurrency %d, duration %s, count %d", cfg.mode, cfg.target, cfg.rps, cfg.concurrency, cfg.duration, cfg.count)
	generate(loadCtx, cfg, req, st)

	b, err := json.Marshal(st.snapshot(false))
	if err != nil {
		return fmt.Errorf("stats: %w", err)
	}
	if _, err := fmt.Fprintf(stdout, "%s\n", b); err != nil {
		return fmt.Errorf("stdout: %w", err)
	}
	return nil
}

// generate sends requests from cfg.concurrency workers, paced to cfg.rps in total,
// until ctx ends or cfg.count were sent, and returns when the last one is answered.
// Request k is due at start + k/rps: a worker that falls behind sends at once, so the
// average rate is the one asked for while the workers keep up (like wrk2 and fortio's
// constant rate). Requests in flight are not canceled with ctx: they end by their own
// timeout.
func generate(ctx context.Context, cfg config, req requester, st *stats) {
	var interval time.Duration
	if cfg.rps > 0 {
		interval = max(time.Duration(float64(time.Second)/cfg.rps), time.Nanosecond)
	}
	start := time.Now()
	reqCtx := context.WithoutCancel(ctx)
	var sent atomic.Int64
	var wg sync.WaitGroup
	for range cfg.concurrency {
		wg.Go(func() {
			for {
				k := sent.Add(1)
				if ctx.Err() != nil || (cfg.count > 0 && k > cfg.count) {
					return
				}
				if interval > 0 {
					if wait := time.Until(start.Add(time.Duration(k-1) * interval)); wait > 0 {
						t := time.NewTimer(wait)
						select {
						case <-ctx.Done():
							t.Stop()
							return
						case <-t.C:
						}
					}
				}
				begin := time.Now()
				r := req.do(reqCtx)
				st.record(r, time.Since(begin))
			}
		})
	}
	wg.Wait()
}
