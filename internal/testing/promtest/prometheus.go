package promtest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/meshplane/mesh/render/install"
)

// RequireEnv is set by `make test`: without a prometheus binary the real Prometheus
// tests fail instead of skipping.
const RequireEnv = "MESH_REQUIRE_PROMETHEUS"

// Target is one scraped pod: its fake proxy and the kubernetes_sd metadata
// Prometheus would have discovered for it.
type Target struct {
	Proxy http.Handler
	// Addr, when set, is a real proxy's admin address (host:port) to scrape instead
	// of serving Proxy: a pod of the real node, with Meta as kubernetes_sd would
	// give it (Debian's Prometheus is built without kubernetes_sd).
	Addr string
	Meta map[string]string
}

// PodMeta is the kubernetes_sd metadata of a proxy's admin port in a pod; an empty
// templateHash leaves the pod-template-hash label out.
func PodMeta(ns, pod, controllerKind, controllerName, templateHash string) map[string]string {
	m := map[string]string{
		"__meta_kubernetes_namespace":               ns,
		"__meta_kubernetes_pod_name":                pod,
		"__meta_kubernetes_pod_container_name":      "mesh-proxy",
		"__meta_kubernetes_pod_container_port_name": "mesh-admin",
		"__meta_kubernetes_pod_controller_kind":     controllerKind,
		"__meta_kubernetes_pod_controller_name":     controllerName,
	}
	if templateHash != "" {
		m["__meta_kubernetes_pod_label_pod_template_hash"] = templateHash
	}
	return m
}

// Options of Start.
type Options struct {
	// WithoutRelabeling scrapes with no relabelling at all: a Prometheus a user set up
	// without docs/viz.md's scrape job (the targets' metadata is then dropped).
	WithoutRelabeling bool
}

// Start serves each target's metrics on a loopback port and starts Prometheus on a
// free 127.0.0.1 port with a temporary data directory, scraping them every second
// with a static scrape config whose relabelling is the install's
// (install.PrometheusRelabeling) and with the install's recording rules
// (install.PrometheusRecordingRules). It returns Prometheus's URL once it is ready;
// the test's cleanup stops it. Without a prometheus binary the test is skipped, or
// fails when RequireEnv is set.
func Start(t *testing.T, targets []Target, o Options) string {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		if os.Getenv(RequireEnv) != "" {
			t.Fatalf("%s is set but there is no prometheus binary (apt-get install prometheus): %v", RequireEnv, err)
		}
		t.Skipf("no prometheus binary (Debian: apt-get install prometheus; %s=1 makes this a failure): %v", RequireEnv, err)
	}
	var static []any
	for _, tg := range targets {
		addr := tg.Addr
		if addr == "" {
			srv := httptest.NewServer(tg.Proxy)
			t.Cleanup(srv.Close)
			addr = strings.TrimPrefix(srv.URL, "http://")
		}
		labels := map[string]any{}
		for k, v := range tg.Meta {
			labels[k] = v
		}
		static = append(static, map[string]any{"targets": []any{addr}, "labels": labels})
	}
	job := map[string]any{"job_name": "mesh-proxy", "static_configs": static}
	if !o.WithoutRelabeling {
		relabel, err := install.PrometheusRelabeling()
		if err != nil {
			t.Fatal(err)
		}
		var shared map[string]any
		if err := yaml.Unmarshal(relabel, &shared); err != nil {
			t.Fatalf("%s: %v", install.PrometheusRelabelFile, err)
		}
		for k, v := range shared {
			job[k] = v
		}
	}
	dir := t.TempDir()
	rules, err := install.PrometheusRecordingRules()
	if err != nil {
		t.Fatal(err)
	}
	rulesPath := filepath.Join(dir, "recording-rules.yml")
	if err := os.WriteFile(rulesPath, rules, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := yaml.Marshal(map[string]any{
		"global":         map[string]any{"scrape_interval": "1s", "scrape_timeout": "900ms", "evaluation_interval": "1s"},
		"rule_files":     []any{rulesPath},
		"scrape_configs": []any{job},
	})
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, cfg, 0o644); err != nil {
		t.Fatal(err)
	}

	// A free port: probe one, then let Prometheus bind it; retry if someone else
	// took it in between.
	for attempt := 0; ; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		var logs bytes.Buffer
		cmd := exec.Command(bin, "--config.file="+cfgPath, "--storage.tsdb.path="+filepath.Join(dir, fmt.Sprint("data", attempt)),
			"--web.listen-address="+addr, "--log.level=warn")
		cmd.Stdout, cmd.Stderr = &logs, &logs
		if err := cmd.Start(); err != nil {
			t.Fatalf("starting %s: %v", bin, err)
		}
		exited := make(chan struct{}) // closed when Prometheus has exited, with waitErr set
		var waitErr error
		go func() { waitErr = cmd.Wait(); close(exited) }()
		url := "http://" + addr
		// stop kills Prometheus and reaps it; being killed is how it is meant to end.
		stop := func() {
			_ = cmd.Process.Kill()
			<-exited
			if waitErr != nil && !strings.Contains(waitErr.Error(), "killed") {
				t.Logf("prometheus: %v", waitErr)
			}
		}
		ready := waitReady(url, exited, 60*time.Second)
		if ready == nil {
			t.Cleanup(func() {
				stop()
				if t.Failed() {
					t.Logf("prometheus log:\n%s\nconfig:\n%s", logs.String(), cfg)
				}
			})
			return url
		}
		stop()
		if attempt == 2 || !strings.Contains(logs.String(), "address already in use") {
			t.Fatalf("prometheus did not become ready: %v\n%s", ready, logs.String())
		}
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitReady polls /-/ready until Prometheus answers 200, exits, or timeout passes.
func waitReady(url string, exited <-chan struct{}, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		resp, err := http.Get(url + "/-/ready")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-exited:
			return errors.New("prometheus exited")
		case <-tick.C:
		}
		if time.Now().After(deadline) {
			return errors.New("timed out waiting for /-/ready")
		}
	}
}

// Promtool returns the path of Debian's promtool (it ships with prometheus), skipping
// the test without it, or failing it when RequireEnv is set.
func Promtool(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv(RequireEnv) != "" {
			t.Fatalf("%s is set but there is no promtool (apt-get install prometheus): %v", RequireEnv, err)
		}
		t.Skipf("no promtool (Debian: apt-get install prometheus; %s=1 makes this a failure): %v", RequireEnv, err)
	}
	return bin
}
