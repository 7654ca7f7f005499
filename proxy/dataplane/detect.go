package dataplane

import (
	"bufio"
	"bytes"
	"errors"
	"net"
	"os"
	"time"
)

// protocol is what detection found.
type protocol int

const (
	protoOpaque protocol = iota
	protoHTTP1
	protoHTTP2
	protoTLS
)

func (p protocol) String() string {
	return [...]string{"opaque", "http/1", "h2", "tls"}[p]
}

const detectBuffer = 1024

var h2Preface = []byte("PRI * HTTP/2.0")

// detect reads the client's first bytes (one read, up to 1 KiB, within timeout) and
// classifies them: a TLS ClientHello, the HTTP/2 preface, an HTTP/1 request line, or
// anything else (opaque). A client that sends nothing within the timeout (a
// server-speaks-first protocol) is opaque. The returned connection replays what was
// read.
func detect(c net.Conn, timeout time.Duration) (protocol, net.Conn, error) {
	r := bufio.NewReaderSize(c, detectBuffer)
	pc := &peekConn{Conn: c, r: r}
	if err := c.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return protoOpaque, pc, err
	}
	_, err := r.Peek(1)
	_ = c.SetReadDeadline(time.Time{})
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return protoOpaque, pc, nil
		}
		return protoOpaque, pc, err
	}
	b, _ := r.Peek(r.Buffered())
	// Short first reads ("GE", "PRI * HT"): wait briefly for the rest of the line.
	for needMore(b) {
		_ = c.SetReadDeadline(time.Now().Add(timeout))
		_, err := r.Peek(len(b) + 1)
		_ = c.SetReadDeadline(time.Time{})
		if err != nil {
			break
		}
		b, _ = r.Peek(r.Buffered())
	}
	return classify(b), pc, nil
}

// needMore is true while the bytes could still become a preface or request line.
func needMore(b []byte) bool {
	if len(b) >= detectBuffer || len(b) == 0 {
		return false
	}
	if len(b) < len(h2Preface) && bytes.HasPrefix(h2Preface, b) {
		return true
	}
	if b[0] == 0x16 {
		return len(b) < 3
	}
	if bytes.IndexByte(b, '\n') >= 0 {
		return false
	}
	// Letters then a space: an HTTP method so far.
	for i, ch := range b {
		if ch == ' ' {
			return i > 0
		}
		if ch < 'A' || ch > 'Z' {
			return false
		}
	}
	return true
}

func classify(b []byte) protocol {
	switch {
	case len(b) >= 3 && b[0] == 0x16 && b[1] == 0x03 && b[2] <= 0x04:
		return protoTLS
	case bytes.HasPrefix(b, h2Preface):
		return protoHTTP2
	case isHTTP1(b):
		return protoHTTP1
	case len(b) >= detectBuffer && methodPrefix(b):
		// A request line longer than the buffer: let the HTTP server judge it.
		return protoHTTP1
	}
	return protoOpaque
}

// isHTTP1 checks for "METHOD SP target SP HTTP/1.x" in the first line.
func isHTTP1(b []byte) bool {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	method, rest, ok := bytes.Cut(line, []byte(" "))
	if !ok || len(method) == 0 {
		return false
	}
	for _, ch := range method {
		if ch < 'A' || ch > 'Z' {
			return false
		}
	}
	_, version, ok := bytes.Cut(rest, []byte(" "))
	if !ok {
		return false
	}
	return bytes.HasPrefix(version, []byte("HTTP/1."))
}

func methodPrefix(b []byte) bool {
	i := bytes.IndexByte(b, ' ')
	if i <= 0 {
		return false
	}
	for _, ch := range b[:i] {
		if ch < 'A' || ch > 'Z' {
			return false
		}
	}
	return true
}
