package discovery

import (
	"context"
	"errors"
	"io"
	"maps"
	"net/netip"
	"slices"
	"time"

	meshv1 "github.com/meshplane/mesh/controlplane/api/mesh/v1"
)

// setWatch is one shared Get stream; Client.mu guards refs, idle and gen.
type setWatch struct {
	set    *Set
	cancel context.CancelFunc
	refs   int
	idle   *time.Timer
	gen    uint64 // bumped at each release to zero, so that a stale idle timer does nothing
}

// Resolve returns the shared live set for authority (host:port) and a release func.
// The set is watched while referenced, and IdleTimeout after the last release.
func (c *Client) Resolve(authority string) (*Set, func()) {
	if c == nil {
		return notInMesh(), func() {}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return notInMesh(), func() {}
	}
	w := c.sets[authority]
	if w == nil {
		ctx, cancel := context.WithCancel(c.ctx)
		w = &setWatch{set: newSet(), cancel: cancel}
		c.sets[authority] = w
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			c.watch(ctx, "endpoints", authority, func(ctx context.Context) (func() error, error) {
				return c.openGet(ctx, authority, w.set)
			})
		}()
	}
	w.refs++
	w.gen++
	if w.idle != nil {
		w.idle.Stop()
		w.idle = nil
	}
	released := false
	return w.set, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if released {
			return
		}
		released = true
		w.refs--
		if w.refs > 0 {
			return
		}
		w.gen++
		gen := w.gen
		w.idle = time.AfterFunc(c.o.IdleTimeout, func() {
			c.mu.Lock()
			defer c.mu.Unlock()
			if w.gen != gen || w.refs > 0 || c.sets[authority] != w {
				return
			}
			delete(c.sets, authority)
			w.cancel()
			c.log.Debug("endpoints watch dropped (idle)", "authority", authority)
		})
	}
}

// openGet opens a Get stream. Its first answer replaces the set (the server sends
// the whole set first); the next ones are applied to it.
func (c *Client) openGet(ctx context.Context, authority string, set *Set) (func() error, error) {
	stream, err := c.api.Get(ctx, &meshv1.GetDestination{Path: authority, ContextToken: c.o.ContextToken})
	if err != nil {
		return nil, err
	}
	var cur map[netip.AddrPort]Endpoint // nil until the stream's first answer
	inMesh := false
	return func() error {
		up, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return errEnded
		}
		if err != nil {
			return err
		}
		if cur == nil {
			cur = map[netip.AddrPort]Endpoint{}
		}
		switch u := up.GetUpdate().(type) {
		case *meshv1.Update_Add:
			for _, wa := range u.Add.GetAddrs() {
				ep, ok := endpoint(wa, u.Add.GetMetricLabels())
				if !ok {
					c.log.Warn("bad endpoint address", "authority", authority, "addr", wa.GetAddr())
					continue
				}
				cur[ep.Addr] = ep
			}
			inMesh = true
		case *meshv1.Update_Remove:
			for _, wa := range u.Remove.GetAddrs() {
				if ap, ok := addrPort(wa.GetAddr()); ok {
					delete(cur, ap)
				}
			}
		case *meshv1.Update_NoEndpoints:
			clear(cur)
			inMesh = u.NoEndpoints.GetExists()
		default:
			return nil // an update this proxy does not know: ignore it
		}
		eps := slices.SortedFunc(maps.Values(cur), func(a, b Endpoint) int { return a.Addr.Compare(b.Addr) })
		set.publish(eps, inMesh)
		return nil
	}, nil
}

// endpoint converts an address; setLabels are overridden by the address's own.
func endpoint(wa *meshv1.WeightedAddr, setLabels map[string]string) (Endpoint, bool) {
	ap, ok := addrPort(wa.GetAddr())
	if !ok {
		return Endpoint{}, false
	}
	ep := Endpoint{Addr: ap, Weight: wa.GetWeight(), Identity: wa.GetTlsIdentity().GetName(), Zone: wa.GetZone(),
		Labels: make(map[string]string, len(setLabels)+len(wa.GetMetricLabels()))}
	if ep.Weight == 0 {
		ep.Weight = DefaultWeight
	}
	maps.Copy(ep.Labels, setLabels)
	maps.Copy(ep.Labels, wa.GetMetricLabels())
	switch p := wa.GetProtocolHint().GetProtocol().(type) {
	case *meshv1.ProtocolHint_H2_:
		ep.H2 = true
	case *meshv1.ProtocolHint_Opaque_:
		ep.Opaque = true
		ep.OpaqueInboundPort = p.Opaque.GetInboundPort()
	}
	return ep, true
}

// addrPort converts a TcpAddress: 4 or 16 IP bytes (IPv4-mapped IPv6 is unmapped)
// and a port in 1..65535.
func addrPort(a *meshv1.TcpAddress) (netip.AddrPort, bool) {
	ip, ok := netip.AddrFromSlice(a.GetIp())
	if !ok || a.GetPort() == 0 || a.GetPort() > 65535 {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(ip.Unmap(), uint16(a.GetPort())), true
}
