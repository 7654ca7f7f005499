package dataplane

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meshplane/mesh/proxy/h1"
	"github.com/meshplane/mesh/proxy/h2"
	"github.com/meshplane/mesh/proxy/httpfield"
	"github.com/meshplane/mesh/proxy/metrics"
	"golang.org/x/net/http2"
)

// streamResetter is the ResponseWriter of an HTTP/2 stream (h2.HTTPHandler's).
type streamResetter interface{ ResetStream(code http2.ErrCode) }

// readier is a body that knows whether a Read would return at once (proxy/h2's).
type readier interface{ Ready() bool }

// moreWriter is a ResponseWriter that can hold a write for what follows (proxy/h2's).
type moreWriter interface {
	WriteMore(p []byte) (int, error)
}

// fwd is one request's forwarding decision.
type fwd struct {
	scheme, host string
	rt           http.RoundTripper
	series       *metrics.HTTPSeries
	// box, if set, holds the series the outbound round tripper chose (when it has
	// chosen one, it replaces series).
	box    *seriesBox
	log    *slog.Logger
	errLog *log.Logger
	bufs   httputil.BufferPool
	// untrusted: the responses come from the application, whose internal headers
	// are stripped (outboundRT strips those of destinations outside the mesh).
	untrusted bool
	// tap is the request's tap record, nil when nobody listens.
	tap *tapped
}

// forward proxies r through f.rt, preserving headers, trailers, streaming and
// upgrades (httputil.ReverseProxy), and counts it.
func forward(w http.ResponseWriter, r *http.Request, f fwd) {
	start := time.Now()
	if f.series != nil {
		f.series.Request()
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme = f.scheme
			pr.Out.URL.Host = f.host
		},
		Transport:  f.rt,
		ErrorLog:   f.errLog,
		BufferPool: f.bufs,
		ModifyResponse: func(resp *http.Response) error {
			if f.untrusted {
				httpfield.StripInternal(resp.Header)
			}
			s := f.seriesNow()
			grpc := resp.Header.Get("Grpc-Status")
			s.Response(resp.StatusCode, grpc, time.Since(start))
			f.tap.response(resp.StatusCode, resp.Header)
			resp.Body = &endBody{ReadCloser: resp.Body, resp: resp, series: s, grpc: grpc, tap: f.tap}
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, req *http.Request, err error) {
			status, msg := errorStatus(err)
			f.log.Debug("request failed", "authority", req.Host, "status", status, "err", err)
			proxyError(w, req, f.seriesNow(), status, msg, start, f.tap)
		},
	}
	rp.ServeHTTP(w, r)
}

// forwardDirect proxies r through f.rt like forward, without httputil.ReverseProxy's
// per-request copies; not for upgrades. r becomes the outgoing request: the caller
// passes a request of its own (the server's, made for this call), whose URL,
// headers, Body, Close and RequestURI this changes.
func forwardDirect(w http.ResponseWriter, r *http.Request, f fwd) {
	start := time.Now()
	if f.series != nil {
		f.series.Request()
	}
	out := r
	out.URL.Scheme, out.URL.Host = f.scheme, f.host // the URL too is the server's, for this request
	out.RequestURI, out.Close = "", false
	if out.ContentLength == 0 {
		out.Body = nil
	}
	httpfield.RemoveHopHeaders(out.Header)
	if _, ok := out.Header["User-Agent"]; !ok {
		out.Header["User-Agent"] = []string{""} // not Go's default
	}
	resp, err := f.rt.RoundTrip(out)
	if err != nil {
		if rs, ok := w.(streamResetter); ok {
			if code, ok := h2.PeerReset(err); ok {
				f.log.Debug("request reset upstream", "authority", r.Host, "code", code)
				f.seriesNow().End(0, "")
				f.tap.fail(0, "", "reset upstream: "+code.String())
				f.tap.end(f.seriesNow().Labels(), "", 0)
				rs.ResetStream(code)
				return
			}
		}
		status, msg := errorStatus(err)
		f.log.Debug("request failed", "authority", r.Host, "status", status, "err", err)
		proxyError(w, out, f.seriesNow(), status, msg, start, f.tap)
		return
	}
	s := f.seriesNow()
	grpc := resp.Header.Get("Grpc-Status")
	s.Response(resp.StatusCode, grpc, time.Since(start))
	defer func() { _ = resp.Body.Close() }()
	httpfield.RemoveHopHeaders(resp.Header)
	if f.untrusted {
		httpfield.StripInternal(resp.Header)
	}
	f.tap.response(resp.StatusCode, resp.Header)
	var written int64
	defer func() { f.tap.end(s.Labels(), grpc, written) }() // also when the copy aborts
	h := w.Header()
	for k, vs := range resp.Header {
		h[k] = vs
	}
	httpfield.AnnounceTrailers(h, resp.Trailer)
	w.WriteHeader(resp.StatusCode)
	flusher, _ := w.(http.Flusher)
	streaming := resp.ContentLength < 0
	// A streamed response is flushed as it comes, except while the upstream body
	// already holds what follows: a gRPC response's headers, message and trailers
	// usually arrive together and then leave in one write, not three.
	ready, _ := resp.Body.(readier)
	more, _ := w.(moreWriter)
	pending := func() bool { return ready != nil && more != nil && ready.Ready() }
	if streaming && flusher != nil && !pending() {
		flusher.Flush()
	}
	buf := f.bufs.Get()
	defer f.bufs.Put(buf)
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			var err error
			// The last bytes wait for the end of the response, which flushes.
			held := streaming && flusher != nil && more != nil && (errors.Is(rerr, io.EOF) || rerr == nil && pending())
			if held {
				_, err = more.WriteMore(buf[:n])
			} else {
				_, err = w.Write(buf[:n])
			}
			written += int64(n)
			if err != nil {
				s.End(resp.StatusCode, grpc)
				panic(http.ErrAbortHandler) // the client is gone
			}
			if streaming && flusher != nil && !held {
				flusher.Flush()
			}
		}
		if errors.Is(rerr, io.EOF) {
			break
		}
		if rerr != nil {
			f.log.Debug("response copy", "authority", r.Host, "err", rerr)
			s.End(resp.StatusCode, grpc)
			if rs, ok := w.(streamResetter); ok {
				if code, ok := h2.PeerReset(rerr); ok {
					rs.ResetStream(code) // with the upstream's code, not the abort's INTERNAL_ERROR
				}
			}
			panic(http.ErrAbortHandler) // a truncated response must not look complete
		}
	}
	for k, vs := range resp.Trailer {
		h[http.TrailerPrefix+k] = vs
	}
	if grpc == "" {
		grpc = resp.Trailer.Get("Grpc-Status")
	}
	s.End(resp.StatusCode, grpc)
}

// seriesBox lets the outbound round tripper tell forward which series it chose. It
// needs no lock: ReverseProxy (and forwardDirect) call RoundTrip, ModifyResponse and
// ErrorHandler one after another in the request's goroutine.
type seriesBox struct{ s *metrics.HTTPSeries }

// seriesNow is the request's series: the round tripper's choice, else f.series.
func (f *fwd) seriesNow() *metrics.HTTPSeries {
	if f.box != nil && f.box.s != nil {
		return f.box.s
	}
	return f.series
}

// proxyError answers a request the proxy could not forward: with status and msg,
// or, to a gRPC request, as gRPC (grpcError).
func proxyError(w http.ResponseWriter, r *http.Request, s *metrics.HTTPSeries, status int, msg string, start time.Time, t *tapped) {
	h := w.Header()
	h.Set(httpfield.ProxyError, msg)
	code, grpc := grpcError(r, h, status, msg)
	if grpc == "" {
		h.Set("Content-Type", "text/plain; charset=utf-8")
	}
	w.WriteHeader(code)
	if grpc == "" {
		_, _ = io.WriteString(w, msg+"\n")
	}
	if s != nil {
		s.Response(code, grpc, time.Since(start))
		s.End(code, grpc)
	}
	t.fail(code, grpc, msg)
	t.end(s.Labels(), grpc, 0)
}

// grpcError makes the proxy's own answer to a gRPC request a gRPC one, as Linkerd's
// proxy does: HTTP 200 with only grpc-status and grpc-message (a Trailers-Only
// response), so that clients see the status the failure means instead of
// UNAVAILABLE for every HTTP error (gRPC's HTTP-to-status mapping). It returns the
// HTTP status to send and the gRPC status ("" when r is not gRPC; h is then as it
// was).
func grpcError(r *http.Request, h http.Header, status int, msg string) (int, string) {
	if r == nil || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc") {
		return status, ""
	}
	var grpc string
	switch status {
	case http.StatusGatewayTimeout:
		grpc = "4" // DEADLINE_EXCEEDED: the proxy's (route) timeout
	case http.StatusBadGateway, http.StatusServiceUnavailable:
		grpc = "14" // UNAVAILABLE: no endpoint, or it could not be reached
	case http.StatusBadRequest:
		grpc = "13" // INTERNAL: the request could not be sent as it was
	default:
		grpc = "2" // UNKNOWN
	}
	h.Set("Content-Type", "application/grpc")
	h.Set("Grpc-Status", grpc)
	h.Set("Grpc-Message", grpcMessage(msg))
	return http.StatusOK, grpc
}

// grpcMessage percent-encodes msg for grpc-message (gRPC over HTTP/2: the printable
// ASCII but "%" as is, everything else %XX).
func grpcMessage(msg string) string {
	var b strings.Builder
	for i := 0; i < len(msg); i++ {
		c := msg[i]
		if c >= 0x20 && c <= 0x7e && c != '%' {
			b.WriteByte(c)
			continue
		}
		_, _ = fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

// errNoEndpoints is returned when discovery knows the service but it has no endpoints.
var errNoEndpoints = errors.New("service has no ready endpoints")

func errorStatus(err error) (int, string) {
	var ne net.Error
	switch {
	case errors.Is(err, errNoEndpoints):
		return http.StatusServiceUnavailable, err.Error()
	case errors.Is(err, h1.ErrBadBody), errors.Is(err, httpfield.ErrInvalidRequest):
		return http.StatusBadRequest, oneLine(err)
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return http.StatusGatewayTimeout, "timeout: " + oneLine(err)
	default:
		return http.StatusBadGateway, oneLine(err)
	}
}

func oneLine(err error) string { return strings.ReplaceAll(err.Error(), "\n", " ") }

// endBody counts the end of a response once it is closed, with the gRPC status from
// the trailers when the headers had none.
type endBody struct {
	io.ReadCloser
	resp   *http.Response
	series *metrics.HTTPSeries
	grpc   string
	tap    *tapped
	// n counts the bytes read: an upgraded connection's body is read by one
	// goroutine of httputil.ReverseProxy and closed by another.
	n    atomic.Int64
	once sync.Once
}

func (b *endBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

func (b *endBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(func() {
		g := b.grpc
		if g == "" {
			g = b.resp.Trailer.Get("Grpc-Status")
		}
		b.series.End(b.resp.StatusCode, g)
		b.tap.end(b.series.Labels(), g, b.n.Load())
	})
	return err
}

// Write passes through for upgraded (101) connections, whose body is read-write.
func (b *endBody) Write(p []byte) (int, error) {
	if w, ok := b.ReadCloser.(io.Writer); ok {
		return w.Write(p)
	}
	return 0, errors.New("response body is not writable")
}
