package dataplane

import (
	"context"
	"errors"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"strings"
	"sync"
	"time"

	"github.com/meshplane/mesh/proxy/metrics"
)

// fwd is one request's forwarding decision.
type fwd struct {
	scheme, host string
	rt           http.RoundTripper
	series       *metrics.HTTPSeries
	log          *slog.Logger
	errLog       *log.Logger
	bufs         httputil.BufferPool
	// untrusted: the responses come from the application, whose internal headers
	// are stripped (outboundRT strips those of destinations outside the mesh).
	untrusted bool
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
				stripInternal(resp.Header)
			}
			s := seriesOf(resp.Request, f.series)
			grpc := resp.Header.Get("Grpc-Status")
			s.Response(resp.StatusCode, grpc, time.Since(start))
			resp.Body = &endBody{ReadCloser: resp.Body, resp: resp, series: s, grpc: grpc}
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, req *http.Request, err error) {
			status, msg := errorStatus(err)
			f.log.Debug("request failed", "authority", req.Host, "status", status, "err", err)
			proxyError(w, seriesOf(req, f.series), status, msg, start)
		},
	}
	rp.ServeHTTP(w, r)
}

// forwardDirect proxies r through f.rt like forward, without httputil.ReverseProxy's
// per-request copies; not for upgrades. r becomes the outgoing request: the caller
// passes its own shallow copy (r.WithContext), whose URL and headers this changes.
func forwardDirect(w http.ResponseWriter, r *http.Request, f fwd) {
	start := time.Now()
	if f.series != nil {
		f.series.Request()
	}
	out := r
	u := *r.URL
	u.Scheme, u.Host = f.scheme, f.host
	out.URL, out.RequestURI, out.Close = &u, "", false
	if out.ContentLength == 0 {
		out.Body = nil
	}
	removeHopHeaders(out.Header)
	if _, ok := out.Header["User-Agent"]; !ok {
		out.Header["User-Agent"] = []string{""} // not Go's default
	}
	resp, err := f.rt.RoundTrip(out)
	if err != nil {
		if rs, ok := w.(streamResetter); ok {
			if code, ok := peerReset(err); ok {
				f.log.Debug("request reset upstream", "authority", r.Host, "code", code)
				seriesOf(out, f.series).End(0, "")
				rs.resetStream(code)
				return
			}
		}
		status, msg := errorStatus(err)
		f.log.Debug("request failed", "authority", r.Host, "status", status, "err", err)
		proxyError(w, seriesOf(out, f.series), status, msg, start)
		return
	}
	s := seriesOf(out, f.series)
	grpc := resp.Header.Get("Grpc-Status")
	s.Response(resp.StatusCode, grpc, time.Since(start))
	defer func() { _ = resp.Body.Close() }()
	removeHopHeaders(resp.Header)
	if f.untrusted {
		stripInternal(resp.Header)
	}
	h := w.Header()
	for k, vs := range resp.Header {
		h[k] = vs
	}
	announceTrailers(h, resp.Trailer)
	w.WriteHeader(resp.StatusCode)
	flusher, _ := w.(http.Flusher)
	streaming := resp.ContentLength < 0
	if streaming && flusher != nil {
		flusher.Flush()
	}
	buf := f.bufs.Get()
	defer f.bufs.Put(buf)
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			if _, err := w.Write(buf[:n]); err != nil {
				s.End(resp.StatusCode, grpc)
				panic(http.ErrAbortHandler) // the client is gone
			}
			if streaming && flusher != nil {
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
				if code, ok := peerReset(rerr); ok {
					rs.resetStream(code) // with the upstream's code, not the abort's INTERNAL_ERROR
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

// seriesKey lets the outbound round tripper tell forward which series it chose.
type seriesKey struct{}

// seriesBox needs no lock: ReverseProxy calls RoundTrip, ModifyResponse and
// ErrorHandler one after another in the request's goroutine.
type seriesBox struct{ s *metrics.HTTPSeries }

func seriesOf(r *http.Request, def *metrics.HTTPSeries) *metrics.HTTPSeries {
	if r != nil {
		if b, ok := r.Context().Value(seriesKey{}).(*seriesBox); ok {
			if b.s != nil {
				return b.s
			}
		}
	}
	return def
}

// proxyError answers a request the proxy could not forward.
func proxyError(w http.ResponseWriter, s *metrics.HTTPSeries, status int, msg string, start time.Time) {
	w.Header().Set(HeaderProxyError, msg)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, msg+"\n")
	if s != nil {
		s.Response(status, "", time.Since(start))
		s.End(status, "")
	}
}

// errNoEndpoints is returned when discovery knows the service but it has no endpoints.
var errNoEndpoints = errors.New("service has no ready endpoints")

func errorStatus(err error) (int, string) {
	var ne net.Error
	switch {
	case errors.Is(err, errNoEndpoints):
		return http.StatusServiceUnavailable, err.Error()
	case errors.Is(err, errBadBody), errors.Is(err, errInvalidRequest):
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
	once   sync.Once
}

func (b *endBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(func() {
		g := b.grpc
		if g == "" {
			g = b.resp.Trailer.Get("Grpc-Status")
		}
		b.series.End(b.resp.StatusCode, g)
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
