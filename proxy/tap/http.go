package tap

import (
	"errors"
	"net/http"
	"time"

	api "github.com/meshplane/mesh/controlplane/api/tap"
)

// DefaultDropInterval is how often a subscriber that missed events is told so.
const DefaultDropInterval = time.Second

// The stream's pacing. An event that comes when the stream has not written for
// WriteInterval is written at once, with whatever else has queued; one that comes
// sooner waits for the next event to come after the interval, or for MaxDelay after
// the last write, whichever is first. Once a write carries more than one event the
// stream is busy: it stops waking for each event and sleeps until WriteInterval
// after the write (less when, at the rate the last write saw, the subscriber's
// buffer would be half full sooner; minSleep at least), then writes everything
// that queued meanwhile, until an interval passes with at most one event. So a slow
// stream writes each event as it comes, and a busy one writes a few times a second
// with one wake-up per write. Each write and each wake-up of the proxy that a
// request did not cause costs the proxy far more CPU than encoding the events
// (docs/benchmarks.md, tap overhead: 50 ms intervals cost 4.8% at 1,000 rps and
// the default cap, 250 ms 3.8%).
const (
	WriteInterval = 250 * time.Millisecond
	MaxDelay      = 500 * time.Millisecond
	minSleep      = 10 * time.Millisecond
)

// maxPending is how many bytes of encoded events the stream holds before it writes
// them regardless of the pacing.
const maxPending = 64 << 10

// Handler serves GET /tap: it streams the events its query selects as NDJSON, one
// line per event (written in batches, see WriteInterval), and every dropInterval
// (DefaultDropInterval if zero) a "dropped" record if events were missed, until the
// client goes away.
func (h *Hub) Handler(dropInterval time.Duration) http.Handler {
	if dropInterval <= 0 {
		dropInterval = DefaultDropInterval
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", http.MethodGet)
			http.Error(w, "tap: only GET", http.StatusMethodNotAllowed)
			return
		}
		m, rps, err := api.ParseQuery(r.URL.Query())
		if err != nil {
			http.Error(w, "tap: "+err.Error(), http.StatusBadRequest)
			return
		}
		s := h.Subscribe(m, rps)
		defer s.Close()
		w.Header().Set("Content-Type", api.ContentType)
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
		st := &stream{w: w, rc: http.NewResponseController(w), buf: make([]byte, 0, 4<<10)}
		if st.rc.Flush() != nil { // the client knows it is subscribed
			return
		}
		tick := time.NewTicker(dropInterval)
		defer tick.Stop()
		st.timer = time.NewTimer(MaxDelay)
		st.timer.Stop()
		defer st.timer.Stop()
		for {
			var err error
			if st.busy {
				err = st.sleep(r, s, tick)
			} else {
				err = st.wait(r, s, tick)
			}
			if err != nil {
				return
			}
		}
	})
}

// errDone ends a stream whose client has gone.
var errDone = errors.New("tap: the client went away")

// wait is a slow stream's step: woken by the next event, the timer or the tick.
func (st *stream) wait(r *http.Request, s *Subscription, tick *time.Ticker) error {
	select {
	case <-r.Context().Done():
		return errDone
	case ev := <-s.Events():
		st.add(ev)
		st.drain(s)
		return st.paced()
	case <-st.timer.C:
		st.armed = false
		return st.write()
	case <-tick.C:
		return st.dropped(s)
	}
}

// sleep is a busy stream's step: it wakes WriteInterval after the last write and
// writes what has queued; a write of at most one event makes the stream slow again.
func (st *stream) sleep(r *http.Request, s *Subscription, tick *time.Ticker) error {
	if !st.armed {
		st.timer.Reset(st.sleepFor - time.Since(st.last))
		st.armed = true
	}
	select {
	case <-r.Context().Done():
		return errDone
	case <-st.timer.C:
		st.armed = false
		st.drain(s)
		if st.n == 0 {
			st.busy = false
			return nil
		}
		return st.write()
	case <-tick.C:
		return st.dropped(s)
	}
}

// drain adds what has queued, at most a buffer's worth (or maxPending bytes); when
// it finds that much the buffer may have overflowed, and the stream writes again
// after minSleep.
func (st *stream) drain(s *Subscription) {
	for i := 0; i < DefaultBuffer && len(st.buf) < maxPending; i++ {
		select {
		case ev := <-s.Events():
			st.add(ev)
			continue
		default:
		}
		return
	}
	st.full = true
}

// dropped writes a "dropped" record, with what is pending, if events were missed.
func (st *stream) dropped(s *Subscription) error {
	n := s.TakeDropped()
	if n == 0 {
		return nil
	}
	st.buf = (&api.Event{Type: api.TypeDropped, Time: s.h.now(), Dropped: n}).AppendJSON(st.buf)
	st.buf = append(st.buf, '\n')
	return st.write()
}

// stream is one subscriber's encoded, not yet written events.
type stream struct {
	w     http.ResponseWriter
	rc    *http.ResponseController
	buf   []byte
	n     int       // events in buf
	last  time.Time // of the last write (monotonic)
	timer *time.Timer
	armed bool
	busy  bool // the last write carried more than one event (see WriteInterval)
	// sleepFor is how long after a write a busy stream sleeps.
	sleepFor time.Duration
	full     bool // the last drain took a buffer's worth
}

func (st *stream) add(ev *api.Event) {
	st.buf = ev.AppendJSON(st.buf)
	st.buf = append(st.buf, '\n')
	st.n++
}

// paced writes now if the last write is WriteInterval old (or too much is pending),
// and otherwise makes sure the timer will write by MaxDelay after the last write.
func (st *stream) paced() error {
	since := time.Since(st.last)
	if since >= WriteInterval || len(st.buf) >= maxPending {
		return st.write()
	}
	if !st.armed {
		st.timer.Reset(MaxDelay - since)
		st.armed = true
	}
	return nil
}

func (st *stream) write() error {
	if len(st.buf) == 0 {
		return nil
	}
	if st.armed {
		st.timer.Stop()
		st.armed = false
	}
	_, err := st.w.Write(st.buf)
	if err == nil {
		err = st.rc.Flush()
	}
	now := time.Now()
	switch {
	case st.n <= 1:
		st.sleepFor = WriteInterval
	case st.full || st.last.IsZero(): // a full drain, or a first write of many: no rate yet
		st.sleepFor = minSleep
	default: // half the buffer at the rate since the last write
		st.sleepFor = min(WriteInterval, max(now.Sub(st.last)*(DefaultBuffer/2)/time.Duration(st.n), minSleep))
	}
	st.last, st.busy, st.n, st.full = now, st.n > 1, 0, false
	if cap(st.buf) > maxPending*2 { // a burst's buffer is not kept
		st.buf = make([]byte, 0, 4<<10)
	} else {
		st.buf = st.buf[:0]
	}
	return err
}
