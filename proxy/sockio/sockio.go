// Package sockio gives the proxy TCP connections whose reads and writes stay on the
// goroutine's processor while they are in the kernel.
//
// Go's net package makes each read and write through the runtime's syscall path: it
// marks the processor as in a system call, and the runtime's monitor thread takes the
// processor away from a call that lasts longer than one of its ticks (20 µs), handing
// it to another thread, which the call's own thread must then win back. A proxy runs
// on one processor (GOMAXPROCS=1, like Linkerd's default proxy), and on loopback and
// on a node's bridge a write does the receiver's TCP work before it returns, so that
// hand-off happened on a large share of writes: futex wake-ups, context switches and a
// monitor thread kept awake, for no gain, since the sockets are non-blocking and no
// call waits for the network.
//
// Conn makes the same read and write system calls on the same non-blocking socket
// without that hand-off, through syscall.RawConn: reads and writes wait for readiness
// in the runtime's network poller exactly as net.TCPConn's do, and deadlines, Close
// and the errors a caller sees (net.OpError wrapping the errno, io.EOF, net.ErrClosed,
// os.ErrDeadlineExceeded) are those of net.TCPConn.
package sockio

import (
	"context"
	"net"
)

// Wrap returns c as a Conn when c is a TCP connection on a system that supports it,
// and c itself otherwise.
func Wrap(c net.Conn) net.Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c
	}
	if w := wrap(tc); w != nil {
		return w
	}
	return c
}

// TCP returns the TCP connection under c: c itself, or the one a Conn wraps.
func TCP(c net.Conn) (*net.TCPConn, bool) {
	switch t := c.(type) {
	case *net.TCPConn:
		return t, true
	case interface{ TCP() *net.TCPConn }:
		return t.TCP(), true
	}
	return nil, false
}

// Dial dials TCP with d and wraps the connection (Go already sets TCP_NODELAY).
func Dial(ctx context.Context, d *net.Dialer, addr string) (net.Conn, error) {
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return Wrap(c), nil
}

// Listen wraps l so that the connections it accepts are Conns: for a net/http server
// (the tap API), whose writes would otherwise each wake the runtime's sysmon thread.
func Listen(l net.Listener) net.Listener { return listener{l} }

type listener struct{ net.Listener }

func (l listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return Wrap(c), nil
}
