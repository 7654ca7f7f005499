// Package balance picks an endpoint per request: power of two random choices over
// peak-EWMA latency weighted by in-flight requests (Linkerd's p2c + peak EWMA,
// after Finagle's and tower's).
//
// Each Endpoint keeps an estimate of its round-trip time:
//
//   - It starts at the default RTT (30 ms), and the first measured sample replaces it.
//   - A sample higher than the estimate replaces it at once ("peak").
//   - A lower sample is blended in by time: ewma = ewma*w + sample*(1-w) with
//     w = exp(-elapsed/decay), elapsed being the time since the previous sample and
//     decay 10 s by default; so lower latencies are believed slowly.
//   - While an endpoint has nothing in flight, Pick sees its estimate decay toward
//     zero by the same w over the time since its last sample. An endpoint that was
//     slow once and then avoided is thus tried again after a while, and learns its
//     new latency (Finagle and tower decay on every load read to the same end). An
//     endpoint with requests in flight does not decay: it may be stuck.
//
// Its cost is ewma * (inflight+1) / (weight/10000); weight 0 means 10000. Pick draws
// two distinct endpoints with the injected rnd and returns the cheaper one.
//
// Pick is lock-free and allocation-free; recording a sample takes the endpoint's
// mutex. Everything is safe for concurrent use. Time comes from the injected clock.
package balance

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults, as in Linkerd's policy controller (BALANCER_DEFAULT_RTT,
// BALANCER_RTT_DECAY) and its endpoint weights.
const (
	DefaultRTT    = 30 * time.Millisecond
	DefaultDecay  = 10 * time.Second
	DefaultWeight = 10000
)

// Config tunes the RTT estimate; zero fields take the defaults.
type Config struct {
	DefaultRTT time.Duration // the estimate until the first sample
	Decay      time.Duration // the EWMA's time constant
}

// Endpoint is one backend's load state. Create with NewEndpoint.
type Endpoint[T any] struct {
	Value T

	now     func() time.Time
	base    time.Time // stamps are nanoseconds since base
	decayNs float64

	inflight atomic.Int64
	factor   atomic.Uint64 // float64 bits: weight/10000
	ewma     atomic.Uint64 // float64 bits: RTT estimate in ns
	stamp    atomic.Int64  // ns since base of the last sample

	mu       sync.Mutex // serializes samples (ewma, stamp, measured)
	measured bool
}

// NewEndpoint wraps v with the default RTT and decay; weight 0 means
// DefaultWeight; now is the clock (time.Now in production).
func NewEndpoint[T any](v T, weight uint32, now func() time.Time) *Endpoint[T] {
	return NewEndpointConfig(v, weight, now, Config{})
}

// NewEndpointConfig is NewEndpoint with a tuned RTT estimate.
func NewEndpointConfig[T any](v T, weight uint32, now func() time.Time, c Config) *Endpoint[T] {
	if c.DefaultRTT <= 0 {
		c.DefaultRTT = DefaultRTT
	}
	if c.Decay <= 0 {
		c.Decay = DefaultDecay
	}
	e := &Endpoint[T]{Value: v, now: now, base: now(), decayNs: float64(c.Decay)}
	e.SetWeight(weight)
	e.ewma.Store(math.Float64bits(float64(c.DefaultRTT)))
	return e
}

// SetWeight changes the endpoint's weight (0 means DefaultWeight), as discovery
// updates it.
func (e *Endpoint[T]) SetWeight(weight uint32) {
	if weight == 0 {
		weight = DefaultWeight
	}
	e.factor.Store(math.Float64bits(float64(weight) / DefaultWeight))
}

// Weight returns the endpoint's weight.
func (e *Endpoint[T]) Weight() uint32 {
	return uint32(math.Round(math.Float64frombits(e.factor.Load()) * DefaultWeight))
}

// InFlight returns the number of requests started and not yet done.
func (e *Endpoint[T]) InFlight() int64 { return e.inflight.Load() }

// RTT returns the current estimate as of the last sample (no idle decay).
func (e *Endpoint[T]) RTT() time.Duration {
	return time.Duration(math.Float64frombits(e.ewma.Load()))
}

// Cost returns the load Pick compares, in nanoseconds of weighted latency.
func (e *Endpoint[T]) Cost() float64 {
	c := clock{fn: e.now}
	return e.cost(&c)
}

// Start marks a request as sent; call the returned func once, when the response
// headers (or an error) arrive: it records the latency since Start and ends the
// request. Start allocates the closure; Begin and Finish do not.
func (e *Endpoint[T]) Start() (done func()) {
	start := e.Begin()
	return func() { e.Finish(start) }
}

// Begin marks a request as sent and returns its start time, for Finish.
func (e *Endpoint[T]) Begin() time.Time {
	e.inflight.Add(1)
	return e.now()
}

// Finish ends a request begun at start: records the latency since then and
// decrements the in-flight count. Call it once per Begin.
func (e *Endpoint[T]) Finish(start time.Time) {
	now := e.now()
	e.inflight.Add(-1)
	e.observe(now, now.Sub(start))
}

// observe records one RTT sample taken at now.
func (e *Endpoint[T]) observe(now time.Time, rtt time.Duration) {
	sample := float64(max(rtt, 0))
	at := int64(now.Sub(e.base))
	e.mu.Lock()
	defer e.mu.Unlock()
	ewma := math.Float64frombits(e.ewma.Load())
	last := e.stamp.Load()
	switch {
	case !e.measured || sample >= ewma:
		ewma = sample
	default:
		w := decay(float64(max(at-last, 0)) / e.decayNs)
		ewma = ewma*w + sample*(1-w)
	}
	e.measured = true
	e.ewma.Store(math.Float64bits(ewma))
	e.stamp.Store(max(at, last))
}

// clock reads the time at most once per Pick, and only if a cost needs it.
type clock struct {
	fn  func() time.Time
	t   time.Time
	set bool
}

func (c *clock) now() time.Time {
	if !c.set {
		c.t, c.set = c.fn(), true
	}
	return c.t
}

// decay returns exp(-x) for x >= 0, skipping the exponential for the small x of
// busy endpoints (1-x+x²/2 is then exact to 2e-10).
func decay(x float64) float64 {
	if x < 1e-3 {
		return 1 - x + x*x/2
	}
	return math.Exp(-x)
}

// cost is ewma * (inflight+1) / (weight/10000), the ewma decayed toward zero
// over the idle time when nothing is in flight.
func (e *Endpoint[T]) cost(c *clock) float64 {
	rtt := math.Float64frombits(e.ewma.Load())
	n := e.inflight.Load()
	if n <= 0 {
		n = 0
		if idle := int64(c.now().Sub(e.base)) - e.stamp.Load(); idle > 0 {
			rtt *= decay(float64(idle) / e.decayNs)
		}
	}
	return rtt * float64(n+1) / math.Float64frombits(e.factor.Load())
}

// Pick chooses among endpoints: with one, that one; otherwise two distinct ones
// drawn with rnd (which returns a uniform int in [0, n)) and the cheaper by cost,
// ewma * (inflight+1) / (weight/10000). Nil if eps is empty. The endpoints should
// share one clock.
func Pick[T any](eps []*Endpoint[T], rnd func(n int) int) *Endpoint[T] {
	switch n := len(eps); n {
	case 0:
		return nil
	case 1:
		return eps[0]
	default:
		i := rnd(n)
		j := rnd(n - 1)
		if j >= i {
			j++
		}
		a, b := eps[i], eps[j]
		c := clock{fn: a.now}
		if b.cost(&c) < a.cost(&c) {
			return b
		}
		return a
	}
}
