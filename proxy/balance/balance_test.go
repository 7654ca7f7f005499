package balance

import (
	"container/heap"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is a manual clock.
type fakeClock struct{ ns atomic.Int64 }

func (c *fakeClock) now() time.Time          { return time.Unix(1_700_000_000, c.ns.Load()) }
func (c *fakeClock) advance(d time.Duration) { c.ns.Add(int64(d)) }
func (c *fakeClock) set(t time.Time)         { c.ns.Store(t.Sub(time.Unix(1_700_000_000, 0)).Nanoseconds()) }
func seeded(seed uint64) func(int) int {
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)).IntN
}
func near(got, want, tol float64) bool                            { return math.Abs(got-want) <= tol }
func ms(d float64) float64                                        { return d * float64(time.Millisecond) }
func newEP(c *fakeClock, name string, w uint32) *Endpoint[string] { return NewEndpoint(name, w, c.now) }

func TestDefaults(t *testing.T) {
	c := &fakeClock{}
	e := newEP(c, "a", 0)
	if e.Weight() != DefaultWeight || e.RTT() != DefaultRTT || e.InFlight() != 0 {
		t.Errorf("weight %d rtt %v inflight %d", e.Weight(), e.RTT(), e.InFlight())
	}
	if got := e.Cost(); got != ms(30) {
		t.Errorf("cost %v, want 30ms", got)
	}
	e.SetWeight(20000)
	if got := e.Cost(); got != ms(15) {
		t.Errorf("cost at weight 20000 = %v, want 15ms", got)
	}
	e2 := NewEndpointConfig("b", 5000, c.now, Config{DefaultRTT: time.Second, Decay: time.Minute})
	if e2.RTT() != time.Second || e2.Cost() != ms(2000) {
		t.Errorf("config: rtt %v cost %v", e2.RTT(), e2.Cost())
	}
}

func TestPeakEWMA(t *testing.T) {
	c := &fakeClock{}
	e := newEP(c, "a", 0)

	// The first sample replaces the default, even a lower one.
	done := e.Start()
	if e.InFlight() != 1 {
		t.Fatalf("inflight %d", e.InFlight())
	}
	c.advance(5 * time.Millisecond)
	done()
	if e.InFlight() != 0 || e.RTT() != 5*time.Millisecond {
		t.Fatalf("after first sample: inflight %d rtt %v", e.InFlight(), e.RTT())
	}

	// A higher sample replaces the estimate at once.
	start := e.Begin()
	c.advance(100 * time.Millisecond)
	e.Finish(start)
	if e.RTT() != 100*time.Millisecond {
		t.Fatalf("peak: rtt %v", e.RTT())
	}

	// A lower one decays in: 10 s after the last sample, w = 1/e.
	c.advance(10*time.Second - 10*time.Millisecond)
	start = e.Begin()
	c.advance(10 * time.Millisecond)
	e.Finish(start)
	want := 100*math.Exp(-1) + 10*(1-math.Exp(-1))
	if got := float64(e.RTT()) / 1e6; !near(got, want, 1e-6) {
		t.Errorf("decayed rtt %vms, want %vms", got, want)
	}

	// Right after a sample, a lower one barely moves it.
	before := e.RTT()
	start = e.Begin()
	c.advance(time.Millisecond)
	e.Finish(start)
	if d := before - e.RTT(); d <= 0 || d > 10*time.Microsecond {
		t.Errorf("1ms later the estimate moved by %v", d)
	}
}

func TestIdleDecay(t *testing.T) {
	c := &fakeClock{}
	e := newEP(c, "a", 0)
	done := e.Start()
	c.advance(50 * time.Millisecond)
	done()
	if e.Cost() != ms(50) {
		t.Fatalf("cost %v", e.Cost())
	}
	c.advance(10 * time.Second)
	if got := e.Cost(); !near(got, ms(50)*math.Exp(-1), 1) {
		t.Errorf("idle cost %v, want %v", got, ms(50)*math.Exp(-1))
	}
	// With a request in flight it does not decay, and counts double.
	done = e.Start()
	if got := e.Cost(); got != ms(100) {
		t.Errorf("in-flight cost %v, want 100ms", got)
	}
	done()
	// That 0 s sample, 10 s after the last one, is blended in with w = 1/e.
	if got := float64(e.RTT()); !near(got, ms(50)*math.Exp(-1), 1) {
		t.Errorf("a 0s sample 10s later: rtt %v", e.RTT())
	}
}

func TestPickSmall(t *testing.T) {
	c := &fakeClock{}
	if Pick[string](nil, seeded(1)) != nil {
		t.Error("empty: want nil")
	}
	a := newEP(c, "a", 0)
	calls := 0
	if Pick([]*Endpoint[string]{a}, func(int) int { calls++; return 0 }) != a || calls != 0 {
		t.Error("one endpoint: want it, without drawing")
	}
}

func TestPickDistinctPair(t *testing.T) {
	c := &fakeClock{}
	eps := []*Endpoint[string]{newEP(c, "a", 0), newEP(c, "b", 0), newEP(c, "c", 0)}
	// Make b the cheapest, c the dearest.
	for _, e := range eps {
		e.Begin()
	}
	eps[0].Begin()
	eps[2].Begin()
	eps[2].Begin()
	for _, tc := range []struct {
		draws []int
		want  string
	}{
		{[]int{0, 0}, "b"}, // a vs b
		{[]int{1, 1}, "b"}, // b vs c
		{[]int{2, 0}, "a"}, // c vs a
		{[]int{2, 1}, "b"}, // c vs b
		{[]int{0, 1}, "a"}, // a vs c
	} {
		var ns []int
		rnd := func(n int) int { ns = append(ns, n); return tc.draws[len(ns)-1] }
		if got := Pick(eps, rnd).Value; got != tc.want {
			t.Errorf("draws %v: got %s, want %s", tc.draws, got, tc.want)
		}
		if len(ns) != 2 || ns[0] != 3 || ns[1] != 2 {
			t.Errorf("rnd called with %v, want [3 2]", ns)
		}
	}
}

// completion is a request in flight in the simulation.
type completion struct {
	at    time.Time
	ep    *Endpoint[string]
	start time.Time
}

type queue []completion

func (q queue) Len() int           { return len(q) }
func (q queue) Less(i, j int) bool { return q[i].at.Before(q[j].at) }
func (q queue) Swap(i, j int)      { q[i], q[j] = q[j], q[i] }
func (q *queue) Push(x any)        { *q = append(*q, x.(completion)) }
func (q *queue) Pop() any {
	old := *q
	x := old[len(old)-1]
	*q = old[:len(old)-1]
	return x
}

// simulate runs n requests, concurrency at a time, through Pick on a fake clock;
// latency gives each endpoint's response time. It returns picks per endpoint.
func simulate(eps []*Endpoint[string], c *fakeClock, n, concurrency int, latency func(e *Endpoint[string]) time.Duration) map[string]int {
	rnd := seeded(42)
	picks := map[string]int{}
	q := &queue{}
	for sent := 0; sent < n || q.Len() > 0; {
		if sent < n && q.Len() < concurrency {
			e := Pick(eps, rnd)
			picks[e.Value]++
			start := e.Begin()
			heap.Push(q, completion{at: start.Add(latency(e)), ep: e, start: start})
			sent++
			continue
		}
		done := heap.Pop(q).(completion)
		c.set(done.at)
		done.ep.Finish(done.start)
	}
	return picks
}

func TestSlowEndpointGetsFewerPicks(t *testing.T) {
	c := &fakeClock{}
	eps := []*Endpoint[string]{newEP(c, "fast1", 0), newEP(c, "slow", 0), newEP(c, "fast2", 0)}
	lat := map[string]time.Duration{"fast1": 5 * time.Millisecond, "fast2": 5 * time.Millisecond, "slow": 50 * time.Millisecond}
	picks := simulate(eps, c, 30000, 10, func(e *Endpoint[string]) time.Duration { return lat[e.Value] })
	t.Logf("picks %v; rtt fast1 %v slow %v", picks, eps[0].RTT(), eps[1].RTT())
	if picks["slow"]*10 > picks["fast1"] || picks["slow"]*10 > picks["fast2"] {
		t.Errorf("slow endpoint got %v, want < 1/10 of each fast one", picks)
	}
	for _, e := range eps {
		if e.InFlight() != 0 {
			t.Errorf("%s: %d in flight at the end", e.Value, e.InFlight())
		}
	}
}

func TestSlowEndpointIsRetriedAfterRecovering(t *testing.T) {
	c := &fakeClock{}
	eps := []*Endpoint[string]{newEP(c, "a", 0), newEP(c, "b", 0)}
	slow := true
	lat := func(e *Endpoint[string]) time.Duration {
		if e.Value == "b" && slow {
			return time.Second
		}
		return 5 * time.Millisecond
	}
	simulate(eps, c, 2000, 4, lat)
	slow = false
	picks := simulate(eps, c, 100000, 4, lat)
	t.Logf("picks after recovery %v; rtt a %v b %v", picks, eps[0].RTT(), eps[1].RTT())
	if picks["b"] < picks["a"]/3 {
		t.Errorf("recovered endpoint got %v", picks)
	}
}

func TestInFlightSteers(t *testing.T) {
	c := &fakeClock{}
	eps := []*Endpoint[string]{newEP(c, "a", 0), newEP(c, "b", 0)}
	// Equal latency; a has three stuck requests.
	for range 3 {
		eps[0].Begin()
	}
	rnd := seeded(7)
	for range 100 {
		if e := Pick(eps, rnd); e != eps[1] {
			t.Fatal("picked the endpoint with requests in flight")
		}
	}
	// Queue on b until it costs more than a (4 in flight each way).
	for range 4 {
		eps[1].Begin()
	}
	if e := Pick(eps, rnd); e != eps[0] {
		t.Error("did not move to a once b had more in flight")
	}
}

func TestWeightsSteer(t *testing.T) {
	c := &fakeClock{}
	eps := []*Endpoint[string]{newEP(c, "heavy", 30000), newEP(c, "light", 10000), newEP(c, "light2", 0)}
	picks := simulate(eps, c, 30000, 30, func(*Endpoint[string]) time.Duration { return 10 * time.Millisecond })
	t.Logf("picks %v", picks)
	if picks["heavy"] < 2*picks["light"] || picks["heavy"] < 2*picks["light2"] {
		t.Errorf("weight 30000 got %v, want > 2× each weight-10000 one", picks)
	}
}

func TestConcurrent(t *testing.T) {
	eps := make([]*Endpoint[int], 5)
	for i := range eps {
		eps[i] = NewEndpoint(i, uint32(i*5000), time.Now)
	}
	var wg sync.WaitGroup
	var total atomic.Int64
	for g := range 8 {
		wg.Go(func() {
			rnd := seeded(uint64(g))
			for i := range 2000 {
				e := Pick(eps, rnd)
				if i%2 == 0 {
					done := e.Start()
					done()
				} else {
					e.Finish(e.Begin())
				}
				if i%100 == 0 {
					e.SetWeight(uint32(i))
				}
				total.Add(1)
			}
		})
	}
	wg.Wait()
	if total.Load() != 8*2000 {
		t.Errorf("total %d", total.Load())
	}
	for _, e := range eps {
		if e.InFlight() != 0 {
			t.Errorf("endpoint %d: %d in flight", e.Value, e.InFlight())
		}
		if r := e.RTT(); r < 0 || r > time.Second {
			t.Errorf("endpoint %d: rtt %v", e.Value, r)
		}
	}
}

func TestDecayFactor(t *testing.T) {
	for _, x := range []float64{0, 1e-9, 1e-5, 9.99e-4, 1e-3, 0.5, 1, 30} {
		if got, want := decay(x), math.Exp(-x); math.Abs(got-want) > 1e-9*want {
			t.Errorf("decay(%v) = %v, want %v", x, got, want)
		}
	}
}
