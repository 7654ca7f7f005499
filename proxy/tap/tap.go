// Package tap is the proxy's tap hub: the data path hands it finished requests,
// and it fans them out to the subscribers of the tap API (GET /tap, NDJSON; the
// schema is controlplane/api/tap).
//
// When nobody listens, the data path pays one atomic load (Hub.Active) and nothing
// else. Events are rate limited twice: a token bucket shared by every subscriber
// (the proxy-wide cap) and one per subscriber (its max-rps). A subscriber's events
// wait in a bounded buffer: when it is full the event is dropped, never waited for,
// and every drop is counted and reported to that subscriber in a "dropped" record.
//
// Redaction happens when the event is built (Hub.Headers): the redacted headers'
// names and values never reach a subscriber.
package tap

import (
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	api "github.com/meshplane/mesh/controlplane/api/tap"
)

// AlwaysRedacted are the headers the tap never shows, whatever the configuration.
var alwaysRedacted = []string{"Authorization", "Proxy-Authorization", "Cookie", "Set-Cookie"}

// DefaultRate is the proxy-wide event cap per second when Options.Rate is zero.
const DefaultRate = 100

// DefaultBuffer is a subscriber's buffer (events) when Options.Buffer is zero.
const DefaultBuffer = 256

// Options configure a Hub.
type Options struct {
	// Rate is the proxy-wide cap in events per second (DefaultRate if zero);
	// Burst is the bucket's size (Rate, at least 1, if zero).
	Rate  float64
	Burst float64
	// Redact are more header names to redact (case-insensitive).
	Redact []string
	// Buffer is each subscriber's buffer, in events.
	Buffer int
	Now    func() time.Time
}

// Hub fans events out to subscribers.
type Hub struct {
	active atomic.Int32 // subscribers; read on every request
	seq    atomic.Uint64
	now    func() time.Time
	buffer int
	redact map[string]bool // canonical names

	mu     sync.Mutex
	bucket bucket
	subs   []*Subscription // a slice: ranging over a map costs a random start per request
	// needDst counts the subscribers whose match reads the destination's labels.
	needDst int
}

// New makes a hub.
func New(o Options) *Hub {
	if o.Rate <= 0 {
		o.Rate = DefaultRate
	}
	if o.Burst <= 0 {
		o.Burst = max(o.Rate, 1)
	}
	if o.Buffer <= 0 {
		o.Buffer = DefaultBuffer
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	h := &Hub{now: o.Now, buffer: o.Buffer, redact: map[string]bool{}}
	for _, n := range append(append([]string(nil), alwaysRedacted...), o.Redact...) {
		if n = strings.TrimSpace(n); n != "" {
			h.redact[http.CanonicalHeaderKey(n)] = true
		}
	}
	h.bucket = newBucket(o.Rate, o.Burst, o.Now())
	return h
}

// Active tells whether anyone listens: the data path's one check per request. A nil
// hub is never active.
func (h *Hub) Active() bool { return h != nil && h.active.Load() > 0 }

// Now is the hub's clock, for the data path's timestamps while tapping.
func (h *Hub) Now() time.Time { return h.now() }

// Headers copies hs without the redacted headers (nil if none is left).
// The values share one backing array: two allocations per call, not one per header.
func (h *Hub) Headers(hs http.Header) map[string][]string {
	n := 0
	for _, vs := range hs {
		n += len(vs)
	}
	var out map[string][]string
	var values []string
	for k, vs := range hs {
		if h.redact[http.CanonicalHeaderKey(k)] {
			continue
		}
		if out == nil {
			out = make(map[string][]string, len(hs))
			values = make([]string, 0, n)
		}
		if vs == nil {
			out[k] = nil
			continue
		}
		i := len(values)
		values = append(values, vs...)
		out[k] = values[i:len(values):len(values)]
	}
	return out
}

// Subscription is one subscriber's stream.
type Subscription struct {
	h       *Hub
	match   api.Match
	limited bool
	bucket  bucket // guarded by h.mu
	events  chan *api.Event
	dropped atomic.Uint64
	once    sync.Once
}

// Subscribe starts a subscription to the events m selects, at most maxRPS a second
// (0: only the proxy-wide cap). Close ends it.
func (h *Hub) Subscribe(m api.Match, maxRPS float64) *Subscription {
	s := &Subscription{h: h, match: m, events: make(chan *api.Event, h.buffer)}
	if maxRPS > 0 {
		s.limited = true
		s.bucket = newBucket(maxRPS, max(maxRPS, 1), h.now())
	}
	h.mu.Lock()
	h.subs = append(h.subs, s)
	if m.NeedsDst() {
		h.needDst++
	}
	h.mu.Unlock()
	h.active.Add(1)
	return s
}

// Events are the subscription's events.
func (s *Subscription) Events() <-chan *api.Event { return s.events }

// TakeDropped returns the events dropped since the last call, and resets the count.
func (s *Subscription) TakeDropped() uint64 { return s.dropped.Swap(0) }

// Close ends the subscription; its channel is not closed (Publish may hold it).
func (s *Subscription) Close() {
	s.once.Do(func() {
		s.h.mu.Lock()
		s.h.subs = slices.DeleteFunc(s.h.subs, func(x *Subscription) bool { return x == s })
		if s.match.NeedsDst() {
			s.h.needDst--
		}
		s.h.mu.Unlock()
		s.h.active.Add(-1)
	})
}

// Start is what the data path does with a request, decided when it comes (Begin).
type Start int

const (
	// Capture: the proxy-wide cap has room; capture the request in full and Publish
	// it at the end.
	Capture Start = iota
	// CountAtEnd: the cap is spent, but a subscriber's match needs the destination's
	// labels, known only at the end: capture only what a match reads (no headers,
	// no clock) and count it with Dropped at the end.
	CountAtEnd
	// Counted: the cap is spent and the request was counted as dropped for every
	// subscriber whose match selects it; tap nothing more of it.
	Counted
)

// Begin decides what becomes of a request, from its start (ev: direction, method,
// scheme, authority, path). When the proxy-wide cap is spent, nine requests in ten
// at the default cap and 1,000 rps, the request is usually counted right here: no
// allocation, no second look at the hub (docs/benchmarks.md, tap overhead). A hub
// with no subscriber counts everything.
func (h *Hub) Begin(ev *api.Event) Start {
	if !h.Active() {
		return Counted
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.bucket.has(h.now()) {
		return Capture
	}
	if h.needDst > 0 {
		return CountAtEnd
	}
	for _, s := range h.subs {
		if s.match.Matches(ev) {
			s.dropped.Add(1)
		}
	}
	return Counted
}

// Dropped counts ev (an event the data path did not capture in full, CountAtEnd) as
// dropped for every subscriber whose match selects it.
func (h *Hub) Dropped(ev *api.Event) {
	if !h.Active() {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, s := range h.subs {
		if s.match.Matches(ev) {
			s.dropped.Add(1)
		}
	}
}

// Publish hands ev (an "http" event, which the hub numbers and then shares,
// read-only, between subscribers) to every subscriber whose match selects it, within
// the rate limits. It never blocks on a subscriber.
func (h *Hub) Publish(ev *api.Event) {
	if !h.Active() {
		return
	}
	ev.Type = api.TypeHTTP
	now := h.now()
	h.mu.Lock()
	defer h.mu.Unlock()
	var global, taken bool
	for _, s := range h.subs {
		if !s.match.Matches(ev) {
			continue
		}
		if !taken {
			global, taken = h.bucket.take(now), true
			if global {
				ev.ID = h.seq.Add(1)
			}
		}
		if !global || s.limited && !s.bucket.take(now) {
			s.dropped.Add(1)
			continue
		}
		select {
		case s.events <- ev:
		default:
			s.dropped.Add(1) // a slow subscriber
		}
	}
}

// bucket is a token bucket.
type bucket struct {
	rate, burst, tokens float64
	last                time.Time
}

func newBucket(rate, burst float64, now time.Time) bucket {
	return bucket{rate: rate, burst: burst, tokens: burst, last: now}
}

func (b *bucket) take(now time.Time) bool {
	if !b.has(now) {
		return false
	}
	b.tokens--
	return true
}

// has refills the bucket and tells whether it holds a token.
func (b *bucket) has(now time.Time) bool {
	if d := now.Sub(b.last); d > 0 {
		b.tokens = min(b.burst, b.tokens+d.Seconds()*b.rate)
		b.last = now
	}
	return b.tokens >= 1
}
