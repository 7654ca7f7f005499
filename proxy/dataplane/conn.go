package dataplane

import (
	"bufio"
	"context"
	"net"
	"net/netip"
	"sync"
)

// peekConn is a connection whose first bytes were read for detection; reads return
// them first.
type peekConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *peekConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// replayConn returns buffered bytes before reading from the connection.
type replayConn struct {
	net.Conn
	buf []byte
}

func (c *replayConn) Read(p []byte) (int, error) {
	if len(c.buf) > 0 {
		n := copy(p, c.buf)
		c.buf = c.buf[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// recordConn records what it reads and, once passthrough is set, swallows writes:
// a TLS handshake attempted over it can be abandoned and its bytes replayed.
type recordConn struct {
	net.Conn
	seen        []byte
	passthrough bool
	stopped     bool // handshake done: stop recording
}

func (c *recordConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if !c.passthrough && !c.stopped {
		c.seen = append(c.seen, p[:n]...)
	}
	return n, err
}

func (c *recordConn) Write(p []byte) (int, error) {
	if c.passthrough {
		return len(p), nil
	}
	return c.Conn.Write(p)
}

// meta is what the proxy knows about an accepted connection; HTTP handlers get it
// from the request context.
type meta struct {
	// target is where inbound traffic goes (the app), or the outbound original destination.
	target netip.AddrPort
	// hasTarget is false when the outbound original destination is unknown.
	hasTarget bool
	tls       bool
	peerID    string // verified client identity (inbound)
}

type metaKey struct{}

// metaConn carries meta through http.Server to ConnContext.
type metaConn struct {
	net.Conn
	m *meta
}

// connListener hands connections the proxy accepted and detected as HTTP to an
// http.Server.
type connListener struct {
	addr   net.Addr
	ch     chan net.Conn
	done   chan struct{}
	closed sync.Once
}

func newConnListener(addr net.Addr) *connListener {
	return &connListener{addr: addr, ch: make(chan net.Conn), done: make(chan struct{})}
}

func (l *connListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// push hands c to the server; false if the listener is closed.
func (l *connListener) push(ctx context.Context, c net.Conn) bool {
	select {
	case l.ch <- c:
		return true
	case <-l.done:
		return false
	case <-ctx.Done():
		return false
	}
}

func (l *connListener) Close() error {
	l.closed.Do(func() { close(l.done) })
	return nil
}

func (l *connListener) Addr() net.Addr { return l.addr }
