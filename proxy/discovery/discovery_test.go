package discovery

import (
	"context"
	"net"
	"net/netip"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	meshv1 "github.com/meshplane/mesh/controlplane/api/mesh/v1"
)

const token = `{"ns":"client","pod":"client-0"}`

// stream is one Get or GetProfile stream the fake server holds open: the test sends
// on send, and ends it with end.
type stream struct {
	req  *meshv1.GetDestination
	send chan any // *meshv1.Update or *meshv1.DestinationProfile
	end  chan error
	done chan struct{} // closed when the stream ended (either side)
}

type fakeDestination struct {
	meshv1.UnimplementedDestinationServer
	gets, profiles chan *stream
	active         atomic.Int32
}

func (f *fakeDestination) serve(ctx context.Context, req *meshv1.GetDestination, out chan *stream, send func(any) error) error {
	s := &stream{req: req, send: make(chan any, 16), end: make(chan error, 1), done: make(chan struct{})}
	f.active.Add(1)
	defer f.active.Add(-1)
	defer close(s.done)
	out <- s
	for {
		select {
		case m := <-s.send:
			if err := send(m); err != nil {
				return err
			}
		case err := <-s.end:
			return err
		case <-ctx.Done():
			return nil
		}
	}
}

func (f *fakeDestination) Get(req *meshv1.GetDestination, ss meshv1.Destination_GetServer) error {
	return f.serve(ss.Context(), req, f.gets, func(m any) error { return ss.Send(m.(*meshv1.Update)) })
}

func (f *fakeDestination) GetProfile(req *meshv1.GetDestination, ss meshv1.Destination_GetProfileServer) error {
	return f.serve(ss.Context(), req, f.profiles, func(m any) error { return ss.Send(m.(*meshv1.DestinationProfile)) })
}

func start(t *testing.T, idle time.Duration) (*fakeDestination, *Client) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeDestination{gets: make(chan *stream, 16), profiles: make(chan *stream, 16)}
	s := grpc.NewServer()
	meshv1.RegisterDestinationServer(s, f)
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(s.Stop)
	c, err := New(Options{Addr: ln.Addr().String(), ContextToken: token, IdleTimeout: idle,
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Error(err)
		}
	})
	return f, c
}

func next(t *testing.T, ch chan *stream) *stream {
	t.Helper()
	select {
	case s := <-ch:
		return s
	case <-time.After(5 * time.Second):
		t.Fatal("no stream opened")
		return nil
	}
}

func noStream(t *testing.T, ch chan *stream) {
	t.Helper()
	select {
	case s := <-ch:
		t.Fatalf("unexpected stream for %s", s.req.GetPath())
	case <-time.After(150 * time.Millisecond):
	}
}

// waitFor waits until cond holds on set, following Changed.
func waitFor(t *testing.T, set *Set, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		ch := set.Changed()
		if cond() {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("timed out waiting for %s; endpoints %v, in mesh %v", what, set.Endpoints(), set.InMesh())
		}
	}
}

func addr(ip string, port uint32) *meshv1.TcpAddress {
	a := netip.MustParseAddr(ip)
	return &meshv1.TcpAddress{Ip: a.AsSlice(), Port: port}
}

func add(labels map[string]string, was ...*meshv1.WeightedAddr) *meshv1.Update {
	return &meshv1.Update{Update: &meshv1.Update_Add{Add: &meshv1.AddressSet{Addrs: was, MetricLabels: labels}}}
}

func remove(as ...*meshv1.TcpAddress) *meshv1.Update {
	set := &meshv1.AddressSet{}
	for _, a := range as {
		set.Addrs = append(set.Addrs, &meshv1.WeightedAddr{Addr: a})
	}
	return &meshv1.Update{Update: &meshv1.Update_Remove{Remove: set}}
}

func noEndpoints(exists bool) *meshv1.Update {
	return &meshv1.Update{Update: &meshv1.Update_NoEndpoints{NoEndpoints: &meshv1.NoEndpoints{Exists: exists}}}
}

func addrs(set *Set) []string {
	var out []string
	for _, e := range set.Endpoints() {
		out = append(out, e.Addr.String())
	}
	return out
}

func TestResolveAddRemove(t *testing.T) {
	f, c := start(t, time.Minute)
	const auth = "web.ns.svc.cluster.local:80"
	set, release := c.Resolve(auth)
	defer release()
	s := next(t, f.gets)
	if s.req.GetPath() != auth || s.req.GetContextToken() != token {
		t.Errorf("request %v", s.req)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	if set.Wait(ctx) || set.InMesh() {
		t.Error("answered before the server said anything")
	}
	cancel()

	s.send <- add(map[string]string{"namespace": "ns", "service": "web", "zone": "set"},
		&meshv1.WeightedAddr{Addr: addr("10.0.0.2", 8080), MetricLabels: map[string]string{"pod": "web-1", "zone": "z1"},
			TlsIdentity:  &meshv1.TlsIdentity{Name: "web.ns.serviceaccount.identity.cluster.local"},
			ProtocolHint: &meshv1.ProtocolHint{Protocol: &meshv1.ProtocolHint_H2_{H2: &meshv1.ProtocolHint_H2{}}}, Zone: "z1"},
		&meshv1.WeightedAddr{Addr: addr("fd00::1", 8080), Weight: 5,
			ProtocolHint: &meshv1.ProtocolHint{Protocol: &meshv1.ProtocolHint_Opaque_{Opaque: &meshv1.ProtocolHint_Opaque{InboundPort: 4143}}}},
		&meshv1.WeightedAddr{Addr: &meshv1.TcpAddress{Ip: []byte{1, 2, 3}, Port: 1}}, // bad: skipped
		&meshv1.WeightedAddr{Addr: addr("::ffff:10.0.0.1", 8080)},                    // IPv4-mapped
	)
	ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if !set.Wait(ctx) || !set.InMesh() {
		t.Fatal("no answer")
	}
	want := []Endpoint{
		{Addr: netip.MustParseAddrPort("10.0.0.1:8080"), Weight: 10000,
			Labels: map[string]string{"namespace": "ns", "service": "web", "zone": "set"}},
		{Addr: netip.MustParseAddrPort("10.0.0.2:8080"), Weight: 10000, Identity: "web.ns.serviceaccount.identity.cluster.local",
			H2: true, Zone: "z1", Labels: map[string]string{"namespace": "ns", "service": "web", "pod": "web-1", "zone": "z1"}},
		{Addr: netip.MustParseAddrPort("[fd00::1]:8080"), Weight: 5, Opaque: true, OpaqueInboundPort: 4143,
			Labels: map[string]string{"namespace": "ns", "service": "web", "zone": "set"}},
	}
	if got := set.Endpoints(); !reflect.DeepEqual(got, want) {
		t.Errorf("endpoints\n got %+v\nwant %+v", got, want)
	}

	changed := set.Changed()
	s.send <- remove(addr("10.0.0.2", 8080), addr("10.9.9.9", 1))
	select {
	case <-changed:
	case <-time.After(5 * time.Second):
		t.Fatal("Changed not closed")
	}
	if got := addrs(set); !reflect.DeepEqual(got, []string{"10.0.0.1:8080", "[fd00::1]:8080"}) {
		t.Errorf("after remove: %v", got)
	}
	// Re-adding an address replaces its metadata.
	s.send <- add(nil, &meshv1.WeightedAddr{Addr: addr("10.0.0.1", 8080), Weight: 7})
	waitFor(t, set, "new weight", func() bool { return len(set.Endpoints()) == 2 && set.Endpoints()[0].Weight == 7 })
}

func TestNoEndpoints(t *testing.T) {
	f, c := start(t, time.Minute)
	external, release := c.Resolve("example.com:443")
	defer release()
	s := next(t, f.gets)
	s.send <- noEndpoints(false)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if !external.Wait(ctx) || external.InMesh() || len(external.Endpoints()) != 0 {
		t.Errorf("exists:false: in mesh %v, %v", external.InMesh(), external.Endpoints())
	}

	set, release2 := c.Resolve("web.ns.svc.cluster.local:80")
	defer release2()
	s = next(t, f.gets)
	s.send <- noEndpoints(true)
	if !set.Wait(ctx) || !set.InMesh() || len(set.Endpoints()) != 0 {
		t.Errorf("exists:true: in mesh %v, %v", set.InMesh(), set.Endpoints())
	}
	s.send <- add(nil, &meshv1.WeightedAddr{Addr: addr("10.0.0.1", 80)})
	waitFor(t, set, "an endpoint", func() bool { return len(set.Endpoints()) == 1 })
	s.send <- noEndpoints(true)
	waitFor(t, set, "no endpoints", func() bool { return len(set.Endpoints()) == 0 && set.InMesh() })
	s.send <- noEndpoints(false)
	waitFor(t, set, "not in mesh", func() bool { return !set.InMesh() })
}

func TestStreamDropKeepsLastKnownThenReplaces(t *testing.T) {
	f, c := start(t, time.Minute)
	set, release := c.Resolve("web.ns.svc.cluster.local:80")
	defer release()
	s := next(t, f.gets)
	s.send <- add(nil, &meshv1.WeightedAddr{Addr: addr("10.0.0.1", 80)}, &meshv1.WeightedAddr{Addr: addr("10.0.0.2", 80)})
	waitFor(t, set, "two endpoints", func() bool { return len(set.Endpoints()) == 2 })

	s.end <- status.Error(codes.Unavailable, "going away")
	// Fail the first reconnection too.
	next(t, f.gets).end <- status.Error(codes.Unavailable, "not yet")
	s = next(t, f.gets)
	if got := addrs(set); len(got) != 2 || !set.InMesh() {
		t.Fatalf("last known set lost: %v", got)
	}
	s.send <- add(nil, &meshv1.WeightedAddr{Addr: addr("10.0.0.3", 80)})
	waitFor(t, set, "the fresh set", func() bool {
		got := addrs(set)
		return len(got) == 1 && got[0] == "10.0.0.3:80"
	})

	// A clean end of the stream reconnects too.
	s.end <- nil
	s = next(t, f.gets)
	s.send <- noEndpoints(true)
	waitFor(t, set, "the fresh empty set", func() bool { return len(set.Endpoints()) == 0 && set.InMesh() })
}

func TestSharingAndIdle(t *testing.T) {
	f, c := start(t, 200*time.Millisecond)
	const auth = "web.ns.svc.cluster.local:80"
	a, releaseA := c.Resolve(auth)
	b, releaseB := c.Resolve(auth)
	if a != b {
		t.Error("two sets for one authority")
	}
	s := next(t, f.gets)
	noStream(t, f.gets)
	s.send <- add(nil, &meshv1.WeightedAddr{Addr: addr("10.0.0.1", 80)})
	waitFor(t, b, "an endpoint", func() bool { return len(b.Endpoints()) == 1 })

	releaseA()
	releaseA() // a second call does nothing
	time.Sleep(300 * time.Millisecond)
	select {
	case <-s.done:
		t.Fatal("the stream was dropped while referenced")
	default:
	}
	releaseB()
	// Re-resolving before the idle timeout keeps the stream.
	time.Sleep(50 * time.Millisecond)
	c2, release := c.Resolve(auth)
	if c2 != a {
		t.Error("a new set before the idle timeout")
	}
	time.Sleep(300 * time.Millisecond)
	noStream(t, f.gets)
	release()
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		t.Fatal("the idle stream was not dropped")
	}
	// Resolving again starts a new stream and a new set.
	d, releaseD := c.Resolve(auth)
	defer releaseD()
	if d == a {
		t.Error("the dropped set was reused")
	}
	next(t, f.gets)
}

func TestNilClient(t *testing.T) {
	c, err := New(Options{})
	if c != nil || err != nil {
		t.Fatalf("New without address: %v, %v", c, err)
	}
	set, release := c.Resolve("web.ns.svc.cluster.local:80")
	defer release()
	if !set.Wait(context.Background()) || set.InMesh() || set.Endpoints() != nil {
		t.Error("a nil client's set")
	}
	if c.Profile("web.ns.svc.cluster.local:80") != nil || c.WaitProfile(context.Background(), "x:1") != nil {
		t.Error("a nil client's profile")
	}
	if err := c.Close(); err != nil {
		t.Error(err)
	}
	var zero *Set
	if zero.InMesh() || zero.Endpoints() != nil || zero.Changed() != nil || zero.Wait(context.Background()) {
		t.Error("a nil set")
	}
}

func TestClosedClient(t *testing.T) {
	f, c := start(t, time.Minute)
	_, release := c.Resolve("web.ns.svc.cluster.local:80")
	defer release()
	s := next(t, f.gets)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	<-s.done
	if set2, _ := c.Resolve("web.ns.svc.cluster.local:80"); set2.InMesh() || !set2.Wait(context.Background()) {
		t.Error("resolve after close")
	}
	if c.Profile("x:1") != nil {
		t.Error("profile after close")
	}
}

func TestProfile(t *testing.T) {
	f, c := start(t, 200*time.Millisecond)
	const auth = "web.ns.svc.cluster.local:80"
	if p := c.Profile(auth); p != nil {
		t.Errorf("a profile before any answer: %+v", p)
	}
	s := next(t, f.profiles)
	if s.req.GetPath() != auth || s.req.GetContextToken() != token {
		t.Errorf("request %v", s.req)
	}
	s.send <- &meshv1.DestinationProfile{
		FullyQualifiedName: "web.ns.svc.cluster.local",
		Routes: []*meshv1.Route{
			{Name: "api", Condition: &meshv1.RequestMatch{Method: "GET", PathRegex: "/api/.*"}, IsRetryable: true, Timeout: durationpb.New(2 * time.Second)},
			{Name: "bad", Condition: &meshv1.RequestMatch{PathRegex: "/(["}},
			{Name: "ab", Condition: &meshv1.RequestMatch{PathRegex: "/a|/b"}},
			{Name: "any"},
		},
		RetryBudget:    &meshv1.RetryBudget{RetryRatio: 0.2, MinRetriesPerSecond: 10, Ttl: durationpb.New(10 * time.Second)},
		OpaqueProtocol: true,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	p := c.WaitProfile(ctx, auth)
	if p == nil {
		t.Fatal("no profile")
	}
	if p.Name != "web.ns.svc.cluster.local" || p.RetryRatio != 0.2 || p.MinRetries != 10 || p.RetryTTL != 10*time.Second || !p.Opaque {
		t.Errorf("profile %+v", p)
	}
	if len(p.Routes) != 3 {
		t.Fatalf("routes %+v", p.Routes)
	}
	api, ab, anyRoute := p.Routes[0], p.Routes[1], p.Routes[2]
	if api.Name != "api" || api.Method != "GET" || !api.Retryable || api.Timeout != 2*time.Second {
		t.Errorf("api route %+v", api)
	}
	for path, want := range map[string]bool{"/api/x": true, "/api/": true, "/x/api/y": false, "/apix": false} {
		if api.Path.MatchString(path) != want {
			t.Errorf("api route on %s: %v", path, !want)
		}
	}
	for path, want := range map[string]bool{"/a": true, "/b": true, "/ab": false, "/xb": false} {
		if ab.Path.MatchString(path) != want {
			t.Errorf("a|b route on %s: %v", path, !want)
		}
	}
	if anyRoute.Path != nil || anyRoute.Method != "" || anyRoute.Timeout != 0 || anyRoute.Retryable {
		t.Errorf("any route %+v", anyRoute)
	}

	// Shared: one stream.
	c.Profile(auth)
	noStream(t, f.profiles)

	// An empty answer is no profile; the last answer survives a drop.
	s.send <- &meshv1.DestinationProfile{}
	deadline := time.Now().Add(5 * time.Second)
	for c.Profile(auth) != nil && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if c.Profile(auth) != nil {
		t.Fatal("an empty answer is not nil")
	}
	s.send <- &meshv1.DestinationProfile{OpaqueProtocol: true}
	for (c.Profile(auth) == nil) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	s.end <- status.Error(codes.Unavailable, "bye")
	s = next(t, f.profiles)
	if p := c.Profile(auth); p == nil || !p.Opaque {
		t.Errorf("last profile lost: %+v", p)
	}

	// Unused for the idle timeout: dropped.
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		t.Fatal("the idle profile stream was not dropped")
	}
}
