package httpfield

import (
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// The header policy, rule by rule, with the section of the RFC each row enforces.
func TestHeaderPolicy(t *testing.T) {
	t.Parallel()
	hop := func(k string) bool { return Rules(k)&RuleHop != 0 }
	noH2 := func(k string) bool { return Rules(k)&RuleNoH2 != 0 }
	noTrailer := func(k string) bool { return !ValidTrailerField(k) }
	internal := func(k string) bool { return Rules(k)&RuleInternal != 0 }
	lowerOK := func(k string) bool { _, ok := LowerH2(k); return ok }
	h2ok := func(name, value string) bool {
		return CheckH2Regular([]hpack.HeaderField{{Name: name, Value: value}}) == nil
	}
	h2req := func(method, scheme, authority, path string) error {
		var fs []hpack.HeaderField
		for _, f := range [][2]string{{":method", method}, {":scheme", scheme}, {":authority", authority}, {":path", path}} {
			if f[1] != "" {
				fs = append(fs, hpack.HeaderField{Name: f[0], Value: f[1]})
			}
		}
		_, err := CheckH2Request(&http2.MetaHeadersFrame{HeadersFrame: &http2.HeadersFrame{
			FrameHeader: http2.FrameHeader{Flags: http2.FlagHeadersEndStream}}, Fields: fs})
		return err
	}
	for _, tc := range []struct {
		rfc, what string
		got       bool
	}{
		{"RFC 9110 §7.6.1", "Connection is hop-by-hop", hop("Connection")},
		{"RFC 9110 §7.6.1", "Proxy-Connection is hop-by-hop", hop("Proxy-Connection")},
		{"RFC 9110 §7.6.1", "Keep-Alive is hop-by-hop", hop("Keep-Alive")},
		{"RFC 9110 §7.6.1", "TE is hop-by-hop", hop("Te")},
		{"RFC 9110 §7.6.1", "Transfer-Encoding is hop-by-hop", hop("Transfer-Encoding")},
		{"RFC 9110 §7.6.1", "Upgrade is hop-by-hop", hop("Upgrade")},
		{"RFC 9110 §7.6.1", "Proxy-Authenticate is hop-by-hop", hop("Proxy-Authenticate")},
		{"RFC 9110 §7.6.1", "Proxy-Authorization is hop-by-hop", hop("Proxy-Authorization")},
		{"RFC 9110 §6.6.2", "Trailer is regenerated from the trailers (as ReverseProxy does)", hop("Trailer")},
		{"RFC 9110 §7.6.1", "end-to-end fields are forwarded", !hop("Content-Type") && !hop("Authorization") && !hop("Cookie")},
		{"RFC 9113 §8.2.2", "Connection is forbidden in HTTP/2", noH2("Connection") && !lowerOK("Connection")},
		{"RFC 9113 §8.2.2", "Proxy-Connection is forbidden in HTTP/2", noH2("Proxy-Connection") && !lowerOK("Proxy-Connection")},
		{"RFC 9113 §8.2.2", "Keep-Alive is forbidden in HTTP/2", noH2("Keep-Alive") && !lowerOK("Keep-Alive")},
		{"RFC 9113 §8.2.2", "Transfer-Encoding is forbidden in HTTP/2", noH2("Transfer-Encoding") && !lowerOK("Transfer-Encoding")},
		{"RFC 9113 §8.2.2", "Upgrade is forbidden in HTTP/2", noH2("Upgrade") && !lowerOK("Upgrade")},
		{"RFC 9113 §8.2.2", "te: trailers is allowed in HTTP/2", h2ok("te", "trailers")},
		{"RFC 9113 §8.2.2", "te other than trailers is malformed", !h2ok("te", "gzip")},
		{"RFC 9113 §8.2.2", "connection in an HTTP/2 request is malformed", !h2ok("connection", "close")},
		{"RFC 9113 §8.2.2", "keep-alive in an HTTP/2 request is malformed", !h2ok("keep-alive", "5")},
		{"RFC 9113 §8.2.2", "proxy-connection in an HTTP/2 request is malformed", !h2ok("proxy-connection", "close")},
		{"RFC 9113 §8.2.2", "transfer-encoding in an HTTP/2 request is malformed", !h2ok("transfer-encoding", "chunked")},
		{"RFC 9113 §8.2.2", "upgrade in an HTTP/2 request is malformed", !h2ok("upgrade", "h2c")},
		{"RFC 9113 §8.2.1", "leading or trailing whitespace in an HTTP/2 value is malformed", !h2ok("x", " 1") && !h2ok("x", "1\t")},
		{"RFC 9113 §8.2.1", "an ordinary HTTP/2 field is valid", h2ok("x-foo", "a b")},
		{"RFC 9113 §8.3.1", "a request's pseudo-headers", h2req("GET", "https", "web:80", "/a?b") == nil},
		{"RFC 9113 §8.3.1", ":method must be a token", h2req("GET /x", "https", "web", "/") != nil && h2req("G\tET", "https", "web", "/") != nil},
		{"RFC 9113 §8.3.1", ":path is required, origin-form for http(s)", h2req("GET", "https", "web", "") != nil && h2req("GET", "https", "web", "a") != nil},
		{"RFC 9113 §8.3.1", ":path * only for OPTIONS", h2req("OPTIONS", "https", "web", "*") == nil && h2req("GET", "https", "web", "*") != nil},
		{"RFC 9113 §8.3.1", ":scheme is required", h2req("GET", "", "web", "/") != nil},
		{"RFC 9113 §8.3.1", ":authority without userinfo", h2req("GET", "https", "user@web", "/") != nil},
		{"RFC 9110 §6.5.1", "framing fields are not trailers", noTrailer("Content-Length") && noTrailer("Transfer-Encoding") && noTrailer("Trailer")},
		{"RFC 9110 §6.5.1", "routing and authentication fields are not trailers", noTrailer("Host") && noTrailer("Authorization")},
		{"RFC 9110 §6.5.1", "other fields may be trailers", !noTrailer("Grpc-Status") && !noTrailer("X-Checksum")},
		{"RFC 9110 §5.1, §5.6.2", "a field name is a token", ValidFieldName("X-Foo_1.2") && !ValidFieldName("X Foo") && !ValidFieldName("X-Foo ") && !ValidFieldName("") && !ValidFieldName("X:Y")},
		{"RFC 9110 §5.5", "a field value has no CR, LF or NUL", ValidFieldValue("a \tb\x80") && !ValidFieldValue("a\rb") && !ValidFieldValue("a\nb") && !ValidFieldValue("a\x00b") && !ValidFieldValue("a\x7fb")},
		{"RFC 9110 §5.6.2", "tchar", IsTchar('!') && IsTchar('~') && IsTchar('a') && IsTchar('Z') && IsTchar('9') && !IsTchar(' ') && !IsTchar(':') && !IsTchar('"') && !IsTchar(0x80) && !IsTchar(0)},
		{"RFC 9110 §9.1", "a method is a token; case matters", ValidMethod("GET") && ValidMethod("get") && ValidMethod("M-SEARCH") && !ValidMethod("GET /") && !ValidMethod("") && !ValidMethod("G\tET")},
		{"RFC 9112 §3.2.1", "origin-form target", ValidOriginTarget("GET", "/a/b?c=d") && !ValidOriginTarget("GET", "/a b") && !ValidOriginTarget("GET", "/a\x7f") && !ValidOriginTarget("GET", "a") && !ValidOriginTarget("GET", "")},
		{"RFC 9112 §3.2.4", "asterisk-form only for OPTIONS", ValidOriginTarget("OPTIONS", "*") && !ValidOriginTarget("GET", "*")},
		{"RFC 9110 §7.2", "an authority is host[:port]", ValidAuthority("web.ns.svc:8080") && ValidAuthority("[::1]:80") && ValidAuthority("") && !ValidAuthority("a b") && !ValidAuthority("a@b") && !ValidAuthority("a/b")},
		{"mesh", "Mesh-Orig-Proto is internal", internal(OrigProto)},
		{"mesh", "Mesh-Proxy-Error is internal", internal(ProxyError)},
		{"mesh", "application fields are not internal", !internal("X-Mesh") && !internal("Mesh")},
	} {
		if !tc.got {
			t.Errorf("%s: %s", tc.rfc, tc.what)
		}
	}
}

// RemoveHopHeaders removes what RFC 9110 §7.6.1 and the Connection header say, keeps
// TE: trailers, and allocates nothing for ordinary requests.
func TestRemoveHopHeaders(t *testing.T) {
	t.Parallel()
	h := http.Header{
		"Connection":          {"keep-alive, x-hop, Upgrade", "close"},
		"X-Hop":               {"1"},
		"Keep-Alive":          {"timeout=5"},
		"Upgrade":             {"websocket"},
		"Te":                  {"gzip, trailers"},
		"Trailer":             {"X-Sum"},
		"Transfer-Encoding":   {"chunked"},
		"Proxy-Connection":    {"keep-alive"},
		"Proxy-Authorization": {"Basic x"},
		"Proxy-Authenticate":  {"Basic"},
		"Content-Type":        {"text/plain"},
		"X-Kept":              {"yes"},
	}
	RemoveHopHeaders(h)
	want := http.Header{"Content-Type": {"text/plain"}, "X-Kept": {"yes"}, "Te": {"trailers"}}
	if !reflect.DeepEqual(h, want) {
		t.Errorf("after RemoveHopHeaders: %v, want %v", h, want)
	}
	h = http.Header{"Te": {"gzip"}}
	if RemoveHopHeaders(h); len(h) != 0 {
		t.Errorf("TE without trailers kept: %v", h)
	}
}

// The helpers on the request path allocate nothing for ordinary requests (not
// parallel: AllocsPerRun).
func TestHeaderHelpersAllocs(t *testing.T) {
	typical := http.Header{"Accept": {"*/*"}, "User-Agent": {"curl"}, "Connection": {"keep-alive"}, "Content-Length": {"5"}}
	keepAlive := []string{"keep-alive"}
	if n := testing.AllocsPerRun(100, func() {
		typical["Connection"] = keepAlive
		RemoveHopHeaders(typical)
	}); n != 0 {
		t.Errorf("RemoveHopHeaders allocates %.0f times", n)
	}
	if n := testing.AllocsPerRun(100, func() {
		_, _ = LowerH2("x-already-lower")
		_ = CanonicalH2("content-type")
		_ = CanonicalH2("mesh-orig-proto")
	}); n != 0 {
		t.Errorf("header name helpers allocate %.0f times", n)
	}
}

func TestInternalAndTrailerHeaders(t *testing.T) {
	t.Parallel()
	h := http.Header{OrigProto: {"HTTP/1.1"}, ProxyError: {"x"}, "X-App": {"1"}}
	StripInternal(h)
	if len(h) != 1 || h.Get("X-App") != "1" {
		t.Errorf("after StripInternal: %v", h)
	}
	h = http.Header{}
	AnnounceTrailers(h, http.Header{"X-Sum": nil})
	if h.Get("Trailer") != "X-Sum" {
		t.Errorf("Trailer %q", h.Get("Trailer"))
	}
	if AnnounceTrailers(h, nil); h.Get("Trailer") != "X-Sum" {
		t.Error("no trailers changed the header")
	}
}

// LowerH2 and CanonicalH2 are inverses for the fields HTTP/2 may carry.
func TestH2HeaderNames(t *testing.T) {
	t.Parallel()
	for _, k := range []string{"Content-Type", "Content-Length", "Te", "Grpc-Status", "X-Custom-Header", OrigProto, ProxyError} {
		lk, ok := LowerH2(k)
		if !ok || lk != strings.ToLower(k) {
			t.Errorf("LowerH2(%q) = %q, %v", k, lk, ok)
		}
		if got := CanonicalH2(lk); got != k {
			t.Errorf("CanonicalH2(%q) = %q, want %q", lk, got, k)
		}
	}
}

func TestCheckH1Request(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		method, target, host string
		h                    http.Header
		ok                   bool
	}{
		{"GET", "/a?b", "web:80", http.Header{"X": {"1"}}, true},
		{"OPTIONS", "*", "web", nil, true},
		{"GET /admin HTTP/1.1\r\n", "/", "web", nil, false},
		{"GET\t/admin", "/", "web", nil, false},
		{"GET", "/a b", "web", nil, false},
		{"GET", "/a\tb", "web", nil, false},
		{"GET", "http://x/", "web", nil, false},
		{"GET", "/", "web\r\nX: y", nil, false},
		{"GET", "/", "a b", nil, false},
		{"GET", "/", "web", http.Header{"X Y": {"1"}}, false},
		{"GET", "/", "web", http.Header{"X": {"1\r\nY: 2"}}, false},
	} {
		if err := CheckH1Request(tc.method, ValidOriginTarget(tc.method, tc.target), tc.host, tc.h); (err == nil) != tc.ok {
			t.Errorf("CheckH1Request(%q, %q, %q, %v) = %v", tc.method, tc.target, tc.host, tc.h, err)
		}
	}
}

// ValidURLTarget agrees with ValidOriginTarget on what Request.Write writes.
func TestValidURLTarget(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		method string
		u      url.URL
		ok     bool
	}{
		{"GET", url.URL{Path: "/a b"}, true}, // written as /a%20b
		{"GET", url.URL{Path: "/a", RawQuery: "b=c"}, true},
		{"GET", url.URL{Path: ""}, true}, // written as /
		{"GET", url.URL{Path: "/a", RawQuery: "b c"}, false},
		{"GET", url.URL{Path: "/a", RawQuery: "b\x01"}, false},
		{"GET", url.URL{Path: "a"}, false},
		{"OPTIONS", url.URL{Path: "*"}, true},
		{"GET", url.URL{Path: "*"}, false},
		{"GET", url.URL{Opaque: "/x y"}, false},
	} {
		if got := ValidURLTarget(tc.method, &tc.u); got != tc.ok {
			t.Errorf("%s %q: %v, want %v", tc.method, tc.u.String(), got, tc.ok)
		}
		if tc.u.Opaque == "" && tc.u.Path != "*" {
			if want := ValidOriginTarget(tc.method, tc.u.RequestURI()); want != tc.ok {
				t.Errorf("%s %q: the table disagrees with ValidOriginTarget(RequestURI())", tc.method, tc.u.String())
			}
		}
	}
}

// The allocation-free cases of LowerH2 and CanonicalH2 agree with the general ones.
func TestLowerHeaderShortcuts(t *testing.T) {
	for _, k := range []string{"Content-Type", "Content-Length", "Date", "Grpc-Status", "Grpc-Message", "Te",
		"User-Agent", "Accept", "Accept-Encoding", "Grpc-Timeout", OrigProto, ProxyError} {
		if got, ok := LowerH2(k); !ok || got != strings.ToLower(k) {
			t.Errorf("LowerH2(%q) = %q, %v", k, got, ok)
		}
		if got := CanonicalH2(strings.ToLower(k)); got != k {
			t.Errorf("CanonicalH2(%q) = %q", strings.ToLower(k), got)
		}
	}
}
