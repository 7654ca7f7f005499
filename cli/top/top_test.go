package top

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/meshplane/mesh/cli/exitcode"
	"github.com/meshplane/mesh/cli/iostreams"
	clitap "github.com/meshplane/mesh/cli/tap"
	api "github.com/meshplane/mesh/controlplane/api/tap"
	"github.com/meshplane/mesh/internal/testing/golden"
	"github.com/meshplane/mesh/internal/testing/taptest"
	"github.com/meshplane/mesh/proxy/tap"
	vtap "github.com/meshplane/mesh/viz/tap"
	"github.com/meshplane/mesh/viz/top"
)

// argv -> options.
func TestNewCmdOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args    []string
		want    Options
		wantErr string
	}{
		{[]string{"deploy/web"}, Options{Resource: "deploy/web", Output: "table", Interval: time.Second}, ""},
		{[]string{"deploy/web", "-n", "shop", "--path", "/api", "--method", "POST", "--to", "svc/api", "--authority", "api:80",
			"--max-rps", "100", "--max-events", "5", "--timeout", "30s", "--hide-sources", "--routes", "-o", "json", "--interval", "250ms"},
			Options{Resource: "deploy/web", Namespace: "shop", Output: "json", Interval: 250 * time.Millisecond,
				Tap: vtap.Options{Match: api.Match{PathPrefix: "/api", Method: "POST", Destination: "svc/api", Authority: "api:80"},
					MaxRPS: 100, MaxEvents: 5, Timeout: 30 * time.Second},
				Top: top.Options{HideSources: true, Routes: true}}, ""},
		{nil, Options{}, "want one resource"},
		{[]string{"web"}, Options{}, "want KIND/NAME"},
		{[]string{"deploy/web", "-o", "wide"}, Options{}, "--output must be table or json"},
		{[]string{"deploy/web", "--interval", "0s"}, Options{}, "--interval 0s: must be positive"},
		{[]string{"deploy/web", "--max-rps", "-1"}, Options{}, "--max-rps"},
		{[]string{"deploy/web", "--to", "widget/x"}, Options{}, `--to: to="widget/x": unknown kind`},
	}
	for _, tc := range tests {
		io, _, out, _ := iostreams.Test()
		var got *Options
		cmd := NewCmd(io, func(o *Options) error { got = o; return nil })
		cmd.SetArgs(append([]string{}, tc.args...))
		cmd.SilenceErrors, cmd.SilenceUsage = true, true
		err := cmd.Execute()
		if tc.wantErr != "" {
			var ue *exitcode.UsageError
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.As(err, &ue) {
				t.Errorf("%v: err %v, want a usage error with %q", tc.args, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got == nil {
			t.Fatalf("%v: err %v", tc.args, err)
		}
		got.Kube = tc.want.Kube
		if *got != tc.want {
			t.Errorf("%v:\n got %+v\nwant %+v", tc.args, *got, tc.want)
		}
		if out.Len() != 0 {
			t.Errorf("%v: stdout %q", tc.args, out.String())
		}
	}
}

var t0 = time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)

// events: what web-1's proxy sees (2 routes outbound, 1 inbound) and web-2's.
func events() (web1, web2 []*api.Event) {
	ev := func(dir, method, path, route string, status int, ms int64) *api.Event {
		e := &api.Event{Time: t0, Direction: dir, Method: method, Scheme: "http", Path: path, Route: route, Status: status,
			LatencyToHeadersNs: ms * 1e6 / 2, LatencyToEndNs: ms * 1e6}
		if dir == api.Outbound {
			e.Authority, e.DstAddr = "api.shop.svc.cluster.local:80", "10.0.1.7:8080"
			e.Dst = map[string]string{"namespace": "shop", "service": "api", "pod": "api-1", "workloadKind": "deployment", "workloadName": "api"}
		} else {
			e.Authority, e.SrcAddr, e.DstAddr = "web.shop.svc.cluster.local:80", "10.0.2.9:50000", "127.0.0.1:8080"
		}
		return e
	}
	web1 = []*api.Event{
		ev(api.Outbound, "GET", "/api/items?page=1", "GET /api/items", 200, 4),
		ev(api.Outbound, "GET", "/api/items?page=2", "GET /api/items", 200, 2),
		ev(api.Outbound, "POST", "/api/vote", "POST /api/vote", 503, 30),
		ev(api.Inbound, "GET", "/", "", 200, 1),
		ev(api.Outbound, "GET", "/api/items", "GET /api/items", 200, 8),
	}
	// The same latencies as web-1's last of each route: with --hide-sources their
	// rows merge and LAST does not depend on which stream came first.
	web2 = []*api.Event{
		ev(api.Outbound, "GET", "/api/items", "GET /api/items", 500, 8),
		ev(api.Outbound, "POST", "/api/vote", "POST /api/vote", 200, 30),
	}
	return web1, web2
}

// options -> output: two real proxy tap streams, every event in before the one
// table (the interval is longer than the test), so the output is exact.
func TestRunOutputs(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		o    Options
		tty  bool
	}{
		{"table", Options{Output: "table"}, false},
		{"json", Options{Output: "json"}, false},
		{"hide-sources", Options{Output: "table", Top: top.Options{HideSources: true}}, false},
		{"routes", Options{Output: "table", Top: top.Options{Routes: true}}, false},
		{"tty", Options{Output: "table"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a, b := taptest.Start(t, tap.Options{Rate: 10000}), taptest.Start(t, tap.Options{Rate: 10000})
			web1, web2 := events()
			a.PublishWhenSubscribed(web1)
			b.PublishWhenSubscribed(web2)
			io, _, out, errOut := iostreams.Test()
			io.SetTTY(tc.tty, false)
			o := tc.o
			o.Resource, o.Namespace, o.Interval = "deploy/web", "shop", time.Hour
			o.Tap = vtap.Options{MaxEvents: len(web1) + len(web2), Timeout: 20 * time.Second}
			c := clitap.Cluster{Pods: taptest.Pods("web-1", "web-2"), Dialer: taptest.LoopDialer{"web-1": a.Addr, "web-2": b.Addr}}
			if err := Run(context.Background(), io, &o, c); err != nil {
				t.Fatalf("%v; stderr %s", err, errOut)
			}
			golden.Assert(t, "run-"+tc.name+".txt", out.Bytes())
			if got := errOut.String(); got != "tapping 2 pod(s) of deploy/web in shop\n" {
				t.Errorf("stderr %q", got)
			}
		})
	}
}

// End to end over a live stream: the proxy publishes while mesh top runs with a short
// interval and -o json; each interval is one JSON array on one line, the counts only
// grow, and the filters reach the proxy (the GET /api/items rows only).
func TestRunLive(t *testing.T) {
	t.Parallel()
	p := taptest.Start(t, tap.Options{Rate: 10000})
	io, _, _, errOut := iostreams.Test()
	out := &taptest.SyncBuffer{}
	io.Out = out
	o := &Options{Resource: "deploy/web", Namespace: "shop", Output: "json", Interval: 10 * time.Millisecond,
		Tap: vtap.Options{Match: api.Match{Method: "GET", PathPrefix: "/api/"}}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, io, o, clitap.Cluster{Pods: taptest.Pods("web-1"), Dialer: taptest.LoopDialer{"web-1": p.Addr}})
	}()
	for !p.Hub.Active() {
		select {
		case err := <-done:
			t.Fatalf("stopped early: %v; stderr %s", err, errOut)
		case <-time.After(2 * time.Millisecond):
		}
	}
	web1, _ := events()
	last := func() []map[string]any {
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		var rows []map[string]any
		if err := json.Unmarshal([]byte(lines[len(lines)-1]), &rows); err != nil {
			t.Fatalf("not a JSON array per line: %v\n%s", err, out.String())
		}
		return rows
	}
	// Publish in rounds; after each, wait for a table that has counted it.
	for round := 1; round <= 3; round++ {
		for _, e := range web1 {
			p.Hub.Publish(e)
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			if out.String() != "" {
				if rows := last(); len(rows) == 1 && rows[0]["count"] == float64(3*round) {
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("round %d: no table with count %d:\n%s", round, 3*round, out.String())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	prev := 0.0
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	for _, l := range lines {
		var rows []map[string]any
		if err := json.Unmarshal([]byte(l), &rows); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		if len(rows) == 0 {
			continue
		}
		if len(rows) != 1 || rows[0]["path"] != "/api/items" || rows[0]["source"] != "web-1" || rows[0]["destination"] != "api-1" {
			t.Fatalf("rows %v", rows)
		}
		if c := rows[0]["count"].(float64); c < prev {
			t.Fatalf("count went down: %v after %v", c, prev)
		} else {
			prev = c
		}
	}
	if len(lines) < 3 || prev != 9 {
		t.Errorf("%d tables, last count %v", len(lines), prev)
	}
}

// A pod that cannot be tapped is a warning; every pod failing, or the resolution
// failing, is an error, and no table is written.
func TestRunErrors(t *testing.T) {
	t.Parallel()
	io, _, out, _ := iostreams.Test()
	o := &Options{Resource: "deploy/web", Namespace: "shop", Output: "table", Interval: time.Hour}
	err := Run(context.Background(), io, o, clitap.Cluster{Pods: taptest.Pods("web-3"), Dialer: taptest.LoopDialer{}})
	if err == nil || !strings.Contains(err.Error(), "forbidden") || out.Len() != 0 {
		t.Errorf("err %v, stdout %q", err, out)
	}
	err = Run(context.Background(), io, o, clitap.Cluster{Pods: func(context.Context, string, string) ([]vtap.Pod, error) {
		return nil, errors.New("deploy/web in namespace shop has no running meshed pod")
	}})
	if err == nil || !strings.Contains(err.Error(), "no running meshed pod") || out.Len() != 0 {
		t.Errorf("err %v, stdout %q", err, out)
	}
}
