package h2

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/meshplane/mesh/proxy/httpfield"
)

// h2rw is an http.ResponseWriter (and http.Flusher) over a stream of the HTTP/2
// server, for handlers written against net/http. Headers and data are buffered until
// a Flush, a Write that is not the whole body, or the end: a small response leaves
// in one write.
type h2rw struct {
	s        *Stream
	h        http.Header
	status   int
	declared []string // trailer names announced in the Trailer header
	length   int64    // Content-Length, or -1
	written  int64
	hdr      http.Header // headers not yet sent
	err      error
}

func (w *h2rw) Header() http.Header { return w.h }

func (w *h2rw) WriteHeader(code int) {
	if w.status != 0 || code < 200 { // informational responses are not forwarded
		return
	}
	w.status = code
	w.length = -1
	if cl := w.h.Get("Content-Length"); cl != "" {
		if n, err := strconv.ParseInt(cl, 10, 64); err == nil {
			w.length = n
		}
	}
	w.declared = httpfield.DeclaredTrailers(w.h)
	w.hdr = make(http.Header, len(w.h))
	for k, vs := range w.h {
		if k != "Trailer" && !strings.HasPrefix(k, http.TrailerPrefix) {
			w.hdr[k] = vs
		}
	}
}

// sendHeaders writes the headers recorded by WriteHeader, once; end makes them the
// whole response (a gRPC "trailers-only" response must be one HEADERS frame).
func (w *h2rw) sendHeaders(end bool) {
	if w.hdr == nil || w.err != nil {
		return
	}
	w.err = w.s.WriteHeaders(w.status, w.hdr, end, false)
	w.hdr = nil
}

func (w *h2rw) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if len(p) == 0 {
		return 0, w.err
	}
	w.sendHeaders(false)
	if w.err != nil {
		return 0, w.err
	}
	w.written += int64(len(p))
	// The last bytes of a body of known length wait for the end (one write).
	flush := w.length < 0 || w.written < w.length
	if w.err = w.s.writeDataFlush(p, false, flush); w.err != nil {
		return 0, w.err
	}
	return len(p), nil
}

// WriteMore is Write for a body whose next bytes are already at hand: the DATA
// frame waits in the buffer for what follows (a later Write, Flush or the end).
func (w *h2rw) WriteMore(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if len(p) == 0 {
		return 0, w.err
	}
	w.sendHeaders(false)
	if w.err != nil {
		return 0, w.err
	}
	w.written += int64(len(p))
	if w.err = w.s.writeDataFlush(p, false, false); w.err != nil {
		return 0, w.err
	}
	return len(p), nil
}

func (w *h2rw) Flush() {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	w.sendHeaders(false)
	if w.err == nil {
		w.err = w.s.c.write(func() error { return nil }, true)
	}
}

// finish ends the response: trailers, or an empty END_STREAM DATA frame.
func (w *h2rw) finish() {
	if w.s.ended {
		return
	}
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.err != nil {
		return
	}
	var t http.Header
	add := func(k string, vs []string) {
		if len(vs) == 0 {
			return
		}
		if t == nil {
			t = http.Header{}
		}
		t[k] = vs
	}
	for _, k := range w.declared {
		add(k, w.h[k])
	}
	for k, vs := range w.h {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			add(http.CanonicalHeaderKey(strings.TrimPrefix(k, http.TrailerPrefix)), vs)
		}
	}
	if w.hdr != nil && len(t) == 0 {
		w.sendHeaders(true) // END_STREAM headers are flushed
		return
	}
	w.sendHeaders(false)
	if w.err != nil {
		return
	}
	if len(t) > 0 {
		w.err = w.s.WriteHeaders(0, t, true, true)
		return
	}
	w.err = w.s.WriteData(nil, true)
}
