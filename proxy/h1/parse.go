package h1

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/meshplane/mesh/proxy/httpfield"
	"golang.org/x/net/http/httpguts"
)

// The HTTP/1 server's request parser (RFC 9112). It builds the same http.Request as
// http.ReadRequest for what both accept, and refuses, with a status and the
// connection closed, everything on which two parsers could disagree about where a
// request ends: whitespace before a field's colon, obs-fold, controls and bare CRs,
// several or malformed Content-Lengths, Transfer-Encoding with Content-Length, in
// HTTP/1.0, or other than chunked, several or malformed Hosts. The whole head is
// copied once into a string that the method, target, names and values are cut from.

const maxHeaderFields = 1000 // more gets 431, like a head over httpfield.MaxHeaderBytes

var errHeadersTooLarge = errors.New("request headers too large")

// statusError is a request refused with a status: 400, 501 or 505. The connection
// is closed after the answer.
type statusError struct {
	code int
	msg  string
}

func (e *statusError) Error() string {
	return fmt.Sprintf("%d %s: %s", e.code, http.StatusText(e.code), e.msg)
}

func badRequest(format string, args ...any) error {
	return &statusError{code: http.StatusBadRequest, msg: fmt.Sprintf(format, args...)}
}

// fieldPos is where a field line's name and value are in the head.
type fieldPos struct{ name0, name1, val0, val1 int }

// readHead reads the request line and the field lines, to the empty line, into
// c.head; the returned fields are positions in it.
func (c *h1conn) readHead() error {
	c.head = c.head[:0]
	lineStart := 0
	for {
		line, err := c.br.ReadSlice('\n')
		if len(c.head)+len(line) > httpfield.MaxHeaderBytes {
			return errHeadersTooLarge
		}
		c.head = append(c.head, line...)
		if errors.Is(err, bufio.ErrBufferFull) {
			continue // a line longer than the buffer: more of it comes
		}
		if err != nil {
			if errors.Is(err, io.EOF) && len(c.head) > 0 {
				return io.ErrUnexpectedEOF
			}
			return err
		}
		l := c.head[lineStart:]
		if lineStart > 0 && (len(l) == 1 || len(l) == 2 && l[0] == '\r') {
			return nil // the empty line (CRLF, or a bare LF: RFC 9112 §2.2)
		}
		lineStart = len(c.head)
	}
}

// lineEnd returns the end of the line that starts at i in head (before its CRLF or
// LF) and the start of the next; a CR anywhere but before the LF is an error
// (RFC 9112 §2.2: a bare CR is invalid).
func lineEnd(head []byte, i int) (end, next int, err error) {
	j := i
	for head[j] != '\n' {
		if head[j] == '\r' && head[j+1] != '\n' {
			return 0, 0, badRequest("bare CR")
		}
		j++
	}
	end = j
	if end > i && head[end-1] == '\r' {
		end--
	}
	return end, j + 1, nil
}

// parseHead turns c.head into a request with context ctx (its Body still unset),
// checking what RFC 9112 and RFC 9110 require of it. The request is built on the
// stack and copied out once, by WithContext.
func (c *h1conn) parseHead(ctx context.Context) (*http.Request, error) {
	head := c.head
	// The request line: method SP request-target SP HTTP-version (RFC 9112 §3).
	reqEnd, next, err := lineEnd(head, 0)
	if err != nil {
		return nil, err
	}
	line := head[:reqEnd]
	sp1 := indexByte(line, ' ')
	if sp1 <= 0 {
		return nil, badRequest("malformed request line")
	}
	for _, ch := range line[:sp1] {
		if !httpfield.IsTchar(ch) {
			return nil, badRequest("invalid method")
		}
	}
	sp2 := indexByte(line[sp1+1:], ' ')
	if sp2 < 0 {
		return nil, badRequest("malformed request line")
	}
	sp2 += sp1 + 1
	vers := line[sp2+1:]
	// HTTP-version = "HTTP/" DIGIT "." DIGIT, case-sensitive (RFC 9112 §2.3).
	if len(vers) != 8 || string(vers[:5]) != "HTTP/" || !isDigit(vers[5]) || vers[6] != '.' || !isDigit(vers[7]) {
		return nil, badRequest("malformed HTTP version")
	}
	if vers[5] != '1' {
		return nil, &statusError{code: http.StatusHTTPVersionNotSupported, msg: "unsupported protocol version"}
	}
	minor := int(vers[7] - '0')

	// Field lines: field-name ":" OWS field-value OWS (RFC 9112 §5). Names are
	// canonicalized in place, as textproto does.
	c.fields = c.fields[:0]
	for i := next; ; {
		end, next, err := lineEnd(head, i)
		if err != nil {
			return nil, err
		}
		if end == i {
			break // the empty line
		}
		if httpfield.IsOWS(head[i]) {
			// obs-fold, or whitespace before the first field (RFC 9112 §5.2, §2.2).
			return nil, badRequest("obsolete line folding")
		}
		colon := i
		for colon < end && head[colon] != ':' {
			if !httpfield.IsTchar(head[colon]) {
				// Incl. whitespace before the colon (RFC 9112 §5.1).
				return nil, badRequest("invalid field name")
			}
			colon++
		}
		if colon == end || colon == i {
			return nil, badRequest("malformed field line")
		}
		v0, v1 := colon+1, end
		for v0 < v1 && httpfield.IsOWS(head[v0]) {
			v0++
		}
		for v1 > v0 && httpfield.IsOWS(head[v1-1]) {
			v1--
		}
		for _, ch := range head[v0:v1] {
			if !httpfield.IsFieldVChar(ch) {
				return nil, badRequest("invalid field value")
			}
		}
		if len(c.fields) == maxHeaderFields {
			return nil, errHeadersTooLarge
		}
		canonicalizeName(head[i:colon])
		c.fields = append(c.fields, fieldPos{i, colon, v0, v1})
		i = next
	}

	s := string(head)
	method, target := s[:sp1], s[sp1+1:sp2]
	r := &http.Request{Method: method, RequestURI: target, ProtoMajor: 1, ProtoMinor: minor} // does not escape
	switch minor {
	case 0:
		r.Proto = "HTTP/1.0"
	case 1:
		r.Proto = "HTTP/1.1"
	default:
		r.Proto = s[sp2+1 : reqEnd]
	}
	if r.URL, err = parseTarget(method, target); err != nil {
		return nil, err
	}
	h := make(http.Header, len(c.fields))
	strs := make([]string, len(c.fields))
	for _, f := range c.fields {
		k, v := s[f.name0:f.name1], s[f.val0:f.val1]
		if vv, ok := h[k]; ok {
			h[k] = append(vv, v)
			continue
		}
		vv := strs[:1:1]
		strs = strs[1:]
		vv[0] = v
		h[k] = vv
	}
	r.Header = h
	if err := checkFields(r); err != nil {
		return nil, err
	}
	return r.WithContext(ctx), nil
}

// parseTarget parses the request target as http.ReadRequest does, refusing the
// asterisk-form for any method but OPTIONS (RFC 9112 §3.2.4) and an absolute-form
// authority that is not host[:port].
func parseTarget(method, target string) (*url.URL, error) {
	if target == "*" && method != http.MethodOptions {
		return nil, badRequest("asterisk-form request target for %s", method)
	}
	raw := target
	// The authority-form, for CONNECT (RFC 9112 §3.2.3).
	authority := method == http.MethodConnect && !strings.HasPrefix(target, "/")
	if authority {
		raw = "http://" + target
	}
	u, err := url.ParseRequestURI(raw)
	if err != nil {
		return nil, badRequest("invalid request target")
	}
	if authority {
		u.Scheme = ""
	}
	// No userinfo (RFC 9110 §4.2.4) and a valid host[:port].
	if u.User != nil || !httpfield.ValidAuthority(u.Host) {
		return nil, badRequest("invalid authority in the request target")
	}
	return u, nil
}

// checkFields applies the rules of RFC 9112 on Host and message framing to r's
// header, and sets r's Host, Close, ContentLength, TransferEncoding and Trailer as
// http.ReadRequest does.
func checkFields(r *http.Request) error {
	h := r.Header
	// Host (RFC 9112 §3.2): exactly one in HTTP/1.1, at most one in HTTP/1.0, and a
	// valid host[:port].
	hosts := h["Host"]
	switch {
	case len(hosts) > 1:
		return badRequest("more than one Host")
	case len(hosts) == 0 && r.ProtoMinor >= 1:
		return badRequest("missing Host")
	case len(hosts) == 1 && !httpfield.ValidAuthority(hosts[0]):
		return badRequest("invalid Host")
	}
	delete(h, "Host")
	r.Host = r.URL.Host // the absolute-form wins over Host (RFC 9112 §3.2.2)
	if r.Host == "" && len(hosts) == 1 {
		r.Host = hosts[0]
	}

	conn := h["Connection"]
	hasClose := httpguts.HeaderValuesContainsToken(conn, "close")
	if r.ProtoMinor == 0 {
		r.Close = hasClose || !httpguts.HeaderValuesContainsToken(conn, "keep-alive")
	} else {
		r.Close = hasClose
	}

	// Content-Length = 1*DIGIT, once (RFC 9110 §8.6, RFC 9112 §6.3).
	cls, hasCL := h["Content-Length"]
	if hasCL {
		if len(cls) != 1 {
			return badRequest("more than one Content-Length")
		}
		n, ok := httpfield.ParseContentLength(cls[0])
		if !ok {
			return badRequest("invalid Content-Length")
		}
		r.ContentLength = n
	}

	tes, hasTE := h["Transfer-Encoding"]
	if !hasTE {
		return nil // a Trailer header stays in the header, as http.ReadRequest leaves it
	}
	switch {
	case r.ProtoMinor == 0:
		// RFC 9112 §6.1: the framing of an HTTP/1.0 message with Transfer-Encoding
		// is faulty.
		return badRequest("Transfer-Encoding in HTTP/1.0")
	case hasCL:
		// RFC 9112 §6.1: a server may reject a request with both, and must close.
		return badRequest("both Transfer-Encoding and Content-Length")
	}
	if err := checkTransferEncoding(tes); err != nil {
		return err
	}
	delete(h, "Transfer-Encoding")
	r.TransferEncoding = []string{"chunked"}
	r.ContentLength = -1
	if _, ok := h["Trailer"]; ok {
		t, err := declaredRequestTrailers(h["Trailer"])
		if err != nil {
			return err
		}
		delete(h, "Trailer")
		r.Trailer = t
	}
	return nil
}

// checkTransferEncoding accepts exactly "chunked" (any case), the only coding the
// proxy decodes. Chunked as the final coding after others is 501 (RFC 9112 §6.1: a
// coding the server does not understand); chunked not final, twice, or a malformed
// list is 400 (RFC 9112 §6.1, §7).
func checkTransferEncoding(tes []string) error {
	n, chunkedAt := 0, -1
	for _, v := range tes {
		for more := true; more; n++ {
			var coding string
			coding, v, more = strings.Cut(v, ",")
			// No empty elements either ("chunked,"): peers disagree on them.
			if coding = strings.Trim(coding, " \t"); coding == "" || !httpfield.ValidFieldName(coding) {
				return badRequest("malformed Transfer-Encoding")
			}
			if strings.EqualFold(coding, "chunked") {
				if chunkedAt >= 0 {
					return badRequest("chunked applied twice")
				}
				chunkedAt = n
			}
		}
	}
	switch {
	case n == 1 && chunkedAt == 0:
		return nil
	case n > 1 && chunkedAt == n-1:
		return &statusError{code: http.StatusNotImplemented, msg: "unsupported transfer coding"}
	}
	return badRequest("chunked is not the final transfer coding")
}

// declaredRequestTrailers is a request's Trailer map: the names its Trailer header
// declares, nil values. Framing fields cannot be trailers (400, as http.ReadRequest
// answers); other fields a trailer must not carry are left out (never filled).
func declaredRequestTrailers(vs []string) (http.Header, error) {
	var t http.Header
	for _, v := range vs {
		for v != "" {
			var name string
			name, v, _ = strings.Cut(v, ",")
			if name = strings.Trim(name, " \t"); name == "" {
				continue
			}
			if !httpfield.ValidFieldName(name) {
				return nil, badRequest("malformed Trailer")
			}
			name = http.CanonicalHeaderKey(name)
			switch name {
			case "Transfer-Encoding", "Trailer", "Content-Length":
				return nil, badRequest("%s declared as a trailer", name)
			}
			if !httpfield.ValidTrailerField(name) {
				continue
			}
			if t == nil {
				t = http.Header{}
			}
			t[name] = nil
		}
	}
	return t, nil
}

// canonicalizeName turns a token into its canonical form in place, as
// textproto.CanonicalMIMEHeaderKey does: upper case first and after each '-'.
func canonicalizeName(b []byte) {
	upper := true
	for i, c := range b {
		switch {
		case upper && 'a' <= c && c <= 'z':
			b[i] = c - ('a' - 'A')
		case !upper && 'A' <= c && c <= 'Z':
			b[i] = c + ('a' - 'A')
		}
		upper = c == '-'
	}
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}
