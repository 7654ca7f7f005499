package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"
)

// tcpServer serves the line protocol where the server speaks first: on accept it
// writes "HELLO NAME POD\n", then answers every line it reads with "NAME POD: LINE\n"
// (after the replica's delay), and closes the connection on EOF. Each connection is
// logged when it ends as "PEER-IP TCP conn lines=N".
type tcpServer struct {
	app    *app
	ln     net.Listener
	ctx    context.Context // ends when shutdown gives up on being graceful
	cancel context.CancelFunc

	mu      sync.Mutex
	closing bool
	conns   map[net.Conn]struct{}
	wg      sync.WaitGroup // one per connection being served
}

func newTCPServer(a *app, ln net.Listener) *tcpServer {
	ctx, cancel := context.WithCancel(context.Background())
	return &tcpServer{app: a, ln: ln, ctx: ctx, cancel: cancel, conns: map[net.Conn]struct{}{}}
}

// serve accepts connections until shutdown closes the listener.
func (s *tcpServer) serve() error {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			s.mu.Lock()
			closing := s.closing
			s.mu.Unlock()
			if closing && errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("accept: %w", err)
		}
		if !s.track(c) {
			_ = c.Close()
			continue
		}
		go s.handle(c)
	}
}

func (s *tcpServer) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	return true
}

func (s *tcpServer) handle(c net.Conn) {
	defer func() {
		_ = c.Close()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		s.wg.Done()
	}()
	host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
	lines := 0
	defer func() { s.app.logger.Printf("%s TCP conn lines=%d", host, lines) }()
	if _, err := fmt.Fprintf(c, "HELLO %s %s\n", s.app.name, s.app.pod); err != nil {
		return
	}
	sc := bufio.NewScanner(c)
	for sc.Scan() {
		line := strings.TrimSuffix(sc.Text(), "\r")
		if err := s.app.wait(s.ctx); err != nil {
			return
		}
		if _, err := fmt.Fprintf(c, "%s %s: %s\n", s.app.name, s.app.pod, line); err != nil {
			return
		}
		lines++
	}
}

// shutdown closes the listener and ends idle connections: a read deadline in the past
// lets an answer being prepared still go out, then ends the connection. When ctx ends
// first, the remaining connections are closed.
func (s *tcpServer) shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	for c := range s.conns {
		_ = c.SetReadDeadline(time.Now())
	}
	s.mu.Unlock()
	var errs []error
	if err := s.ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		errs = append(errs, fmt.Errorf("tcp close: %w", err))
	}
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		s.cancel()
		s.mu.Lock()
		for c := range s.conns {
			_ = c.Close()
		}
		s.mu.Unlock()
		<-done
		errs = append(errs, fmt.Errorf("tcp graceful shutdown: %w", ctx.Err()))
	}
	s.cancel()
	return errors.Join(errs...)
}
