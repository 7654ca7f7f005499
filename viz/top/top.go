// Package top is `mesh top`'s aggregation: tap events (controlplane/api/tap) folded
// into a table of routes, like `linkerd viz top`. A row is one (source, destination,
// method, path) — or (source, destination, route) with Options.Routes — with its
// count, best, worst and last latency (to the response's end) and success rate.
//
// Rows sort by count, highest first; ties by source, destination, method, path and
// route, so the order does not depend on the order in which the proxies' streams
// were merged. The table is bounded: it keeps at most Options.MaxRows rows
// (DefaultMaxRows), and a new row beyond that evicts the row updated least recently.
//
// The package is pure: no clock, no IO but Write.
package top

import (
	"container/list"
	"net"
	"sort"
	"strings"
	"time"

	api "github.com/meshplane/mesh/controlplane/api/tap"
)

// DefaultMaxRows is the cap on rows when Options.MaxRows is 0.
const DefaultMaxRows = 1000

// DefaultRoute names the requests no ServiceProfile route matched (as mesh routes).
const DefaultRoute = "[DEFAULT]"

// Options of a Table.
type Options struct {
	// HideSources merges the rows of every source (the Source column is empty).
	HideSources bool
	// Routes keys rows by ServiceProfile route instead of method and path.
	Routes bool
	// MaxRows caps the rows kept (0: DefaultMaxRows).
	MaxRows int
}

// Key is what makes a row. Method and Path are empty with Options.Routes, Route
// without; Source is empty with Options.HideSources.
type Key struct {
	Source      string `json:"source,omitempty"`
	Destination string `json:"destination"`
	Method      string `json:"method,omitempty"`
	Path        string `json:"path,omitempty"`
	Route       string `json:"route,omitempty"`
}

// Row is one key's requests.
type Row struct {
	Key
	Count     int           `json:"count"`
	Successes int           `json:"successes"`
	Best      time.Duration `json:"bestNs"`
	Worst     time.Duration `json:"worstNs"`
	Last      time.Duration `json:"lastNs"`
}

// SuccessRate is Successes over Count (Count is never 0 in a Table's rows).
func (r Row) SuccessRate() float64 { return float64(r.Successes) / float64(r.Count) }

// Table aggregates events. It is not safe for concurrent use.
type Table struct {
	o       Options
	rows    map[Key]*list.Element // of *Row
	recency *list.List            // front: updated most recently
	evicted int
}

// New returns an empty table.
func New(o Options) *Table {
	if o.MaxRows <= 0 {
		o.MaxRows = DefaultMaxRows
	}
	return &Table{o: o, rows: map[Key]*list.Element{}, recency: list.New()}
}

// Add counts one event. Events that are not "http" records are ignored.
func (t *Table) Add(ev *api.Event) {
	if ev.Type != "" && ev.Type != api.TypeHTTP {
		return
	}
	k := t.key(ev)
	lat := time.Duration(ev.LatencyToEndNs)
	ok := 0
	if Success(ev) {
		ok = 1
	}
	if e, found := t.rows[k]; found {
		r := e.Value.(*Row)
		r.Count++
		r.Successes += ok
		r.Best, r.Worst, r.Last = min(r.Best, lat), max(r.Worst, lat), lat
		t.recency.MoveToFront(e)
		return
	}
	if len(t.rows) >= t.o.MaxRows {
		oldest := t.recency.Back()
		delete(t.rows, oldest.Value.(*Row).Key)
		t.recency.Remove(oldest)
		t.evicted++
	}
	t.rows[k] = t.recency.PushFront(&Row{Key: k, Count: 1, Successes: ok, Best: lat, Worst: lat, Last: lat})
}

// Evicted is how many rows the cap has evicted so far.
func (t *Table) Evicted() int { return t.evicted }

// Len is the number of rows.
func (t *Table) Len() int { return len(t.rows) }

// Rows are copies of the rows, by count (highest first), ties by key.
func (t *Table) Rows() []Row {
	out := make([]Row, 0, len(t.rows))
	for e := t.recency.Front(); e != nil; e = e.Next() {
		out = append(out, *e.Value.(*Row))
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Count != b.Count {
			return a.Count > b.Count
		}
		return a.less(b.Key)
	})
	return out
}

func (k Key) less(o Key) bool {
	for _, p := range [][2]string{{k.Source, o.Source}, {k.Destination, o.Destination}, {k.Method, o.Method}, {k.Path, o.Path}, {k.Route, o.Route}} {
		if p[0] != p[1] {
			return p[0] < p[1]
		}
	}
	return false
}

// Success classifies an event as the proxy's metrics do (the classification label):
// a failure when there was no response (status 0), the status is 5xx, or a gRPC
// status is set and not "0".
func Success(ev *api.Event) bool {
	if ev.Status == 0 || ev.Status >= 500 {
		return false
	}
	return ev.GRPCStatus == "" || ev.GRPCStatus == "0"
}

// key names the event's source and destination as linkerd top does: a pod by its
// name (namespace/name when it is not in the tapped pod's namespace), anything else
// by its IP address. The tapped pod (ev.Proxy, "namespace/name") is the source of
// its outbound requests and the destination of its inbound ones.
func (t *Table) key(ev *api.Event) Key {
	proxyNS, proxyPod, _ := strings.Cut(ev.Proxy, "/")
	var k Key
	if ev.Direction == api.Inbound {
		k.Source, k.Destination = host(ev.SrcAddr), proxyPod
	} else {
		k.Source = proxyPod
		switch {
		case ev.Dst["pod"] != "":
			k.Destination = ev.Dst["pod"]
			if ns := ev.Dst["namespace"]; ns != "" && ns != proxyNS {
				k.Destination = ns + "/" + k.Destination
			}
		case ev.DstAddr != "":
			k.Destination = host(ev.DstAddr)
		default:
			k.Destination = ev.Authority // no endpoint was chosen
		}
	}
	if t.o.HideSources {
		k.Source = ""
	}
	if t.o.Routes {
		k.Route = ev.Route
		if k.Route == "" {
			k.Route = DefaultRoute
		}
		return k
	}
	k.Method = ev.Method
	// The query is not part of the row: /items?page=1 and ?page=2 are one route.
	k.Path, _, _ = strings.Cut(ev.Path, "?")
	return k
}

// host is an address without its port.
func host(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}
