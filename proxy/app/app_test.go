package app

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/meshplane/mesh/controlplane/api/identityclient/identitytest"
	"github.com/meshplane/mesh/proxy/proxytest"
)

func envOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestUsageAndConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  map[string]string
		code int
		err  string
	}{
		{nil, nil, exitUsage, "Usage: mesh-proxy"},
		{[]string{"frobnicate"}, nil, exitUsage, `unknown command "frobnicate"`},
		{[]string{"run", "extra"}, nil, exitUsage, "takes no arguments"},
		{[]string{"run"}, map[string]string{}, exitError, "MESH_PROXY_IDENTITY_LOCAL_NAME is not set"},
		{[]string{"run"}, map[string]string{"MESH_PROXY_INBOUND_CONNECT_TIMEOUT": "soon"}, exitError, `MESH_PROXY_INBOUND_CONNECT_TIMEOUT="soon"`},
		{[]string{"run"}, map[string]string{"MESH_PROXY_TAP_LISTEN_ADDR": "0.0.0.0:4192"}, exitError, "loopback address only"},
		{[]string{"init", "--inbound-port=0"}, nil, exitUsage, "inbound"},
		{[]string{"init", "--bogus"}, nil, exitUsage, "bogus"},
	} {
		var out, errb bytes.Buffer
		code := Run(context.Background(), tc.args, Streams{Out: &out, Err: &errb, LookupEnv: envOf(tc.env)}, "v1.2.3")
		if code != tc.code || !strings.Contains(errb.String(), tc.err) {
			t.Errorf("%v: exit %d (want %d), stderr %q (want %q)", tc.args, code, tc.code, errb.String(), tc.err)
		}
		if out.Len() != 0 {
			t.Errorf("%v: wrote to stdout: %q", tc.args, out.String())
		}
	}
	var out bytes.Buffer
	if code := Run(context.Background(), []string{"version"}, Streams{Out: &out, Err: io.Discard}, "v1.2.3"); code != 0 || out.String() != "v1.2.3\n" {
		t.Errorf("version: %d %q", code, out.String())
	}
}

// running is a `mesh-proxy run` in the background.
type running struct {
	cancel context.CancelFunc
	stderr *identitytest.LogBuffer
	done   chan int
}

func start(t *testing.T, env map[string]string) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, stderr: &identitytest.LogBuffer{}, done: make(chan int, 1)}
	go func() {
		r.done <- Run(ctx, []string{"run"}, Streams{Out: io.Discard, Err: r.stderr, LookupEnv: envOf(env)}, "test")
	}()
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	return r
}

// exit waits for the exit code.
func (r *running) exit(t *testing.T) int {
	t.Helper()
	select {
	case code := <-r.done:
		r.done <- code // for the cleanup
		return code
	case <-time.After(10 * time.Second):
		t.Fatalf("did not stop; stderr:\n%s", r.stderr)
		return -1
	}
}

// waitReady waits until admin's /ready answers 200.
func (r *running) waitReady(t *testing.T, admin string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if code, _ := get("http://" + admin + "/ready"); code == 200 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("never ready; stderr:\n%s", r.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func get(url string) (int, string) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// The whole `mesh-proxy run`: not ready until certified, then ready, proxies, serves
// metrics, and on cancellation (SIGTERM in main) drains and exits 0.
func TestRunReadyProxiesAndStops(t *testing.T) {
	t.Parallel()
	cp := proxytest.Start(t)
	appL, _ := net.Listen("tcp", "127.0.0.1:0")
	appSrv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "app") })}
	go func() { _ = appSrv.Serve(appL) }()
	defer func() { _ = appSrv.Close() }()

	env := cp.ProxyEnv(t, appL.Addr().String())
	env["MESH_PROXY_TAP_REDACT_HEADERS"] = "X-Secret"
	admin, in := env["MESH_PROXY_ADMIN_LISTEN_ADDR"], env["MESH_PROXY_INBOUND_LISTEN_ADDR"]
	r := start(t, env)
	r.waitReady(t, admin)
	if code, body := get("http://" + admin + "/live"); code != 200 || body != "live\n" {
		t.Errorf("/live: %d %q", code, body)
	}
	// The tap API on its own loopback listener sees the next request.
	tapResp, err := http.Get("http://" + env["MESH_PROXY_TAP_LISTEN_ADDR"] + "/tap?direction=inbound")
	if err != nil || tapResp.StatusCode != 200 || tapResp.Header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("tap: %v %v", tapResp, err)
	}
	defer func() { _ = tapResp.Body.Close() }()
	// Plaintext from a non-meshed client to the inbound port reaches the app.
	req, _ := http.NewRequest("GET", "http://"+in+"/tapped", nil)
	req.Header.Set("X-Secret", "hidden")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Errorf("inbound: %v %v", resp, err)
	} else {
		_ = resp.Body.Close()
	}
	line, err := bufio.NewReader(tapResp.Body).ReadString('\n')
	if err != nil || !strings.Contains(line, `"path":"/tapped"`) || !strings.Contains(line, `"direction":"inbound"`) || strings.Contains(line, "hidden") {
		t.Errorf("tap record %q %v", line, err)
	}
	if code, body := get("http://" + in + "/"); code != 200 || body != "app" {
		t.Errorf("inbound: %d %q", code, body)
	}
	if code, body := get("http://" + admin + "/identity"); code != 200 || !strings.HasPrefix(body, "-----BEGIN CERTIFICATE-----") || strings.Contains(body, "PRIVATE") {
		t.Errorf("/identity: %d %q", code, body)
	}
	_, metrics := get("http://" + admin + "/metrics")
	if !strings.Contains(metrics, `request_total{`) || !strings.Contains(metrics, "identity_cert_expiration_timestamp_seconds") {
		t.Errorf("metrics:\n%s", metrics)
	}
	r.cancel()
	if code := r.exit(t); code != 0 {
		t.Errorf("exit %d; stderr:\n%s", code, r.stderr)
	}
}

// The moment the drain starts (SIGTERM: ctx ends) /ready answers 503, while /live
// still answers 200 and a request in flight through the proxy still finishes; then
// the proxy exits 0.
func TestDrainTurnsReadyOffFirst(t *testing.T) {
	t.Parallel()
	cp := proxytest.Start(t)
	arrived, release := make(chan struct{}), make(chan struct{})
	appL, _ := net.Listen("tcp", "127.0.0.1:0")
	appSrv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		close(arrived)
		<-release
		_, _ = io.WriteString(w, "finished")
	})}
	go func() { _ = appSrv.Serve(appL) }()
	defer func() { _ = appSrv.Close() }()

	env := cp.ProxyEnv(t, appL.Addr().String())
	env["MESH_PROXY_SHUTDOWN_GRACE_PERIOD"] = "30s" // the request finishes well within it
	admin, in := env["MESH_PROXY_ADMIN_LISTEN_ADDR"], env["MESH_PROXY_INBOUND_LISTEN_ADDR"]
	r := start(t, env)
	r.waitReady(t, admin)

	type result struct {
		code int
		body string
	}
	inflight := make(chan result, 1)
	go func() {
		code, body := get("http://" + in + "/slow")
		inflight <- result{code, body}
	}()
	<-arrived
	r.cancel()
	// No wait: the drain has started when cancel returns.
	if code, body := get("http://" + admin + "/ready"); code != http.StatusServiceUnavailable || !strings.Contains(body, "shutting down") {
		t.Errorf("/ready while draining: %d %q", code, body)
	}
	if code, body := get("http://" + admin + "/live"); code != 200 || body != "live\n" {
		t.Errorf("/live while draining: %d %q", code, body)
	}
	select {
	case res := <-inflight:
		t.Fatalf("the in-flight request ended before the app answered: %+v", res)
	default:
	}
	// Still draining, still not ready.
	if code, _ := get("http://" + admin + "/ready"); code != http.StatusServiceUnavailable {
		t.Errorf("/ready later in the drain: %d", code)
	}
	close(release)
	if res := <-inflight; res.code != 200 || res.body != "finished" {
		t.Errorf("the in-flight request: %d %q", res.code, res.body)
	}
	if code := r.exit(t); code != 0 {
		t.Errorf("exit %d; stderr:\n%s", code, r.stderr)
	}
}

// What stops `mesh-proxy run` at start exits 1 and says why, promptly: a listen
// address in use, anchors that do not parse, an identity or destination address gRPC
// refuses (the identity client's start-up error used to be dropped, leaving a proxy
// that never became ready).
func TestRunStartupErrors(t *testing.T) {
	t.Parallel()
	cp := proxytest.Start(t)
	const busy = "a port in use"
	for _, tc := range []struct {
		key, value, want string
	}{
		{"MESH_PROXY_ADMIN_LISTEN_ADDR", busy, "admin listener"},
		{"MESH_PROXY_INBOUND_LISTEN_ADDR", busy, "inbound listener"},
		{"MESH_PROXY_OUTBOUND_LISTEN_ADDR", busy, "outbound listener"},
		{"MESH_PROXY_TAP_LISTEN_ADDR", busy, "tap listener"},
		{"MESH_PROXY_IDENTITY_TRUST_ANCHORS", "nope", "identity: inline trust anchors"},
		{"MESH_PROXY_IDENTITY_SVC_ADDR", "%zz", "identity: identity service %zz"},
		{"MESH_PROXY_DESTINATION_SVC_ADDR", "%zz", "discovery: destination service %zz"},
	} {
		t.Run(tc.key, func(t *testing.T) {
			t.Parallel()
			env := cp.ProxyEnv(t, "127.0.0.1:1")
			env[tc.key] = tc.value
			if tc.value == busy {
				l, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = l.Close() })
				env[tc.key] = l.Addr().String()
			}
			r := start(t, env)
			if code := r.exit(t); code != exitError || !strings.Contains(r.stderr.String(), "mesh-proxy: "+tc.want) {
				t.Errorf("exit %d, want %d and %q; stderr:\n%s", code, exitError, tc.want, r.stderr)
			}
		})
	}
}

func TestLogLevel(t *testing.T) {
	for in, want := range map[string]slog.Level{
		"": slog.LevelInfo, "debug": slog.LevelDebug, "warn,mesh=info": slog.LevelInfo, "warn": slog.LevelWarn,
		"info,mesh=debug": slog.LevelDebug, "error,other=debug": slog.LevelError, "bogus": slog.LevelInfo,
	} {
		if got := logLevel(in); got != want {
			t.Errorf("logLevel(%q) = %s, want %s", in, got, want)
		}
	}
}

// Every command of the table Run dispatches from (so a new one is covered by itself):
// --help, -h and `help COMMAND` print its help on stdout, nothing on stderr, and exit
// 0, before anything runs; an unknown argument after it is an unknown command, exit 2
// with the reason on stderr and nothing on stdout.
func TestHelpOfEveryCommand(t *testing.T) {
	t.Parallel()
	run := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		// No environment: `run` would fail at once if it ran instead of helping.
		code := Run(context.Background(), args, Streams{Out: &out, Err: &errb, LookupEnv: envOf(nil)}, "v1.2.3")
		return code, out.String(), errb.String()
	}
	if len(commands()) < 3 {
		t.Fatalf("commands: %v", commands())
	}
	for _, c := range commands() {
		for _, args := range [][]string{{c.name, "--help"}, {c.name, "-h"}, {"help", c.name}} {
			code, out, errOut := run(args...)
			if code != exitOK || errOut != "" || !strings.HasPrefix(out, "Usage: mesh-proxy "+c.name) {
				t.Errorf("%v: exit %d, stderr %q, stdout %q", args, code, errOut, out)
			}
		}
		code, out, errOut := run(c.name, "rotate")
		if code != exitUsage || out != "" || !strings.Contains(errOut, `unknown command "rotate"`) {
			t.Errorf("%s rotate: exit %d, stdout %q, stderr %q", c.name, code, out, errOut)
		}
	}
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}} {
		code, out, errOut := run(args...)
		if code != exitOK || errOut != "" || !strings.HasPrefix(out, "Usage: mesh-proxy COMMAND") {
			t.Errorf("%v: exit %d, stderr %q, stdout %q", args, code, errOut, out)
		}
		for _, c := range commands() {
			if !strings.Contains(out, "\n  "+c.name+" ") {
				t.Errorf("%v: the usage does not list %s", args, c.name)
			}
		}
	}
	if code, out, errOut := run("help", "rotate"); code != exitUsage || out != "" || !strings.Contains(errOut, `unknown command "rotate"`) {
		t.Errorf("help rotate: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	// run's help lists the variables of the contract.
	if _, out, _ := run("run", "--help"); !strings.Contains(out, "MESH_PROXY_IDENTITY_LOCAL_NAME") {
		t.Errorf("run --help:\n%s", out)
	}
}
