// Package config reads the proxy's settings from its environment: the MESH_PROXY_*
// variables that `mesh inject` and the injector set (render/inject/manual.go). Their
// names and the proxy's defaults are controlplane/api/proxyenv, the one contract both
// sides use.
package config

import (
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/meshplane/mesh/controlplane/api/proxyenv"
)

// DefaultOpaquePorts are server-speaks-first protocols that must skip detection
// (SMTP, MySQL, Galera, PostgreSQL, Redis, Elasticsearch, memcached), as Linkerd does.
const DefaultOpaquePorts = proxyenv.DefaultOpaquePorts

// DefaultProfileNetworks are the destinations whose ServiceProfile is looked up by IP
// when the Host is not a service name.
const DefaultProfileNetworks = proxyenv.DefaultProfileNetworks

// Config is everything `mesh-proxy run` needs.
type Config struct {
	LogLevel  string // debug, info, warn, error
	LogFormat string // plain or json

	InboundAddr  string // 0.0.0.0:4143
	OutboundAddr string // 127.0.0.1:4140
	AdminAddr    string // 0.0.0.0:4191
	ControlAddr  string // 0.0.0.0:4190 (reserved)
	// TapAddr is the tap API's listener (127.0.0.1:4192): loopback only.
	TapAddr string
	// TapRedactHeaders are more headers the tap never shows (proxyenv.TapRedactHeaders).
	TapRedactHeaders []string
	// TapMaxEventsPerSecond is the tap's proxy-wide event cap.
	TapMaxEventsPerSecond float64

	// InboundPorts are the application's container ports (informational).
	InboundPorts []uint16
	// OpaquePorts skip protocol detection, inbound and outbound.
	OpaquePorts map[uint16]bool
	// HTTP2Ports (proxyenv.HTTP2Ports, none by default) carry HTTP/2 with prior
	// knowledge (h2c, gRPC), inbound and outbound: what is not TLS goes to the
	// HTTP/2 server, which closes a connection whose preface is wrong.
	HTTP2Ports map[uint16]bool
	// ProfileNetworks: proxyenv.ProfileNetworks (CIDRs; set but empty:
	// none), where a request whose Host is not a service name gets the profile of its
	// original destination.
	ProfileNetworks []netip.Prefix

	InboundConnectTimeout  time.Duration
	OutboundConnectTimeout time.Duration
	// DetectTimeout bounds the wait for a client's first bytes; on expiry the
	// connection is proxied as opaque TCP.
	DetectTimeout time.Duration
	ShutdownGrace time.Duration

	// Destination service: gRPC over mTLS, verified as DestinationName.
	DestinationAddr string
	DestinationName string

	// Identity service and this proxy's identity.
	IdentityAddr     string
	IdentityName     string
	IdentityDir      string // where the key is kept (memory emptyDir)
	TokenFile        string // projected ServiceAccount token with the identity audience
	LocalName        string // SA.NS.serviceaccount.identity.TRUST-DOMAIN
	TrustAnchorsPEM  []byte // inline anchors, or
	TrustAnchorsFile string // a file re-read on change (the namespace's trust-roots ConfigMap)

	// InboundOrigDst and OutboundOrigDst stand in for SO_ORIGINAL_DST when a
	// connection was not redirected by iptables (tests and benchmarks on loopback):
	// inbound connections go to this local address, outbound ones are routed as if
	// the client had dialed it. Empty in production.
	InboundOrigDst  string
	OutboundOrigDst string

	// PodNamespace and PodName label metrics and the discovery context.
	PodNamespace string
	PodName      string
}

// LookupEnv is os.LookupEnv's shape, so tests pass a map.
type LookupEnv func(string) (string, bool)

// FromEnv reads the configuration; errors name the variable.
func FromEnv(lookupEnv LookupEnv) (*Config, error) {
	get := func(k string) string { v, _ := lookupEnv(k); return v }
	c := &Config{
		LogLevel:         or(get(proxyenv.Log), proxyenv.DefaultLog),
		LogFormat:        or(get(proxyenv.LogFormat), proxyenv.DefaultLogFormat),
		InboundAddr:      or(get(proxyenv.InboundListenAddr), proxyenv.DefaultInboundListenAddr),
		OutboundAddr:     or(get(proxyenv.OutboundListenAddr), proxyenv.DefaultOutboundListenAddr),
		AdminAddr:        or(get(proxyenv.AdminListenAddr), proxyenv.DefaultAdminListenAddr),
		ControlAddr:      or(get(proxyenv.ControlListenAddr), proxyenv.DefaultControlListenAddr),
		TapAddr:          or(get(proxyenv.TapListenAddr), proxyenv.DefaultTapListenAddr),
		DestinationAddr:  get(proxyenv.DestinationSvcAddr),
		DestinationName:  get(proxyenv.DestinationSvcName),
		IdentityAddr:     get(proxyenv.IdentitySvcAddr),
		IdentityName:     get(proxyenv.IdentitySvcName),
		IdentityDir:      get(proxyenv.IdentityDir),
		TokenFile:        get(proxyenv.IdentityTokenFile),
		LocalName:        get(proxyenv.IdentityLocalName),
		TrustAnchorsFile: get(proxyenv.IdentityTrustAnchorsFile),
		InboundOrigDst:   get(proxyenv.InboundOrigDst),
		OutboundOrigDst:  get(proxyenv.OutboundOrigDst),
		PodNamespace:     get(proxyenv.PodNamespace),
		PodName:          get(proxyenv.PodName),
	}
	if a := get(proxyenv.IdentityTrustAnchors); a != "" {
		c.TrustAnchorsPEM = []byte(a)
	}
	var errs []error
	dur := func(name string, def time.Duration, dst *time.Duration) {
		v := get(name)
		if v == "" {
			*dst = def
			return
		}
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			errs = append(errs, fmt.Errorf("%s=%q: not a duration such as 1s or 300ms", name, v))
			return
		}
		*dst = d
	}
	dur(proxyenv.InboundConnectTimeout, proxyenv.DefaultInboundConnectTimeout, &c.InboundConnectTimeout)
	dur(proxyenv.OutboundConnectTimeout, proxyenv.DefaultOutboundConnectTimeout, &c.OutboundConnectTimeout)
	dur(proxyenv.DetectTimeout, proxyenv.DefaultDetectTimeout, &c.DetectTimeout)
	dur(proxyenv.ShutdownGracePeriod, proxyenv.DefaultShutdownGracePeriod, &c.ShutdownGrace)

	for h := range strings.SplitSeq(get(proxyenv.TapRedactHeaders), ",") {
		if h = strings.TrimSpace(h); h != "" {
			c.TapRedactHeaders = append(c.TapRedactHeaders, h)
		}
	}
	c.TapMaxEventsPerSecond = proxyenv.DefaultTapMaxEventsPerSecond
	if v := get(proxyenv.TapMaxEventsPerSecond); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || !(f > 0) || f > 1e6 {
			errs = append(errs, fmt.Errorf("%s=%q: not a number of events per second (above 0, at most 1e6)", proxyenv.TapMaxEventsPerSecond, v))
		} else {
			c.TapMaxEventsPerSecond = f
		}
	}
	if ap, err := netip.ParseAddrPort(c.TapAddr); err != nil {
		errs = append(errs, fmt.Errorf("%s=%q: not an ip:port", proxyenv.TapListenAddr, c.TapAddr))
	} else if !ap.Addr().IsLoopback() {
		errs = append(errs, fmt.Errorf("%s=%q: the tap API listens on a loopback address only (127.0.0.1 or ::1), reached by port-forward", proxyenv.TapListenAddr, c.TapAddr))
	}

	var err error
	if c.InboundPorts, err = Ports(get(proxyenv.InboundPorts)); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", proxyenv.InboundPorts, err))
	}
	// Set but empty means "no opaque ports"; unset means the defaults.
	opaque, ok := lookupEnv(proxyenv.OpaquePorts)
	if !ok {
		opaque = DefaultOpaquePorts
	}
	ports, err := Ports(opaque)
	if err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", proxyenv.OpaquePorts, err))
	}
	c.OpaquePorts = map[uint16]bool{}
	for _, p := range ports {
		c.OpaquePorts[p] = true
	}
	h2ports, err := Ports(get(proxyenv.HTTP2Ports))
	if err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", proxyenv.HTTP2Ports, err))
	}
	c.HTTP2Ports = map[uint16]bool{}
	for _, p := range h2ports {
		if c.OpaquePorts[p] {
			errs = append(errs, fmt.Errorf("%s: port %d is also opaque (%s)", proxyenv.HTTP2Ports, p, proxyenv.OpaquePorts))
		}
		c.HTTP2Ports[p] = true
	}
	nets, ok := lookupEnv(proxyenv.ProfileNetworks)
	if !ok {
		nets = DefaultProfileNetworks
	}
	for n := range strings.SplitSeq(nets, ",") {
		if n = strings.TrimSpace(n); n == "" {
			continue
		}
		pfx, err := netip.ParsePrefix(n)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %q is not a CIDR such as 10.0.0.0/8", proxyenv.ProfileNetworks, n))
			continue
		}
		c.ProfileNetworks = append(c.ProfileNetworks, pfx.Masked())
	}
	for name, addr := range map[string]string{
		proxyenv.InboundListenAddr: c.InboundAddr, proxyenv.OutboundListenAddr: c.OutboundAddr,
		proxyenv.AdminListenAddr: c.AdminAddr, proxyenv.InboundOrigDst: c.InboundOrigDst,
		proxyenv.OutboundOrigDst: c.OutboundOrigDst,
	} {
		if addr == "" && (name == proxyenv.InboundOrigDst || name == proxyenv.OutboundOrigDst) {
			continue // optional
		}
		if _, err := netip.ParseAddrPort(addr); err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: not an ip:port", name, addr))
		}
	}
	if c.LocalName == "" {
		errs = append(errs, fmt.Errorf("%s is not set: the proxy needs its identity", proxyenv.IdentityLocalName))
	}
	if c.TrustAnchorsFile == "" && len(c.TrustAnchorsPEM) == 0 {
		errs = append(errs, fmt.Errorf("neither %s nor %s is set", proxyenv.IdentityTrustAnchors, proxyenv.IdentityTrustAnchorsFile))
	}
	if c.IdentityAddr == "" || c.IdentityName == "" || c.TokenFile == "" {
		errs = append(errs, fmt.Errorf("%s, %s and %s must be set", proxyenv.IdentitySvcAddr, proxyenv.IdentitySvcName, proxyenv.IdentityTokenFile))
	}
	if (c.DestinationAddr == "") != (c.DestinationName == "") {
		errs = append(errs, fmt.Errorf("%s and %s go together", proxyenv.DestinationSvcAddr, proxyenv.DestinationSvcName))
	}
	sort.Slice(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return c, nil
}

// Ports parses "80,8080-8082" into ports.
func Ports(s string) ([]uint16, error) {
	var out []uint16
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := port(lo)
		if err != nil {
			return nil, err
		}
		b := a
		if isRange {
			if b, err = port(hi); err != nil {
				return nil, err
			}
			if b < a {
				return nil, fmt.Errorf("range %q: %d > %d", part, a, b)
			}
		}
		for p := int(a); p <= int(b); p++ {
			out = append(out, uint16(p))
		}
	}
	return out, nil
}

func port(s string) (uint16, error) {
	n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("%q is not a port (1-65535)", s)
	}
	return uint16(n), nil
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
