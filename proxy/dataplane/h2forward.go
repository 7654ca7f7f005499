package dataplane

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"golang.org/x/net/http2"

	"github.com/meshplane/mesh/proxy/h2"
	"github.com/meshplane/mesh/proxy/httpfield"
	"github.com/meshplane/mesh/proxy/metrics"
)

// serveInboundH2 forwards a request from the inbound HTTP/2 server to the
// application, like serveInbound, writing the response straight to the stream.
func (p *Proxy) serveInboundH2(s *h2.Stream, r *http.Request) {
	m, _ := r.Context().Value(metaKey{}).(*meta)
	tlsOn, reason := tlsLabels(m)
	series := p.o.Metrics.HTTP(metrics.HTTPLabels{Direction: "inbound", Authority: r.Host, TargetAddr: m.targetString(),
		TLS: tlsOn, NoTLSReason: reason, PeerID: m.peerID})
	series.Request()
	start := time.Now()
	t := p.tapStart(r, "inbound")
	if !m.hasTarget {
		h2ProxyError(s, r, series, http.StatusBadGateway, "no target port: connection was not redirected", start, t)
		return
	}
	rt := http.RoundTripper(p.appH2)
	if p.downgrade(m, r.Header) {
		// Written as an HTTP/1 request line and header: nothing of it goes out
		// unless it is valid as one.
		if err := httpfield.CheckH1Request(r.Method, httpfield.ValidOriginTarget(r.Method, r.RequestURI), r.Host, r.Header); err != nil {
			h2ProxyError(s, r, series, http.StatusBadRequest, oneLine(err), start, t)
			return
		}
		rt = p.appH1
		if r.Body == http.NoBody {
			rt = p.appFast
		}
	}
	httpfield.StripInternal(r.Header)
	httpfield.RemoveHopHeaders(r.Header)
	if _, ok := r.Header["User-Agent"]; !ok {
		r.Header["User-Agent"] = []string{""} // not Go's default
	}
	r.URL.Scheme, r.URL.Host, r.RequestURI = "http", m.targetString(), ""
	r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/1.1", 1, 1
	resp, err := rt.RoundTrip(r)
	if err != nil {
		if r.Context().Err() != nil {
			// The peer went away (RST_STREAM or the connection closed).
			series.Response(0, "", time.Since(start))
			series.End(0, "")
			t.fail(0, "", "client went away")
			t.end(series.Labels(), "", 0)
			return
		}
		if code, ok := h2.PeerReset(err); ok {
			p.o.Log.Debug("request reset by the application", "authority", r.Host, "code", code)
			s.Reset(code)
			series.End(0, "")
			t.fail(0, "", "reset by the application: "+code.String())
			t.end(series.Labels(), "", 0)
			return
		}
		status, msg := errorStatus(err)
		p.o.Log.Debug("request failed", "authority", r.Host, "status", status, "err", err)
		h2ProxyError(s, r, series, status, msg, start, t)
		return
	}
	defer func() { _ = resp.Body.Close() }()
	grpc := resp.Header.Get("Grpc-Status")
	series.Response(resp.StatusCode, grpc, time.Since(start))
	httpfield.RemoveHopHeaders(resp.Header)
	httpfield.StripInternal(resp.Header)
	// No Trailer announcement: HTTP/2 trailers follow in their own HEADERS frame
	// (RFC 9113 §8.1), and announcing them costs both proxies allocations.
	t.response(resp.StatusCode, resp.Header)
	written, copyErr := p.copyResponse(s, resp)
	if grpc == "" {
		grpc = resp.Trailer.Get("Grpc-Status")
	}
	if copyErr != nil {
		p.o.Log.Debug("response copy", "authority", r.Host, "err", copyErr)
	}
	series.End(resp.StatusCode, grpc)
	t.end(series.Labels(), grpc, written)
}

// downgrade is true when a request is to go to the application as HTTP/1: it says
// so in Mesh-Orig-Proto, which only a peer proxy that authenticated with mTLS is
// trusted to set (from anyone else the header is stripped and ignored).
func (p *Proxy) downgrade(m *meta, h http.Header) bool {
	v := h[httpfield.OrigProto]
	return (m.tls && m.peerID != "" || p.o.trustPlaintextPeers) && len(v) == 1 && strings.HasPrefix(v[0], "HTTP/1.")
}

// copyResponse writes resp to s. A response of known length is read before its
// headers go out, so that a small one leaves in a single write; a streamed one
// (unknown length, gRPC) sends its headers at once and flushes every chunk.
// It returns the body bytes it wrote.
func (p *Proxy) copyResponse(s *h2.Stream, resp *http.Response) (written int64, err error) {
	if resp.StatusCode == http.StatusNoContent || resp.StatusCode == http.StatusNotModified ||
		resp.Request != nil && resp.Request.Method == http.MethodHead {
		var none [1]byte
		_, _ = resp.Body.Read(none[:]) // reaches the (empty) end: the connection is reused
		return 0, s.WriteHeaders(resp.StatusCode, resp.Header, true, true)
	}
	bp := p.hbufs.Get()
	defer p.hbufs.Put(bp)
	buf := bp
	var n int
	var rerr error
	if resp.ContentLength >= 0 {
		n, rerr = io.ReadFull(resp.Body, buf[:min(int64(len(buf)), resp.ContentLength)])
		switch {
		case rerr != nil:
			rerr = fmt.Errorf("response body shorter than its Content-Length: %w", io.ErrUnexpectedEOF)
		case int64(n) == resp.ContentLength:
			// All of it. With a known length the body reports its end at once
			// (after the trailers, over HTTP/2).
			var one [1]byte
			if m, err := resp.Body.Read(one[:]); m > 0 {
				rerr = errors.New("response body longer than its Content-Length")
			} else {
				rerr = err
			}
		}
	}
	trailers := func() http.Header {
		var t http.Header
		for k, vs := range resp.Trailer {
			if len(vs) > 0 {
				if t == nil {
					t = http.Header{}
				}
				t[k] = vs
			}
		}
		return t
	}
	if errors.Is(rerr, io.EOF) && len(trailers()) == 0 {
		// The whole response is here.
		if err := s.WriteHeaders(resp.StatusCode, resp.Header, n == 0, false); err != nil || n == 0 {
			return 0, err
		}
		return int64(n), s.WriteData(buf[:n], true)
	}
	if rerr != nil && !errors.Is(rerr, io.EOF) {
		return 0, abortResponse(s, rerr)
	}
	// Frames wait in the buffer while the body already holds what follows (the
	// proxy's own HTTP/2 client tells): a gRPC response leaves in one write.
	ready, _ := resp.Body.(readier)
	more := func() bool { return ready != nil && ready.Ready() }
	if err := s.WriteHeaders(resp.StatusCode, resp.Header, false, n == 0 && !more()); err != nil {
		return 0, err
	}
	for {
		if n > 0 {
			var err error
			if errors.Is(rerr, io.EOF) || rerr == nil && more() {
				err = s.WriteDataHeld(buf[:n]) // the end or more data follows at once
			} else {
				err = s.WriteData(buf[:n], false)
			}
			if err != nil {
				return written, err
			}
			written += int64(n)
		}
		if errors.Is(rerr, io.EOF) {
			if t := trailers(); len(t) > 0 {
				return written, s.WriteHeaders(0, t, true, true)
			}
			return written, s.WriteData(nil, true)
		}
		if rerr != nil {
			return written, abortResponse(s, rerr)
		}
		n, rerr = resp.Body.Read(buf)
	}
}

// abortResponse resets a stream whose response could not be completed: with the
// code of the application's RST_STREAM if it reset it, else INTERNAL_ERROR.
func abortResponse(s *h2.Stream, err error) error {
	code, ok := h2.PeerReset(err)
	if !ok {
		code = http2.ErrCodeInternal
	}
	s.Reset(code)
	return err
}

// h2ProxyError answers a request the proxy could not forward (like proxyError).
func h2ProxyError(s *h2.Stream, r *http.Request, series *metrics.HTTPSeries, status int, msg string, start time.Time, t *tapped) {
	h := http.Header{httpfield.ProxyError: {msg}}
	code, grpc := grpcError(r, h, status, msg)
	var body []byte
	if grpc == "" {
		h.Set("Content-Type", "text/plain; charset=utf-8")
		body = []byte(msg + "\n")
	}
	_ = s.Respond(code, h, body)
	series.Response(code, grpc, time.Since(start))
	series.End(code, grpc)
	t.fail(code, grpc, msg)
	t.end(series.Labels(), grpc, 0)
}
