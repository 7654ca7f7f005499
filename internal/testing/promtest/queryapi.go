package promtest

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
)

// Sample is one series of an instant vector QueryAPI answers.
type Sample struct {
	Metric map[string]string
	Value  float64
}

// QueryAPI serves Prometheus's instant query API (GET /api/v1/query) with the
// vectors answer gives for each query, or a 400 bad_data error naming the query
// when it gives none (ok false). It returns the server's URL; the test's cleanup
// closes it. For tests of what a command does with Prometheus's answers; the
// real Prometheus is Start's.
func QueryAPI(t *testing.T, answer func(query string) (vector []Sample, ok bool)) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query().Get("query")
		vec, ok := answer(q)
		w.Header().Set("Content-Type", "application/json")
		if !ok || r.URL.Path != "/api/v1/query" {
			w.WriteHeader(http.StatusBadRequest)
			_ = json.NewEncoder(w).Encode(map[string]any{"status": "error", "errorType": "bad_data", "error": "unexpected query " + q})
			return
		}
		result := make([]any, 0, len(vec))
		for _, s := range vec {
			result = append(result, map[string]any{"metric": s.Metric, "value": []any{1e9, strconv.FormatFloat(s.Value, 'g', -1, 64)}})
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"status": "success", "data": map[string]any{"resultType": "vector", "result": result}})
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}
