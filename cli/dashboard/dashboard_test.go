package dashboard

import (
	"context"
	"io"
	"net/http"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/dynamic"

	"github.com/meshplane/mesh/cli/exitcode"
	"github.com/meshplane/mesh/cli/iostreams"
	"github.com/meshplane/mesh/cli/kube"
	vdash "github.com/meshplane/mesh/viz/dashboard"
	"github.com/meshplane/mesh/viz/stat"
)

// argv -> options.
func TestNewCmdOptions(t *testing.T) {
	t.Parallel()
	def := Options{Address: "127.0.0.1", Window: 10 * time.Second}
	tests := []struct {
		name    string
		args    []string
		want    Options
		wantErr string
	}{
		{"defaults", nil, def, ""},
		{"namespace, port, window, context", []string{"-n", "shop", "--port", "50750", "-t", "30s", "--context", "prod"},
			Options{Namespace: "shop", Address: "127.0.0.1", Port: 50750, Window: 30 * time.Second, Kube: kube.Flags{Context: "prod"}}, ""},
		{"IPv6 loopback", []string{"--address", "::1"}, Options{Address: "::1", Window: 10 * time.Second}, ""},
		{"non-loopback allowed", []string{"--address", "0.0.0.0", "--allow-non-loopback"},
			Options{Address: "0.0.0.0", AllowNonLoopback: true, Window: 10 * time.Second}, ""},
		{"non-loopback refused", []string{"--address", "0.0.0.0"}, Options{}, "not a loopback address"},
		{"a host name", []string{"--address", "example.com"}, Options{}, "want an IP address"},
		{"bad port", []string{"--port", "70000"}, Options{}, "--port 70000"},
		{"zero window", []string{"-t", "0s"}, Options{}, "must be positive"},
		{"an argument", []string{"shop"}, Options{}, "takes no arguments"},
		{"prometheus", []string{"--prometheus-url", "http://localhost:9090/prom"},
			Options{Address: "127.0.0.1", Window: 10 * time.Second, PrometheusURL: "http://localhost:9090/prom"}, ""},
		{"bad prometheus url", []string{"--prometheus-url", "localhost:9090"}, Options{}, "--prometheus-url"},
		{"prometheus url, not http", []string{"--prometheus-url", "ftp://p:9090"}, Options{}, "--prometheus-url"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ios, _, _, _ := iostreams.Test()
			var got *Options
			cmd := NewCmd(ios, func(o *Options) error { got = o; return nil })
			cmd.SetArgs(tc.args)
			cmd.SetOut(ios.ErrOut)
			cmd.SetErr(ios.ErrOut)
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
			if !reflect.DeepEqual(*got, tc.want) {
				t.Errorf("options\n got %+v\nwant %+v", *got, tc.want)
			}
		})
	}
}

type fakeMetrics struct{ ns chan string }

func (f fakeMetrics) Stat(_ context.Context, q stat.Query) ([]stat.Row, error) {
	f.ns <- q.Resource.Namespace + " " + q.Window.String()
	return nil, nil
}

func (fakeMetrics) Edges(context.Context, string, string, time.Duration) ([]stat.Edge, error) {
	return nil, nil
}

func (fakeMetrics) Routes(context.Context, dynamic.Interface, stat.Resource, time.Duration) ([]stat.RouteRow, error) {
	return nil, nil
}

// lineWriter hands each line written to it to a channel.
type lineWriter chan string

func (l lineWriter) Write(p []byte) (int, error) {
	l <- string(p)
	return len(p), nil
}

// options -> output: the URL on stderr, nothing on stdout, the dashboard served
// there with the options' namespace and window, until the context ends.
func TestServe(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		opts Options
		url  string // a regexp
	}{
		{Options{Namespace: "shop", Address: "127.0.0.1", Window: 10 * time.Second}, `^mesh dashboard: serving namespace shop on (http://127\.0\.0\.1:[0-9]+/) \(Ctrl-C to stop\)\n$`},
		{Options{Namespace: "prod", Address: "::1", Window: time.Minute}, `^mesh dashboard: serving namespace prod on (http://\[::1\]:[0-9]+/) \(Ctrl-C to stop\)\n$`},
	} {
		ios, _, out, _ := iostreams.Test()
		lines := make(lineWriter, 4)
		ios.ErrOut = lines
		m := fakeMetrics{ns: make(chan string, 1)}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- Serve(ctx, ios, &tc.opts, vdash.Config{Metrics: m}) }()
		var line string
		select {
		case line = <-lines:
		case err := <-done:
			if strings.Contains(err.Error(), "cannot assign requested address") && tc.opts.Address == "::1" {
				cancel()
				t.Logf("no IPv6 loopback here: %v", err)
				continue
			}
			t.Fatal(err)
		}
		match := regexp.MustCompile(tc.url).FindStringSubmatch(line)
		if match == nil {
			cancel()
			t.Fatalf("stderr %q, want %s", line, tc.url)
		}
		resp, err := http.Get(match[1] + "api/namespaces")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != "[]" {
			t.Errorf("%s: %s %s", match[1], resp.Status, body)
		}
		if got, want := <-m.ns, " "+tc.opts.Window.String(); got != want {
			t.Errorf("the namespaces query: %q, want %q", got, want)
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve after cancel: %v", err)
		}
		if out.Len() != 0 {
			t.Errorf("stdout %q", out)
		}
	}
	// The port is taken: exit 1.
	ios, _, _, _ := iostreams.Test()
	err := Serve(context.Background(), ios, &Options{Address: "127.0.0.1", Port: -1, Window: time.Second}, vdash.Config{})
	if err == nil || exitcode.For(err) != exitcode.Error {
		t.Errorf("listening on a bad port: %v (exit %d)", err, exitcode.For(err))
	}
}
