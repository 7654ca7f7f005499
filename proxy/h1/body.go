package h1

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"sync"

	"github.com/meshplane/mesh/proxy/httpfield"
)

// Request bodies of the HTTP/1 server: Content-Length, or chunked (RFC 9112 §7.1),
// parsed strictly: a chunk-size of hex digits only, chunk extensions of the grammar,
// CRLF wherever the grammar has it (a bare LF is an error: RFC 9112 §7.1, erratum
// 7633), trailer fields of the field-line grammar. Any error is final, and marks the
// connection broken: it is closed after the response, never read for a further
// request.

// ErrBadBody marks a request body that broke its framing, or ended early.
var ErrBadBody = errors.New("malformed request body")

const (
	// A request's trailer section: under the 4 KiB net/http's server accepts, so
	// that the proxy never passes on trailers it would refuse.
	maxTrailerBytes = 4000
	// A chunked body may carry 16 bytes of overhead per chunk plus twice its data
	// (as net/http allows); more than this beyond that is refused.
	maxChunkExcess = 16 << 10
)

const (
	chunkSize uint8 = iota // next: a chunk-size line
	chunkData              // next: left bytes of chunk data
	chunkEnd               // next: the CRLF after the chunk data
)

// h1ReqBody is a request body read from the connection's reader. Reads are locked:
// http.Transport may read and close a request body from its own goroutine.
type h1ReqBody struct {
	mu      sync.Mutex
	c       *h1conn
	br      *bufio.Reader
	chunked bool
	state   uint8
	left    int64 // of the body (Content-Length) or of the current chunk
	excess  int64
	trailer http.Header // the request's Trailer: declared names, filled at the end
	err     error       // io.EOF at the end, else why the body failed
	closed  bool        // Close was called: Read fails
}

func (b *h1ReqBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, http.ErrBodyReadAfterClose
	}
	for b.err == nil {
		switch {
		case !b.chunked && b.left == 0:
			b.err = io.EOF
		case !b.chunked || b.state == chunkData:
			return b.data(p)
		case b.state == chunkSize:
			b.beginChunk()
		default:
			b.endChunk()
		}
	}
	return 0, b.err
}

// Close makes further reads fail; what is left is drained (or not) by the server.
func (b *h1ReqBody) Close() error {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	return nil
}

// drain reads what is left of the body, up to limit bytes of data; false when the
// body is longer, or broken: the connection cannot be reused.
func (b *h1ReqBody) drain(limit int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for b.err == nil {
		switch {
		case !b.chunked && b.left == 0:
			b.err = io.EOF
		case !b.chunked || b.state == chunkData:
			if b.left > limit {
				return false
			}
			n, err := b.br.Discard(int(b.left))
			limit -= int64(n)
			b.left -= int64(n)
			if err != nil {
				b.fail(err)
				return false
			}
			if b.chunked {
				b.state = chunkEnd
			}
		case b.state == chunkSize:
			b.beginChunk()
		default:
			b.endChunk()
		}
	}
	return errors.Is(b.err, io.EOF)
}

// data reads chunk or body data into p.
func (b *h1ReqBody) data(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.br.Read(p)
	b.left -= int64(n)
	if err != nil {
		b.fail(err)
		return n, b.err
	}
	if b.left == 0 && b.chunked {
		b.state = chunkEnd
	}
	return n, nil
}

// fail ends the body with err and marks the connection broken.
func (b *h1ReqBody) fail(err error) {
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	b.err = fmt.Errorf("%w: %w", ErrBadBody, err)
	b.c.broken.Store(true)
}

func (b *h1ReqBody) failf(msg string) { b.fail(errors.New(msg)) }

// readLine reads a line that must end in CRLF, with no other CR, and returns it
// without its CRLF (valid until the next read).
func (b *h1ReqBody) readLine(what string) ([]byte, bool) {
	line, err := b.br.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			b.failf(what + " too long")
		} else {
			b.fail(err)
		}
		return nil, false
	}
	if len(line) < 2 || line[len(line)-2] != '\r' {
		b.failf(what + " ends with a bare LF")
		return nil, false
	}
	line = line[:len(line)-2]
	if indexByte(line, '\r') >= 0 {
		b.failf("bare CR in a " + what)
		return nil, false
	}
	return line, true
}

// beginChunk reads a chunk-size line: chunk-size [ chunk-ext ] CRLF (RFC 9112 §7.1).
func (b *h1ReqBody) beginChunk() {
	line, ok := b.readLine("chunk-size line")
	if !ok {
		return
	}
	b.excess += int64(len(line)) + 4 // and the CRLFs after the line and the data
	var n uint64
	i := 0
	for ; i < len(line); i++ {
		d, ok := unhex(line[i])
		if !ok {
			break
		}
		if i == 16 {
			b.failf("chunk-size too large")
			return
		}
		n = n<<4 | uint64(d)
	}
	switch {
	case i == 0:
		b.failf("malformed chunk-size")
		return
	case n > math.MaxInt64:
		b.failf("chunk-size too large")
		return
	case !validChunkExt(line[i:]):
		b.failf("malformed chunk extension")
		return
	}
	b.excess -= 16 + 2*int64(min(n, maxChunkExcess))
	b.excess = max(b.excess, 0)
	if b.excess > maxChunkExcess {
		b.failf("chunked body with too much non-data")
		return
	}
	if n == 0 {
		b.readTrailers()
		return
	}
	b.left, b.state = int64(n), chunkData
}

// endChunk reads the CRLF after a chunk's data.
func (b *h1ReqBody) endChunk() {
	c1, err := b.br.ReadByte()
	if err == nil {
		var c2 byte
		if c2, err = b.br.ReadByte(); err == nil && (c1 != '\r' || c2 != '\n') {
			b.failf("chunk data not followed by CRLF")
			return
		}
	}
	if err != nil {
		b.fail(err)
		return
	}
	b.state = chunkSize
}

// readTrailers reads the trailer section after the last chunk, to its empty line
// (RFC 9112 §7.1.2), keeping the declared trailers that a trailer may carry.
func (b *h1ReqBody) readTrailers() {
	total := 0
	for {
		line, ok := b.readLine("trailer line")
		if !ok {
			return
		}
		if len(line) == 0 {
			b.err = io.EOF
			return
		}
		if total += len(line) + 2; total > maxTrailerBytes {
			b.failf("trailer section too large")
			return
		}
		name, value, ok := splitFieldLine(line)
		if !ok {
			b.failf("malformed trailer field")
			return
		}
		canonicalizeName(name)
		if _, declared := b.trailer[string(name)]; declared {
			k := string(name)
			b.trailer[k] = append(b.trailer[k], string(value))
		}
	}
}

// splitFieldLine splits field-name ":" OWS field-value OWS (RFC 9112 §5): no
// whitespace before the colon or at the start (obs-fold), a token name, a valid value.
func splitFieldLine(line []byte) (name, value []byte, ok bool) {
	colon := indexByte(line, ':')
	if colon <= 0 {
		return nil, nil, false
	}
	for _, c := range line[:colon] {
		if !httpfield.IsTchar(c) {
			return nil, nil, false
		}
	}
	v := line[colon+1:]
	for len(v) > 0 && httpfield.IsOWS(v[0]) {
		v = v[1:]
	}
	for len(v) > 0 && httpfield.IsOWS(v[len(v)-1]) {
		v = v[:len(v)-1]
	}
	for _, c := range v {
		if !httpfield.IsFieldVChar(c) {
			return nil, nil, false
		}
	}
	return line[:colon], v, true
}

// validChunkExt checks chunk-ext = *( BWS ";" BWS chunk-ext-name
// [ BWS "=" BWS chunk-ext-val ] ), chunk-ext-name = token,
// chunk-ext-val = token / quoted-string (RFC 9112 §7.1.1). Whitespace is allowed
// only where BWS is: "5 \r\n" is malformed.
func validChunkExt(ext []byte) bool {
	for len(ext) > 0 {
		ext = trimBWS(ext)
		if len(ext) == 0 || ext[0] != ';' {
			return false
		}
		ext = trimBWS(ext[1:])
		n := httpfield.TokenLen(ext)
		if n == 0 {
			return false
		}
		ext = ext[n:]
		rest := trimBWS(ext)
		if len(rest) == 0 || rest[0] != '=' {
			if len(rest) == 0 && len(ext) > 0 {
				return false // trailing whitespace
			}
			ext = rest
			continue
		}
		ext = trimBWS(rest[1:])
		if len(ext) > 0 && ext[0] == '"' {
			n = quotedLen(ext)
		} else {
			n = httpfield.TokenLen(ext)
		}
		if n <= 0 {
			return false
		}
		ext = ext[n:]
		if r := trimBWS(ext); len(r) == 0 && len(ext) > 0 {
			return false // trailing whitespace
		}
	}
	return true
}

func trimBWS(b []byte) []byte {
	for len(b) > 0 && httpfield.IsOWS(b[0]) {
		b = b[1:]
	}
	return b
}

// quotedLen is the length of the quoted-string at the start of b (RFC 9110 §5.6.4),
// or -1.
func quotedLen(b []byte) int {
	for i := 1; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			return i + 1
		case c == '\\':
			if i+1 == len(b) || !httpfield.IsFieldVChar(b[i+1]) {
				return -1
			}
			i++
		case !httpfield.IsFieldVChar(c):
			return -1
		}
	}
	return -1
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
