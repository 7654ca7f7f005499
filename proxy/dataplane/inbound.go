package dataplane

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/meshplane/mesh/controlplane/api/identityclient"
	"github.com/meshplane/mesh/proxy/httpfield"
	"github.com/meshplane/mesh/proxy/metrics"
	"github.com/meshplane/mesh/proxy/sockio"
)

var errPassthrough = errors.New("TLS for another server name: passed through")

// inboundTarget is where an accepted inbound connection goes: the application on
// localhost at the original destination's port. direct is true when the connection
// was not redirected (a peer proxy dialled the inbound port itself).
func (p *Proxy) inboundTarget(c net.Conn) (target netip.AddrPort, direct bool) {
	if tc, ok := sockio.TCP(c); ok && p.o.OrigDst != nil {
		if dst, err := p.o.OrigDst(tc); err == nil && dst.Port() != p.inPort {
			return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), dst.Port()), false
		}
	}
	return p.o.InboundOrigDst, true
}

func (p *Proxy) handleInbound(ctx context.Context, c net.Conn) {
	target, direct := p.inboundTarget(c)
	m := &meta{hasTarget: target.IsValid()}
	m.setTarget(target)
	if !direct && p.o.OpaquePorts[target.Port()] {
		p.inboundTCP(ctx, c, m)
		return
	}
	proto, pc, err := detect(c, p.o.DetectTimeout)
	if err != nil {
		p.o.Log.Debug("inbound detect", "err", err)
		_ = c.Close()
		return
	}
	if !direct && proto != protoTLS && p.o.HTTP2Ports[target.Port()] {
		proto = protoHTTP2
	}
	switch proto {
	case protoHTTP1:
		p.serveH1(ctx, pc, m, &p.h1In)
	case protoHTTP2:
		p.serveH2(ctx, pc, m, true)
	case protoTLS:
		p.inboundTLS(ctx, pc, m)
	default:
		p.inboundTCP(ctx, pc, m)
	}
}

// inboundTLS terminates mTLS from a peer proxy (the SNI is this proxy's identity);
// other TLS is passed through to the application untouched.
func (p *Proxy) inboundTLS(ctx context.Context, c net.Conn, m *meta) {
	rc := &recordConn{Conn: c}
	local := p.o.Identity.LocalName()
	base := p.o.Identity.ServerConfig([]string{alpnH2, alpnHTTP1, alpnOpaque})
	cfg := base.Clone()
	cfg.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		if hello.ServerName != local {
			rc.passthrough = true
			return nil, errPassthrough
		}
		return nil, nil
	}
	tc := tls.Server(rc, cfg)
	hctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err := tc.HandshakeContext(hctx)
	cancel()
	if rc.passthrough {
		p.inboundTCP(ctx, &replayConn{Conn: c, buf: rc.seen}, m)
		return
	}
	if err != nil {
		p.o.Log.Debug("inbound TLS handshake", "err", err)
		_ = c.Close()
		return
	}
	rc.seen, rc.stopped = nil, true
	m.tls = true
	m.peerID = identityclient.PeerIdentity(tc.ConnectionState())
	switch tc.ConnectionState().NegotiatedProtocol {
	case alpnOpaque:
		var port [2]byte
		_ = tc.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(tc, port[:]); err != nil {
			_ = tc.Close()
			return
		}
		_ = tc.SetReadDeadline(time.Time{})
		if !p.o.InboundOrigDst.IsValid() {
			m.setTarget(netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), binary.BigEndian.Uint16(port[:])))
			m.hasTarget = true
		}
		p.inboundTCP(ctx, tc, m)
	case alpnH2:
		p.serveH2(ctx, tc, m, true)
	case alpnHTTP1:
		p.serveH1(ctx, tc, m, &p.h1In)
	default:
		proto, pc, err := detect(tc, p.o.DetectTimeout)
		if err != nil {
			_ = tc.Close()
			return
		}
		switch proto {
		case protoHTTP1:
			p.serveH1(ctx, pc, m, &p.h1In)
			return
		case protoHTTP2:
			p.serveH2(ctx, pc, m, true)
			return
		}
		p.inboundTCP(ctx, pc, m)
	}
}

func tlsLabels(m *meta) (bool, string) {
	if m.tls {
		return true, ""
	}
	return false, "no_tls_from_remote"
}

func (p *Proxy) inboundTCP(ctx context.Context, c net.Conn, m *meta) {
	tlsOn, reason := tlsLabels(m)
	series := p.o.Metrics.TCP(metrics.TCPLabels{Direction: "inbound", Peer: "src", TargetAddr: m.targetString(), TLS: tlsOn, NoTLSReason: reason, PeerID: m.peerID})
	if !m.hasTarget {
		series.Open()
		series.Close(true, 0)
		_ = c.Close()
		return
	}
	d := net.Dialer{Timeout: p.o.InboundConnectTimeout}
	up, err := sockio.Dial(ctx, &d, m.targetString())
	if err != nil {
		p.o.Log.Debug("inbound connect", "target", m.target, "err", err)
		series.Open()
		series.Close(true, 0)
		_ = c.Close()
		return
	}
	p.splice(c, up, series)
}

// serveInbound forwards an HTTP/1 request to the application.
func (p *Proxy) serveInbound(w http.ResponseWriter, r *http.Request) {
	m, _ := r.Context().Value(metaKey{}).(*meta)
	if m == nil {
		m = &meta{}
	}
	tlsOn, reason := tlsLabels(m)
	series := p.o.Metrics.HTTP(metrics.HTTPLabels{Direction: "inbound", Authority: r.Host, TargetAddr: m.targetString(),
		TLS: tlsOn, NoTLSReason: reason, PeerID: m.peerID})
	t := p.tapStart(r, "inbound")
	if !m.hasTarget {
		series.Request()
		proxyError(w, r, series, http.StatusBadGateway, "no target port: connection was not redirected", time.Now(), t)
		return
	}
	// An HTTP/1 request carries no internal header, from anyone (the proxies upgrade
	// HTTP/1 to HTTP/2 between them); nor does the application's response.
	httpfield.StripInternal(r.Header)
	f := fwd{scheme: "http", host: m.targetString(), rt: p.appH1, series: series, log: p.o.Log, errLog: p.errLog,
		bufs: &p.hbufs, untrusted: true, tap: t}
	if isUpgrade(r) {
		forward(w, r, f)
		return
	}
	forwardDirect(w, r, f) // r is the HTTP/1 server's own request, made for this call
}
