package dashboard

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/meshplane/mesh/viz/stat"
	"github.com/meshplane/mesh/viz/tap"

	api "github.com/meshplane/mesh/controlplane/api/tap"
)

// config is GET /api/config: what the pages start from.
func (h *Handler) config(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, map[string]any{
		"namespace":      h.cfg.Namespace,
		"window":         h.cfg.Window.String(),
		"windowSeconds":  h.cfg.Window.Seconds(),
		"refreshSeconds": h.cfg.Refresh.Seconds(),
		"kinds":          stat.EdgeKinds(),
		"tap":            h.cfg.TapPods != nil && h.cfg.TapDialer != nil,
	})
}

// namespaces is GET /api/namespaces: a stat row per namespace (mesh stat ns -o
// json). A user who may not list namespaces gets the row of the configured one.
func (h *Handler) namespaces(w http.ResponseWriter, r *http.Request) {
	q := stat.Query{Resource: stat.Resource{Kind: stat.KindNamespace}, Window: h.cfg.Window}
	rows, err := h.cfg.Metrics.Stat(r.Context(), q)
	if err != nil && h.cfg.Namespace != "" {
		fmt.Fprintf(h.cfg.Log, "dashboard: every namespace: %v: showing %s only\n", err, h.cfg.Namespace)
		q.Resource.Name = h.cfg.Namespace
		rows, err = h.cfg.Metrics.Stat(r.Context(), q)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.write(w, r, func(b *bytes.Buffer) error { return stat.Write(b, stat.FormatJSON, false, rows) })
}

// stat is GET /api/stat?namespace=NS&kind=KIND[&name=NAME]: mesh stat KIND -n NS -o json.
func (h *Handler) stat(w http.ResponseWriter, r *http.Request) {
	ns, kind, err := h.nsKind(r, false)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	q := stat.Query{Resource: stat.Resource{Kind: kind, Namespace: ns, Name: r.URL.Query().Get("name")}, Window: h.cfg.Window}
	rows, err := h.cfg.Metrics.Stat(r.Context(), q)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.write(w, r, func(b *bytes.Buffer) error { return stat.Write(b, stat.FormatJSON, false, rows) })
}

// edges is GET /api/edges?namespace=NS&kind=KIND: mesh edges KIND -n NS -t WINDOW -o json.
func (h *Handler) edges(w http.ResponseWriter, r *http.Request) {
	ns, kind, err := h.nsKind(r, true)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	edges, err := h.cfg.Metrics.Edges(r.Context(), ns, kind, h.cfg.Window)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.write(w, r, func(b *bytes.Buffer) error { return stat.WriteEdges(b, stat.FormatJSON, edges) })
}

// routes is GET /api/routes?namespace=NS&resource=KIND/NAME: mesh routes -o json.
func (h *Handler) routes(w http.ResponseWriter, r *http.Request) {
	res, err := h.resource(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	rows, err := h.cfg.Metrics.Routes(r.Context(), h.cfg.Dynamic, res, h.cfg.Window)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.write(w, r, func(b *bytes.Buffer) error { return stat.WriteRoutes(b, stat.FormatJSON, rows) })
}

// Records the dashboard adds to the tap stream, besides the proxies' events.
const (
	TypePods    = "dashboard.pods"    // the pods tapped, first
	TypeWarning = "dashboard.warning" // a proxy's stream failed or dropped events
	TypeError   = "dashboard.error"   // the tap ended with an error, last
)

// notice is a record of the dashboard's own in the tap stream.
type notice struct {
	Type    string   `json:"type"`
	Message string   `json:"message,omitempty"`
	Pods    []string `json:"pods,omitempty"`
}

// tap is GET /api/tap?namespace=NS&resource=KIND/NAME[&method=&path=&authority=&to=&max-rps=]:
// the events of mesh tap -o json, one JSON object per line, flushed as they come,
// until the client goes away. The first record (TypePods) lists the pods tapped.
func (h *Handler) tap(w http.ResponseWriter, r *http.Request) {
	if h.cfg.TapPods == nil || h.cfg.TapDialer == nil {
		h.fail(w, r, &httpError{http.StatusNotImplemented, fmt.Errorf("tap is not configured")})
		return
	}
	res, err := h.resource(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	m, rps, err := api.ParseQuery(r.URL.Query())
	if err != nil {
		h.fail(w, r, badRequest("%w", err))
		return
	}
	pods, err := h.cfg.TapPods(r.Context(), res.Namespace, res.Kind+"/"+res.Name)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", api.ContentType)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	out := &lineWriter{w: w, rc: http.NewResponseController(w)}
	names := make([]string, 0, len(pods))
	for _, p := range pods {
		names = append(names, p.String())
	}
	out.record(notice{Type: TypePods, Pods: names})
	err = tap.Stream(r.Context(), tap.Options{Match: m, MaxRPS: rps, Output: tap.OutputJSON}, pods, h.cfg.TapDialer, out, warnings{out})
	if err != nil && r.Context().Err() == nil {
		out.record(notice{Type: TypeError, Message: err.Error()})
	}
}

// lineWriter writes the stream's lines and flushes each one.
type lineWriter struct {
	mu sync.Mutex
	w  http.ResponseWriter
	rc *http.ResponseController
}

func (l *lineWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n, err := l.w.Write(p)
	if err == nil {
		err = l.rc.Flush()
	}
	return n, err
}

func (l *lineWriter) record(n notice) {
	b, _ := json.Marshal(n)
	_, _ = l.Write(append(b, '\n'))
}

// warnings turns viz/tap's warning lines into TypeWarning records.
type warnings struct{ l *lineWriter }

func (w warnings) Write(p []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimSpace(string(p)), "\n") {
		if line = strings.TrimSpace(strings.TrimPrefix(line, "warning:")); line != "" {
			w.l.record(notice{Type: TypeWarning, Message: line})
		}
	}
	return len(p), nil
}

// nsKind reads namespace (the configured one if empty) and kind (deployment if
// empty; with edges, one of stat.EdgeKinds).
func (h *Handler) nsKind(r *http.Request, edges bool) (string, string, error) {
	q := r.URL.Query()
	ns := q.Get("namespace")
	if ns == "" {
		ns = h.cfg.Namespace
	}
	if ns == "" {
		return "", "", badRequest("namespace: missing")
	}
	kind := stat.KindDeployment
	if s := q.Get("kind"); s != "" {
		k, err := stat.ParseKind(s)
		if err != nil {
			return "", "", badRequest("kind: %w", err)
		}
		kind = k
	}
	if kind == stat.KindNamespace {
		return "", "", badRequest("kind: namespaces are /api/namespaces")
	}
	if edges {
		ok := false
		for _, k := range stat.EdgeKinds() {
			ok = ok || k == kind
		}
		if !ok {
			return "", "", badRequest("kind: edges of %s: want one of %s", kind, strings.Join(stat.EdgeKinds(), ", "))
		}
	}
	return ns, kind, nil
}

// resource reads namespace and resource=KIND/NAME, one named object.
func (h *Handler) resource(r *http.Request) (stat.Resource, error) {
	ns, _, err := h.nsKind(r, false)
	if err != nil {
		return stat.Resource{}, err
	}
	s := r.URL.Query().Get("resource")
	res, err := stat.ParseResource(s, ns)
	if err != nil {
		return stat.Resource{}, badRequest("resource: %w", err)
	}
	if res.Name == "" || res.Kind == stat.KindNamespace {
		return stat.Resource{}, badRequest("resource %s: want KIND/NAME of a workload, pod or service", strconv.Quote(s))
	}
	return res, nil
}

// write encodes into a buffer first, so that a failure is still an error status.
func (h *Handler) write(w http.ResponseWriter, r *http.Request, enc func(*bytes.Buffer) error) {
	var b bytes.Buffer
	if err := enc(&b); err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(b.Bytes())
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(v)
}
