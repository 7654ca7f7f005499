package edges

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
	"github.com/meshplane/mesh/cli/kube"
	"github.com/meshplane/mesh/internal/testing/clitest"
	"github.com/meshplane/mesh/internal/testing/golden"
	"github.com/meshplane/mesh/internal/testing/promtest"
	"github.com/meshplane/mesh/internal/testing/testcluster"
	"github.com/meshplane/mesh/viz/stat"
)

// argv -> options.
func TestNewCmdOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		want    Options
		wantErr string
	}{
		{"deploy in -n", []string{"deploy", "-n", "shop"}, Options{Kind: "deployment", Namespace: "shop", Output: "table"}, ""},
		{"pods, all namespaces, wide, window", []string{"po", "-A", "-o", "wide", "-t", "10s", "--context", "prod"},
			Options{Kind: "pod", AllNamespaces: true, Output: "wide", Window: 10 * time.Second, Kube: kube.Flags{Context: "prod"}}, ""},
		{"statefulsets json", []string{"STS", "-o", "json"}, Options{Kind: "statefulset", Output: "json"}, ""},
		{"prometheus url", []string{"deploy", "--prometheus-url", "http://prom:9090", "-t", "1m"},
			Options{Kind: "deployment", Output: "table", Window: time.Minute, PrometheusURL: "http://prom:9090"}, ""},
		{"no kind", []string{}, Options{}, "want KIND, got 0 arguments"},
		{"two arguments", []string{"deploy", "web"}, Options{}, "got 2 arguments"},
		{"a name", []string{"deploy/web"}, Options{}, "not KIND/NAME"},
		{"services", []string{"svc"}, Options{}, "edges of service: want one of deployment, statefulset, daemonset, pod"},
		{"unknown kind", []string{"jobs"}, Options{}, `unknown kind "jobs"`},
		{"bad output", []string{"deploy", "-o", "yaml"}, Options{}, "--output must be"},
		{"-A and -n", []string{"deploy", "-A", "-n", "x"}, Options{}, "-A and -n"},
		{"negative window", []string{"deploy", "-t", "-1s"}, Options{}, "must not be negative"},
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
			if got.Now == nil {
				t.Error("no clock")
			}
			got.Now = nil
			if !reflect.DeepEqual(*got, tc.want) {
				t.Errorf("options\n got %+v\nwant %+v", *got, tc.want)
			}
		})
	}
}

type fakeSource struct {
	edges []stat.Edge
	err   error
	ns    string
}

func (f *fakeSource) Edges(_ context.Context, ns, _ string, _ time.Duration) ([]stat.Edge, error) {
	f.ns = ns
	return f.edges, f.err
}

func edges() []stat.Edge {
	d := func(ns, name string) stat.Resource {
		return stat.Resource{Kind: "deployment", Namespace: ns, Name: name}
	}
	id := func(sa string) string { return sa + ".shop.serviceaccount.identity.cluster.local" }
	return []stat.Edge{
		{Dst: d("shop", "web"), NoTLSReason: "not_provided_by_remote", Requests: 10, RPS: 1},
		{Src: d("shop", "client"), Dst: d("shop", "web"), ClientID: id("client"), ServerID: id("web"), Secured: true, Requests: 30, RPS: 3},
		{Src: d("shop", "web"), Dst: stat.Resource{Kind: "service", Namespace: "data", Name: "db"}, NoTLSReason: "not_provided_by_service_discovery", Requests: 3, RPS: math.NaN()},
	}
}

// options -> output: the goldens of each -o, and a source's error is the command's.
func TestShow(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		opts   Options
		golden string
		edges  []stat.Edge
	}{
		{Options{Output: "table", Namespace: "shop"}, "table.golden", edges()},
		{Options{Output: "wide", Namespace: "shop"}, "wide.golden", edges()},
		{Options{Output: "json", Namespace: "shop"}, "json.golden", edges()},
		{Options{Output: "table", AllNamespaces: true}, "empty.golden", nil},
	} {
		io, _, out, errOut := iostreams.Test()
		src := &fakeSource{edges: tc.edges}
		if err := Show(context.Background(), io, &tc.opts, src); err != nil {
			t.Errorf("%s: %v", tc.golden, err)
		}
		golden.Assert(t, tc.golden, out.Bytes())
		if errOut.Len() != 0 {
			t.Errorf("%s: stderr %q", tc.golden, errOut)
		}
		if want := map[bool]string{true: "", false: "shop"}[tc.opts.AllNamespaces]; src.ns != want {
			t.Errorf("%s: namespace %q, want %q", tc.golden, src.ns, want)
		}
	}
	io, _, out, _ := iostreams.Test()
	err := Show(context.Background(), io, &Options{Output: "json"}, &fakeSource{err: errors.New("no proxy could be scraped")})
	if err == nil || exitcode.For(err) != exitcode.Error || out.Len() != 0 {
		t.Errorf("failing source: error %v (exit %d), stdout %q", err, exitcode.For(err), out)
	}
}

// A bad --prometheus-url is bad usage (exit 2), said before the kubeconfig is
// read; a good one goes on to the cluster.
func TestRunPrometheusURL(t *testing.T) {
	t.Parallel()
	clitest.PrometheusURLFlag(t, func(io *iostreams.IOStreams) *cobra.Command { return NewCmd(io, nil) }, "deploy")
}

// mesh edges --prometheus-url end to end: the workloads and identities from the
// real API server, the numbers from a Prometheus's answers to the edges
// queries; a series of a workload that is gone is no edge.
func TestEdgesPrometheusCluster(t *testing.T) {
	t.Parallel()
	cs := testcluster.Clientset(t)
	kc := testcluster.Kubeconfig(t)
	ns := testcluster.Namespace(t, cs)
	for _, app := range []string{"client", "web"} {
		testcluster.MeshedDeployment(t, cs, ns, app)
	}
	id := func(sa string) string { return sa + "." + ns + ".serviceaccount.identity.cluster.local" }
	var queries []string
	url := promtest.QueryAPI(t, func(q string) ([]promtest.Sample, bool) {
		queries = append(queries, q)
		l := func(kv ...string) map[string]string {
			m := map[string]string{"namespace": ns}
			for i := 0; i+1 < len(kv); i += 2 {
				m[kv[i]] = kv[i+1]
			}
			return m
		}
		switch {
		case strings.Contains(q, `direction="outbound"`):
			return []promtest.Sample{
				{Metric: l("deployment", "client", "dst_namespace", ns, "dst_deployment", "web", "dst_service", "web", "server_id", id("web"), "tls", "true"), Value: 300},
				{Metric: l("deployment", "gone", "dst_namespace", ns, "dst_deployment", "web", "dst_service", "web", "server_id", id("web"), "tls", "true"), Value: 7},
			}, true
		case strings.Contains(q, `direction="inbound"`):
			return []promtest.Sample{
				{Metric: l("deployment", "web", "client_id", id("client"), "tls", "true"), Value: 300},
				{Metric: l("deployment", "web", "tls", "false", "no_tls_reason", "no_identity"), Value: 50},
			}, true
		}
		return nil, false
	})
	io, _, out, errOut := iostreams.Test()
	cmd := NewCmd(io, nil)
	cmd.SetArgs([]string{"deploy", "-n", ns, "--kubeconfig", kc, "--prometheus-url", url, "-t", "1m", "-o", "json"})
	cmd.SilenceErrors, cmd.SilenceUsage = true, true
	if err := cmd.ExecuteContext(context.Background()); err != nil {
		t.Fatalf("%v\nstderr: %s", err, errOut)
	}
	golden.Assert(t, "prometheus.golden", []byte(strings.ReplaceAll(out.String(), ns, "NS")))
	if len(queries) != 2 || !strings.Contains(queries[0], `[1m]`) {
		t.Errorf("queries %q: want the outbound and inbound edges queries over 1m", queries)
	}
}
