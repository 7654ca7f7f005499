package dataplane

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/meshplane/mesh/proxy/balance"
	"github.com/meshplane/mesh/proxy/discovery"
	"github.com/meshplane/mesh/proxy/h2"
	"github.com/meshplane/mesh/proxy/httpfield"
	"github.com/meshplane/mesh/proxy/metrics"
	"github.com/meshplane/mesh/proxy/sockio"
)

// outboundTarget is the connection's original destination, if known.
func (p *Proxy) outboundTarget(c net.Conn) (netip.AddrPort, bool) {
	if tc, ok := sockio.TCP(c); ok && p.o.OrigDst != nil {
		if dst, err := p.o.OrigDst(tc); err == nil {
			if la, ok := c.LocalAddr().(*net.TCPAddr); !ok || la.AddrPort() != dst {
				return dst, true
			}
		}
	}
	return p.o.OutboundOrigDst, p.o.OutboundOrigDst.IsValid()
}

func (p *Proxy) handleOutbound(ctx context.Context, c net.Conn) {
	target, ok := p.outboundTarget(c)
	m := &meta{hasTarget: ok}
	m.setTarget(target)
	if ok {
		// Opaque ports, from the proxy's configuration or from discovery, skip
		// detection: server-speaks-first protocols must not wait.
		if p.o.OpaquePorts[target.Port()] {
			p.outboundTCP(ctx, c, m)
			return
		}
		if svc := p.services.get(ctx, target.String()); svc.opaque() {
			p.outboundTCP(ctx, c, m)
			return
		}
	}
	proto, pc, err := detect(c, p.o.DetectTimeout)
	if err != nil {
		_ = c.Close()
		return
	}
	if ok && proto != protoTLS && p.o.HTTP2Ports[target.Port()] {
		proto = protoHTTP2
	}
	switch proto {
	case protoHTTP1:
		p.serveH1(ctx, pc, m, &p.h1Out)
	case protoHTTP2:
		p.serveH2(ctx, pc, m, false)
	default:
		p.outboundTCP(ctx, pc, m)
	}
}

// outboundTCP forwards opaque bytes: over mTLS to a meshed endpoint (the peer proxy
// learns the target port from a 2-byte header), else in plaintext to the original
// destination.
func (p *Proxy) outboundTCP(ctx context.Context, c net.Conn, m *meta) {
	fail := func(s *metrics.TCPSeries) {
		s.Open()
		s.Close(true, 0)
		_ = c.Close()
	}
	if !m.hasTarget {
		fail(p.o.Metrics.TCP(metrics.TCPLabels{Direction: "outbound", Peer: "dst", NoTLSReason: "no_target"}))
		return
	}
	svc := p.services.get(ctx, m.targetString())
	ep, meshed := svc.pick()
	if meshed && ep == nil {
		fail(p.o.Metrics.TCP(metrics.TCPLabels{Direction: "outbound", Peer: "dst", TargetAddr: m.targetString(), NoTLSReason: "no_endpoints"}))
		return
	}
	if ep == nil || ep.Value.id == "" {
		addr := m.target
		reason := "not_provided_by_service_discovery"
		if ep != nil {
			addr = ep.Value.addr
			reason = "no_identity"
		}
		s := p.o.Metrics.TCP(metrics.TCPLabels{Direction: "outbound", Peer: "dst", TargetAddr: addr.String(), NoTLSReason: reason})
		d := net.Dialer{Timeout: p.o.OutboundConnectTimeout}
		up, err := sockio.Dial(ctx, &d, addr.String())
		if err != nil {
			fail(s)
			return
		}
		p.splice(c, up, s)
		return
	}
	b := ep.Value
	s := p.o.Metrics.TCP(metrics.TCPLabels{Direction: "outbound", Peer: "dst", TargetAddr: b.addrStr, TLS: true, PeerID: b.id})
	t0 := ep.Begin()
	up, err := b.dialOpaque(ctx, p)
	ep.Finish(t0)
	if err != nil {
		p.o.Log.Debug("outbound mTLS connect", "endpoint", b.addr, "err", err)
		fail(s)
		return
	}
	p.splice(c, up, s)
}

// serveOutbound routes a request: to the service's endpoints (balanced per request,
// over mTLS when meshed, with the profile's timeout and retries), or to the original
// destination when discovery does not know it.
func (p *Proxy) serveOutbound(w http.ResponseWriter, r *http.Request) {
	// The application's requests carry no internal header: only this proxy sets
	// them, for its peer.
	httpfield.StripInternal(r.Header)
	t := p.tapStart(r, "outbound")
	// One allocation for the round tripper, its meta and its series box.
	rt := &outboundRT{p: p, upgraded: r.ProtoMajor == 1}
	// A copy: the connection's meta is shared by its concurrent HTTP/2 streams.
	m := &rt.meta
	if cm, _ := r.Context().Value(metaKey{}).(*meta); cm != nil {
		*m = *cm
	}
	authority := r.Host
	named := isServiceName(authority)
	key := m.targetString()
	if named {
		key = withPort(authority, m.target)
	} else if !m.hasTarget {
		if ap, err := netip.ParseAddrPort(withPort(authority, netip.AddrPort{})); err == nil {
			m.setTarget(ap)
			m.hasTarget, key = true, m.targetStr
		}
	}
	if !m.hasTarget && !named {
		s := p.o.Metrics.HTTP(metrics.HTTPLabels{Direction: "outbound", Authority: authority, NoTLSReason: "no_target"})
		s.Request()
		proxyError(w, r, s, http.StatusBadGateway, "unknown destination: not redirected and no usable authority", time.Now(), t)
		return
	}
	svc := p.services.get(r.Context(), key)
	var route *discovery.Route
	var prof *discovery.Profile
	// By the service name, else by the original destination (a short name such as
	// "web:8080" or a cluster IP) when it is in the profile networks: destination
	// resolves a cluster IP to its service's profile, as Linkerd's does.
	if p.o.Discovery != nil && (named || m.hasTarget && inNetworks(p.o.ProfileNetworks, m.target.Addr())) {
		prof = p.o.Discovery.Profile(key)
		route = matchRoute(prof, r)
		if prof != nil {
			svc.ensureBudget(prof, p.o.Now())
		}
	}
	if route != nil && route.Timeout > 0 {
		ctx, cancel := context.WithTimeout(r.Context(), route.Timeout)
		defer cancel()
		r = r.WithContext(ctx)
	}
	rt.svc, rt.m, rt.authority, rt.route = svc, m, authority, route
	f := fwd{scheme: "http", host: key, rt: rt, box: &rt.box, log: p.o.Log, errLog: p.errLog, bufs: &p.hbufs, tap: t}
	if isUpgrade(r) {
		forward(w, r, f)
		return
	}
	// r is the server's own request, made for this call (h1conn.readRequest,
	// h2conn.request): forwardDirect may change it.
	forwardDirect(w, r, f)
}

// outboundRT picks an endpoint per attempt and retries retryable routes.
type outboundRT struct {
	p         *Proxy
	svc       *service
	m         *meta
	authority string
	route     *discovery.Route
	box       seriesBox
	upgraded  bool // an HTTP/1 request: upgrade it to HTTP/2 between proxies
	meta      meta // m points here
	// picked is the endpoint of the last attempt; unreachable, those a connectError
	// ruled out for the next picks.
	picked      *balance.Endpoint[*backend]
	unreachable []*balance.Endpoint[*backend]
}

func (o *outboundRT) RoundTrip(req *http.Request) (*http.Response, error) {
	noBody := req.Body == nil || req.Body == http.NoBody || req.ContentLength == 0
	retryable := o.route != nil && o.route.Retryable && noBody
	budget := o.svc.budget.Load()
	if budget != nil {
		budget.deposit(o.p.o.Now())
	}
	for attempt := 0; ; attempt++ {
		resp, err := o.attempt(req, attempt == 0)
		var ce *connectError
		if err != nil && noBody && attempt < connectAttempts-1 && errors.As(err, &ce) && req.Context().Err() == nil {
			// The endpoint could not be reached: the request was not sent, so it goes
			// to another endpoint whatever the route says (one discovery has not
			// removed yet, such as a pod just deleted). Not the same one: a refused
			// connect is quick, so the balancer would rate it the fastest.
			if o.picked != nil {
				o.unreachable = append(o.unreachable, o.picked)
			}
			continue
		}
		retry := err != nil || resp.StatusCode >= 500
		if !retry || !retryable || attempt >= 2 || req.Context().Err() != nil || budget == nil || !budget.withdraw(o.p.o.Now()) {
			return resp, err
		}
		if resp != nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			_ = resp.Body.Close()
		}
	}
}

func (o *outboundRT) attempt(req *http.Request, first bool) (*http.Response, error) {
	ep, meshed := o.svc.pickExcept(o.unreachable)
	o.picked = ep
	labels := metrics.HTTPLabels{Direction: "outbound", Authority: o.authority}
	if o.route != nil {
		labels.Route = o.route.Name
	}
	var rt http.RoundTripper
	// req is ReverseProxy's own outgoing copy: each attempt re-targets it in place
	// (and marks it as upgraded only when it goes to a peer proxy).
	out := req
	delete(out.Header, httpfield.OrigProto)
	switch {
	case meshed && ep == nil:
		labels.TargetAddr, labels.NoTLSReason = o.m.targetString(), "no_endpoints"
		o.count(labels, first)
		return nil, errNoEndpoints
	case ep == nil:
		if !o.m.hasTarget {
			o.count(labels, first)
			return nil, fmt.Errorf("%s: %w", o.authority, errNoEndpoints)
		}
		labels.TargetAddr, labels.NoTLSReason = o.m.targetString(), "not_provided_by_service_discovery"
		out.URL.Scheme, out.URL.Host = "http", o.m.targetString()
		rt = o.p.plainH1
		if req.ProtoMajor == 2 {
			rt = o.p.plainH2
		}
	default:
		b := ep.Value
		b.labels.fill(&labels)
		labels.TargetAddr = b.addrStr
		out.URL.Host = b.addrStr
		switch {
		case b.id == "":
			labels.NoTLSReason = "no_identity"
			out.URL.Scheme = "http"
			rt = o.p.plainH1
			if req.ProtoMajor == 2 {
				rt = o.p.plainH2
			}
		case isUpgrade(req):
			labels.TLS, labels.PeerID = true, b.id
			out.URL.Scheme = "https"
			rt = b.h1t
		default:
			labels.TLS, labels.PeerID = true, b.id
			out.URL.Scheme = "https"
			if o.upgraded {
				out.Header.Set(httpfield.OrigProto, "HTTP/1.1")
			}
			rt = b.h2c
		}
		t0 := ep.Begin()
		defer ep.Finish(t0)
	}
	o.count(labels, first)
	resp, err := rt.RoundTrip(out)
	if err == nil && !labels.TLS {
		// Not from a peer proxy: its internal headers are not to be trusted.
		httpfield.StripInternal(resp.Header)
	}
	return resp, err
}

// count picks the request's series (the first attempt's) and counts the request.
func (o *outboundRT) count(l metrics.HTTPLabels, first bool) {
	if !first {
		return
	}
	s := o.p.o.Metrics.HTTP(l)
	s.Request()
	o.box.s = s
}

func isUpgrade(r *http.Request) bool {
	return r.Header.Get("Upgrade") != "" && r.ProtoMajor == 1
}

func matchRoute(prof *discovery.Profile, r *http.Request) *discovery.Route {
	if prof == nil {
		return nil
	}
	for i := range prof.Routes {
		rt := &prof.Routes[i]
		if rt.Method != "" && rt.Method != r.Method {
			continue
		}
		if rt.Path != nil && !rt.Path.MatchString(r.URL.Path) {
			continue
		}
		return rt
	}
	return nil
}

func inNetworks(nets []netip.Prefix, a netip.Addr) bool {
	a = a.Unmap()
	for _, n := range nets {
		if n.Contains(a) {
			return true
		}
	}
	return false
}

// isServiceName is true for cluster service names (name.ns.svc.…).
func isServiceName(host string) bool {
	h := host
	if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.Contains(h[i:], "]") {
		h = h[:i]
	}
	return strings.Contains(h, ".svc.") || strings.HasSuffix(h, ".svc")
}

// withPort adds the target's port (or 80) to an authority without one.
func withPort(authority string, target netip.AddrPort) string {
	if _, _, err := net.SplitHostPort(authority); err == nil {
		return authority
	}
	port := uint16(80)
	if target.IsValid() {
		port = target.Port()
	}
	return net.JoinHostPort(authority, fmt.Sprint(port))
}

// backend is one endpoint and its connections.
type backend struct {
	addr       netip.AddrPort
	addrStr    string // addr.String()
	id         string
	opaquePort uint32
	labels     dstLabels
	h2c        *h2.Pool        // HTTP/2 to the peer proxy
	h1t        *http.Transport // HTTP/1 upgrades (websockets) to the peer proxy
}

type dstLabels struct{ ns, svc, pod, kind, name string }

func (d dstLabels) fill(l *metrics.HTTPLabels) {
	l.DstNamespace, l.DstService, l.DstPod, l.DstWorkloadKind, l.DstWorkloadName = d.ns, d.svc, d.pod, d.kind, d.name
}

func newBackend(e discovery.Endpoint) *backend {
	b := &backend{addr: e.Addr, addrStr: e.Addr.String(), id: e.Identity, opaquePort: e.OpaqueInboundPort}
	l := e.Labels
	b.labels = dstLabels{ns: l["namespace"], svc: l["service"], pod: l["pod"]}
	for _, k := range []string{"deployment", "statefulset", "daemonset", "replicaset", "job"} {
		if v := l[k]; v != "" {
			b.labels.kind, b.labels.name = k, v
			break
		}
	}
	return b
}

// connectAttempts bounds the picks a request without a body gets when endpoints
// cannot be reached (connectError).
const connectAttempts = 3

// connectError is a failure to reach an endpoint, the TCP connect or the mTLS
// handshake: nothing of a request was sent on it.
type connectError struct{ err error }

func (e *connectError) Error() string { return e.err.Error() }
func (e *connectError) Unwrap() error { return e.err }

func (b *backend) dialTLS(ctx context.Context, p *Proxy, addr string, alpn string) (*tls.Conn, error) {
	d := net.Dialer{Timeout: p.o.OutboundConnectTimeout, KeepAlive: 10 * time.Second}
	raw, err := sockio.Dial(ctx, &d, addr)
	if err != nil {
		return nil, &connectError{err}
	}
	cfg := p.o.Identity.ClientConfig(b.id, []string{alpn})
	c := tls.Client(raw, cfg)
	hctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := c.HandshakeContext(hctx); err != nil {
		_ = raw.Close()
		return nil, &connectError{fmt.Errorf("mTLS with %s (%s): %w", addr, b.id, err)}
	}
	if got := c.ConnectionState().NegotiatedProtocol; got != alpn {
		_ = c.Close()
		return nil, fmt.Errorf("mTLS with %s: peer does not speak %s (ALPN %q)", addr, alpn, got)
	}
	return c, nil
}

func (b *backend) dialOpaque(ctx context.Context, p *Proxy) (net.Conn, error) {
	addr := b.addr
	if b.opaquePort != 0 {
		addr = netip.AddrPortFrom(b.addr.Addr(), uint16(b.opaquePort))
	}
	c, err := b.dialTLS(ctx, p, addr.String(), alpnOpaque)
	if err != nil {
		return nil, err
	}
	var hdr [2]byte
	binary.BigEndian.PutUint16(hdr[:], b.addr.Port())
	if _, err := c.Write(hdr[:]); err != nil {
		_ = c.Close()
		return nil, err
	}
	return c, nil
}

func (b *backend) makeTransports(p *Proxy) {
	mk := func(alpn string) *http.Transport {
		t := &http.Transport{
			DialTLSContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
				return b.dialTLS(ctx, p, addr, alpn)
			},
			MaxIdleConnsPerHost: 100,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		}
		var ps http.Protocols
		if alpn == alpnH2 {
			ps.SetHTTP2(true)
		} else {
			ps.SetHTTP1(true)
		}
		t.Protocols = &ps
		return t
	}
	b.h1t = mk(alpnHTTP1)
	b.h2c = &h2.Pool{Timeouts: p.o.HTTP2, Dial: func(ctx context.Context) (net.Conn, error) {
		return b.dialTLS(ctx, p, b.addrStr, alpnH2)
	}}
}

// drain stops using the endpoint's idle connections; busy ones finish their requests
// and then close after the idle timeout, since nothing picks the endpoint any more.
func (b *backend) drain() {
	b.h2c.CloseIdleConnections()
	b.h1t.CloseIdleConnections()
}

func randN(n int) int { return rand.IntN(n) }
