// Package config reads the proxy's settings from its environment (the MESH_PROXY_*
// variables that `mesh inject` and the injector set; see render/inject/manual.go).
package config

import (
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"
)

// DefaultOpaquePorts are server-speaks-first protocols that must skip detection
// (SMTP, MySQL, Galera, PostgreSQL, Redis, Elasticsearch, memcached), as Linkerd does.
const DefaultOpaquePorts = "25,587,3306,4444,5432,6379,9300,11211"

// DefaultProfileNetworks are the destinations whose ServiceProfile is looked up by IP
// when the Host is not a service name (Linkerd's default cluster networks: the private
// and shared ranges where cluster and pod IPs live).
const DefaultProfileNetworks = "10.0.0.0/8,100.64.0.0/10,172.16.0.0/12,192.168.0.0/16"

// Config is everything `mesh-proxy run` needs.
type Config struct {
	LogLevel  string // debug, info, warn, error
	LogFormat string // plain or json

	InboundAddr  string // 0.0.0.0:4143
	OutboundAddr string // 127.0.0.1:4140
	AdminAddr    string // 0.0.0.0:4191
	ControlAddr  string // 0.0.0.0:4190 (reserved)

	// InboundPorts are the application's container ports (informational).
	InboundPorts []uint16
	// OpaquePorts skip protocol detection, inbound and outbound.
	OpaquePorts map[uint16]bool
	// HTTP2Ports (MESH_PROXY_HTTP2_PORTS, none by default) carry HTTP/2 with prior
	// knowledge (h2c, gRPC), inbound and outbound: what is not TLS goes to the
	// HTTP/2 server, which closes a connection whose preface is wrong.
	HTTP2Ports map[uint16]bool
	// ProfileNetworks: MESH_PROXY_DESTINATION_PROFILE_NETWORKS (CIDRs; set but empty:
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
		LogLevel:         or(get("MESH_PROXY_LOG"), "info"),
		LogFormat:        or(get("MESH_PROXY_LOG_FORMAT"), "plain"),
		InboundAddr:      or(get("MESH_PROXY_INBOUND_LISTEN_ADDR"), "0.0.0.0:4143"),
		OutboundAddr:     or(get("MESH_PROXY_OUTBOUND_LISTEN_ADDR"), "127.0.0.1:4140"),
		AdminAddr:        or(get("MESH_PROXY_ADMIN_LISTEN_ADDR"), "127.0.0.1:4191"),
		ControlAddr:      or(get("MESH_PROXY_CONTROL_LISTEN_ADDR"), "0.0.0.0:4190"),
		DestinationAddr:  get("MESH_PROXY_DESTINATION_SVC_ADDR"),
		DestinationName:  get("MESH_PROXY_DESTINATION_SVC_NAME"),
		IdentityAddr:     get("MESH_PROXY_IDENTITY_SVC_ADDR"),
		IdentityName:     get("MESH_PROXY_IDENTITY_SVC_NAME"),
		IdentityDir:      get("MESH_PROXY_IDENTITY_DIR"),
		TokenFile:        get("MESH_PROXY_IDENTITY_TOKEN_FILE"),
		LocalName:        get("MESH_PROXY_IDENTITY_LOCAL_NAME"),
		TrustAnchorsFile: get("MESH_PROXY_IDENTITY_TRUST_ANCHORS_FILE"),
		InboundOrigDst:   get("MESH_PROXY_INBOUND_ORIG_DST"),
		OutboundOrigDst:  get("MESH_PROXY_OUTBOUND_ORIG_DST"),
		PodNamespace:     get("_pod_ns"),
		PodName:          get("_pod_name"),
	}
	if a := get("MESH_PROXY_IDENTITY_TRUST_ANCHORS"); a != "" {
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
	dur("MESH_PROXY_INBOUND_CONNECT_TIMEOUT", 100*time.Millisecond, &c.InboundConnectTimeout)
	dur("MESH_PROXY_OUTBOUND_CONNECT_TIMEOUT", time.Second, &c.OutboundConnectTimeout)
	dur("MESH_PROXY_DETECT_TIMEOUT", 10*time.Second, &c.DetectTimeout)
	dur("MESH_PROXY_SHUTDOWN_GRACE_PERIOD", 120*time.Second, &c.ShutdownGrace)

	var err error
	if c.InboundPorts, err = Ports(get("MESH_PROXY_INBOUND_PORTS")); err != nil {
		errs = append(errs, fmt.Errorf("MESH_PROXY_INBOUND_PORTS: %w", err))
	}
	// Set but empty means "no opaque ports"; unset means the defaults.
	opaque, ok := lookupEnv("MESH_PROXY_OPAQUE_PORTS")
	if !ok {
		opaque = DefaultOpaquePorts
	}
	ports, err := Ports(opaque)
	if err != nil {
		errs = append(errs, fmt.Errorf("MESH_PROXY_OPAQUE_PORTS: %w", err))
	}
	c.OpaquePorts = map[uint16]bool{}
	for _, p := range ports {
		c.OpaquePorts[p] = true
	}
	h2ports, err := Ports(get("MESH_PROXY_HTTP2_PORTS"))
	if err != nil {
		errs = append(errs, fmt.Errorf("MESH_PROXY_HTTP2_PORTS: %w", err))
	}
	c.HTTP2Ports = map[uint16]bool{}
	for _, p := range h2ports {
		if c.OpaquePorts[p] {
			errs = append(errs, fmt.Errorf("MESH_PROXY_HTTP2_PORTS: port %d is also opaque (MESH_PROXY_OPAQUE_PORTS)", p))
		}
		c.HTTP2Ports[p] = true
	}
	nets, ok := lookupEnv("MESH_PROXY_DESTINATION_PROFILE_NETWORKS")
	if !ok {
		nets = DefaultProfileNetworks
	}
	for n := range strings.SplitSeq(nets, ",") {
		if n = strings.TrimSpace(n); n == "" {
			continue
		}
		pfx, err := netip.ParsePrefix(n)
		if err != nil {
			errs = append(errs, fmt.Errorf("MESH_PROXY_DESTINATION_PROFILE_NETWORKS: %q is not a CIDR such as 10.0.0.0/8", n))
			continue
		}
		c.ProfileNetworks = append(c.ProfileNetworks, pfx.Masked())
	}
	for name, addr := range map[string]string{
		"MESH_PROXY_INBOUND_LISTEN_ADDR": c.InboundAddr, "MESH_PROXY_OUTBOUND_LISTEN_ADDR": c.OutboundAddr,
		"MESH_PROXY_ADMIN_LISTEN_ADDR": c.AdminAddr, "MESH_PROXY_INBOUND_ORIG_DST": c.InboundOrigDst,
		"MESH_PROXY_OUTBOUND_ORIG_DST": c.OutboundOrigDst,
	} {
		if addr == "" && strings.HasSuffix(name, "ORIG_DST") {
			continue
		}
		if _, err := netip.ParseAddrPort(addr); err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: not an ip:port", name, addr))
		}
	}
	if c.LocalName == "" {
		errs = append(errs, errors.New("MESH_PROXY_IDENTITY_LOCAL_NAME is not set: the proxy needs its identity"))
	}
	if c.TrustAnchorsFile == "" && len(c.TrustAnchorsPEM) == 0 {
		errs = append(errs, errors.New("neither MESH_PROXY_IDENTITY_TRUST_ANCHORS nor MESH_PROXY_IDENTITY_TRUST_ANCHORS_FILE is set"))
	}
	if c.IdentityAddr == "" || c.IdentityName == "" || c.TokenFile == "" {
		errs = append(errs, errors.New("MESH_PROXY_IDENTITY_SVC_ADDR, MESH_PROXY_IDENTITY_SVC_NAME and MESH_PROXY_IDENTITY_TOKEN_FILE must be set"))
	}
	if (c.DestinationAddr == "") != (c.DestinationName == "") {
		errs = append(errs, errors.New("MESH_PROXY_DESTINATION_SVC_ADDR and MESH_PROXY_DESTINATION_SVC_NAME go together"))
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
