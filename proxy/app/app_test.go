package app

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
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

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().String()
}

// The whole `mesh-proxy run`: not ready until certified, then ready, proxies, serves
// metrics, and on cancellation (SIGTERM in main) drains and exits 0.
func TestRunReadyProxiesAndStops(t *testing.T) {
	cp := proxytest.Start(t)
	appL, _ := net.Listen("tcp", "127.0.0.1:0")
	appSrv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "app") })}
	go func() { _ = appSrv.Serve(appL) }()
	defer func() { _ = appSrv.Close() }()

	token := filepath.Join(t.TempDir(), "token")
	_ = os.WriteFile(token, []byte(identitytest.Token("web.default.serviceaccount.identity.cluster.local")), 0o600)
	admin, in, out := freeAddr(t), freeAddr(t), freeAddr(t)
	env := map[string]string{
		"MESH_PROXY_INBOUND_LISTEN_ADDR":    in,
		"MESH_PROXY_OUTBOUND_LISTEN_ADDR":   out,
		"MESH_PROXY_ADMIN_LISTEN_ADDR":      admin,
		"MESH_PROXY_INBOUND_ORIG_DST":       appL.Addr().String(),
		"MESH_PROXY_IDENTITY_SVC_ADDR":      cp.IdentityAddr,
		"MESH_PROXY_IDENTITY_SVC_NAME":      proxytest.IdentityName,
		"MESH_PROXY_IDENTITY_TOKEN_FILE":    token,
		"MESH_PROXY_IDENTITY_LOCAL_NAME":    "web.default.serviceaccount.identity.cluster.local",
		"MESH_PROXY_IDENTITY_TRUST_ANCHORS": string(cp.AnchorsPEM),
		"MESH_PROXY_DESTINATION_SVC_ADDR":   cp.DestinationAddr,
		"MESH_PROXY_DESTINATION_SVC_NAME":   proxytest.DestinationName,
		"MESH_PROXY_SHUTDOWN_GRACE_PERIOD":  "1s",
	}
	ctx, cancel := context.WithCancel(context.Background())
	var errb bytes.Buffer
	done := make(chan int)
	go func() {
		done <- Run(ctx, []string{"run"}, Streams{Out: io.Discard, Err: &errb, LookupEnv: envOf(env)}, "test")
	}()

	get := func(url string) (int, string) {
		resp, err := http.Get(url)
		if err != nil {
			return 0, err.Error()
		}
		defer func() { _ = resp.Body.Close() }()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if code, _ := get("http://" + admin + "/ready"); code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("never ready; stderr:\n%s", errb.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code, body := get("http://" + admin + "/live"); code != 200 || body != "live\n" {
		t.Errorf("/live: %d %q", code, body)
	}
	// Plaintext from a non-meshed client to the inbound port reaches the app.
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
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d; stderr:\n%s", code, errb.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("did not stop")
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
