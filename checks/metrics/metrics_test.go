package metrics

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/meshplane/mesh/checks"
	"github.com/meshplane/mesh/internal/testing/promtest"
)

// proxy is a meshed pod of a Deployment with inbound traffic and outbound traffic to
// another Deployment's pod.
func proxy() *promtest.FakeProxy {
	in := promtest.HTTPBase{Direction: "inbound", Authority: "web.shop.svc.cluster.local:80", TargetAddr: "127.0.0.1:8080", TLS: "true"}
	out := promtest.HTTPBase{Direction: "outbound", Authority: "api.shop.svc.cluster.local:80", TargetAddr: "10.0.0.7:80", TLS: "true",
		DstNamespace: "shop", DstService: "api", DstPod: "api-7c4f9d8b5-kkkkk", DstWorkloadKind: "replicaset", DstWorkloadName: "api-7c4f9d8b5"}
	return &promtest.FakeProxy{BatchesPerSecond: 5, HTTP: []promtest.HTTPSeries{
		{Base: in, StatusCode: "200", Count: 2, Latency: map[float64]int{10: 2}},
		{Base: out, StatusCode: "200", Count: 1, Latency: map[float64]int{5: 1}},
	}}
}

// waitScraped polls Prometheus until it holds the proxy's series.
func waitScraped(t *testing.T, base string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(base + "/api/v1/query?" + url.Values{"query": {"count(response_total)"}}.Encode())
		if err == nil {
			var r struct {
				Data struct{ Result []any } `json:"data"`
			}
			err = json.NewDecoder(resp.Body).Decode(&r)
			_ = resp.Body.Close()
			if err == nil && len(r.Data.Result) > 0 {
				return
			}
		}
		time.Sleep(200 * time.Millisecond) // polling a condition
	}
	t.Fatal("Prometheus never scraped the proxy")
}

func run(t *testing.T, u string) map[string]checks.Result {
	t.Helper()
	suite, err := Suite(Options{URL: u, Client: &http.Client{Timeout: 5 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	if err := checks.Validate(suite); err != nil {
		t.Fatal(err)
	}
	out := map[string]checks.Result{}
	for _, r := range checks.Run(context.Background(), suite, checks.Options{}).Results {
		out[r.Check.ID] = r
		t.Logf("%s: %s %s", r.Check.ID, r.Status, r.Message)
	}
	return out
}

func want(t *testing.T, got map[string]checks.Result, status map[string]checks.Status) {
	t.Helper()
	for id, s := range status {
		if got[id].Status != s {
			t.Errorf("%s: %s (%s), want %s", id, got[id].Status, got[id].Message, s)
		}
	}
}

// A Prometheus scraping with the install's relabelling passes every check; one
// scraping the same proxy without it fails the label checks.
func TestMetricsChecksRealPrometheus(t *testing.T) {
	t.Parallel()
	meta := promtest.PodMeta("shop", "web-5d8f7c9b6-abcde", "ReplicaSet", "web-5d8f7c9b6", "5d8f7c9b6")
	t.Run("relabelled", func(t *testing.T) {
		t.Parallel()
		u := promtest.Start(t, []promtest.Target{{Proxy: proxy(), Meta: meta}}, promtest.Options{})
		waitScraped(t, u)
		want(t, run(t, u), map[string]checks.Status{
			"metrics.prometheus": checks.Passed, "metrics.proxies": checks.Passed, "metrics.proxy-labels": checks.Passed,
			"metrics.namespace-pod": checks.Passed, "metrics.workload": checks.Passed, "metrics.dst-workload": checks.Passed,
		})
	})
	t.Run("not relabelled", func(t *testing.T) {
		t.Parallel()
		u := promtest.Start(t, []promtest.Target{{Proxy: proxy(), Meta: meta}}, promtest.Options{WithoutRelabeling: true})
		waitScraped(t, u)
		got := run(t, u)
		want(t, got, map[string]checks.Status{
			"metrics.prometheus": checks.Passed, "metrics.proxies": checks.Passed, "metrics.proxy-labels": checks.Passed,
			"metrics.namespace-pod": checks.Failed, "metrics.workload": checks.Skipped, "metrics.dst-workload": checks.Failed,
		})
		if !strings.Contains(got["metrics.namespace-pod"].Message, "docs/viz.md") {
			t.Errorf("namespace-pod message does not say how to fix it: %s", got["metrics.namespace-pod"].Message)
		}
	})
}

func TestMetricsChecksUnreachable(t *testing.T) {
	t.Parallel()
	got := run(t, "http://127.0.0.1:1")
	want(t, got, map[string]checks.Status{"metrics.prometheus": checks.Failed, "metrics.proxies": checks.Skipped, "metrics.namespace-pod": checks.Skipped})
}

func TestSuiteRejectsBadURLs(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"", "prometheus:9090", "ftp://x", "http://"} {
		if _, err := Suite(Options{URL: u}); err == nil {
			t.Errorf("%q: accepted", u)
		}
	}
}
