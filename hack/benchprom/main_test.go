package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/meshplane/mesh/render/install"
	"github.com/meshplane/mesh/render/manifest"
	"github.com/meshplane/mesh/render/values"
)

type noFiles struct{}

func (noFiles) ReadFile(name string) ([]byte, error) { return os.ReadFile(name) }
func (noFiles) Stdin() io.Reader                     { return strings.NewReader("") }

func renderWithPrometheus(t *testing.T, set string) []byte {
	t.Helper()
	res, err := install.Render(install.Options{Version: "v1.2.3", Values: values.Options{Values: []string{set}}}, noFiles{})
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	var b bytes.Buffer
	if err := manifest.WriteYAML(&b, res.Objects); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// config keeps the rendered scrape config but for the discovery, and takes the
// retention from the rendered container.
func TestConfigFromRender(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	err := writeConfig(configOptions{dir: dir, proxies: 7, portBase: 40000,
		manifests: bytes.NewReader(renderWithPrometheus(t, "prometheus.enabled=true,prometheus.retention=9h"))})
	if err != nil {
		t.Fatal(err)
	}
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if got := strings.TrimSpace(string(read("flags"))); got != "--storage.tsdb.retention.time=9h" {
		t.Errorf("flags = %q", got)
	}
	var cfg struct {
		Global        map[string]string `json:"global"`
		RuleFiles     []string          `json:"rule_files"`
		ScrapeConfigs []map[string]any  `json:"scrape_configs"`
	}
	if err := yaml.Unmarshal(read("prometheus.yml"), &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Global["scrape_interval"] != "10s" || len(cfg.ScrapeConfigs) != 1 {
		t.Fatalf("config = %+v", cfg)
	}
	sc := cfg.ScrapeConfigs[0]
	if _, ok := sc["kubernetes_sd_configs"]; ok {
		t.Error("kubernetes_sd_configs kept")
	}
	if fmt.Sprint(sc["file_sd_configs"]) != fmt.Sprintf("[map[files:[%s]]]", filepath.Join(dir, "targets.json")) {
		t.Errorf("file_sd_configs = %v", sc["file_sd_configs"])
	}
	relabel, err := install.PrometheusRelabeling()
	if err != nil {
		t.Fatal(err)
	}
	var want map[string]any
	if err := yaml.Unmarshal(relabel, &want); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"relabel_configs", "metric_relabel_configs"} {
		if fmt.Sprint(sc[k]) != fmt.Sprint(want[k]) {
			t.Errorf("%s = %v, want the rendered %v", k, sc[k], want[k])
		}
	}
	if cfg.RuleFiles[0] != filepath.Join(dir, "recording-rules.yml") || !bytes.Contains(read("recording-rules.yml"), []byte("record: deployment:response_total:increase1m")) {
		t.Errorf("rules = %v", cfg.RuleFiles)
	}
	var ts []struct {
		Targets []string          `json:"targets"`
		Labels  map[string]string `json:"labels"`
	}
	if err := json.Unmarshal(read("targets.json"), &ts); err != nil {
		t.Fatal(err)
	}
	if len(ts) != 7 || ts[6].Targets[0] != "127.0.0.1:40006" || ts[6].Labels["__meta_kubernetes_pod_container_port_name"] != "mesh-admin" {
		t.Errorf("targets = %+v", ts)
	}
}

func TestConfigWithoutPrometheus(t *testing.T) {
	t.Parallel()
	err := writeConfig(configOptions{dir: t.TempDir(), manifests: bytes.NewReader(renderWithPrometheus(t, "prometheus.enabled=false"))})
	if err == nil || !strings.Contains(err.Error(), "prometheus.enabled=true") {
		t.Fatalf("err = %v", err)
	}
}

// serve's endpoints carry the series the options ask for, and they move.
func TestServe(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close() // serve listens on base and base+1 itself: retried below if taken
	ready := filepath.Join(t.TempDir(), "ready")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, serveOptions{proxies: 2, portBase: base, clients: 2, dsts: 2, endpoints: 2, routes: 3, rps: 50, readyFile: ready})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !t.Skipped() {
			t.Errorf("serve: %v", err)
		}
	})
	get := func() string {
		for {
			resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", base+1))
			if err == nil {
				b, _ := io.ReadAll(resp.Body)
				_ = resp.Body.Close()
				return string(b)
			}
			select {
			case err := <-done:
				done <- err // for the cleanup
				t.Skipf("serve: %v (port taken)", err)
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	var body string
	for body = get(); !strings.Contains(body, `status_code="200"`); body = get() {
		time.Sleep(50 * time.Millisecond)
	}
	// 2 inbound series (one per client) and 2×2×3 outbound ones (dst × endpoint × route).
	for dir, want := range map[string]int{"inbound": 2, "outbound": 12} {
		n := 0
		for _, line := range strings.Split(body, "\n") {
			if strings.HasPrefix(line, "request_total{") && strings.Contains(line, `direction="`+dir+`"`) {
				n++
			}
		}
		if n != want {
			t.Errorf("%s request_total series = %d, want %d", dir, n, want)
		}
	}
	if !strings.Contains(body, `route="GET /api/v1/dst-1/r2"`) || !strings.Contains(body, "process_resident_memory_bytes") {
		t.Errorf("exposition lacks routes or process metrics:\n%s", body)
	}
}
