package tap

import (
	"encoding/json"
	"net/http"
	"time"

	api "github.com/meshplane/mesh/controlplane/api/tap"
)

// DefaultDropInterval is how often a subscriber that missed events is told so.
const DefaultDropInterval = time.Second

// BatchWindow is how long the stream lets events queue after the first one before it
// writes them and flushes once: one write and two wake-ups per window instead of per
// event (the per-event flush was most of the tap's cost, docs/benchmarks.md). At most
// this much is added to an event's delay; the subscriber's buffer (DefaultBuffer)
// holds what arrives meanwhile.
const BatchWindow = 10 * time.Millisecond

// Handler serves GET /tap: it streams the events its query selects as NDJSON, one
// line per event, flushed once per batch (BatchWindow), and every dropInterval
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
		rc := http.NewResponseController(w)
		_ = rc.Flush() // the client knows it is subscribed
		enc := json.NewEncoder(w)
		tick := time.NewTicker(dropInterval)
		defer tick.Stop()
		batch := time.NewTimer(BatchWindow)
		batch.Stop()
		for {
			select {
			case <-r.Context().Done():
				return
			case ev := <-s.Events():
				if enc.Encode(ev) != nil {
					return
				}
				// Let the next events queue, then write them all and flush once.
				batch.Reset(BatchWindow)
				select {
				case <-r.Context().Done():
					return
				case <-batch.C:
				}
				// At most a buffer's worth, so that a busy stream still flushes.
				for i := 0; i < DefaultBuffer; i++ {
					select {
					case ev := <-s.Events():
						if enc.Encode(ev) != nil {
							return
						}
						continue
					default:
					}
					break
				}
			case <-tick.C:
				n := s.TakeDropped()
				if n == 0 {
					continue
				}
				if enc.Encode(&api.Event{Type: api.TypeDropped, Time: h.now(), Dropped: n}) != nil {
					return
				}
			}
			if rc.Flush() != nil {
				return
			}
		}
	})
}
