package h2

import (
	"net/http"
	"strconv"

	"github.com/meshplane/mesh/proxy/httpfield"
)

// h2body is a request body of the HTTP/2 server.
type h2body struct {
	h2pipe
	s       *Stream
	trailer http.Header // the request's Trailer: declared names, filled at the end
}

func newH2Body(s *Stream) *h2body {
	b := &h2body{s: s}
	b.init(&s.c.h2wire, s.id, b)
	return b
}

// atEnd fills the declared trailers (http.Transport sends the request's Trailer map
// once the body ends).
func (b *h2body) atEnd(got http.Header) {
	for k, vs := range got {
		if _, declared := b.trailer[k]; declared {
			b.trailer[k] = vs
		}
	}
}

func (b *h2body) Close() error {
	b.discard()
	return nil
}

// trailerMap is a Trailer map with h's declared names (nil values), or nil.
func trailerMap(h http.Header) http.Header {
	names := httpfield.DeclaredTrailers(h)
	if len(names) == 0 {
		return nil
	}
	t := make(http.Header, len(names))
	for _, k := range names {
		t[k] = nil
	}
	return t
}

// responseStatus is http.Response.Status for code ("200 OK"), without allocating
// for the common codes.
func responseStatus(code int) string {
	switch code {
	case 200:
		return "200 OK"
	case 204:
		return "204 No Content"
	case 404:
		return "404 Not Found"
	}
	return strconv.Itoa(code) + " " + http.StatusText(code)
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
