package dataplane

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// Request smuggling (RFC 9112 §11.2) and the framing rules that prevent it (RFC 9112
// §2.2, §3, §5, §6, §7), over raw sockets: for each case, exactly which requests the
// application received (method, target, body) and which responses the client got,
// through the outbound proxy, the inbound proxy (a plaintext client) and the two
// proxies of the mesh, and what net/http's server does with the same bytes.
//
// Every case is followed on its connection by a probe request (with Connection:
// close), and the client half-closes after sending: a connection that survives the
// case serves the probe; one that is closed (a refused request, a broken body)
// never reads it.

const (
	probe     = "GET /probe HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n"
	probeSeen = "GET /probe "
)

// outcome is what the application received (complete requests, as
// "METHOD target body") and what the client read (statuses, in order).
type outcome struct {
	apps     []string
	statuses []int
}

// served: the requests reach the application, the connection survives them (the
// probe is served too).
func served(apps ...string) outcome {
	o := outcome{apps: append(apps, probeSeen)}
	for range o.apps {
		o.statuses = append(o.statuses, http.StatusOK)
	}
	return o
}

// refused: apps are served, then a request is answered with status and the
// connection closed; nothing after it is read.
func refused(status int, apps ...string) outcome {
	o := outcome{apps: apps}
	for range apps {
		o.statuses = append(o.statuses, http.StatusOK)
	}
	o.statuses = append(o.statuses, status)
	return o
}

// closedAfter: apps are served, then the connection closes (HTTP/1.0).
func closedAfter(apps ...string) outcome {
	o := outcome{apps: apps}
	for range apps {
		o.statuses = append(o.statuses, http.StatusOK)
	}
	return o
}

type smuggleCase struct {
	name, rfc string
	raw       string
	want      outcome
	// netHTTP is what net/http's server does, where the proxy is stricter; why says
	// why the proxy differs. nil: the same as want.
	netHTTP *outcome
	why     string
}

func ptr(o outcome) *outcome { return &o }

// smuggleCases is the table. Hosts and bodies are short on purpose.
func smuggleCases() []smuggleCase {
	const post = "POST /a HTTP/1.1\r\nHost: web\r\n"
	const chunkedPost = post + "Transfer-Encoding: chunked\r\n"
	return []smuggleCase{
		// The baseline: what must work.
		{name: "GET", rfc: "RFC 9112 §3", raw: "GET /a?b=c HTTP/1.1\r\nHost: web\r\n\r\n", want: served("GET /a?b=c ")},
		{name: "POST with Content-Length", rfc: "RFC 9112 §6.2", raw: post + "Content-Length: 5\r\n\r\nhello", want: served("POST /a hello")},
		{name: "chunked", rfc: "RFC 9112 §7.1", raw: chunkedPost + "\r\n5\r\nhello\r\n0\r\n\r\n", want: served("POST /a hello")},
		{name: "chunked with extensions and trailer", rfc: "RFC 9112 §7.1.1, §7.1.2",
			raw:  chunkedPost + "Trailer: X-Sum\r\n\r\n5;a=b;c;d=\"x y\"\r\nhello\r\n0;e=f\r\nX-Sum: 1\r\n\r\n",
			want: served("POST /a hello")},
		{name: "chunk-size upper-case hex and leading zeros", rfc: "RFC 9112 §7.1",
			raw: chunkedPost + "\r\n0A\r\n0123456789\r\n000\r\n\r\n", want: served("POST /a 0123456789")},
		{name: "Transfer-Encoding: HTAB chunked (OWS)", rfc: "RFC 9110 §5.5, §5.6.3",
			raw: post + "Transfer-Encoding:\tchunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", want: served("POST /a hello")},
		{name: "Transfer-Encoding: CHUNKED", rfc: "RFC 9112 §7 (codings are case-insensitive)",
			raw: post + "Transfer-Encoding: CHUNKED\r\n\r\n5\r\nhello\r\n0\r\n\r\n", want: served("POST /a hello")},
		{name: "Content-Length frames the body exactly", rfc: "RFC 9112 §6.2",
			raw:  post + "Content-Length: 3\r\n\r\nabcGET /b HTTP/1.1\r\nHost: web\r\n\r\n",
			want: served("POST /a abc", "GET /b ")},
		{name: "pipelined GETs", rfc: "RFC 9112 §9.3.2",
			raw:  "GET /1 HTTP/1.1\r\nHost: web\r\n\r\nGET /2 HTTP/1.1\r\nHost: web\r\n\r\n",
			want: served("GET /1 ", "GET /2 ")},
		{name: "pipelined after a chunked body", rfc: "RFC 9112 §9.3.2",
			raw:  chunkedPost + "\r\n3\r\nabc\r\n0\r\n\r\nGET /b HTTP/1.1\r\nHost: web\r\n\r\n",
			want: served("POST /a abc", "GET /b ")},
		{name: "CRLF after a POST body", rfc: "RFC 9112 §2.2",
			raw:  post + "Content-Length: 1\r\n\r\nx\r\nGET /b HTTP/1.1\r\nHost: web\r\n\r\n",
			want: served("POST /a x", "GET /b ")},
		{name: "bare LF line ends in the head", rfc: "RFC 9112 §2.2 (MAY)",
			raw: "GET /a HTTP/1.1\nHost: web\n\n", want: served("GET /a ")},
		{name: "HTTP/1.0 without Host closes", rfc: "RFC 9112 §9.3",
			raw: "GET /a HTTP/1.0\r\n\r\n", want: closedAfter("GET /a ")},
		{name: "HTTP/1.0 keep-alive", rfc: "RFC 9112 §9.3, RFC 7230 A.1.2",
			raw: "GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", want: served("GET /a ")},
		{name: "HTTP/1.2 is served as HTTP/1.1", rfc: "RFC 9110 §2.5",
			raw: "GET /a HTTP/1.2\r\nHost: web\r\n\r\n", want: served("GET /a ")},
		{name: "lower-case method is a method", rfc: "RFC 9110 §9.1 (a token; case-sensitive)",
			raw: "get /a HTTP/1.1\r\nHost: web\r\n\r\n", want: served("get /a ")},
		{name: "OPTIONS *", rfc: "RFC 9112 §3.2.4",
			raw: "OPTIONS * HTTP/1.1\r\nHost: web\r\n\r\n", want: served("OPTIONS * ")},
		{name: "absolute-form", rfc: "RFC 9112 §3.2.2",
			raw: "GET http://web/x?y HTTP/1.1\r\nHost: other\r\n\r\n", want: served("GET /x?y ")},
		{name: "empty Host", rfc: "RFC 9110 §7.2", raw: "GET /a HTTP/1.1\r\nHost:\r\n\r\n", want: served("GET /a ")},
		{name: "obs-text in a value", rfc: "RFC 9110 §5.5",
			raw: "GET /a HTTP/1.1\r\nHost: web\r\nX: caf\xc3\xa9\r\n\r\n", want: served("GET /a ")},

		// Content-Length with Transfer-Encoding, and its obfuscations.
		{name: "CL.TE", rfc: "RFC 9112 §6.1, §11.2",
			raw:     post + "Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: web\r\n\r\n",
			want:    refused(400),
			netHTTP: ptr(served("POST /a ", "GET /smuggled ")), why: "RFC 9112 §6.1 lets a server reject both; the proxy must not guess which one its peers use"},
		{name: "TE.CL", rfc: "RFC 9112 §6.1, §11.2",
			raw:  post + "Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n5c\r\nGPOST / HTTP/1.1\r\n\r\n0\r\n\r\n",
			want: refused(400)},
		{name: "Transfer-Encoding: chunked, identity", rfc: "RFC 9112 §6.1 (chunked must be final)",
			raw:     post + "Transfer-Encoding: chunked, identity\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
			want:    refused(400),
			netHTTP: ptr(refused(501)), why: "RFC 9112 §6.1: 400 when chunked is not the final coding"},
		{name: "Transfer-Encoding: gzip, chunked", rfc: "RFC 9112 §6.1 (an unknown coding: 501)",
			raw: post + "Transfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", want: refused(501)},
		{name: "Transfer-Encoding: xchunked", rfc: "RFC 9112 §6.1",
			raw:     post + "Transfer-Encoding: xchunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
			want:    refused(400),
			netHTTP: ptr(refused(501)), why: "RFC 9112 §6.1: 400 when chunked is not the final coding"},
		{name: "Transfer-Encoding twice", rfc: "RFC 9112 §6.1, §7.1 (chunked once)",
			raw:     post + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
			want:    refused(400),
			netHTTP: ptr(refused(501)), why: "chunked applied twice is malformed (400), not an unknown coding"},
		{name: "Transfer-Encoding: ,chunked", rfc: "RFC 9112 §6.1",
			raw:     post + "Transfer-Encoding: ,chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
			want:    refused(400),
			netHTTP: ptr(refused(501)), why: "an empty coding is malformed"},
		{name: "Transfer-Encoding: chunked, (empty element)", rfc: "RFC 9112 §6.1, RFC 9110 §5.6.1",
			raw:     post + "Transfer-Encoding: chunked,\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
			want:    refused(400),
			netHTTP: ptr(refused(501)), why: "an empty coding is malformed (found by FuzzH1Server)"},
		{name: "Transfer-Encoding with a space before the colon", rfc: "RFC 9112 §5.1",
			raw: post + "Transfer-Encoding : chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", want: refused(400)},
		{name: "Transfer-Encoding with VT", rfc: "RFC 9110 §5.5",
			raw: post + "Transfer-Encoding:\vchunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", want: refused(400)},
		{name: "Transfer-Encoding folded", rfc: "RFC 9112 §5.2",
			raw:     post + "Transfer-Encoding: identity\r\n chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
			want:    refused(400),
			netHTTP: ptr(refused(501)), why: "RFC 9112 §5.2: obs-fold is refused (net/http unfolds it)"},
		{name: "Transfer-Encoding in HTTP/1.0", rfc: "RFC 9112 §6.1",
			raw:     "POST /a HTTP/1.0\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\nhello",
			want:    refused(400),
			netHTTP: ptr(closedAfter("POST /a hello")), why: "RFC 9112 §6.1: the framing is faulty (net/http ignores Transfer-Encoding in HTTP/1.0)"},

		// Content-Length.
		{name: "Content-Length twice, same value", rfc: "RFC 9110 §8.6, RFC 9112 §6.3",
			raw:     post + "Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
			want:    refused(400),
			netHTTP: ptr(served("POST /a hello")), why: "RFC 9112 §6.3 allows refusing duplicates; peers may not deduplicate"},
		{name: "Content-Length twice, different values", rfc: "RFC 9112 §6.3",
			raw: post + "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", want: refused(400)},
		{name: "Content-Length: 5, 5", rfc: "RFC 9110 §8.6", raw: post + "Content-Length: 5, 5\r\n\r\nhello", want: refused(400)},
		{name: "Content-Length: 5,6", rfc: "RFC 9110 §8.6", raw: post + "Content-Length: 5,6\r\n\r\nhello!", want: refused(400)},
		{name: "Content-Length: +5", rfc: "RFC 9110 §8.6", raw: post + "Content-Length: +5\r\n\r\nhello", want: refused(400)},
		{name: "Content-Length: -1", rfc: "RFC 9110 §8.6", raw: post + "Content-Length: -1\r\n\r\n", want: refused(400)},
		{name: "Content-Length: 0x5", rfc: "RFC 9110 §8.6", raw: post + "Content-Length: 0x5\r\n\r\nhello", want: refused(400)},
		{name: "Content-Length: 5 5", rfc: "RFC 9110 §8.6", raw: post + "Content-Length: 5 5\r\n\r\nhello", want: refused(400)},
		{name: "Content-Length empty", rfc: "RFC 9110 §8.6", raw: post + "Content-Length:\r\n\r\n", want: refused(400)},
		{name: "Content-Length overflow", rfc: "RFC 9110 §8.6", raw: post + "Content-Length: 99999999999999999999\r\n\r\n", want: refused(400)},
		{name: "Content-Length with a space before the colon", rfc: "RFC 9112 §5.1",
			raw: post + "Content-Length : 5\r\n\r\nhello", want: refused(400)},
		{name: "Content-Length longer than the body", rfc: "RFC 9112 §6.3 (incomplete message)",
			raw: post + "Content-Length: 1000\r\n\r\nhello", want: refused(400)},

		// Chunked syntax.
		{name: "chunk-size with trailing whitespace", rfc: "RFC 9112 §7.1, §7.1.1 (BWS only before ';')",
			raw:     chunkedPost + "\r\n5 \r\nhello\r\n0\r\n\r\n",
			want:    refused(400),
			netHTTP: ptr(served("POST /a hello")), why: "the grammar has no whitespace there; lenient parsers disagree on it"},
		{name: "chunk-size with leading whitespace", rfc: "RFC 9112 §7.1", raw: chunkedPost + "\r\n 5\r\nhello\r\n0\r\n\r\n", want: refused(400)},
		{name: "chunk-size 0x5", rfc: "RFC 9112 §7.1", raw: chunkedPost + "\r\n0x5\r\nhello\r\n0\r\n\r\n", want: refused(400)},
		{name: "chunk-size +5", rfc: "RFC 9112 §7.1", raw: chunkedPost + "\r\n+5\r\nhello\r\n0\r\n\r\n", want: refused(400)},
		{name: "chunk-size not hex", rfc: "RFC 9112 §7.1", raw: chunkedPost + "\r\n5g\r\nhello\r\n0\r\n\r\n", want: refused(400)},
		{name: "chunk-size empty", rfc: "RFC 9112 §7.1", raw: chunkedPost + "\r\n\r\nhello\r\n0\r\n\r\n", want: refused(400)},
		{name: "chunk-size overflow", rfc: "RFC 9112 §7.1", raw: chunkedPost + "\r\n10000000000000005\r\nhello\r\n0\r\n\r\n", want: refused(400)},
		{name: "chunk-size past int64", rfc: "RFC 9112 §7.1", raw: chunkedPost + "\r\nffffffffffffffff\r\nhello\r\n0\r\n\r\n", want: refused(400)},
		{name: "chunk-size line with a bare LF", rfc: "RFC 9112 §7.1, erratum 7633", raw: chunkedPost + "\r\n5\nhello\r\n0\r\n\r\n", want: refused(400)},
		{name: "chunk-size line with a bare CR", rfc: "RFC 9112 §2.2", raw: chunkedPost + "\r\n5\rhello\r\n0\r\n\r\n", want: refused(400)},
		{name: "chunk data too long", rfc: "RFC 9112 §7.1", raw: chunkedPost + "\r\n5\r\nhelloXX\r\n0\r\n\r\n", want: refused(400)},
		{name: "chunk data followed by a bare LF", rfc: "RFC 9112 §7.1", raw: chunkedPost + "\r\n5\r\nhello\n0\r\n\r\n", want: refused(400)},
		{name: "last chunk with a bare LF", rfc: "RFC 9112 §7.1", raw: chunkedPost + "\r\n5\r\nhello\r\n0\n\r\n", want: refused(400)},
		{name: "trailer section ended by a bare LF", rfc: "RFC 9112 §7.1.2",
			raw:     chunkedPost + "\r\n5\r\nhello\r\n0\r\n\n",
			want:    refused(400),
			netHTTP: ptr(served("POST /a hello")), why: "the chunked framing ends on CRLF only (as for chunk lines)"},
		{name: "chunk extension without a name", rfc: "RFC 9112 §7.1.1",
			raw:     chunkedPost + "\r\n5;\r\nhello\r\n0\r\n\r\n",
			want:    refused(400),
			netHTTP: ptr(served("POST /a hello")), why: "chunk extensions are parsed by their grammar, not skipped"},
		{name: "chunk extension with an unterminated quote", rfc: "RFC 9112 §7.1.1",
			raw:     chunkedPost + "\r\n5;a=\"b\r\nhello\r\n0\r\n\r\n",
			want:    refused(400),
			netHTTP: ptr(served("POST /a hello")), why: "chunk extensions are parsed by their grammar, not skipped"},
		{name: "trailer field folded", rfc: "RFC 9112 §5.2, §7.1.2",
			raw:     chunkedPost + "\r\n5\r\nhello\r\n0\r\nX: a\r\n b\r\n\r\n",
			want:    refused(400),
			netHTTP: ptr(served("POST /a hello")), why: "RFC 9112 §5.2: obs-fold is refused"},
		{name: "trailer field with a space before the colon", rfc: "RFC 9112 §5.1, §7.1.2",
			raw:     chunkedPost + "\r\n5\r\nhello\r\n0\r\nX : a\r\n\r\n",
			want:    refused(400),
			netHTTP: ptr(served("POST /a hello")), why: "RFC 9112 §5.1: whitespace before the colon is refused in trailers too"},

		// Bare CR and LF, controls.
		{name: "bare CR in a value", rfc: "RFC 9112 §2.2, RFC 9110 §5.5", raw: "GET /a HTTP/1.1\r\nHost: web\r\nX: a\rb\r\n\r\n", want: refused(400)},
		{name: "bare CR ends a line", rfc: "RFC 9112 §2.2", raw: "GET /a HTTP/1.1\rHost: web\r\n\r\n", want: refused(400)},
		{name: "NUL in a value", rfc: "RFC 9110 §5.5", raw: "GET /a HTTP/1.1\r\nHost: web\r\nX: a\x00b\r\n\r\n", want: refused(400)},
		{name: "DEL in a value", rfc: "RFC 9110 §5.5", raw: "GET /a HTTP/1.1\r\nHost: web\r\nX: a\x7fb\r\n\r\n", want: refused(400)},

		// Field-line syntax.
		{name: "space before the colon", rfc: "RFC 9112 §5.1", raw: "GET /a HTTP/1.1\r\nHost: web\r\nX-A : b\r\n\r\n", want: refused(400)},
		{name: "tab before the colon", rfc: "RFC 9112 §5.1", raw: "GET /a HTTP/1.1\r\nHost: web\r\nX-A\t: b\r\n\r\n", want: refused(400)},
		{name: "empty field name", rfc: "RFC 9110 §5.1", raw: "GET /a HTTP/1.1\r\nHost: web\r\n: b\r\n\r\n", want: refused(400)},
		{name: "field name not a token", rfc: "RFC 9110 §5.1", raw: "GET /a HTTP/1.1\r\nHost: web\r\nX(a): b\r\n\r\n", want: refused(400)},
		{name: "field line without a colon", rfc: "RFC 9112 §5", raw: "GET /a HTTP/1.1\r\nHost: web\r\nBad Header Line\r\n\r\n", want: refused(400)},
		{name: "obs-fold", rfc: "RFC 9112 §5.2",
			raw:     "GET /a HTTP/1.1\r\nHost: web\r\nX: a\r\n b\r\n\r\n",
			want:    refused(400),
			netHTTP: ptr(served("GET /a ")), why: "RFC 9112 §5.2 allows refusing obs-fold; the proxy does (net/http unfolds)"},
		{name: "whitespace before the first field", rfc: "RFC 9112 §2.2", raw: "GET /a HTTP/1.1\r\n Host: web\r\n\r\n", want: refused(400)},

		// Host.
		{name: "missing Host", rfc: "RFC 9112 §3.2", raw: "GET /a HTTP/1.1\r\n\r\n", want: refused(400)},
		{name: "two Hosts", rfc: "RFC 9112 §3.2", raw: "GET /a HTTP/1.1\r\nHost: web\r\nHost: other\r\n\r\n", want: refused(400)},
		{name: "Host with a space", rfc: "RFC 9112 §3.2", raw: "GET /a HTTP/1.1\r\nHost: a b\r\n\r\n", want: refused(400)},
		{name: "Host with userinfo", rfc: "RFC 9110 §7.2", raw: "GET /a HTTP/1.1\r\nHost: user@web\r\n\r\n", want: refused(400)},
		{name: "Host with a path", rfc: "RFC 9110 §7.2", raw: "GET /a HTTP/1.1\r\nHost: web/x\r\n\r\n", want: refused(400)},
		{name: "absolute-form without Host", rfc: "RFC 9112 §3.2", raw: "GET http://web/x HTTP/1.1\r\n\r\n", want: refused(400)},
		{name: "absolute-form with userinfo", rfc: "RFC 9110 §4.2.4",
			raw:     "GET http://user@web/x HTTP/1.1\r\nHost: web\r\n\r\n",
			want:    refused(400),
			netHTTP: ptr(served("GET /x ")), why: "RFC 9110 §4.2.4: userinfo in an http URI is an error"},

		// The request line.
		{name: "two spaces", rfc: "RFC 9112 §3", raw: "GET  /a HTTP/1.1\r\nHost: web\r\n\r\n", want: refused(400)},
		{name: "tab separator", rfc: "RFC 9112 §3", raw: "GET\t/a HTTP/1.1\r\nHost: web\r\n\r\n", want: refused(400)},
		{name: "leading space", rfc: "RFC 9112 §3", raw: " GET /a HTTP/1.1\r\nHost: web\r\n\r\n", want: refused(400)},
		{name: "leading empty line", rfc: "RFC 9112 §2.2", raw: "\r\nGET /a HTTP/1.1\r\nHost: web\r\n\r\n", want: refused(400)},
		{name: "HTTP/2.0 on HTTP/1", rfc: "RFC 9110 §2.5, §15.6.6", raw: "GET /a HTTP/2.0\r\nHost: web\r\n\r\n", want: refused(505)},
		{name: "HTTP/0.9 version", rfc: "RFC 9110 §15.6.6", raw: "GET /a HTTP/0.9\r\nHost: web\r\n\r\n", want: refused(505)},
		{name: "HTTP/1.10", rfc: "RFC 9112 §2.3", raw: "GET /a HTTP/1.10\r\nHost: web\r\n\r\n", want: refused(400)},
		{name: "lower-case version", rfc: "RFC 9112 §2.3", raw: "GET /a http/1.1\r\nHost: web\r\n\r\n", want: refused(400)},
		{name: "space after the version", rfc: "RFC 9112 §3", raw: "GET /a HTTP/1.1 \r\nHost: web\r\n\r\n", want: refused(400)},
		{name: "control in the target", rfc: "RFC 9112 §3.2", raw: "GET /a\x01 HTTP/1.1\r\nHost: web\r\n\r\n", want: refused(400)},
		{name: "asterisk-form for GET", rfc: "RFC 9112 §3.2.4",
			raw:     "GET * HTTP/1.1\r\nHost: web\r\n\r\n",
			want:    refused(400),
			netHTTP: ptr(served("GET * ")), why: "RFC 9112 §3.2.4: the asterisk-form is for OPTIONS only"},
		{name: "no version: not HTTP/1, opaque to the app", rfc: "RFC 9112 §3 (HTTP/0.9 is not supported)",
			raw: "GET /a\r\nHost: web\r\n\r\n", want: refused(400)},

		// After a refusal or a broken body, nothing more is read.
		{name: "a request after a refused one", rfc: "RFC 9112 §9.6",
			raw: "GET /a HTTP/1.1\r\nHost: web\r\nBad Header Line\r\n\r\nGET /b HTTP/1.1\r\nHost: web\r\n\r\n", want: refused(400)},
		{name: "a request after a broken chunked body", rfc: "RFC 9112 §7.1, §9.6",
			raw: chunkedPost + "\r\nzz\r\n\r\nGET /b HTTP/1.1\r\nHost: web\r\n\r\n", want: refused(400)},
		{name: "a request in a chunk after a bad chunk-size", rfc: "RFC 9112 §7.1, §11.2",
			raw: chunkedPost + "\r\n5;\nhello\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: web\r\n\r\n", want: refused(400)},
	}
}

// recorder is an application that records the complete requests it receives.
type recorder struct {
	mu   sync.Mutex
	seen []string
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		// A body that broke: not a request the application acts on.
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	rec.mu.Lock()
	rec.seen = append(rec.seen, r.Method+" "+r.URL.RequestURI()+" "+string(b))
	rec.mu.Unlock()
	_, _ = io.WriteString(w, "ok")
}

func (rec *recorder) take() []string {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	s := rec.seen
	rec.seen = nil
	return s
}

// recordingApp serves a recorder over HTTP/1.1.
func recordingApp(t testing.TB) (netip.AddrPort, *recorder) {
	t.Helper()
	rec := &recorder{}
	srv := &http.Server{Handler: rec, ReadHeaderTimeout: 10 * time.Second, DisableGeneralOptionsHandler: true}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return netip.MustParseAddrPort(l.Addr().String()), rec
}

// plainProxyTo runs a proxy without identity or discovery: inbound to in, outbound
// (not meshed, in plaintext) to out.
func plainProxyTo(t testing.TB, in, out netip.AddrPort) *testProxy {
	t.Helper()
	return runProxy(t, Options{InboundOrigDst: in, OutboundOrigDst: out}, time.Second)
}

// rawExchange writes raw to addr, half-closes, and reads responses to the end; it
// returns their statuses (-1 for a response that did not parse).
func rawExchange(t *testing.T, addr, raw string) []int {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	go func() {
		_, _ = io.WriteString(c, raw)
		_ = c.(*net.TCPConn).CloseWrite()
	}()
	br := bufio.NewReader(c)
	var statuses []int
	for {
		if _, err := br.Peek(1); err != nil {
			if !errors.Is(err, io.EOF) && !isReset(err) {
				t.Errorf("reading responses: %v (after %v)", err, statuses)
			}
			return statuses
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return append(statuses, -1)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		statuses = append(statuses, resp.StatusCode)
	}
}

func isReset(err error) bool {
	var ne *net.OpError
	return errors.As(err, &ne) && strings.Contains(err.Error(), "reset")
}

func TestSmuggling(t *testing.T) {
	t.Parallel()
	type path struct {
		name   string
		oracle bool // net/http's server itself
		start  func(t *testing.T) (addr string, rec *recorder)
	}
	paths := []path{
		{"net/http", true, func(t *testing.T) (string, *recorder) {
			a, rec := recordingApp(t)
			return a.String(), rec
		}},
		{"outbound", false, func(t *testing.T) (string, *recorder) {
			a, rec := recordingApp(t)
			return plainProxyTo(t, netip.AddrPort{}, a).out.Addr().String(), rec
		}},
		{"inbound", false, func(t *testing.T) (string, *recorder) {
			a, rec := recordingApp(t)
			return plainProxyTo(t, a, netip.AddrPort{}).in.Addr().String(), rec
		}},
		{"mesh", false, func(t *testing.T) (string, *recorder) {
			a, rec := recordingApp(t)
			client, _, _ := meshPair(t, startCP(t), a)
			return client.out.Addr().String(), rec
		}},
	}
	cases := smuggleCases()
	for _, p := range paths {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			addr, rec := p.start(t)
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					want := tc.want
					if p.oracle && tc.netHTTP != nil {
						want = *tc.netHTTP
					}
					statuses := rawExchange(t, addr, tc.raw+probe)
					apps := rec.take()
					if !reflect.DeepEqual(apps, want.apps) || !reflect.DeepEqual(statuses, want.statuses) {
						t.Errorf("%s\n%q\ngot:  app saw %q, client got %v\nwant: app saw %q, client got %v",
							tc.rfc, tc.raw, apps, statuses, want.apps, want.statuses)
					}
				})
			}
		})
	}
}
