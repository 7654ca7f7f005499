package tap

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	api "github.com/meshplane/mesh/controlplane/api/tap"
)

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newClock() *clock { return &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func ev(method, path string) *api.Event {
	return &api.Event{Direction: api.Outbound, Method: method, Authority: "web.default.svc.cluster.local:80", Path: path}
}

func drain(s *Subscription) []*api.Event {
	var out []*api.Event
	for {
		select {
		case e := <-s.Events():
			out = append(out, e)
		default:
			return out
		}
	}
}

func TestInactiveUntilSubscribed(t *testing.T) {
	t.Parallel()
	var nilHub *Hub
	if nilHub.Active() {
		t.Fatal("a nil hub is active")
	}
	h := New(Options{})
	if h.Active() {
		t.Fatal("active without subscribers")
	}
	s := h.Subscribe(api.Match{}, 0)
	if !h.Active() {
		t.Fatal("not active with a subscriber")
	}
	s.Close()
	s.Close() // twice is fine
	if h.Active() {
		t.Fatal("still active after Close")
	}
}

func TestMatchAndRates(t *testing.T) {
	t.Parallel()
	c := newClock()
	h := New(Options{Rate: 10, Now: c.now})
	posts := h.Subscribe(api.Match{Method: "POST", PathPrefix: "/api"}, 0)
	slow := h.Subscribe(api.Match{}, 2)
	for range 5 {
		h.Publish(ev("POST", "/api/x"))
		h.Publish(ev("GET", "/api/x"))
	}
	// The proxy-wide bucket (10) is shared: every publication that someone wants takes one.
	if got := len(drain(posts)); got != 5 {
		t.Errorf("POST /api subscriber got %d, want 5", got)
	}
	if got, d := len(drain(slow)), slow.TakeDropped(); got != 2 || d != 8 {
		t.Errorf("max-rps 2 subscriber got %d dropped %d, want 2 and 8", got, d)
	}
	// The proxy-wide cap: the bucket is empty now.
	h.Publish(ev("POST", "/api/y"))
	if got, d := len(drain(posts)), posts.TakeDropped(); got != 0 || d != 1 {
		t.Errorf("over the proxy cap: got %d dropped %d, want 0 and 1", got, d)
	}
	if posts.TakeDropped() != 0 {
		t.Error("TakeDropped does not reset")
	}
	c.add(time.Second) // refills both buckets
	h.Publish(ev("POST", "/api/z"))
	got := drain(posts)
	if len(got) != 1 || got[0].ID == 0 || got[0].Type != api.TypeHTTP {
		t.Fatalf("after a second: %+v", got)
	}
}

func TestSlowSubscriberNeverBlocks(t *testing.T) {
	t.Parallel()
	h := New(Options{Rate: 1e9, Buffer: 4})
	s := h.Subscribe(api.Match{}, 0)
	done := make(chan struct{})
	go func() {
		for range 100 {
			h.Publish(ev("GET", "/"))
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Publish blocked on a subscriber that does not read")
	}
	if got, d := len(drain(s)), s.TakeDropped(); got != 4 || d != 96 {
		t.Errorf("got %d dropped %d, want 4 and 96", got, d)
	}
}

func TestHeadersRedacted(t *testing.T) {
	t.Parallel()
	h := New(Options{Redact: []string{" x-api-key ", ""}})
	got := h.Headers(http.Header{"Authorization": {"a"}, "Proxy-Authorization": {"b"}, "Cookie": {"c"}, "Set-Cookie": {"d"},
		"X-Api-Key": {"e"}, "X-Kept": {"f"}})
	if len(got) != 1 || got["X-Kept"][0] != "f" {
		t.Errorf("got %v, want only X-Kept", got)
	}
	if h.Headers(http.Header{"Cookie": {"c"}}) != nil {
		t.Error("no header left should be nil")
	}
}

// TestHandlerStreamsAndReportsDrops runs the endpoint on a real socket.
func TestHandlerStreamsAndReportsDrops(t *testing.T) {
	t.Parallel()
	h := New(Options{Rate: 1})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h.Handler(10 * time.Millisecond), ReadHeaderTimeout: time.Second}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(func() { _ = srv.Close() })
	base := "http://" + lis.Addr().String()

	resp, err := http.Get(base + api.Path + "?direction=sideways")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("bad query: %d, want 400", resp.StatusCode)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", base+api.Path+"?"+api.Match{Method: "GET"}.Query(0).Encode(), nil)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	if ct := resp.Header.Get("Content-Type"); ct != api.ContentType {
		t.Errorf("content type %q", ct)
	}
	// The subscription exists once the headers are here.
	for range 3 {
		h.Publish(ev("GET", "/a"))
	}
	h.Publish(ev("POST", "/not-matched"))
	sc := bufio.NewScanner(resp.Body)
	var got []api.Event
	for len(got) < 2 && sc.Scan() {
		var e api.Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		got = append(got, e)
	}
	if len(got) != 2 || got[0].Type != api.TypeHTTP || got[0].Path != "/a" || got[1].Type != api.TypeDropped || got[1].Dropped != 2 {
		t.Fatalf("stream: %+v (%v)", got, sc.Err())
	}
	cancel()
	proxytestWait(t, func() bool { return !h.Active() })
}

func proxytestWait(t *testing.T, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// BenchmarkNoSubscriber is the data path's cost when nobody taps: ~1 ns, 0 allocs.
func BenchmarkNoSubscriber(b *testing.B) {
	h := New(Options{})
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if h.Active() {
			n++
		}
	}
	if n != 0 {
		b.Fatal("active")
	}
}

func TestNoSubscriberAllocs(t *testing.T) {
	h := New(Options{})
	if a := testing.AllocsPerRun(100, func() { _ = h.Active() }); a != 0 {
		t.Errorf("Active allocates %v", a)
	}
}

// Begin captures while the proxy-wide cap has room; once it is spent it counts the
// request at once for the subscribers it matches, unless a match needs the
// destination's labels (then Dropped counts it at the end).
func TestBeginAndDropped(t *testing.T) {
	t.Parallel()
	c := newClock()
	h := New(Options{Rate: 1, Now: c.now})
	if got := h.Begin(ev("GET", "/")); got != Counted {
		t.Errorf("no subscriber: Begin = %v, want Counted (nothing is captured)", got)
	}
	s := h.Subscribe(api.Match{Method: "GET"}, 0)
	if got := h.Begin(ev("GET", "/")); got != Capture {
		t.Fatalf("before any event: Begin = %v, want Capture", got)
	}
	h.Publish(ev("GET", "/"))
	if got := h.Begin(ev("GET", "/")); got != Counted {
		t.Fatalf("after the one token: Begin = %v, want Counted", got)
	}
	if got := h.Begin(ev("POST", "/")); got != Counted { // not this subscriber's: not counted
		t.Fatalf("POST: Begin = %v, want Counted", got)
	}
	if got, d := len(drain(s)), s.TakeDropped(); got != 1 || d != 1 {
		t.Errorf("got %d dropped %d, want 1 and 1", got, d)
	}

	byDst := h.Subscribe(api.Match{Destination: "svc/api"}, 0)
	if got := h.Begin(ev("GET", "/")); got != CountAtEnd {
		t.Fatalf("a match on the destination's labels: Begin = %v, want CountAtEnd", got)
	}
	api1, web := ev("GET", "/"), ev("GET", "/")
	api1.Dst, web.Dst = map[string]string{"service": "api"}, map[string]string{"service": "web"}
	h.Dropped(api1)
	h.Dropped(web)
	if d, dd := s.TakeDropped(), byDst.TakeDropped(); d != 2 || dd != 1 {
		t.Errorf("dropped %d and %d, want 2 (every GET) and 1 (svc/api)", d, dd)
	}
	byDst.Close()
	if got := h.Begin(ev("GET", "/")); got != Counted {
		t.Errorf("after the destination match left: Begin = %v, want Counted", got)
	}
	c.add(time.Second)
	if got := h.Begin(ev("GET", "/")); got != Capture {
		t.Errorf("a second later: Begin = %v, want Capture", got)
	}
	s.Close()
}

// writeRecorder is a ResponseWriter that keeps each Write, for the stream's pacing.
type writeRecorder struct {
	mu     sync.Mutex
	header http.Header
	writes [][]byte
	at     []time.Time
}

func (w *writeRecorder) Header() http.Header { return w.header }
func (w *writeRecorder) WriteHeader(int)     {}
func (w *writeRecorder) Flush()              {}
func (w *writeRecorder) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes = append(w.writes, append([]byte(nil), p...))
	w.at = append(w.at, time.Now())
	return len(p), nil
}

func (w *writeRecorder) snapshot() ([][]byte, []time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([][]byte(nil), w.writes...), append([]time.Time(nil), w.at...)
}

// waitWrites waits until the recorder holds n lines in all.
func waitWrites(t *testing.T, w *writeRecorder, lines int) ([][]byte, []time.Time) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; {
		ws, at := w.snapshot()
		n := 0
		for _, b := range ws {
			n += bytes.Count(b, []byte("\n"))
		}
		if n >= lines {
			return ws, at
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d lines written, want %d", n, lines)
		}
		time.Sleep(time.Millisecond)
	}
}

// recordedStream serves one subscriber's stream (no match, no cap) into a recorder
// until the test ends.
func recordedStream(t *testing.T) (*Hub, *writeRecorder) {
	t.Helper()
	h := New(Options{Rate: 1e9})
	w := &writeRecorder{header: http.Header{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.Handler(time.Hour).ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/tap", nil).WithContext(ctx))
	}()
	t.Cleanup(func() { cancel(); <-done })
	for !h.Active() {
		time.Sleep(time.Millisecond)
	}
	return h, w
}

// TestStreamPacing: an event after a quiet spell is written at once; one that comes
// within WriteInterval of a write waits for the timer (MaxDelay after that write);
// a burst is written in a few writes, not one per event; every line is the event's
// JSON as encoding/json writes it.
func TestStreamPacing(t *testing.T) {
	t.Parallel()
	h, w := recordedStream(t)

	h.Publish(ev("GET", "/first"))
	ws, at := waitWrites(t, w, 1)
	if len(ws) != 1 {
		t.Fatalf("first event: %d writes", len(ws))
	}
	var got api.Event
	if err := json.Unmarshal(ws[0], &got); err != nil || got.Path != "/first" {
		t.Fatalf("first write %q: %v", ws[0], err)
	}
	if want, _ := json.Marshal(&got); !bytes.Equal(bytes.TrimSuffix(ws[0], []byte("\n")), want) {
		t.Errorf("line %q, encoding/json writes %q", ws[0], want)
	}

	h.Publish(ev("GET", "/second")) // within WriteInterval of the first write
	ws, at2 := waitWrites(t, w, 2)
	if len(ws) != 2 {
		t.Fatalf("second event: %d writes", len(ws))
	}
	if gap := at2[1].Sub(at[0]); gap < WriteInterval {
		t.Errorf("second event written %v after the first, before WriteInterval (%v)", gap, WriteInterval)
	}

	const burst = 200
	for i := 0; i < burst; i++ {
		h.Publish(ev("GET", "/burst"))
	}
	ws, _ = waitWrites(t, w, 2+burst)
	if n := len(ws) - 2; n > 20 {
		t.Errorf("a burst of %d events took %d writes", burst, n)
	}

	// A steady stream (busy after the burst's write): every event arrives, and
	// writes are never closer than minSleep.
	before := len(ws)
	const steady = 60
	for i := 0; i < steady; i++ {
		h.Publish(ev("GET", "/steady"))
		time.Sleep(2 * time.Millisecond)
	}
	ws, at = waitWrites(t, w, 2+burst+steady)
	for i := before; i < len(at); i++ {
		if gap := at[i].Sub(at[i-1]); gap < minSleep {
			t.Errorf("write %d came %v after the one before, under minSleep", i, gap)
		}
	}
	if len(ws)-before > steady/2 {
		t.Errorf("%d steady events took %d writes", steady, len(ws)-before)
	}
}

// A fast stream (about 5,000 events a second, eight buffers' worth) loses nothing: a busy
// stream sleeps less than WriteInterval when its buffer would fill sooner.
func TestStreamFastNoDrops(t *testing.T) {
	t.Parallel()
	h, w := recordedStream(t)
	var subs []*Subscription
	h.mu.Lock()
	subs = append(subs, h.subs...)
	h.mu.Unlock()
	const n = 8 * DefaultBuffer
	for i := 0; i < n; i++ {
		h.Publish(ev("GET", "/fast"))
		if i%10 == 9 {
			time.Sleep(2 * time.Millisecond)
		}
	}
	waitWrites(t, w, n)
	if d := subs[0].TakeDropped(); d != 0 {
		t.Errorf("%d events dropped", d)
	}
}
