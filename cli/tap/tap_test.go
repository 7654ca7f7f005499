package tap

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/meshplane/mesh/cli/exitcode"
	"github.com/meshplane/mesh/cli/iostreams"
	api "github.com/meshplane/mesh/controlplane/api/tap"
	"github.com/meshplane/mesh/internal/testing/golden"
	"github.com/meshplane/mesh/internal/testing/taptest"
	"github.com/meshplane/mesh/proxy/tap"
	vtap "github.com/meshplane/mesh/viz/tap"
)

// argv -> options.
func TestNewCmdOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args    []string
		check   func(*Options) bool
		wantErr string
	}{
		{[]string{"deploy/web"}, func(o *Options) bool {
			return o.Resource == "deploy/web" && o.Namespace == "" && o.Tap.Output == "table" && o.Tap.Match == (api.Match{}) &&
				o.Tap.MaxRPS == 0 && o.Tap.MaxEvents == 0 && o.Tap.Timeout == 0
		}, ""},
		{[]string{"deploy/web", "-n", "shop", "--path", "/api", "--method", "POST", "--to", "svc/api", "--authority", "api:80",
			"--max-rps", "100", "--max-events", "5", "--timeout", "30s", "-o", "wide", "--context", "c", "--kubeconfig", "kc"}, func(o *Options) bool {
			return o.Namespace == "shop" && o.Tap.Match == (api.Match{PathPrefix: "/api", Method: "POST", Destination: "svc/api", Authority: "api:80"}) &&
				o.Tap.MaxRPS == 100 && o.Tap.MaxEvents == 5 && o.Tap.Timeout == 30*time.Second && o.Tap.Output == "wide" &&
				o.Kube.Context == "c" && o.Kube.Kubeconfig == "kc"
		}, ""},
		{[]string{"pod/web-1", "-o", "json"}, func(o *Options) bool { return o.Tap.Output == "json" }, ""},
		{nil, nil, "want one resource"},
		{[]string{"a/b", "c/d"}, nil, "want one resource"},
		{[]string{"web"}, nil, "want KIND/NAME"},
		{[]string{"deploy/web", "-o", "yaml"}, nil, "--output must be table, wide or json"},
		{[]string{"deploy/web", "--max-rps", "-1"}, nil, "--max-rps"},
		{[]string{"deploy/web", "--max-events", "-1"}, nil, "--max-events"},
		{[]string{"deploy/web", "--timeout", "-1s"}, nil, "--timeout"},
		{[]string{"deploy/web", "--to", "widget/x"}, nil, `--to: to="widget/x": unknown kind`},
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
		if err != nil || got == nil || !tc.check(got) {
			t.Errorf("%v: err %v, options %+v", tc.args, err, got)
		}
		if out.Len() != 0 {
			t.Errorf("%v: stdout %q", tc.args, out.String())
		}
	}
}

var t0 = time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)

func events() []*api.Event {
	return []*api.Event{{
		Time: t0, Direction: api.Outbound, Method: "POST", Scheme: "http", Authority: "api.shop.svc.cluster.local:80", Path: "/api/items?page=2",
		Status: 201, LatencyToHeadersNs: 1500000, LatencyToEndNs: 2500000, RequestBytes: 5, ResponseBytes: 7,
		SrcAddr: "10.0.0.5:40000", DstAddr: "10.0.1.7:8080", ClientID: "web.shop.serviceaccount.identity.cluster.local",
		ServerID: "api.shop.serviceaccount.identity.cluster.local", TLS: true,
		Dst:            map[string]string{"namespace": "shop", "service": "api", "workloadKind": "deployment", "workloadName": "api"},
		RequestHeaders: map[string][]string{"Content-Type": {"application/json"}},
	}, {
		Time: t0, Direction: api.Inbound, Method: "POST", Scheme: "http", Authority: "web.shop.svc.cluster.local:50051", Path: "/pkg.Svc/Call",
		Status: 200, GRPCStatus: "5", LatencyToHeadersNs: 800000, LatencyToEndNs: 900000, RequestBytes: -1, ResponseBytes: 0,
		SrcAddr: "10.0.2.9:50000", DstAddr: "127.0.0.1:50051", NoTLSReason: "no_tls_from_remote",
	}, {
		Time: t0, Direction: api.Outbound, Method: "GET", Scheme: "http", Authority: "api.shop.svc.cluster.local:80", Path: "/down",
		Status: 503, Error: "service has no ready endpoints", LatencyToHeadersNs: 100000, LatencyToEndNs: 100000, RequestBytes: 0,
		DstAddr: "10.96.0.10:80", NoTLSReason: "no_endpoints",
	}}
}

// options -> output, through a real proxy tap endpoint.
func TestRunOutputs(t *testing.T) {
	t.Parallel()
	for _, output := range []string{"table", "wide", "json"} {
		t.Run(output, func(t *testing.T) {
			t.Parallel()
			p := taptest.Start(t, tap.Options{Rate: 1000})
			p.PublishWhenSubscribed(events())
			io, _, out, errOut := iostreams.Test()
			o := &Options{Resource: "deploy/web", Namespace: "shop", Tap: vtap.Options{Output: output, MaxEvents: 3, Timeout: 20 * time.Second}}
			if err := Run(context.Background(), io, o, Cluster{Pods: taptest.Pods("web-1"), Dialer: taptest.LoopDialer{"web-1": p.Addr}}); err != nil {
				t.Fatalf("%v; stderr %s", err, errOut)
			}
			golden.Assert(t, "run-"+output+".txt", out.Bytes())
			if got := errOut.String(); got != "tapping 1 pod(s) of deploy/web in shop\n" {
				t.Errorf("stderr %q", got)
			}
		})
	}
}

// The query reaches the proxy: only matching events come, and the proxy's drops are
// reported on stderr, never stdout.
func TestRunFiltersAndReportsDrops(t *testing.T) {
	t.Parallel()
	p := taptest.Start(t, tap.Options{Rate: 1000})
	evs := events()
	extra := *evs[0]
	extra.Path = "/api/second"
	p.PublishWhenSubscribed([]*api.Event{evs[1], evs[0], evs[2], &extra})
	io, _, out, _ := iostreams.Test()
	errOut := &taptest.SyncBuffer{}
	io.ErrOut = errOut
	o := &Options{Resource: "deploy/web", Namespace: "shop", Tap: vtap.Options{Output: "json", MaxEvents: 1, MaxRPS: 1, Timeout: 20 * time.Second,
		Match: api.Match{Method: "POST", Destination: "svc/api", PathPrefix: "/api"}}}
	// MaxEvents 1 would stop before the drop record: read until one arrives instead.
	o.Tap.MaxEvents = 0
	o.Tap.Timeout = 0
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, io, o, Cluster{Pods: taptest.Pods("web-1"), Dialer: taptest.LoopDialer{"web-1": p.Addr}})
	}()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(errOut.String(), "dropped") && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], `"path":"/api/items?page=2"`) || !strings.Contains(lines[0], `"proxy":"shop/web-1"`) {
		t.Errorf("stdout:\n%s", out)
	}
	if !strings.Contains(errOut.String(), "warning: shop/web-1: 1 events dropped") {
		t.Errorf("stderr: %s", errOut)
	}
}

func TestRunMergesPodsAndWarns(t *testing.T) {
	t.Parallel()
	a, b := taptest.Start(t, tap.Options{}), taptest.Start(t, tap.Options{})
	a.PublishWhenSubscribed(events()[:1])
	b.PublishWhenSubscribed(events()[1:2])
	io, _, out, errOut := iostreams.Test()
	o := &Options{Resource: "deploy/web", Namespace: "shop", Tap: vtap.Options{Output: "table", MaxEvents: 2, Timeout: 20 * time.Second}}
	err := Run(context.Background(), io, o, Cluster{Pods: taptest.Pods("web-1", "web-2", "web-3"), Dialer: taptest.LoopDialer{"web-1": a.Addr, "web-2": b.Addr}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "id=shop/web-1:1 ") || !strings.Contains(out.String(), "id=shop/web-2:1 ") {
		t.Errorf("stdout:\n%s", out)
	}
	if !strings.Contains(errOut.String(), `warning: pod shop/web-3: reaching the proxy's tap port: pods "web-3" is forbidden`) {
		t.Errorf("stderr: %s", errOut)
	}

	// Every pod failing is an error.
	io, _, _, _ = iostreams.Test()
	err = Run(context.Background(), io, o, Cluster{Pods: taptest.Pods("web-3"), Dialer: taptest.LoopDialer{}})
	if err == nil || !strings.Contains(err.Error(), "forbidden") {
		t.Errorf("err %v", err)
	}
	// A resolution error is returned as is.
	err = Run(context.Background(), io, o, Cluster{Pods: func(context.Context, string, string) ([]vtap.Pod, error) {
		return nil, errors.New("deploy/web in namespace shop has no running meshed pod")
	}})
	if err == nil || !strings.Contains(err.Error(), "no running meshed pod") {
		t.Errorf("err %v", err)
	}
}
