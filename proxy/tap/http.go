package tap

import (
	"encoding/json"
	"net/http"
	"time"

	api "github.com/meshplane/mesh/controlplane/api/tap"
)

// DefaultDropInterval is how often a subscriber that missed events is told so.
const DefaultDropInterval = time.Second

// Handler serves GET /tap: it streams the events its query selects as NDJSON, one
// flushed line per event, and every dropInterval (DefaultDropInterval if zero) a
// "dropped" record if events were missed, until the client goes away.
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
		for {
			var rec *api.Event
			select {
			case <-r.Context().Done():
				return
			case ev := <-s.Events():
				rec = ev
			case <-tick.C:
				n := s.TakeDropped()
				if n == 0 {
					continue
				}
				rec = &api.Event{Type: api.TypeDropped, Time: h.now(), Dropped: n}
			}
			if enc.Encode(rec) != nil || rc.Flush() != nil {
				return
			}
		}
	})
}
