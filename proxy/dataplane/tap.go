package dataplane

import (
	"net/http"
	"time"

	api "github.com/meshplane/mesh/controlplane/api/tap"
	"github.com/meshplane/mesh/proxy/metrics"
	"github.com/meshplane/mesh/proxy/tap"
)

// tapped is a request being tapped (nil when nobody listens): what the data path
// learned of it, published when its response ends. Its methods are nil-safe, so
// the paths call them unconditionally; only tapStart looks at the hub.
type tapped struct {
	hub   *tap.Hub
	local string // this proxy's identity
	start time.Time
	ev    api.Event
	done  bool
	// counted: the proxy-wide cap was spent when the request came, and a match
	// needs the destination's labels (tap.CountAtEnd): only what a match reads is
	// captured, and the event is only counted as dropped.
	counted bool
}

// tapStart begins tapping r if anyone listens: the one check (an atomic load) per
// request when nobody does. When the proxy-wide cap is spent the hub usually counts
// the request at once (tap.Counted) and nothing is tapped. Call it before the
// request is changed for forwarding.
func (p *Proxy) tapStart(r *http.Request, direction string) *tapped {
	h := p.o.Tap
	if !h.Active() {
		return nil
	}
	scheme := r.URL.Scheme
	if scheme == "" {
		scheme = "http"
	}
	ev := api.Event{Direction: direction, Method: r.Method, Scheme: scheme, Authority: r.Host, Path: r.URL.RequestURI()}
	start := h.Begin(&ev)
	if start == tap.Counted {
		return nil
	}
	t := &tapped{hub: h, ev: ev, counted: start == tap.CountAtEnd}
	if t.counted {
		return t
	}
	if p.o.Identity != nil {
		t.local = p.o.Identity.LocalName()
	}
	t.start = h.Now()
	t.ev.Time, t.ev.RequestBytes, t.ev.SrcAddr = t.start, r.ContentLength, r.RemoteAddr
	t.ev.RequestHeaders = h.Headers(r.Header)
	return t
}

// response records the response headers.
func (t *tapped) response(status int, h http.Header) {
	if t == nil {
		return
	}
	t.ev.Status = status
	if !t.counted { // a counted event is never shown: no clock, no copy
		t.ev.LatencyToHeadersNs = int64(t.hub.Now().Sub(t.start))
		t.ev.ResponseHeaders = t.hub.Headers(h)
	}
}

// fail records the proxy's own answer (or none: status 0).
func (t *tapped) fail(status int, grpc, msg string) {
	if t == nil {
		return
	}
	t.ev.Status, t.ev.GRPCStatus, t.ev.Error = status, grpc, msg
	if !t.counted {
		t.ev.LatencyToHeadersNs = int64(t.hub.Now().Sub(t.start))
	}
}

// end publishes the event, once: l are the request's metric labels (identities,
// TLS, destination), bytes the response body bytes forwarded.
func (t *tapped) end(l metrics.HTTPLabels, grpc string, bytes int64) {
	if t == nil || t.done {
		return
	}
	t.done = true
	ev := &t.ev
	if grpc != "" {
		ev.GRPCStatus = grpc
	}
	ev.Dst = tapDst(l)
	if t.counted { // only what a match reads (Match.Matches)
		t.hub.Dropped(ev)
		return
	}
	ev.LatencyToEndNs = int64(t.hub.Now().Sub(t.start))
	if ev.LatencyToHeadersNs == 0 {
		ev.LatencyToHeadersNs = ev.LatencyToEndNs
	}
	ev.ResponseBytes = bytes
	ev.TLS, ev.NoTLSReason, ev.DstAddr, ev.Route = l.TLS, l.NoTLSReason, l.TargetAddr, l.Route
	if ev.TLS {
		if ev.Direction == api.Inbound {
			ev.ClientID, ev.ServerID = l.PeerID, t.local
		} else {
			ev.ClientID, ev.ServerID = t.local, l.PeerID
		}
	}
	t.hub.Publish(ev)
}

// tapDst are the event's destination labels (nil if there are none).
func tapDst(l metrics.HTTPLabels) map[string]string {
	var dst map[string]string
	for _, kv := range [...][2]string{{"namespace", l.DstNamespace}, {"service", l.DstService}, {"pod", l.DstPod},
		{"workloadKind", l.DstWorkloadKind}, {"workloadName", l.DstWorkloadName}} {
		if kv[1] == "" {
			continue
		}
		if dst == nil {
			dst = make(map[string]string, 5)
		}
		dst[kv[0]] = kv[1]
	}
	return dst
}
