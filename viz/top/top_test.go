package top

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	api "github.com/meshplane/mesh/controlplane/api/tap"
)

func out(path string, status int, grpc string, lat time.Duration) *api.Event {
	return &api.Event{Type: api.TypeHTTP, Proxy: "shop/web-1", Direction: api.Outbound, Method: "GET", Path: path,
		Status: status, GRPCStatus: grpc, LatencyToEndNs: int64(lat), DstAddr: "10.0.1.7:8080",
		Dst: map[string]string{"namespace": "shop", "pod": "api-1"}}
}

func TestAggregate(t *testing.T) {
	t.Parallel()
	tb := New(Options{})
	in := &api.Event{Type: api.TypeHTTP, Proxy: "shop/web-1", Direction: api.Inbound, Method: "POST", Path: "/vote",
		Status: 200, LatencyToEndNs: int64(3 * time.Millisecond), SrcAddr: "10.0.2.9:50000"}
	other := out("/x", 200, "", time.Millisecond)
	other.Dst = map[string]string{"namespace": "db", "pod": "pg-0"}
	noEndpoint := out("/x", 503, "", 100*time.Microsecond)
	noEndpoint.Dst, noEndpoint.DstAddr, noEndpoint.Authority = nil, "", "api.shop.svc.cluster.local:80"
	for _, ev := range []*api.Event{
		out("/items?page=1", 200, "", 5*time.Millisecond),
		in,
		out("/items?page=2", 500, "", 2*time.Millisecond),
		out("/items", 200, "", 9*time.Millisecond),
		{Type: api.TypeDropped, Dropped: 3},
		other, noEndpoint,
		out("/grpc", 200, "14", time.Second+500*time.Millisecond),
	} {
		tb.Add(ev)
	}
	var b bytes.Buffer
	if err := Write(&b, FormatTable, Options{}, tb.Rows()); err != nil {
		t.Fatal(err)
	}
	want := `SOURCE    DESTINATION                    METHOD  PATH    COUNT  BEST   WORST  LAST   SUCCESS_RATE
web-1     api-1                          GET     /items  3      2ms    9ms    9ms    66.67%
10.0.2.9  web-1                          POST    /vote   1      3ms    3ms    3ms    100.00%
web-1     api-1                          GET     /grpc   1      1.5s   1.5s   1.5s   0.00%
web-1     api.shop.svc.cluster.local:80  GET     /x      1      100µs  100µs  100µs  0.00%
web-1     db/pg-0                        GET     /x      1      1ms    1ms    1ms    100.00%
`
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
	b.Reset()
	if err := Write(&b, FormatJSON, Options{}, tb.Rows()[:1]); err != nil {
		t.Fatal(err)
	}
	wantJSON := `[{"source":"web-1","destination":"api-1","method":"GET","path":"/items","count":3,"successes":2,"bestNs":2000000,"worstNs":9000000,"lastNs":9000000,"successRate":0.6666666666666666}]` + "\n"
	if b.String() != wantJSON {
		t.Errorf("json %s", b.String())
	}
}

func TestHideSourcesAndRoutes(t *testing.T) {
	t.Parallel()
	o := Options{HideSources: true, Routes: true}
	tb := New(o)
	a := out("/a", 200, "", time.Millisecond)
	a.Route = "GET /a"
	b2 := out("/b", 200, "", time.Millisecond)
	b2.Proxy = "shop/web-2"
	for _, ev := range []*api.Event{a, b2, out("/c", 200, "", 2*time.Millisecond)} {
		tb.Add(ev)
	}
	var b bytes.Buffer
	if err := Write(&b, FormatTable, o, tb.Rows()); err != nil {
		t.Fatal(err)
	}
	want := `DESTINATION  ROUTE      COUNT  BEST  WORST  LAST  SUCCESS_RATE
api-1        [DEFAULT]  2      1ms   2ms    2ms   100.00%
api-1        GET /a     1      1ms   1ms    1ms   100.00%
`
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
	b.Reset()
	_ = Write(&b, FormatTable, o, nil)
	if b.String() != "No requests tapped yet.\n" {
		t.Errorf("empty: %q", b.String())
	}
	if err := Write(&b, "yaml", o, nil); err == nil {
		t.Error("yaml accepted")
	}
}

// Equal counts sort by key whatever the arrival order.
func TestTiesAreDeterministic(t *testing.T) {
	t.Parallel()
	paths := []string{"/d", "/b", "/a", "/c"}
	var first string
	for rot := range paths {
		tb := New(Options{})
		for i := range paths {
			tb.Add(out(paths[(i+rot)%len(paths)], 200, "", time.Millisecond))
		}
		var got []string
		for _, r := range tb.Rows() {
			got = append(got, r.Path)
		}
		if s := strings.Join(got, " "); s != "/a /b /c /d" {
			t.Errorf("rotation %d: %s", rot, s)
		} else if first == "" {
			first = s
		}
	}
}

// The cap evicts the row updated least recently, not the least counted.
func TestCapEvictsLeastRecent(t *testing.T) {
	t.Parallel()
	tb := New(Options{MaxRows: 3})
	for i := 0; i < 5; i++ {
		tb.Add(out("/old", 200, "", time.Millisecond))
	}
	tb.Add(out("/b", 200, "", time.Millisecond))
	tb.Add(out("/c", 200, "", time.Millisecond))
	tb.Add(out("/old", 200, "", time.Millisecond)) // /b is now the least recent
	tb.Add(out("/d", 200, "", time.Millisecond))
	var got []string
	for _, r := range tb.Rows() {
		got = append(got, fmt.Sprintf("%s=%d", r.Path, r.Count))
	}
	if s := strings.Join(got, " "); s != "/old=6 /c=1 /d=1" || tb.Evicted() != 1 || tb.Len() != 3 {
		t.Errorf("rows %s, evicted %d", s, tb.Evicted())
	}
	if New(Options{}).o.MaxRows != DefaultMaxRows {
		t.Error("default cap")
	}
	// Many distinct keys never grow the table past its cap.
	for i := 0; i < 100; i++ {
		tb.Add(out(fmt.Sprintf("/%d", i), 200, "", time.Millisecond))
	}
	if tb.Len() != 3 || tb.Evicted() != 101 {
		t.Errorf("len %d evicted %d", tb.Len(), tb.Evicted())
	}
}

func TestSuccess(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		status int
		grpc   string
		want   bool
	}{{200, "", true}, {404, "", true}, {499, "", true}, {500, "", false}, {503, "", false}, {0, "", false},
		{200, "0", true}, {200, "5", false}, {200, "14", false}} {
		if got := Success(&api.Event{Status: tc.status, GRPCStatus: tc.grpc}); got != tc.want {
			t.Errorf("%d %q: %v", tc.status, tc.grpc, got)
		}
	}
}
