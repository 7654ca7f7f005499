package dataplane

import (
	"strconv"
	"strings"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// HTTP/2 stream states and the rules for request field sections, as the server
// applies them.

// h2StreamState is a stream's state, RFC 9113 §5.1. Reserved states do not occur:
// the proxy never pushes.
type h2StreamState uint8

const (
	h2Idle             h2StreamState = iota // not yet opened: id above every stream the peer opened
	h2Open                                  // both sides may send
	h2HalfClosedRemote                      // the peer sent END_STREAM; we may still send
	h2HalfClosedLocal                       // we sent END_STREAM; the peer may still send
	h2Closed                                // both ended, or reset by either side
)

func (s h2StreamState) String() string {
	return [...]string{"idle", "open", "half-closed (remote)", "half-closed (local)", "closed"}[s]
}

// h2CloseCause is how a closed stream ended, which decides what a late frame on it
// is (RFC 9113 §5.1, "closed").
type h2CloseCause uint8

const (
	// h2CloseUnknown: not among the recently closed streams (long gone, or an id the
	// peer skipped, RFC 9113 §5.1.1).
	h2CloseUnknown h2CloseCause = iota
	// h2CloseEnded: both sides sent END_STREAM. HEADERS after that is a connection
	// error STREAM_CLOSED; DATA a stream error STREAM_CLOSED.
	h2CloseEnded
	// h2ClosePeerReset: the peer sent RST_STREAM; any frame but PRIORITY after that
	// is a stream error STREAM_CLOSED.
	h2ClosePeerReset
	// h2CloseLocalReset: we sent RST_STREAM; frames the peer sent before it saw
	// ours are ignored (their DATA still counts against the connection window).
	h2CloseLocalReset
)

// h2ClosedRing remembers how the last few streams closed, so late frames on them
// get the answer §5.1 asks for; older streams count as h2CloseUnknown.
type h2ClosedRing struct {
	ids    [32]uint32
	causes [32]h2CloseCause
	next   int
}

func (r *h2ClosedRing) add(id uint32, c h2CloseCause) {
	r.ids[r.next], r.causes[r.next] = id, c
	r.next = (r.next + 1) % len(r.ids)
}

func (r *h2ClosedRing) cause(id uint32) h2CloseCause {
	for i, v := range r.ids {
		if v == id && id != 0 {
			return r.causes[i]
		}
	}
	return h2CloseUnknown
}

// h2FieldError is why a field section is malformed (RFC 9113 §8.1.1): the stream
// is reset with PROTOCOL_ERROR.
type h2FieldError string

func (e h2FieldError) Error() string { return "malformed HTTP/2 request: " + string(e) }

// checkH2Regular checks the regular fields of a request or trailer section:
// §8.2.2 connection-specific fields, §8.2.1 field names (lower case, tokens; the
// framer has checked that) and values (no CR, LF or NUL; the framer has too, and
// here no leading or trailing whitespace).
func checkH2Regular(fields []hpack.HeaderField) error {
	for _, hf := range fields {
		if connectionSpecificH2(hf.Name) { // headers.go
			return h2FieldError("connection-specific field " + hf.Name + " (RFC 9113 §8.2.2)")
		}
		if hf.Name == "te" && hf.Value != "trailers" {
			return h2FieldError(`te other than "trailers" (RFC 9113 §8.2.2)`)
		}
		if v := hf.Value; v != "" && (isOWS(v[0]) || isOWS(v[len(v)-1])) {
			return h2FieldError("field value of " + hf.Name + " with leading or trailing whitespace (RFC 9113 §8.2.1)")
		}
	}
	return nil
}

// h2Request is what checkH2Request found in a request's field section.
type h2Request struct {
	method, scheme, path, authority string
	contentLength                   int64 // -1: none
}

// checkH2Request checks a request's field section (RFC 9113 §8.3.1 pseudo-header
// fields, §8.2.2, §8.1.1 content-length) and returns its parts. The framer has
// already refused unknown, duplicate, response and misplaced pseudo-header fields
// (§8.3). CONNECT is refused by the caller: the proxy does not tunnel.
func checkH2Request(f *http2.MetaHeadersFrame) (h2Request, error) {
	r := h2Request{method: f.PseudoValue("method"), scheme: f.PseudoValue("scheme"),
		path: f.PseudoValue("path"), authority: f.PseudoValue("authority"), contentLength: -1}
	if f.PseudoValue("protocol") != "" { // extended CONNECT, RFC 8441: not advertised
		return r, h2FieldError(":protocol without SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 8441 §4)")
	}
	switch {
	case r.method == "":
		return r, h2FieldError("no :method (RFC 9113 §8.3.1)")
	case !validMethod(r.method):
		return r, h2FieldError(":method is not a token (RFC 9110 §9.1)")
	case r.method == "CONNECT":
		// §8.5: :scheme and :path are omitted; the caller answers it.
		if r.scheme != "" || r.path != "" {
			return r, h2FieldError("CONNECT with :scheme or :path (RFC 9113 §8.5)")
		}
	case r.scheme == "":
		return r, h2FieldError("no :scheme (RFC 9113 §8.3.1)")
	case r.path == "":
		return r, h2FieldError("no or empty :path (RFC 9113 §8.3.1)")
	case r.path == "*":
		if r.method != "OPTIONS" {
			return r, h2FieldError(`:path "*" other than with OPTIONS (RFC 9113 §8.3.1)`)
		}
	case r.path[0] != '/':
		return r, h2FieldError(":path not in origin-form (RFC 9113 §8.3.1)")
	}
	for i := 0; i < len(r.path); i++ {
		if c := r.path[i]; c <= ' ' || c == 0x7f {
			return r, h2FieldError(":path with whitespace or a control character (RFC 9112 §3.2)")
		}
	}
	if r.authority != "" && !httpguts.ValidHostHeader(r.authority) {
		return r, h2FieldError("invalid :authority (RFC 9113 §8.3.1, RFC 3986 §3.2)")
	}
	fields := f.RegularFields()
	if err := checkH2Regular(fields); err != nil {
		return r, err
	}
	for _, hf := range fields {
		switch hf.Name {
		case "host":
			// §8.3.1: a Host that differs from :authority makes the request malformed.
			if r.authority != "" && hf.Value != r.authority || !httpguts.ValidHostHeader(hf.Value) {
				return r, h2FieldError("host differs from :authority or is invalid (RFC 9113 §8.3.1)")
			}
		case "content-length":
			n, ok := parseContentLength(hf.Value)
			if !ok || r.contentLength >= 0 && n != r.contentLength {
				return r, h2FieldError("invalid or conflicting content-length (RFC 9110 §8.6)")
			}
			r.contentLength = n
		}
	}
	if f.StreamEnded() && r.contentLength > 0 {
		return r, h2FieldError("content-length without DATA (RFC 9113 §8.1.1)")
	}
	return r, nil
}

// checkH2Trailers checks a trailer section: it ends the stream and carries no
// pseudo-header fields (RFC 9113 §8.1).
func checkH2Trailers(f *http2.MetaHeadersFrame) error {
	if !f.StreamEnded() {
		return h2FieldError("trailers without END_STREAM (RFC 9113 §8.1)")
	}
	if len(f.PseudoFields()) > 0 {
		return h2FieldError("pseudo-header field in trailers (RFC 9113 §8.1)")
	}
	return checkH2Regular(f.RegularFields())
}

// validMethod reports whether m is a token (RFC 9110 §9.1, §5.6.2).
func validMethod(m string) bool {
	if m == "" {
		return false
	}
	for i := 0; i < len(m); i++ {
		if !httpguts.IsTokenRune(rune(m[i])) {
			return false
		}
	}
	return true
}

// parseContentLength parses a Content-Length value: 1*DIGIT (RFC 9110 §8.6), no
// sign, no spaces, within int64.
func parseContentLength(v string) (int64, bool) {
	if v == "" || strings.TrimLeft(v, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.ParseInt(v, 10, 64)
	return n, err == nil
}
