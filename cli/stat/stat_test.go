package stat

import (
	"context"
	"errors"
	"math"
	"net"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/meshplane/mesh/cli/exitcode"
	"github.com/meshplane/mesh/cli/iostreams"
	"github.com/meshplane/mesh/cli/kube"
	"github.com/meshplane/mesh/internal/testing/golden"
	"github.com/meshplane/mesh/viz/stat"
)

func res(kind, ns, name string) *stat.Resource {
	return &stat.Resource{Kind: kind, Namespace: ns, Name: name}
}

// argv -> options: the arguments and flags as the Query and output settings.
func TestNewCmdOptions(t *testing.T) {
	t.Parallel()
	base := func(r stat.Resource, mod func(*Options)) Options {
		o := Options{Query: stat.Query{Resource: r, Window: time.Minute}, Output: "table"}
		if mod != nil {
			mod(&o)
		}
		return o
	}
	tests := []struct {
		name    string
		args    []string
		want    Options
		wantErr string
	}{
		{"deploy in -n", []string{"deploy", "-n", "shop"},
			base(stat.Resource{Kind: "deployment", Namespace: "shop"}, func(o *Options) { o.Namespace = "shop" }), ""},
		{"KIND/NAME --to, -t, wide", []string{"deploy/web", "-n", "shop", "--to", "svc/api", "-t", "10s", "-o", "wide"},
			base(stat.Resource{Kind: "deployment", Namespace: "shop", Name: "web"}, func(o *Options) {
				o.Namespace, o.To, o.Output, o.Query.Window = "shop", "svc/api", "wide", 10*time.Second
				o.Query.To = res("service", "shop", "api")
			}), ""},
		{"KIND NAME --from other namespace", []string{"po", "web-1", "-n", "shop", "--from", "deployments/client", "--from-namespace", "test"},
			base(stat.Resource{Kind: "pod", Namespace: "shop", Name: "web-1"}, func(o *Options) {
				o.Namespace, o.From, o.FromNamespace = "shop", "deployments/client", "test"
				o.Query.From = res("deployment", "test", "client")
			}), ""},
		{"aliases", []string{"STS", "--to-namespace", "x", "--to", "ds/agent"},
			base(stat.Resource{Kind: "statefulset"}, func(o *Options) {
				o.To, o.ToNamespace = "ds/agent", "x"
				o.Query.To = res("daemonset", "x", "agent")
			}), ""},
		{"all namespaces, json, watch", []string{"svc", "-A", "-o", "json", "-w", "--kubeconfig", "kc", "--context", "prod"},
			base(stat.Resource{Kind: "service"}, func(o *Options) {
				o.AllNamespaces, o.Output, o.Watch = true, "json", true
				o.Kube = kube.Flags{Kubeconfig: "kc", Context: "prod"}
			}), ""},
		{"namespaces", []string{"ns/shop", "-n", "ignored"},
			base(stat.Resource{Kind: "namespace", Name: "shop"}, func(o *Options) { o.Namespace = "ignored" }), ""},
		{"prometheus url", []string{"deploy", "--prometheus-url", "http://prom:9090"},
			base(stat.Resource{Kind: "deployment"}, func(o *Options) { o.PrometheusURL = "http://prom:9090" }), ""},
		{"no kind", []string{}, Options{}, "want KIND[/NAME] [NAME], got 0 arguments"},
		{"three arguments", []string{"po", "a", "b"}, Options{}, "got 3 arguments"},
		{"unknown kind", []string{"cronjob"}, Options{}, `unknown kind "cronjob"`},
		{"both forms", []string{"po/a", "b"}, Options{}, "not both"},
		{"bad output", []string{"po", "-o", "yaml"}, Options{}, "--output must be table, wide, json"},
		{"to and from", []string{"po", "--to", "po/a", "--from", "po/b"}, Options{}, "--to and --from"},
		{"to without name", []string{"po", "--to", "deploy"}, Options{}, "--to deployment: name one object"},
		{"from a service", []string{"po", "--from", "svc/api"}, Options{}, "--from svc"},
		{"bad --to kind", []string{"po", "--to", "job/x"}, Options{}, `--to: unknown kind "job"`},
		{"-A and -n", []string{"po", "-A", "-n", "x"}, Options{}, "-A and -n"},
		{"--to with -A", []string{"po", "-A", "--to", "svc/api"}, Options{}, "--to with -A: give its namespace (--to-namespace)"},
		{"--to ns with -A", []string{"ns", "-A", "--to", "ns/shop"},
			base(stat.Resource{Kind: "namespace"}, func(o *Options) {
				o.AllNamespaces, o.To = true, "ns/shop"
				o.Query.To = res("namespace", "", "shop")
			}), ""},
		{"name with -A", []string{"po/a", "-A"}, Options{}, "a name needs one namespace"},
		{"negative window", []string{"po", "-t", "-1s"}, Options{}, "must be positive"},
		{"watch without window", []string{"po", "-w", "-t", "0"}, Options{}, "must be positive"},
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

// fakeSource answers every Stat with rows (a copy each time), or err; after
// cancelAfter calls it cancels the context, as Ctrl-C would.
type fakeSource struct {
	rows        []stat.Row
	err         error
	calls       int
	queries     []stat.Query
	cancelAfter int
	cancel      context.CancelFunc
}

func (f *fakeSource) Stat(_ context.Context, q stat.Query) ([]stat.Row, error) {
	f.calls++
	f.queries = append(f.queries, q)
	if f.cancelAfter > 0 && f.calls >= f.cancelAfter {
		f.cancel()
	}
	return append([]stat.Row(nil), f.rows...), f.err
}

func rows() []stat.Row {
	nan := math.NaN()
	return []stat.Row{
		{Resource: stat.Resource{Kind: "deployment", Namespace: "shop", Name: "api"}, MeshedPods: 1, TotalPods: 1,
			Requests: 20, Successes: 20, SuccessRate: 1, RPS: 2, LatencyP50: 2.5, LatencyP95: 2.95, LatencyP99: 2.99,
			TCPConnections: 1, TLSRequests: 20, TLSShare: 1},
		{Resource: stat.Resource{Kind: "deployment", Namespace: "web", Name: "web"}, MeshedPods: 2, TotalPods: 3,
			Requests: 45, Successes: 35, SuccessRate: 35.0 / 45, RPS: 4.5, LatencyP50: 7.1875, LatencyP95: 9.71875, LatencyP99: 9.94375,
			TCPConnections: 5, TLSRequests: 35, TLSShare: 35.0 / 45},
		{Resource: stat.Resource{Kind: "deployment", Namespace: "shop", Name: "idle"}, MeshedPods: 0, TotalPods: 2,
			SuccessRate: nan, RPS: nan, LatencyP50: nan, LatencyP95: nan, LatencyP99: nan, TCPConnections: nan, TLSShare: nan},
	}
}

// options -> output: what Show writes for each -o, -A and --watch (goldens), and
// that a source's error is the command's.
func TestShow(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		opts   Options
		golden string
	}{
		{"table", Options{Output: "table"}, "table.golden"},
		{"wide", Options{Output: "wide"}, "wide.golden"},
		{"json", Options{Output: "json"}, "json.golden"},
		{"all namespaces", Options{Output: "table", AllNamespaces: true}, "all-namespaces.golden"},
		{"watch table", Options{Output: "table", Watch: true}, "watch-table.golden"},
		{"watch json", Options{Output: "json", Watch: true}, "watch-json.golden"},
	} {
		ctx, cancel := context.WithCancel(context.Background())
		src := &fakeSource{rows: rows(), cancel: cancel}
		if tc.opts.Watch {
			src.cancelAfter = 2
		}
		tc.opts.Query = stat.Query{Resource: stat.Resource{Kind: "deployment"}, Window: time.Minute}
		io, _, out, errOut := iostreams.Test()
		if err := Show(ctx, io, &tc.opts, src); err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
		cancel()
		golden.Assert(t, tc.golden, out.Bytes())
		if errOut.Len() != 0 {
			t.Errorf("%s: stderr %q", tc.name, errOut)
		}
		if want := map[bool]int{false: 1, true: 2}[tc.opts.Watch]; src.calls != want {
			t.Errorf("%s: %d windows, want %d", tc.name, src.calls, want)
		}
	}

	// A source's failure is the command's: exit 1, nothing on stdout.
	io, _, out, _ := iostreams.Test()
	err := Show(context.Background(), io, &Options{Output: "json"}, &fakeSource{err: errors.New("deployment shop/nope: not found")})
	if err == nil || exitcode.For(err) != exitcode.Error || out.Len() != 0 {
		t.Errorf("failing source: error %v (exit %d), stdout %q", err, exitcode.For(err), out)
	}
}

// The errors before any row: the exit codes, whatever -o.
func TestRunExitCodes(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["c"] = &clientcmdapi.Cluster{Server: "https://" + addr}
	cfg.AuthInfos["u"] = &clientcmdapi.AuthInfo{Token: "t"}
	cfg.Contexts["c"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "u"}
	cfg.CurrentContext = "c"
	unreachable := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, unreachable); err != nil {
		t.Fatal(err)
	}
	for _, output := range []string{"table", "json"} {
		for _, tc := range []struct {
			name string
			args []string
			code int
			msg  string
		}{
			{"unreachable", []string{"deploy", "--kubeconfig", unreachable}, 3, "cannot reach the cluster at https://" + addr},
			{"no kubeconfig", []string{"deploy", "--kubeconfig", filepath.Join(t.TempDir(), "missing")}, 2, "kubeconfig"},
			{"prometheus, unreachable cluster", []string{"deploy", "--prometheus-url", "http://prom:9090", "--kubeconfig", unreachable}, 3, "cannot reach the cluster"},
			{"bad prometheus URL", []string{"deploy", "--prometheus-url", "ftp://prom", "--kubeconfig", unreachable}, 2, "--prometheus-url"},
			{"bad kind", []string{"jobs"}, 2, "unknown kind"},
		} {
			io, _, out, _ := iostreams.Test()
			cmd := NewCmd(io, nil)
			cmd.SetArgs(append(tc.args, "-o", output, "-t", "1ms"))
			cmd.SilenceErrors, cmd.SilenceUsage = true, true
			err := cmd.ExecuteContext(context.Background())
			if exitcode.For(err) != tc.code || err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("%s -o %s: exit %d, error %v; want %d, %q", tc.name, output, exitcode.For(err), err, tc.code, tc.msg)
			}
			if out.Len() != 0 {
				t.Errorf("%s -o %s: stdout %q", tc.name, output, out)
			}
		}
	}
}
