// Package proxyenv is the contract between the injector and the proxy: the names of
// the environment variables that render/inject writes into the mesh-proxy container
// and proxy/config reads, and the proxy's defaults for those it may leave unset.
//
// It holds constants only and imports only the standard library, so that both sides may import it:
// the proxy may import controlplane/api/... only, and render/ may import exactly this
// package of controlplane/ (see .golangci.yml and docs/architecture.md).
package proxyenv

import "time"

// Logging.
const (
	// Log is the log level, or a directive list such as "warn,mesh=info".
	Log = "MESH_PROXY_LOG"
	// LogFormat is plain or json.
	LogFormat = "MESH_PROXY_LOG_FORMAT"
)

// Listen addresses (ip:port).
const (
	InboundListenAddr  = "MESH_PROXY_INBOUND_LISTEN_ADDR"
	OutboundListenAddr = "MESH_PROXY_OUTBOUND_LISTEN_ADDR"
	AdminListenAddr    = "MESH_PROXY_ADMIN_LISTEN_ADDR"
	ControlListenAddr  = "MESH_PROXY_CONTROL_LISTEN_ADDR"
	// TapListenAddr is the tap API's: a loopback address only (port-forward reaches
	// it, the pod network cannot).
	TapListenAddr = "MESH_PROXY_TAP_LISTEN_ADDR"
)

// The tap API (docs/tap.md).
const (
	// TapRedactHeaders are header names (comma-separated) the tap never shows, in
	// addition to Authorization, Proxy-Authorization, Cookie and Set-Cookie.
	TapRedactHeaders = "MESH_PROXY_TAP_REDACT_HEADERS"
	// TapMaxEventsPerSecond caps the events the proxy taps, for all subscribers.
	TapMaxEventsPerSecond = "MESH_PROXY_TAP_MAX_EVENTS_PER_SECOND"
)

// Ports and protocols (comma-separated ports or ranges, e.g. "80,8080-8082").
const (
	// InboundPorts are the application's container ports.
	InboundPorts = "MESH_PROXY_INBOUND_PORTS"
	// OpaquePorts skip protocol detection. Unset means DefaultOpaquePorts; set but
	// empty means none.
	OpaquePorts = "MESH_PROXY_OPAQUE_PORTS"
	// HTTP2Ports carry HTTP/2 with prior knowledge (h2c, gRPC); none by default.
	HTTP2Ports = "MESH_PROXY_HTTP2_PORTS"
	// ProfileNetworks are CIDRs whose IPs get a ServiceProfile looked up by IP. Unset
	// means DefaultProfileNetworks; set but empty means none.
	ProfileNetworks = "MESH_PROXY_DESTINATION_PROFILE_NETWORKS"
)

// Timeouts (Go durations such as 100ms or 1s).
const (
	InboundConnectTimeout  = "MESH_PROXY_INBOUND_CONNECT_TIMEOUT"
	OutboundConnectTimeout = "MESH_PROXY_OUTBOUND_CONNECT_TIMEOUT"
	DetectTimeout          = "MESH_PROXY_DETECT_TIMEOUT"
	ShutdownGracePeriod    = "MESH_PROXY_SHUTDOWN_GRACE_PERIOD"
)

// The control plane's services.
const (
	DestinationSvcAddr = "MESH_PROXY_DESTINATION_SVC_ADDR"
	DestinationSvcName = "MESH_PROXY_DESTINATION_SVC_NAME"
	IdentitySvcAddr    = "MESH_PROXY_IDENTITY_SVC_ADDR"
	IdentitySvcName    = "MESH_PROXY_IDENTITY_SVC_NAME"
)

// The proxy's own identity.
const (
	// IdentityDir is where the key is kept (a memory emptyDir).
	IdentityDir = "MESH_PROXY_IDENTITY_DIR"
	// IdentityTokenFile is the projected ServiceAccount token with the identity audience.
	IdentityTokenFile = "MESH_PROXY_IDENTITY_TOKEN_FILE"
	// IdentityLocalName is SA.NS.serviceaccount.identity.TRUST-DOMAIN.
	IdentityLocalName = "MESH_PROXY_IDENTITY_LOCAL_NAME"
	// IdentityTrustAnchors holds PEM trust anchors inline; else IdentityTrustAnchorsFile
	// names a file that is re-read when it changes.
	IdentityTrustAnchors     = "MESH_PROXY_IDENTITY_TRUST_ANCHORS"
	IdentityTrustAnchorsFile = "MESH_PROXY_IDENTITY_TRUST_ANCHORS_FILE"
)

// Test and benchmark settings: stand-ins for SO_ORIGINAL_DST when a connection was not
// redirected by iptables. The injector never sets them.
const (
	InboundOrigDst  = "MESH_PROXY_INBOUND_ORIG_DST"
	OutboundOrigDst = "MESH_PROXY_OUTBOUND_ORIG_DST"
)

// The pod's own fields, set from the downward API. IdentityLocalName refers to
// PodServiceAccount and PodNamespace as $(_pod_sa) and $(_pod_ns).
const (
	PodServiceAccount = "_pod_sa"
	PodNamespace      = "_pod_ns"
	PodName           = "_pod_name"
)

// The proxy's defaults, used when a variable is unset (or empty, for the addresses,
// the log settings and the timeouts).
const (
	DefaultLog       = "info"
	DefaultLogFormat = "plain"

	DefaultInboundPort  = 4143
	DefaultOutboundPort = 4140
	DefaultAdminPort    = 4191
	DefaultControlPort  = 4190
	DefaultTapPort      = 4192

	DefaultInboundListenAddr  = "0.0.0.0:4143"
	DefaultOutboundListenAddr = "127.0.0.1:4140"
	DefaultAdminListenAddr    = "127.0.0.1:4191"
	DefaultControlListenAddr  = "0.0.0.0:4190"
	DefaultTapListenAddr      = "127.0.0.1:4192"

	// DefaultTapMaxEventsPerSecond is the tap's proxy-wide event cap.
	DefaultTapMaxEventsPerSecond = 100

	// DefaultOpaquePorts are server-speaks-first protocols that must skip detection
	// (SMTP, MySQL, Galera, PostgreSQL, Redis, Elasticsearch, memcached), as Linkerd does.
	DefaultOpaquePorts = "25,587,3306,4444,5432,6379,9300,11211"
	// DefaultProfileNetworks are the destinations whose ServiceProfile is looked up by
	// IP when the Host is not a service name (Linkerd's default cluster networks: the
	// private and shared ranges where cluster and pod IPs live).
	DefaultProfileNetworks = "10.0.0.0/8,100.64.0.0/10,172.16.0.0/12,192.168.0.0/16"

	DefaultInboundConnectTimeout  = 100 * time.Millisecond
	DefaultOutboundConnectTimeout = time.Second
	DefaultDetectTimeout          = 10 * time.Second
	DefaultShutdownGracePeriod    = 120 * time.Second
)

// Names lists every variable of the contract, for tests that check that what one side
// writes the other reads.
func Names() []string {
	return []string{
		Log, LogFormat,
		InboundListenAddr, OutboundListenAddr, AdminListenAddr, ControlListenAddr, TapListenAddr,
		TapRedactHeaders, TapMaxEventsPerSecond,
		InboundPorts, OpaquePorts, HTTP2Ports, ProfileNetworks,
		InboundConnectTimeout, OutboundConnectTimeout, DetectTimeout, ShutdownGracePeriod,
		DestinationSvcAddr, DestinationSvcName, IdentitySvcAddr, IdentitySvcName,
		IdentityDir, IdentityTokenFile, IdentityLocalName, IdentityTrustAnchors, IdentityTrustAnchorsFile,
		InboundOrigDst, OutboundOrigDst,
		PodServiceAccount, PodNamespace, PodName,
	}
}
