package tap

import (
	"net/http"
	"time"

	api "github.com/meshplane/mesh/controlplane/api/tap"
)

// DefaultDropInterval is how often a subscriber that missed events is told so.
const DefaultDropInterval = time.Second

// The stream's pacing. An event that comes when the stream has not written for
// WriteInterval is written at once, with whatever else has queued; one that comes
// sooner waits for the next event to come after the interval, or for MaxDelay after
// the last write, whichever is first. So a slow stream writes each event as it comes,
// and a busy one writes at most every WriteInterval, woken only by the events
// themselves: the wake-ups of a timer of its own, and a write per event, were most
// of the tap's cost to the proxy (docs/benchmarks.md, tap overhead). The timer fires
// only when the events stop within MaxDelay of a write.
const (
	WriteInterval = 50 * time.Millisecond
	MaxDelay      = 100 * time.Millisecond
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
			select {
			case <-r.Context().Done():
				return
			case ev := <-s.Events():
				st.add(ev)
				// What else has queued meanwhile, at most a buffer's worth.
				for i := 0; i < DefaultBuffer && len(st.buf) < maxPending; i++ {
					select {
					case ev := <-s.Events():
						st.add(ev)
						continue
					default:
					}
					break
				}
				err = st.paced()
			case <-st.timer.C:
				st.armed = false
				err = st.write()
			case <-tick.C:
				if n := s.TakeDropped(); n > 0 {
					st.add(&api.Event{Type: api.TypeDropped, Time: h.now(), Dropped: n})
					err = st.write()
				}
			}
			if err != nil {
				return
			}
		}
	})
}

// stream is one subscriber's encoded, not yet written events.
type stream struct {
	w     http.ResponseWriter
	rc    *http.ResponseController
	buf   []byte
	last  time.Time // of the last write (monotonic)
	timer *time.Timer
	armed bool
}

func (st *stream) add(ev *api.Event) {
	st.buf = ev.AppendJSON(st.buf)
	st.buf = append(st.buf, '\n')
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
	st.last = time.Now()
	if cap(st.buf) > maxPending*2 { // a burst's buffer is not kept
		st.buf = make([]byte, 0, 4<<10)
	} else {
		st.buf = st.buf[:0]
	}
	return err
}
