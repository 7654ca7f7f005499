// Package httpfield is the proxy's header policy, in one place: which fields are
// hop-by-hop (RFC 9110 §7.6.1), which HTTP/2 forbids (RFC 9113 §8.2.2), which belong
// to the proxies themselves, what may appear in a trailer section, and what a valid
// field name, value, method, request target and authority are. The HTTP/1 and HTTP/2
// engines (proxy/h1, proxy/h2) and the forwarding code (proxy/dataplane) all decide
// through it.
package httpfield

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// The functions work on http.Header keys (canonical names) unless they say
// otherwise, and allocate nothing on the common path. ValidMethod,
// ParseContentLength and the HTTP/2 request rules are in h2fields.go.

// Headers the proxies add or read.
const (
	// ProxyError explains a response the proxy made itself (like l5d-proxy-error).
	ProxyError = "Mesh-Proxy-Error"
	// OrigProto marks an HTTP/1 request upgraded to HTTP/2 between proxies.
	OrigProto = "Mesh-Orig-Proto"
)

// MaxHeaderBytes caps a request's header section; larger ones get 431.
const MaxHeaderBytes = 64 << 10

// Rule is how the proxy treats a header field; rules combine.
type Rule uint8

const (
	// RuleHop: hop-by-hop, removed when forwarding (RFC 9110 §7.6.1), as are the
	// fields the Connection header names. TE is kept when it asks for trailers
	// (as httputil.ReverseProxy does); Trailer is regenerated from the trailers.
	RuleHop Rule = 1 << iota
	// RuleNoH2: connection-specific, which makes an HTTP/2 message malformed
	// (RFC 9113 §8.2.2); TE only with the value "trailers".
	RuleNoH2
	// RuleInternal: the proxies' own. Set by a proxy and trusted only from an
	// authenticated peer proxy over mTLS; stripped from application traffic.
	RuleInternal
)

// Rules returns the rules for the field with canonical name k.
func Rules(k string) Rule {
	var r Rule
	switch k {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Transfer-Encoding", "Upgrade", "Te":
		r = RuleHop | RuleNoH2
	case "Trailer", "Proxy-Authenticate", "Proxy-Authorization":
		r = RuleHop
	case OrigProto, ProxyError:
		r = RuleInternal
	}
	return r
}

// ValidTrailerField is false for the fields a trailer section must not carry
// (RFC 9110 §6.5.1: framing, routing, authentication, request modifiers, response
// controls, content format), which are dropped from trailers.
func ValidTrailerField(k string) bool {
	return httpguts.ValidTrailerHeader(k) && Rules(k)&(RuleHop|RuleInternal) == 0
}

// RemoveHopHeaders removes the hop-by-hop fields from h before it is forwarded
// (RFC 9110 §7.6.1): those the Connection header names, and those of Rules. A
// TE that lists "trailers" becomes "TE: trailers" (httputil.ReverseProxy does the
// same); the Trailer header goes, and AnnounceTrailers regenerates it.
func RemoveHopHeaders(h http.Header) {
	for _, v := range h["Connection"] {
		for v != "" {
			var opt string
			opt, v, _ = strings.Cut(v, ",")
			if opt = strings.TrimSpace(opt); opt != "" {
				delConnectionOption(h, opt)
			}
		}
	}
	te, hasTE := h["Te"]
	for k := range h {
		if Rules(k)&RuleHop != 0 {
			delete(h, k)
		}
	}
	if hasTE && httpguts.HeaderValuesContainsToken(te, "trailers") {
		if len(te) != 1 || te[0] != "trailers" {
			te = []string{"trailers"}
		}
		h["Te"] = te
	}
}

// delConnectionOption deletes the field a Connection option names, without
// allocating (but for options over 64 bytes).
func delConnectionOption(h http.Header, opt string) {
	if _, ok := h[opt]; ok {
		delete(h, opt)
		return
	}
	var buf [64]byte
	if len(opt) > len(buf) {
		h.Del(opt)
		return
	}
	n := copy(buf[:], opt)
	upper := true
	for i := range n {
		c := buf[i]
		switch {
		case upper && 'a' <= c && c <= 'z':
			buf[i] = c - ('a' - 'A')
		case !upper && 'A' <= c && c <= 'Z':
			buf[i] = c + ('a' - 'A')
		}
		upper = c == '-'
	}
	delete(h, string(buf[:n])) // the conversion does not allocate
}

// AnnounceTrailers sets h's Trailer header to the names of t (the trailers to come),
// as RemoveHopHeaders left none.
func AnnounceTrailers(h, t http.Header) {
	if len(t) == 0 {
		return
	}
	keys := make([]string, 0, len(t))
	for k := range t {
		keys = append(keys, k)
	}
	h["Trailer"] = []string{strings.Join(keys, ", ")}
}

// DeclaredTrailers lists the trailer names h announces in its Trailer header.
func DeclaredTrailers(h http.Header) []string {
	var names []string
	for _, v := range h["Trailer"] {
		for _, k := range strings.Split(v, ",") {
			if k = http.CanonicalHeaderKey(strings.TrimSpace(k)); k != "" {
				names = append(names, k)
			}
		}
	}
	return names
}

// StripInternal removes the proxies' own fields from h: from every request and
// response of the application, and from any peer that is not an authenticated proxy.
func StripInternal(h http.Header) {
	delete(h, OrigProto)
	delete(h, ProxyError)
}

// ValidFieldName: a field name is a token (RFC 9110 §5.1, §5.6.2).
func ValidFieldName(name string) bool { return httpguts.ValidHeaderFieldName(name) }

// ValidFieldValue: no CTL other than HTAB in a field value: no CR, LF or NUL
// (RFC 9110 §5.5).
func ValidFieldValue(v string) bool { return httpguts.ValidHeaderFieldValue(v) }

// ValidAuthority: a Host header or :authority is host[:port] (RFC 9110 §7.2,
// RFC 3986 §3.2.2): no userinfo, path, whitespace or controls. Empty is allowed (a
// target URI without authority, RFC 9110 §7.2).
func ValidAuthority(a string) bool { return httpguts.ValidHostHeader(a) }

// ValidOriginTarget: a request target written into an HTTP/1 request line: the
// origin-form (RFC 9112 §3.2.1), starting with "/", without whitespace or controls,
// or "*" for OPTIONS (the asterisk-form, RFC 9112 §3.2.4).
func ValidOriginTarget(method, target string) bool {
	if target == "*" {
		return method == http.MethodOptions
	}
	if target == "" || target[0] != '/' {
		return false
	}
	for i := 0; i < len(target); i++ {
		if c := target[i]; c <= ' ' || c == 0x7f {
			return false
		}
	}
	return true
}

// ValidURLTarget is ValidOriginTarget for the target Request.Write makes of u
// (u.RequestURI()), without building it: the escaped path cannot hold whitespace
// or controls, the raw query can.
func ValidURLTarget(method string, u *url.URL) bool {
	switch {
	case u.Opaque != "":
		return ValidOriginTarget(method, u.RequestURI())
	case u.Path == "*":
		return method == http.MethodOptions && u.RawQuery == "" && !u.ForceQuery
	case u.Path != "" && u.Path[0] != '/':
		return false
	}
	for i := 0; i < len(u.RawQuery); i++ {
		if c := u.RawQuery[i]; c <= ' ' || c == 0x7f {
			return false
		}
	}
	return true
}

// ErrInvalidRequest marks a request the proxy refuses to forward as it is (400).
var ErrInvalidRequest = errors.New("invalid request")

// CheckH1Request checks what an HTTP/1 request line and header section would be
// made of, before a request that came over HTTP/2 is written as HTTP/1: the method,
// the target (ValidOriginTarget, or ValidURLTarget: targetOK), the authority, and
// every field name and value. Nothing of a request that fails is sent.
func CheckH1Request(method string, targetOK bool, host string, h http.Header) error {
	switch {
	case !ValidMethod(method):
		return fmt.Errorf("%w: method %q is not a token", ErrInvalidRequest, method)
	case !targetOK:
		return fmt.Errorf("%w: request target", ErrInvalidRequest)
	case !ValidAuthority(host):
		return fmt.Errorf("%w: authority %q", ErrInvalidRequest, host)
	}
	for k, vs := range h {
		if !ValidFieldName(k) {
			return fmt.Errorf("%w: field name %q", ErrInvalidRequest, k)
		}
		for _, v := range vs {
			if !ValidFieldValue(v) {
				return fmt.Errorf("%w: value of %s", ErrInvalidRequest, k)
			}
		}
	}
	return nil
}

// LowerH2 is k as an HTTP/2 field name (RFC 9113 §8.2.1: lower case); false for
// connection-specific fields, which HTTP/2 forbids (RFC 9113 §8.2.2). TE stays:
// callers send it only as "trailers".
func LowerH2(k string) (string, bool) {
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
	case "Te":
		return "te", true
	// Fields the proxies send on most requests (strings.ToLower allocates).
	case "User-Agent":
		return "user-agent", true
	case "Accept":
		return "accept", true
	case "Accept-Encoding":
		return "accept-encoding", true
	case "Grpc-Timeout":
		return "grpc-timeout", true
	case OrigProto:
		return "mesh-orig-proto", true
	case ProxyError:
		return "mesh-proxy-error", true
	}
	if Rules(k)&RuleNoH2 != 0 {
		return "", false
	}
	for i := 0; i < len(k); i++ {
		if c := k[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(k), true
		}
	}
	return k, true
}

// CanonicalH2 is the http.Header key for an HTTP/2 (lower-case) field name.
func CanonicalH2(name string) string {
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
		return OrigProto
	case "mesh-proxy-error":
		return ProxyError
	}
	return http.CanonicalHeaderKey(name)
}

// ConnectionSpecificH2 is true for the lower-case names of the connection-specific
// fields, which make an HTTP/2 message malformed (RFC 9113 §8.2.2); "te" is allowed,
// with the value "trailers" only.
func ConnectionSpecificH2(name string) bool {
	switch name {
	case "connection", "proxy-connection", "keep-alive", "transfer-encoding", "upgrade":
		return true
	}
	return false
}

func IsOWS(c byte) bool { return c == ' ' || c == '\t' }

// tchar (RFC 9110 §5.6.2) as two 64-bit masks, for byte-at-a-time parsing:
// "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" / "_" / "`" / "|" /
// "~" / DIGIT / ALPHA.
const (
	tcharLo = 1<<'!' | 1<<'#' | 1<<'$' | 1<<'%' | 1<<'&' | 1<<'\'' | 1<<'*' | 1<<'+' | 1<<'-' | 1<<'.' |
		(1<<10-1)<<'0'
	tcharHi = (1<<26-1)<<('A'-64) | 1<<('^'-64) | 1<<('_'-64) | 1<<('`'-64) | (1<<26-1)<<('a'-64) |
		1<<('|'-64) | 1<<('~'-64)
)

func IsTchar(c byte) bool {
	if c < 64 {
		return tcharLo&(uint64(1)<<c) != 0
	}
	return c < 128 && tcharHi&(uint64(1)<<(c-64)) != 0
}

// TokenLen is the length of the token (RFC 9110 §5.6.2) at the start of b.
func TokenLen(b []byte) int {
	for i, c := range b {
		if !IsTchar(c) {
			return i
		}
	}
	return len(b)
}

// IsFieldVChar: a byte allowed in a field value (RFC 9110 §5.5): VCHAR, obs-text,
// SP and HTAB.
func IsFieldVChar(c byte) bool { return c >= ' ' && c != 0x7f || c == '\t' }
