package dataplane

import (
	"bufio"
	"bytes"
	"errors"
	"net"
	"os"
	"time"

	"github.com/meshplane/mesh/proxy/httpfield"
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
	b = trimEmptyLines(b)
	if len(b) == 0 {
		return true
	}
	if bytes.IndexByte(b, '\n') >= 0 {
		return false
	}
	// A token, then whitespace: a method so far.
	n := httpfield.TokenLen(b)
	return n > 0 && (n == len(b) || isLineSpace(b[n]))
}

func classify(b []byte) protocol {
	switch {
	case len(b) >= 3 && b[0] == 0x16 && b[1] == 0x03 && b[2] <= 0x04:
		return protoTLS
	case bytes.HasPrefix(b, h2Preface):
		return protoHTTP2
	}
	full := len(b) >= detectBuffer
	b = trimEmptyLines(b)
	switch {
	case isHTTP1(b):
		return protoHTTP1
	case full && bytes.IndexByte(b, '\n') < 0 && methodPrefix(b):
		// A request line longer than the buffer: let the HTTP server judge it.
		return protoHTTP1
	}
	return protoOpaque
}

// isHTTP1 is true when the first line looks like an HTTP/1 request line, well formed
// or not: a token (the method), whitespace, and later "HTTP/" (any case) after
// whitespace. The HTTP/1 server then parses it, and answers what is malformed with
// 400 or 505: a lower-case method, two spaces, a tab, "HTTP/2.0" must not turn the
// connection into opaque TCP that bypasses parsing, limits, metrics and routing
// (other servers accept some of these: RFC 9112 §3 lets them split the request line
// on any whitespace). Only bytes that are not HTTP-like are opaque.
func isHTTP1(b []byte) bool {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	if !methodPrefix(line) {
		return false
	}
	for i := httpfield.TokenLen(line) + 1; i+5 <= len(line); i++ {
		if isLineSpace(line[i-1]) && asciiEqualFold(line[i:i+5], "HTTP/") {
			return true
		}
	}
	return false
}

// methodPrefix: a token, then whitespace.
func methodPrefix(b []byte) bool {
	n := httpfield.TokenLen(b)
	return n > 0 && n < len(b) && isLineSpace(b[n])
}

// isLineSpace: the whitespace RFC 9112 §3 lets a recipient split a request line on.
func isLineSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\v' || c == '\f' || c == '\r'
}

// trimEmptyLines drops empty lines and whitespace before a request line: servers
// may ignore them (RFC 9112 §2.2, §3), so they do not make the bytes less HTTP.
func trimEmptyLines(b []byte) []byte {
	for len(b) > 0 && (b[0] == '\n' || isLineSpace(b[0])) {
		b = b[1:]
	}
	return b
}

func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		x, y := b[i], s[i]
		if 'a' <= x && x <= 'z' {
			x -= 'a' - 'A'
		}
		if 'a' <= y && y <= 'z' {
			y -= 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
