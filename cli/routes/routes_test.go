package routes

import (
	"context"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/meshplane/mesh/cli/exitcode"
	"github.com/meshplane/mesh/cli/iostreams"
	"github.com/meshplane/mesh/internal/testing/clitest"
	"github.com/meshplane/mesh/internal/testing/golden"
	"github.com/meshplane/mesh/internal/testing/promtest"
	"github.com/meshplane/mesh/internal/testing/testcluster"
	"github.com/meshplane/mesh/viz/stat"
)

// argv -> options.
func TestNewCmdOptions(t *testing.T) {
	t.Parallel()
	web := stat.Resource{Kind: "deployment", Namespace: "shop", Name: "web"}
	tests := []struct {
		name    string
		args    []string
		want    Options
		wantErr string
	}{
		{"deploy/web -n -t", []string{"deploy/web", "-n", "shop", "-t", "10s"}, Options{Resource: web, Namespace: "shop", Window: 10 * time.Second, Output: "table"}, ""},
		{"KIND NAME, json", []string{"svc", "web", "-o", "json"},
			Options{Resource: stat.Resource{Kind: "service", Name: "web"}, Window: time.Minute, Output: "json"}, ""},
		{"prometheus url", []string{"deploy/web", "-n", "shop", "--prometheus-url", "https://prom.example/prometheus"},
			Options{Resource: web, Namespace: "shop", Window: time.Minute, Output: "table", PrometheusURL: "https://prom.example/prometheus"}, ""},
		{"no name", []string{"deploy"}, Options{}, "name one deploy"},
		{"namespace", []string{"ns/shop"}, Options{}, "name one deploy"},
		{"no argument", []string{}, Options{}, "got 0 arguments"},
		{"unknown kind", []string{"job/x"}, Options{}, `unknown kind "job"`},
		{"bad output", []string{"po/a", "-o", "yaml"}, Options{}, "--output must be"},
		{"zero window", []string{"po/a", "-t", "0"}, Options{}, "must be positive"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			io, _, _, _ := iostreams.Test()
			var got *Options
			cmd := NewCmd(io, func(o *Options) error { got = o; return nil })
			cmd.SetArgs(tc.args)
			cmd.SetOut(io.ErrOut)
			cmd.SetErr(io.ErrOut)
			cmd.SilenceUsage, cmd.SilenceErrors = true, true
			err := cmd.Execute()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				if exitcode.For(err) != exitcode.UsageCode {
					t.Errorf("exit %d, want 2", exitcode.For(err))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got.Now = nil
			if !reflect.DeepEqual(*got, tc.want) {
				t.Errorf("options\n got %+v\nwant %+v", *got, tc.want)
			}
		})
	}
}

type fakeSource struct {
	rows []stat.RouteRow
	err  error
}

func (f fakeSource) Routes(context.Context, stat.Resource, time.Duration) ([]stat.RouteRow, error) {
	return f.rows, f.err
}

func rows() []stat.RouteRow {
	nan := math.NaN()
	return []stat.RouteRow{
		{Route: "GET /books", Service: "web", Row: stat.Row{Requests: 20, SuccessRate: 1, RPS: 2, LatencyP50: 15, LatencyP95: 19.5, LatencyP99: 19.9, TLSShare: 1}},
		{Route: "POST /books", Service: "web", Row: stat.Row{Requests: 10, SuccessRate: 0.5, RPS: 1, LatencyP50: 2.5, LatencyP95: 2.95, LatencyP99: 2.99, TLSShare: 1}},
		{Route: "DELETE /books", Service: "web", Row: stat.Row{SuccessRate: nan, RPS: nan, LatencyP50: nan, LatencyP95: nan, LatencyP99: nan, TLSShare: nan}},
		{Route: stat.DefaultRoute, Row: stat.Row{Requests: 10, SuccessRate: 1, RPS: 1, LatencyP50: 0.5, LatencyP95: 0.95, LatencyP99: 0.99}},
	}
}

// options -> output: the goldens of each -o, and a source's error is the command's.
func TestShow(t *testing.T) {
	t.Parallel()
	for _, output := range []string{"table", "wide", "json"} {
		io, _, out, errOut := iostreams.Test()
		if err := Show(context.Background(), io, &Options{Output: output}, fakeSource{rows: rows()}); err != nil {
			t.Errorf("%s: %v", output, err)
		}
		golden.Assert(t, output+".golden", out.Bytes())
		if errOut.Len() != 0 {
			t.Errorf("%s: stderr %q", output, errOut)
		}
	}
	io, _, out, _ := iostreams.Test()
	err := Show(context.Background(), io, &Options{Output: "table"}, fakeSource{err: errors.New("deployment shop/web: not found")})
	if err == nil || exitcode.For(err) != exitcode.Error || out.Len() != 0 {
		t.Errorf("failing source: error %v (exit %d), stdout %q", err, exitcode.For(err), out)
	}
}

// A bad --prometheus-url is bad usage (exit 2), said before the kubeconfig is
// read; a good one goes on to the cluster.
func TestRunPrometheusURL(t *testing.T) {
	t.Parallel()
	clitest.PrometheusURLFlag(t, func(io *iostreams.IOStreams) *cobra.Command { return NewCmd(io, nil) }, "deploy/web")
}

// mesh routes --prometheus-url end to end: the workload and its pods from the
// real API server, the numbers from a Prometheus's answers to the route
// queries (stat's, by route).
func TestRoutesPrometheusCluster(t *testing.T) {
	t.Parallel()
	cs := testcluster.Clientset(t)
	kc := testcluster.Kubeconfig(t)
	ns := testcluster.Namespace(t, cs)
	testcluster.MeshedDeployment(t, cs, ns, "web")
	sample := func(route, classification, tls string, v float64) promtest.Sample {
		return promtest.Sample{Metric: map[string]string{"route": route, "classification": classification, "tls": tls}, Value: v}
	}
	latency := map[string][2]float64{"0.5": {15, 2.5}, "0.95": {19.5, 4.75}, "0.99": {19.9, 4.95}}
	url := promtest.QueryAPI(t, func(q string) ([]promtest.Sample, bool) {
		if !strings.Contains(q, `deployment="web", direction="inbound", namespace="`+ns+`"}[30s]`) {
			return nil, false
		}
		if strings.HasPrefix(q, "sum(increase(response_total") && strings.HasSuffix(q, "by (route, classification, tls)") {
			return []promtest.Sample{
				sample("GET /books", "success", "true", 240), sample("GET /books", "failure", "true", 60),
				sample("", "success", "false", 30),
			}, true
		}
		for qt, v := range latency {
			if strings.HasPrefix(q, "histogram_quantile("+qt+",") && strings.HasSuffix(q, "by (le, route))") {
				return []promtest.Sample{{Metric: map[string]string{"route": "GET /books"}, Value: v[0]}, {Metric: map[string]string{"route": ""}, Value: v[1]}}, true
			}
		}
		return nil, false
	})
	io, _, out, errOut := iostreams.Test()
	cmd := NewCmd(io, nil)
	cmd.SetArgs([]string{"deploy/web", "-n", ns, "--kubeconfig", kc, "--prometheus-url", url, "-t", "30s", "-o", "wide"})
	cmd.SilenceErrors, cmd.SilenceUsage = true, true
	if err := cmd.ExecuteContext(context.Background()); err != nil {
		t.Fatalf("%v\nstderr: %s", err, errOut)
	}
	golden.Assert(t, "prometheus.golden", out.Bytes())
}
