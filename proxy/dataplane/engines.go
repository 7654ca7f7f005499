package dataplane

import (
	"context"
	"net"

	"github.com/meshplane/mesh/proxy/h1"
)

// The protocol engines (proxy/h1, proxy/h2) serve connections; the proxy's handlers
// (serveInbound, serveOutbound, serveInboundH2) forward their requests. A handler
// finds the connection's meta in the request's context.

// serveH1 serves an HTTP/1 connection with srv (p.h1In or p.h1Out) until it ends.
func (p *Proxy) serveH1(ctx context.Context, nc net.Conn, m *meta, srv *h1.Server) {
	defer p.track(nc)()
	srv.ServeConn(context.WithValue(ctx, metaKey{}, m), nc)
}

// serveH2 serves an HTTP/2 connection until it ends: with serveInboundH2 if inbound,
// else serveOutbound.
func (p *Proxy) serveH2(ctx context.Context, nc net.Conn, m *meta, inbound bool) {
	defer p.track(nc)()
	srv := &p.h2Out
	if inbound {
		srv = &p.h2In
	}
	srv.ServeConn(context.WithValue(ctx, metaKey{}, m), nc)
}
