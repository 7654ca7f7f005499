package dashboard

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/dynamic"

	api "github.com/meshplane/mesh/controlplane/api/tap"
	"github.com/meshplane/mesh/viz/stat"
	"github.com/meshplane/mesh/viz/tap"
)

// fakeMetrics records the queries and answers with fixed rows.
type fakeMetrics struct {
	mu      sync.Mutex
	queries []stat.Query
	edgesNS []string
	nsErr   error // the answer to the every-namespace query
	err     error
}

func (f *fakeMetrics) Stat(_ context.Context, q stat.Query) ([]stat.Row, error) {
	f.mu.Lock()
	f.queries = append(f.queries, q)
	f.mu.Unlock()
	if q.Resource.Kind == stat.KindNamespace && q.Resource.Name == "" && f.nsErr != nil {
		return nil, f.nsErr
	}
	if f.err != nil {
		return nil, f.err
	}
	name := q.Resource.Name
	if name == "" {
		name = "web"
	}
	return []stat.Row{{Resource: stat.Resource{Kind: q.Resource.Kind, Namespace: q.Resource.Namespace, Name: name},
		MeshedPods: 1, TotalPods: 2, Requests: 40, Successes: 30, SuccessRate: 0.75, RPS: 4,
		LatencyP50: 7.5, LatencyP95: 9.75, LatencyP99: 9.95, TCPConnections: 2, TLSRequests: 40, TLSShare: 1}}, nil
}

func (f *fakeMetrics) Edges(_ context.Context, ns, kind string, w time.Duration) ([]stat.Edge, error) {
	f.mu.Lock()
	f.edgesNS = append(f.edgesNS, ns+"/"+kind+"/"+w.String())
	f.mu.Unlock()
	d := func(n string) stat.Resource { return stat.Resource{Kind: kind, Namespace: ns, Name: n} }
	return []stat.Edge{{Src: d("client"), Dst: d("web"), Secured: true, Requests: 30, RPS: 3}}, f.err
}

func (f *fakeMetrics) Routes(_ context.Context, _ dynamic.Interface, r stat.Resource, _ time.Duration) ([]stat.RouteRow, error) {
	return []stat.RouteRow{{Route: "GET /books", Service: r.Name, Row: stat.Row{Requests: 10, SuccessRate: 1, RPS: 1}}}, f.err
}

// tapServer serves GET /tap as a proxy does: each event once, then holds the stream.
type tapServer struct {
	events []api.Event
	query  chan string
}

func (s *tapServer) DialTap(ctx context.Context, p tap.Pod) (net.Conn, error) {
	c, srv := net.Pipe()
	go func() {
		defer func() { _ = srv.Close() }()
		req, err := http.ReadRequest(bufio.NewReader(srv))
		if err != nil {
			return
		}
		s.query <- p.String() + "?" + req.URL.RawQuery
		fmt.Fprintf(srv, "HTTP/1.1 200 OK\r\nContent-Type: %s\r\n\r\n", api.ContentType)
		for _, ev := range s.events {
			b, _ := json.Marshal(ev)
			if _, err := srv.Write(append(b, '\n')); err != nil {
				return
			}
		}
		<-ctx.Done()
	}()
	return c, nil
}

func newServer(t *testing.T, m *fakeMetrics, d tap.Dialer) (*httptest.Server, string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h, err := NewHandler(Config{Metrics: m, Namespace: "shop", Window: 10 * time.Second,
		TapPods: func(_ context.Context, ns, res string) ([]tap.Pod, error) {
			if res != "deployment/web" {
				return nil, fmt.Errorf("%s: not found", res)
			}
			return []tap.Pod{{Namespace: ns, Name: "web-1"}}, nil
		}, TapDialer: d}, l.Addr())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	_ = srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, fmt.Sprint(l.Addr().(*net.TCPAddr).Port)
}

func get(t *testing.T, url, host string, hdr map[string]string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// Only the listening address and localhost with its port are served; other
// hosts (a rebound DNS name) and cross-site requests get 403.
func TestHostCheck(t *testing.T) {
	t.Parallel()
	srv, port := newServer(t, &fakeMetrics{}, nil)
	for _, tc := range []struct {
		host string
		hdr  map[string]string
		want int
	}{
		{"", nil, http.StatusOK},
		{"localhost:" + port, nil, http.StatusOK},
		{"LOCALHOST:" + port, nil, http.StatusOK},
		{"127.0.0.1:" + port, map[string]string{"Sec-Fetch-Site": "same-origin"}, http.StatusOK},
		{"evil.example:" + port, nil, http.StatusForbidden},
		{"127.0.0.1", nil, http.StatusForbidden},
		{"localhost:1", nil, http.StatusForbidden},
		{"127.0.0.2:" + port, nil, http.StatusForbidden},
		{"", map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{"", map[string]string{"Origin": "http://evil.example"}, http.StatusForbidden},
		{"", map[string]string{"Origin": "http://localhost:" + port}, http.StatusOK},
	} {
		code, _, body := get(t, srv.URL+"/api/config", tc.host, tc.hdr)
		if code != tc.want {
			t.Errorf("Host %q %v: %d %s, want %d", tc.host, tc.hdr, code, body, tc.want)
		}
	}
}

// The pages and their assets are embedded and served.
func TestAssets(t *testing.T) {
	t.Parallel()
	srv, _ := newServer(t, &fakeMetrics{}, nil)
	for path, want := range map[string]string{"/": "/static/app.js", "/static/app.js": "function topology", "/static/style.css": "svg .edge"} {
		code, hdr, body := get(t, srv.URL+path, "", nil)
		if code != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("GET %s: %d, body without %q", path, code, want)
		}
		if hdr.Get("Content-Security-Policy") == "" {
			t.Errorf("GET %s: no Content-Security-Policy", path)
		}
	}
	if code, _, _ := get(t, srv.URL+"/nope", "", nil); code != http.StatusNotFound {
		t.Errorf("GET /nope: %d", code)
	}
	resp, err := http.Post(srv.URL+"/api/stat", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /api/stat: %d", resp.StatusCode)
	}
}

// The JSON endpoints: the queries the sources get, and mesh stat's, edges' and
// routes' JSON.
func TestAPI(t *testing.T) {
	t.Parallel()
	m := &fakeMetrics{nsErr: errors.New("namespaces is forbidden")}
	srv, _ := newServer(t, m, nil)
	decode := func(path string, want int) []map[string]any {
		t.Helper()
		code, _, body := get(t, srv.URL+path, "", nil)
		if code != want {
			t.Fatalf("GET %s: %d %s, want %d", path, code, body, want)
		}
		var v []map[string]any
		if code == http.StatusOK {
			if err := json.Unmarshal([]byte(body), &v); err != nil {
				t.Fatalf("GET %s: %v: %s", path, err, body)
			}
		}
		return v
	}
	rows := decode("/api/stat?namespace=shop&kind=deploy", http.StatusOK)
	if len(rows) != 1 || rows[0]["name"] != "web" || rows[0]["rps"] != 4.0 || rows[0]["success"] != 0.75 || rows[0]["meshed_pods"] != 1.0 {
		t.Errorf("/api/stat: %v", rows)
	}
	if q := m.queries[len(m.queries)-1]; q.Resource != (stat.Resource{Kind: "deployment", Namespace: "shop"}) || q.Window != 10*time.Second {
		t.Errorf("/api/stat query %+v", q)
	}
	decode("/api/stat?kind=sts&name=db", http.StatusOK)
	if q := m.queries[len(m.queries)-1]; q.Resource != (stat.Resource{Kind: "statefulset", Namespace: "shop", Name: "db"}) {
		t.Errorf("/api/stat?kind=sts&name=db: query %+v", q)
	}
	// Listing namespaces is forbidden: the configured namespace's row.
	nss := decode("/api/namespaces", http.StatusOK)
	if len(nss) != 1 || nss[0]["name"] != "shop" {
		t.Errorf("/api/namespaces: %v", nss)
	}
	edges := decode("/api/edges?namespace=prod&kind=po", http.StatusOK)
	src, _ := edges[0]["src"].(map[string]any)
	if len(edges) != 1 || src["name"] != "client" || edges[0]["secured"] != true || edges[0]["rps"] != 3.0 {
		t.Errorf("/api/edges: %v", edges)
	}
	if got := m.edgesNS[len(m.edgesNS)-1]; got != "prod/pod/10s" {
		t.Errorf("/api/edges asked %s", got)
	}
	routes := decode("/api/routes?resource=svc/web", http.StatusOK)
	if len(routes) != 1 || routes[0]["route"] != "GET /books" || routes[0]["service"] != "web" {
		t.Errorf("/api/routes: %v", routes)
	}
	for _, bad := range []string{"/api/stat?kind=jobs", "/api/stat?kind=ns", "/api/edges?kind=svc", "/api/routes", "/api/routes?resource=deploy"} {
		decode(bad, http.StatusBadRequest)
	}
	decode("/api/tap?resource=deploy/web", http.StatusNotImplemented) // no dialer
	broken, _ := newServer(t, &fakeMetrics{err: errors.New("no proxy could be scraped")}, nil)
	code, _, body := get(t, broken.URL+"/api/stat", "", nil)
	if code != http.StatusBadGateway || !strings.Contains(body, "no proxy could be scraped") {
		t.Errorf("failing source: %d %s", code, body)
	}
}

// /api/tap streams the pods tapped, then the proxies' events as they come.
func TestTapStream(t *testing.T) {
	t.Parallel()
	ts := &tapServer{query: make(chan string, 1), events: []api.Event{
		{Type: api.TypeHTTP, ID: 1, Method: "GET", Path: "/books", Status: 200, Direction: api.Inbound},
		{Type: api.TypeDropped, Dropped: 3},
		{Type: api.TypeHTTP, ID: 2, Method: "POST", Path: "/books", Status: 503, Direction: api.Inbound},
	}}
	srv, _ := newServer(t, &fakeMetrics{}, ts)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/api/tap?namespace=shop&resource=deploy/web&method=GET&max-rps=5", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != api.ContentType {
		t.Fatalf("/api/tap: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	sc := bufio.NewScanner(resp.Body)
	var got []string
	for len(got) < 4 && sc.Scan() {
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("%v: %s", err, sc.Text())
		}
		got = append(got, fmt.Sprintf("%v %v|%v|%v|%v", rec["type"], rec["pods"], rec["message"], rec["path"], rec["proxy"]))
	}
	want := []string{
		"dashboard.pods [shop/web-1]|<nil>|<nil>|<nil>",
		"http <nil>|<nil>|/books|shop/web-1",
		"dashboard.warning <nil>|shop/web-1: 3 events dropped (rate limits or a slow reader)|<nil>|<nil>",
		"http <nil>|<nil>|/books|shop/web-1",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("records\n got %q\nwant %q", got, want)
	}
	if q := <-ts.query; q != "shop/web-1?max-rps=5&method=GET" {
		t.Errorf("the proxy was asked %s", q)
	}
	code, _, body := get(t, srv.URL+"/api/tap?namespace=shop&resource=deploy/web&direction=sideways", "", nil)
	if code != http.StatusBadRequest || !strings.Contains(body, "direction") {
		t.Errorf("tap with a bad query: %d %s", code, body)
	}
	code, _, body = get(t, srv.URL+"/api/tap?namespace=shop&resource=deploy/nope", "", nil)
	if code != http.StatusBadGateway || !strings.Contains(body, "not found") {
		t.Errorf("tap of a missing resource: %d %s", code, body)
	}
}
