package dataplane

import (
	"bufio"
	"net"
	"net/netip"
)

// peekConn is a connection whose first bytes were read for detection; reads return
// them first.
type peekConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *peekConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// NetConn is the wrapped connection (h1 half-closes through it).
func (c *peekConn) NetConn() net.Conn { return c.Conn }

// replayConn returns buffered bytes before reading from the connection.
type replayConn struct {
	net.Conn
	buf []byte
}

// NetConn is the wrapped connection (h1 half-closes through it).
func (c *replayConn) NetConn() net.Conn { return c.Conn }

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
	// targetStr is target.String(), kept with it by setTarget ("" until then).
	targetStr string
}

// setTarget sets the target and its string form, which requests use for their
// labels and URLs (computing it per request allocates).
func (m *meta) setTarget(ap netip.AddrPort) {
	m.target, m.targetStr = ap, ap.String()
}

// targetString is m.target.String(), without allocating once setTarget has run.
func (m *meta) targetString() string {
	if m.targetStr == "" {
		return m.target.String()
	}
	return m.targetStr
}

type metaKey struct{}
