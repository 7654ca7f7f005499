package dataplane

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/net/http2/hpack"
)

// h2body is a request body: the connection's goroutine pushes DATA into it, the
// handler reads it, and what is read goes back to the peer as window.
type h2body struct {
	s       *h2stream
	mu      sync.Mutex
	cond    sync.Cond
	buf     []byte
	err     error // io.EOF once the peer ended the stream
	closed  bool  // the handler is done with it: further DATA is dropped
	win     int64 // receive window the peer may still use
	unacked int64
	trailer http.Header // the request's Trailer: filled by Read at the end
	got     http.Header // trailers received, until Read hands them over
}

// push adds data; false if the peer overran the window.
func (b *h2body) push(data []byte, end bool) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if int64(len(data)) > b.win {
		return false
	}
	b.win -= int64(len(data))
	if !b.closed && b.err == nil {
		b.buf = append(b.buf, data...)
	} else if len(data) > 0 {
		// Nobody will read it: hand the window back right away (outside the lock).
		defer b.s.c.giveBack(nil, int64(len(data)))
	}
	if end && b.err == nil {
		b.err = io.EOF
	}
	b.cond.Broadcast()
	return true
}

func (b *h2body) trailers(fields []hpack.HeaderField) {
	b.mu.Lock()
	defer b.mu.Unlock()
	// Kept aside: the request's Trailer map belongs to the goroutine reading the
	// body (http.Transport reads it when the body ends), so Read fills it.
	for _, hf := range fields {
		k := canonicalHeader(hf.Name)
		if b.got == nil {
			b.got = http.Header{}
		}
		b.got[k] = append(b.got[k], hf.Value)
	}
	if b.err == nil {
		b.err = io.EOF
	}
	b.cond.Broadcast()
}

func (b *h2body) fail(err error) {
	b.mu.Lock()
	if b.err == nil {
		b.err = err
	}
	b.cond.Broadcast()
	b.mu.Unlock()
}

func (b *h2body) Read(p []byte) (int, error) {
	b.mu.Lock()
	for len(b.buf) == 0 && b.err == nil && !b.closed {
		b.cond.Wait()
	}
	if b.closed {
		b.mu.Unlock()
		return 0, errors.New("http2: request body closed")
	}
	n := copy(p, b.buf)
	b.buf = b.buf[n:]
	if len(b.buf) == 0 {
		b.buf = b.buf[:0:0]
	}
	var err error
	if len(b.buf) == 0 {
		err = b.err
	}
	if errors.Is(err, io.EOF) && b.trailer != nil {
		for k, vs := range b.got {
			if _, declared := b.trailer[k]; declared {
				b.trailer[k] = vs
			}
		}
	}
	b.mu.Unlock()
	b.s.c.giveBack(b.s, int64(n))
	return n, err
}

func (b *h2body) Close() error {
	unread, _ := b.discard()
	b.s.c.giveBack(nil, unread)
	return nil
}

// discard drops what is buffered; it returns how many bytes that was, and whether
// the peer had not yet ended the stream.
func (b *h2body) discard() (int64, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := int64(len(b.buf))
	b.buf, b.closed = nil, true
	b.cond.Broadcast()
	return n, b.err == nil
}

// consumed notes n bytes read and returns the stream window to give back now.
func (b *h2body) consumed(n int64) uint32 {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err != nil || b.closed {
		return 0 // the peer sends no more on this stream
	}
	b.unacked += n
	if b.unacked < h2StreamWindow/4 {
		return 0
	}
	inc := b.unacked
	b.win += inc
	b.unacked = 0
	return uint32(inc)
}

// statusText is the :status value for code.
func statusText(code int) string {
	switch code {
	case 200:
		return "200"
	case 204:
		return "204"
	case 404:
		return "404"
	case 500:
		return "500"
	case 502:
		return "502"
	case 503:
		return "503"
	case 504:
		return "504"
	}
	return strconv.Itoa(code)
}

// lowerHeader is k as an HTTP/2 field name; false for connection-specific fields,
// which HTTP/2 forbids.
func lowerHeader(k string) (string, bool) {
	switch k {
	case "Content-Type":
		return "content-type", true
	case "Content-Length":
		return "content-length", true
	case "Date":
		return "date", true
	case "Grpc-Status":
		return "grpc-status", true
	case "Grpc-Message":
		return "grpc-message", true
	case "Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "Upgrade":
		return "", false
	}
	for i := 0; i < len(k); i++ {
		if c := k[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(k), true
		}
	}
	return k, true
}

// canonicalHeader is the http.Header key for an HTTP/2 (lower-case) field name.
func canonicalHeader(name string) string {
	switch name {
	case "content-type":
		return "Content-Type"
	case "content-length":
		return "Content-Length"
	case "user-agent":
		return "User-Agent"
	case "accept":
		return "Accept"
	case "accept-encoding":
		return "Accept-Encoding"
	case "te":
		return "Te"
	case "grpc-timeout":
		return "Grpc-Timeout"
	case "mesh-orig-proto":
		return headerOrigProto
	}
	return http.CanonicalHeaderKey(name)
}
