package httpfield

import (
	"strconv"
	"strings"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// The rules for HTTP/2 request field sections (RFC 9113 §8), as the HTTP/2 server
// applies them.

// H2FieldError is why a field section is malformed (RFC 9113 §8.1.1): the stream
// is reset with PROTOCOL_ERROR.
type H2FieldError string

func (e H2FieldError) Error() string { return "malformed HTTP/2 request: " + string(e) }

// CheckH2Regular checks the regular fields of a request or trailer section:
// §8.2.2 connection-specific fields, §8.2.1 field names (lower case, tokens; the
// framer has checked that) and values (no CR, LF or NUL; the framer has too, and
// here no leading or trailing whitespace).
func CheckH2Regular(fields []hpack.HeaderField) error {
	for _, hf := range fields {
		if ConnectionSpecificH2(hf.Name) { // headers.go
			return H2FieldError("connection-specific field " + hf.Name + " (RFC 9113 §8.2.2)")
		}
		if hf.Name == "te" && hf.Value != "trailers" {
			return H2FieldError(`te other than "trailers" (RFC 9113 §8.2.2)`)
		}
		if v := hf.Value; v != "" && (IsOWS(v[0]) || IsOWS(v[len(v)-1])) {
			return H2FieldError("field value of " + hf.Name + " with leading or trailing whitespace (RFC 9113 §8.2.1)")
		}
	}
	return nil
}

// H2Request is what CheckH2Request found in a request's field section.
type H2Request struct {
	Method, Scheme, Path, Authority string
	ContentLength                   int64 // -1: none
}

// CheckH2Request checks a request's field section (RFC 9113 §8.3.1 pseudo-header
// fields, §8.2.2, §8.1.1 content-length) and returns its parts. The framer has
// already refused unknown, duplicate, response and misplaced pseudo-header fields
// (§8.3). CONNECT is refused by the caller: the proxy does not tunnel.
func CheckH2Request(f *http2.MetaHeadersFrame) (H2Request, error) {
	r := H2Request{Method: f.PseudoValue("method"), Scheme: f.PseudoValue("scheme"),
		Path: f.PseudoValue("path"), Authority: f.PseudoValue("authority"), ContentLength: -1}
	if f.PseudoValue("protocol") != "" { // extended CONNECT, RFC 8441: not advertised
		return r, H2FieldError(":protocol without SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 8441 §4)")
	}
	switch {
	case r.Method == "":
		return r, H2FieldError("no :method (RFC 9113 §8.3.1)")
	case !ValidMethod(r.Method):
		return r, H2FieldError(":method is not a token (RFC 9110 §9.1)")
	case r.Method == "CONNECT":
		// §8.5: :scheme and :path are omitted; the caller answers it.
		if r.Scheme != "" || r.Path != "" {
			return r, H2FieldError("CONNECT with :scheme or :path (RFC 9113 §8.5)")
		}
	case r.Scheme == "":
		return r, H2FieldError("no :scheme (RFC 9113 §8.3.1)")
	case r.Path == "":
		return r, H2FieldError("no or empty :path (RFC 9113 §8.3.1)")
	case r.Path == "*":
		if r.Method != "OPTIONS" {
			return r, H2FieldError(`:path "*" other than with OPTIONS (RFC 9113 §8.3.1)`)
		}
	case r.Path[0] != '/':
		return r, H2FieldError(":path not in origin-form (RFC 9113 §8.3.1)")
	}
	for i := 0; i < len(r.Path); i++ {
		if c := r.Path[i]; c <= ' ' || c == 0x7f {
			return r, H2FieldError(":path with whitespace or a control character (RFC 9112 §3.2)")
		}
	}
	if r.Authority != "" && !httpguts.ValidHostHeader(r.Authority) {
		return r, H2FieldError("invalid :authority (RFC 9113 §8.3.1, RFC 3986 §3.2)")
	}
	fields := f.RegularFields()
	if err := CheckH2Regular(fields); err != nil {
		return r, err
	}
	for _, hf := range fields {
		switch hf.Name {
		case "host":
			// §8.3.1: a Host that differs from :authority makes the request malformed.
			if r.Authority != "" && hf.Value != r.Authority || !httpguts.ValidHostHeader(hf.Value) {
				return r, H2FieldError("host differs from :authority or is invalid (RFC 9113 §8.3.1)")
			}
		case "content-length":
			n, ok := ParseContentLength(hf.Value)
			if !ok || r.ContentLength >= 0 && n != r.ContentLength {
				return r, H2FieldError("invalid or conflicting content-length (RFC 9110 §8.6)")
			}
			r.ContentLength = n
		}
	}
	if f.StreamEnded() && r.ContentLength > 0 {
		return r, H2FieldError("content-length without DATA (RFC 9113 §8.1.1)")
	}
	return r, nil
}

// CheckH2Trailers checks a trailer section: it ends the stream and carries no
// pseudo-header fields (RFC 9113 §8.1).
func CheckH2Trailers(f *http2.MetaHeadersFrame) error {
	if !f.StreamEnded() {
		return H2FieldError("trailers without END_STREAM (RFC 9113 §8.1)")
	}
	if len(f.PseudoFields()) > 0 {
		return H2FieldError("pseudo-header field in trailers (RFC 9113 §8.1)")
	}
	return CheckH2Regular(f.RegularFields())
}

// ValidMethod reports whether m is a token (RFC 9110 §9.1, §5.6.2).
func ValidMethod(m string) bool {
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

// ParseContentLength parses a Content-Length value: 1*DIGIT (RFC 9110 §8.6), no
// sign, no spaces, within int64.
func ParseContentLength(v string) (int64, bool) {
	if v == "" || strings.TrimLeft(v, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.ParseInt(v, 10, 64)
	return n, err == nil
}
