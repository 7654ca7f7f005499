package main

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// maxKeys bounds the distinct keys of the errors and byPod maps; the rest count
// under "other".
const maxKeys = 200

// The latency histogram: geometric buckets from histMin growing by histGrowth, so a
// quantile is off by at most 5%; the last bucket takes everything longer.
const (
	histMin     = 10 * time.Microsecond
	histGrowth  = 1.05
	histBuckets = 340 // up to histMin*1.05^339, about 2.5 minutes
)

type histogram struct {
	counts [histBuckets]uint64
	total  uint64
	max    time.Duration
}

func bucket(d time.Duration) int {
	if d <= histMin {
		return 0
	}
	i := int(math.Ceil(math.Log(float64(d)/float64(histMin)) / math.Log(histGrowth)))
	return min(max(i, 0), histBuckets-1)
}

func (h *histogram) add(d time.Duration) {
	h.counts[bucket(d)]++
	h.total++
	h.max = max(h.max, d)
}

// quantile is the upper bound of the bucket holding the q-quantile, at most the
// longest duration seen (that one for the last bucket), in milliseconds; 0 without
// samples.
func (h *histogram) quantile(q float64) float64 {
	if h.total == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.total)))
	rank = max(rank, 1)
	var cum uint64
	for i, n := range h.counts {
		cum += n
		if cum >= rank && i < histBuckets-1 {
			upper := time.Duration(float64(histMin) * math.Pow(histGrowth, float64(i)))
			return ms(min(upper, h.max))
		}
	}
	return ms(h.max)
}

func ms(d time.Duration) float64 {
	return math.Round(float64(d)/float64(time.Millisecond)*1000) / 1000
}

// stats are the counters /stats reports; safe for concurrent use.
type stats struct {
	mu       sync.Mutex
	requests uint64
	ok       uint64
	failed   uint64
	errors   map[string]uint64
	byPod    map[string]uint64
	hist     histogram
}

func newStats() *stats {
	return &stats{errors: map[string]uint64{}, byPod: map[string]uint64{}}
}

// record counts one request that took d: every answer naming a pod counts for it
// (failed ones too), the failures under their key, and every latency.
func (s *stats) record(r result, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	if r.ok {
		s.ok++
	} else {
		s.failed++
		inc(s.errors, r.key)
	}
	if r.pod != "" {
		inc(s.byPod, r.pod)
	}
	s.hist.add(d)
}

func inc(m map[string]uint64, k string) {
	if _, ok := m[k]; !ok && len(m) >= maxKeys {
		k = "other"
	}
	m[k]++
}

// snapshot is the JSON of /stats.
type snapshot struct {
	Requests  uint64            `json:"requests"`
	OK        uint64            `json:"ok"`
	Failed    uint64            `json:"failed"`
	Errors    map[string]uint64 `json:"errors"`
	ByPod     map[string]uint64 `json:"byPod"`
	LatencyMs latency           `json:"latencyMs"`
}

type latency struct {
	P50 float64 `json:"p50"`
	P95 float64 `json:"p95"`
	P99 float64 `json:"p99"`
}

// snapshot copies the counters; with reset it also zeroes them, atomically.
func (s *stats) snapshot(reset bool) snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	snap := snapshot{
		Requests: s.requests, OK: s.ok, Failed: s.failed,
		Errors: make(map[string]uint64, len(s.errors)), ByPod: make(map[string]uint64, len(s.byPod)),
		LatencyMs: latency{P50: s.hist.quantile(0.50), P95: s.hist.quantile(0.95), P99: s.hist.quantile(0.99)},
	}
	for k, v := range s.errors {
		snap.Errors[k] = v
	}
	for k, v := range s.byPod {
		snap.ByPod[k] = v
	}
	if reset {
		s.requests, s.ok, s.failed = 0, 0, 0
		s.errors, s.byPod = map[string]uint64{}, map[string]uint64{}
		s.hist = histogram{}
	}
	return snap
}

// handler serves GET /stats (the snapshot), POST /reset (zeroes the stats and
// answers with what they were) and GET /healthz.
func (s *stats) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, s.snapshot(false))
	})
	mux.HandleFunc("POST /reset", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, s.snapshot(true))
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok"))
	})
	mux.HandleFunc("POST /run", serveRun)
	return mux
}

// serveRun is POST /run?mode=M&target=T&count=N[&concurrency=C][&rps=R][&header=NAME:
// VALUE...] (headers: http mode; repeatable): it sends N
// requests (at most 10,000) from this pod with fresh counters, and answers with them.
// The tests drive a meshed client pod this way.
func serveRun(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	cfg := config{mode: q.Get("mode"), target: q.Get("target"), concurrency: 1}
	var err error
	if cfg.count, err = strconv.ParseInt(q.Get("count"), 10, 64); err != nil || cfg.count < 1 || cfg.count > 10000 {
		http.Error(w, "count: want 1 to 10000", http.StatusBadRequest)
		return
	}
	if c := q.Get("concurrency"); c != "" {
		if cfg.concurrency, err = strconv.Atoi(c); err != nil || cfg.concurrency > 256 {
			http.Error(w, "concurrency: want 1 to 256", http.StatusBadRequest)
			return
		}
	}
	if v := q.Get("rps"); v != "" {
		if cfg.rps, err = strconv.ParseFloat(v, 64); err != nil {
			http.Error(w, "rps: "+err.Error(), http.StatusBadRequest)
			return
		}
	}
	if err := cfg.validate(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	req, err := newRequester(cfg.mode, cfg.target, cfg.concurrency)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	defer req.close()
	if hs := q["header"]; len(hs) > 0 {
		h, ok := req.(*httpRequester)
		if !ok {
			http.Error(w, "header: only with mode=http", http.StatusBadRequest)
			return
		}
		h.header = http.Header{}
		for _, kv := range hs {
			k, v, ok := strings.Cut(kv, ":")
			if !ok || strings.TrimSpace(k) == "" {
				http.Error(w, fmt.Sprintf("header %q: want NAME: VALUE", kv), http.StatusBadRequest)
				return
			}
			h.header.Add(strings.TrimSpace(k), strings.TrimSpace(v))
		}
	}
	st := newStats()
	generate(r.Context(), cfg, req, st)
	writeJSON(w, st.snapshot(false))
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
