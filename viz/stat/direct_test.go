package stat

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	restclient "k8s.io/client-go/rest"
	k8stesting "k8s.io/client-go/testing"
)

// fakeClock is Direct's clock and sleeper in tests: Sleep advances Now at once.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Sleep(_ context.Context, d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return nil
}

type body struct {
	b   []byte
	err error
}

func (r body) DoRaw(context.Context) ([]byte, error) { return r.b, r.err }
func (r body) Stream(context.Context) (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(r.b)), r.err
}

// fakeCluster is the scenario in a fake clientset whose pods/proxy serves each
// pod's first sample, then its second; a request to another port or path fails, so
// the port must be read from the pod spec. failing pods always fail.
func fakeCluster(t *testing.T, s scenario, failing ...string) *fake.Clientset {
	t.Helper()
	objs := append(s.workloads(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: s.ns}})
	for _, p := range s.pods() {
		objs = append(objs, p)
	}
	c := fake.NewSimpleClientset(objs...)
	samples := s.samples()
	var mu sync.Mutex
	calls := map[string]int{}
	c.PrependProxyReactor("pods", func(a k8stesting.Action) (bool, restclient.ResponseWrapper, error) {
		pa := a.(k8stesting.ProxyGetAction)
		name := pa.GetName()
		for _, f := range failing {
			if f == name {
				return true, body{err: errors.New("connection refused")}, nil
			}
		}
		if pa.GetNamespace() != s.ns || pa.GetPort() != s.port(name) || pa.GetPath() != "metrics" {
			return true, body{err: fmt.Errorf("unexpected %s %s:%s/%s", pa.GetNamespace(), name, pa.GetPort(), pa.GetPath())}, nil
		}
		mu.Lock()
		i := calls[name]
		calls[name]++
		mu.Unlock()
		if i > 1 {
			return true, body{err: fmt.Errorf("%s scraped %d times", name, i+1)}, nil
		}
		return true, body{b: []byte(samples[name][i].text())}, nil
	})
	return c
}

// query is a mesh stat invocation in the scenario's words.
func (s scenario) query(t *testing.T, q string) Query {
	t.Helper()
	f := strings.Fields(q)
	r, err := ParseArgs(f[:1], s.ns)
	if err != nil {
		t.Fatal(err)
	}
	out := Query{Resource: r, Window: window}
	for i := 1; i+1 < len(f); i += 2 {
		o, err := ParseResource(f[i+1], s.ns)
		if err != nil {
			t.Fatal(err)
		}
		switch f[i] {
		case "--to":
			out.To = &o
		case "--from":
			out.From = &o
		}
	}
	return out
}

func sameRow(a, b Row) bool {
	eq := func(x, y float64) bool { return x == y || math.IsNaN(x) && math.IsNaN(y) || math.Abs(x-y) < 1e-9 }
	return a.Resource == b.Resource && a.MeshedPods == b.MeshedPods && a.TotalPods == b.TotalPods &&
		eq(a.Requests, b.Requests) && eq(a.Successes, b.Successes) && eq(a.SuccessRate, b.SuccessRate) && eq(a.RPS, b.RPS) &&
		eq(a.LatencyP50, b.LatencyP50) && eq(a.LatencyP95, b.LatencyP95) && eq(a.LatencyP99, b.LatencyP99) &&
		eq(a.TCPConnections, b.TCPConnections) && eq(a.TLSRequests, b.TLSRequests) && eq(a.TLSShare, b.TLSShare)
}

// assertRows runs each query of the scenario against src and compares the rows.
func assertRows(t *testing.T, s scenario, stat func(Query) ([]Row, error)) {
	t.Helper()
	want := s.want()
	for _, tc := range []struct {
		query string
		rows  []string // keys of want
	}{
		{"deploy/web", []string{"deploy/web"}},
		{"deploy", []string{"deploy/api", "deploy/web"}},
		{"deploy/web --to deploy/api", []string{"deploy/web --to deploy/api"}},
		{"deploy/web --to svc/api", []string{"deploy/web --to deploy/api"}},
		{"deploy --from deploy/web", []string{"deploy --from deploy/web"}},
		{"svc/api", []string{"svc/api"}},
		{"ns/" + s.ns, []string{"ns/" + s.ns}},
		{"po/web-3", []string{"po/web-3"}},
	} {
		got, err := stat(s.query(t, tc.query))
		if err != nil {
			t.Errorf("%s: %v", tc.query, err)
			continue
		}
		if len(got) != len(tc.rows) {
			t.Errorf("%s: %d rows, want %d: %+v", tc.query, len(got), len(tc.rows), got)
			continue
		}
		for i, k := range tc.rows {
			if !sameRow(got[i], want[k]) {
				t.Errorf("%s: row %d\n got %+v\nwant %+v", tc.query, i, got[i], want[k])
			}
		}
	}
}

func TestDirectFake(t *testing.T) {
	t.Parallel()
	s := newScenario("shop", "10.1.0.1", "10.1.0.2", fakePorts)
	assertRows(t, s, func(q Query) ([]Row, error) {
		clock := &fakeClock{now: time.Unix(1e9, 0)}
		d := &Direct{Client: fakeCluster(t, s), Now: clock.Now, Sleep: clock.Sleep}
		return d.Stat(context.Background(), q)
	})
}

// A pod that cannot be scraped is a warning, and the others still count; when none
// can be, Stat fails.
func TestDirectScrapeFailures(t *testing.T) {
	t.Parallel()
	s := newScenario("shop", "10.1.0.1", "10.1.0.2", fakePorts)
	clock := &fakeClock{now: time.Unix(1e9, 0)}
	var warn strings.Builder
	d := &Direct{Client: fakeCluster(t, s, "web-2"), Now: clock.Now, Sleep: clock.Sleep, Warnings: &warn}
	rows, err := d.Stat(context.Background(), s.query(t, "deploy/web"))
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0].Requests != 40 || rows[0].Successes != 30 || rows[0].MeshedPods != 2 {
		t.Errorf("rows %+v, want web-1's 40 requests, 30 ok, 2 meshed", rows)
	}
	for _, w := range []string{"Warning: pod shop/web-2: scrape port 4192: connection refused\n", "Warning: could not scrape 1 of 2 pods\n"} {
		if !strings.Contains(warn.String(), w) {
			t.Errorf("warnings %q, want %q", warn.String(), w)
		}
	}
	_, err = d.Stat(context.Background(), s.query(t, "po/web-2"))
	if err == nil || !strings.Contains(err.Error(), "no proxy could be scraped (1 pods): pod shop/web-2") {
		t.Errorf("all failed: error %v", err)
	}
}

func TestDirectErrors(t *testing.T) {
	t.Parallel()
	s := newScenario("shop", "10.1.0.1", "10.1.0.2", fakePorts)
	d := &Direct{Client: fakeCluster(t, s)}
	for _, tc := range []struct {
		q    Query
		want string
	}{
		{Query{Resource: Resource{Kind: KindDeployment, Namespace: "shop", Name: "nope"}}, "deployment shop/nope: not found"},
		{Query{Resource: Resource{Kind: KindService, Namespace: "shop", Name: "api"}, To: &Resource{Kind: KindPod, Namespace: "shop", Name: "gone"}}, "pod shop/gone: not found"},
		{Query{Resource: Resource{Kind: "cronjob", Namespace: "shop"}}, `unknown kind "cronjob"`},
		{Query{Resource: Resource{Kind: KindPod}, To: &Resource{Kind: KindPod, Name: "a"}, From: &Resource{Kind: KindPod, Name: "b"}}, "--to and --from"},
		{Query{Resource: Resource{Kind: KindPod}, From: &Resource{Kind: KindService, Name: "a"}}, "--from svc"},
		{Query{Resource: Resource{Kind: KindPod}, To: &Resource{Kind: KindPod}}, "--to pod: name one object"},
		{Query{Resource: Resource{Kind: KindPod}, Window: -time.Second}, "negative"},
	} {
		_, err := d.Stat(context.Background(), tc.q)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want %q", tc.q, err, tc.want)
		}
	}
	_, err := d.Stat(context.Background(), Query{Resource: Resource{Kind: KindDeployment, Namespace: "shop", Name: "nope"}})
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("not found: %v is not ErrNotFound", err)
	}
}
