// Package tap is the schema of the proxy's tap API, shared by the proxy (proxy/tap
// serves it) and the CLI (viz/tap reads it): the query of GET /tap, which selects the
// requests a subscriber sees, and the NDJSON records the stream carries.
//
// One record per line, each a JSON Event. Type "http" is one finished request: it
// is published once the response has ended (or failed), with both the request's and
// the response's fields, so a long-lived stream appears only when it ends. Type
// "dropped" says how many matching events this subscriber missed since the last
// such record (the proxy-wide rate cap, the subscriber's max-rps, or a full buffer).
//
// Paths keep their query string (Path is the request target as the client sent it,
// e.g. "/api/items?page=2"); PathPrefix matching applies to the whole of it. Bodies
// are never carried. Headers are carried except the redacted ones
// (Authorization, Proxy-Authorization, Cookie, Set-Cookie and those the proxy is
// configured to redact): their names are dropped as well as their values.
//
// The package imports only the standard library.
package tap

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Record types.
const (
	TypeHTTP    = "http"
	TypeDropped = "dropped"
)

// Directions.
const (
	Inbound  = "inbound"
	Outbound = "outbound"
)

// Path is the tap endpoint's path on the proxy's tap listener.
const Path = "/tap"

// ContentType is the stream's media type: one JSON object per line.
const ContentType = "application/x-ndjson"

// Event is one record of the stream.
type Event struct {
	Type string `json:"type"`
	// ID numbers the proxy's events (unique per proxy process, in order of publication).
	ID uint64 `json:"id,omitempty"`
	// Time is when the proxy received the request (for "dropped": when it was sent).
	Time time.Time `json:"time"`
	// Proxy names the pod whose proxy saw the event; set by the CLI, not the proxy.
	Proxy string `json:"proxy,omitempty"`

	Direction string `json:"direction,omitempty"`
	Method    string `json:"method,omitempty"`
	Scheme    string `json:"scheme,omitempty"`
	Authority string `json:"authority,omitempty"`
	// Path is the request target, query included.
	Path string `json:"path,omitempty"`

	// Status is the HTTP status sent to the client (0: none, the stream was reset).
	Status     int    `json:"status,omitempty"`
	GRPCStatus string `json:"grpcStatus,omitempty"`
	// Error is the proxy's reason when it answered itself (no endpoint, timeout...).
	Error string `json:"error,omitempty"`

	// LatencyToHeadersNs is from the request to the response headers; LatencyToEndNs
	// to the response's end (nanoseconds).
	LatencyToHeadersNs int64 `json:"latencyToHeadersNs,omitempty"`
	LatencyToEndNs     int64 `json:"latencyToEndNs,omitempty"`
	// RequestBytes is the request body's Content-Length (-1: unknown, streamed);
	// ResponseBytes the response body bytes the proxy forwarded.
	RequestBytes  int64 `json:"requestBytes"`
	ResponseBytes int64 `json:"responseBytes"`

	// SrcAddr is the client's address as the proxy saw it; DstAddr where the proxy
	// sent the request (the application inbound, the chosen endpoint outbound).
	SrcAddr string `json:"srcAddr,omitempty"`
	DstAddr string `json:"dstAddr,omitempty"`
	// ClientID and ServerID are the mTLS identities (the client's inbound, the
	// endpoint's outbound), as in the proxy's metrics client_id and server_id.
	ClientID    string `json:"clientId,omitempty"`
	ServerID    string `json:"serverId,omitempty"`
	TLS         bool   `json:"tls"`
	NoTLSReason string `json:"noTlsReason,omitempty"`
	// Dst are the destination's labels from discovery (outbound): namespace,
	// service, pod, and the workload as kind and name (deployment=web...).
	Dst   map[string]string `json:"dst,omitempty"`
	Route string            `json:"route,omitempty"`

	// RequestHeaders and ResponseHeaders (canonical names) without the redacted ones.
	RequestHeaders  map[string][]string `json:"requestHeaders,omitempty"`
	ResponseHeaders map[string][]string `json:"responseHeaders,omitempty"`

	// Dropped (type "dropped") counts the events missed since the last record.
	Dropped uint64 `json:"dropped,omitempty"`
}

// Match selects events; its fields are ANDed, and an empty field matches anything.
type Match struct {
	Method    string // exact, case-insensitive
	Authority string // exact, with or without the port
	// PathPrefix is a prefix of the request target (query included).
	PathPrefix string
	Direction  string // inbound or outbound
	// Destination is an authority (as Authority), or KIND/NAME of the destination's
	// labels: svc/NAME, deploy/NAME, sts/NAME, ds/NAME, job/NAME, pod/NAME, ns/NAME.
	Destination string
}

// Query parameters of GET /tap.
const (
	ParamMethod      = "method"
	ParamAuthority   = "authority"
	ParamPath        = "path"
	ParamDirection   = "direction"
	ParamDestination = "to"
	ParamMaxRPS      = "max-rps"
)

// Query encodes m and maxRPS (0: the proxy's cap only) as GET /tap's query.
func (m Match) Query(maxRPS float64) url.Values {
	v := url.Values{}
	for k, s := range map[string]string{ParamMethod: m.Method, ParamAuthority: m.Authority, ParamPath: m.PathPrefix,
		ParamDirection: m.Direction, ParamDestination: m.Destination} {
		if s != "" {
			v.Set(k, s)
		}
	}
	if maxRPS > 0 {
		v.Set(ParamMaxRPS, strconv.FormatFloat(maxRPS, 'g', -1, 64))
	}
	return v
}

// ParseQuery reads GET /tap's query; errors name the parameter.
func ParseQuery(v url.Values) (Match, float64, error) {
	m := Match{Method: v.Get(ParamMethod), Authority: v.Get(ParamAuthority), PathPrefix: v.Get(ParamPath),
		Direction: v.Get(ParamDirection), Destination: v.Get(ParamDestination)}
	var errs []error
	if m.Direction != "" && m.Direction != Inbound && m.Direction != Outbound {
		errs = append(errs, fmt.Errorf("%s=%q: want %s or %s", ParamDirection, m.Direction, Inbound, Outbound))
	}
	if err := m.checkDestination(); err != nil {
		errs = append(errs, err)
	}
	var rps float64
	if s := v.Get(ParamMaxRPS); s != "" {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || f < 0 || f != f {
			errs = append(errs, fmt.Errorf("%s=%q: not a non-negative number", ParamMaxRPS, s))
		}
		rps = f
	}
	return m, rps, errors.Join(errs...)
}

// destKinds maps the short and long kinds of Destination to the Dst label.
var destKinds = map[string]string{
	"svc": "service", "service": "service", "deploy": "deployment", "deployment": "deployment",
	"sts": "statefulset", "statefulset": "statefulset", "ds": "daemonset", "daemonset": "daemonset",
	"job": "job", "po": "pod", "pod": "pod", "ns": "namespace", "namespace": "namespace",
}

func (m Match) checkDestination() error {
	kind, _, ok := strings.Cut(m.Destination, "/")
	if !ok {
		return nil
	}
	if _, known := destKinds[kind]; !known {
		return fmt.Errorf("%s=%q: unknown kind %q (svc, deploy, sts, ds, job, pod, ns)", ParamDestination, m.Destination, kind)
	}
	return nil
}

// Matches tells whether ev (an "http" event) is selected.
func (m Match) Matches(ev *Event) bool {
	if m.Method != "" && !strings.EqualFold(m.Method, ev.Method) {
		return false
	}
	if m.Direction != "" && m.Direction != ev.Direction {
		return false
	}
	if m.PathPrefix != "" && !strings.HasPrefix(ev.Path, m.PathPrefix) {
		return false
	}
	if m.Authority != "" && !authorityIs(ev.Authority, m.Authority) {
		return false
	}
	if m.Destination != "" {
		if kind, name, ok := strings.Cut(m.Destination, "/"); ok {
			label := destKinds[kind]
			switch label {
			case "service", "pod", "namespace":
				return ev.Dst[label] == name
			default:
				return ev.Dst["workloadKind"] == label && ev.Dst["workloadName"] == name
			}
		}
		return authorityIs(ev.Authority, m.Destination)
	}
	return true
}

// NeedsDst tells whether m reads the destination's labels (Event.Dst), which the
// proxy knows only once it has picked an endpoint: a KIND/NAME Destination.
func (m Match) NeedsDst() bool { return strings.Contains(m.Destination, "/") }

// authorityIs compares an authority with a wanted one, ignoring the port when the
// wanted one has none.
func authorityIs(got, want string) bool {
	if strings.EqualFold(got, want) {
		return true
	}
	if strings.Contains(want, ":") {
		return false
	}
	host := got
	if i := strings.LastIndexByte(got, ':'); i >= 0 && !strings.Contains(got[i:], "]") {
		host = got[:i]
	}
	return strings.EqualFold(host, want)
}
