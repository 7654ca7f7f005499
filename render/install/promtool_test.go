package install_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/meshplane/mesh/internal/testing/promtest"
	"github.com/meshplane/mesh/render/install"
	"github.com/meshplane/mesh/render/values"
)

// The rendered prometheus.yml (the relabelling) and recording rules are what
// Prometheus accepts: promtool check config, with the rules file where the
// Deployment mounts it. (An external test package: promtest imports this one.)
func TestPrometheusConfigPassesPromtool(t *testing.T) {
	t.Parallel()
	promtool := promtest.Promtool(t)
	res, err := install.Render(install.Options{Version: "v1.2.3", Part: install.ControlPlane,
		Values: values.Options{Values: []string{"prometheus.enabled=true"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var data map[string]string
	for _, o := range res.Objects {
		if o.Kind == "ConfigMap" && o.Name == "mesh-prometheus-config" {
			var cm struct{ Data map[string]string }
			if err := yaml.Unmarshal(o.YAML, &cm); err != nil {
				t.Fatal(err)
			}
			data = cm.Data
		}
	}
	if data == nil {
		t.Fatal("no ConfigMap mesh-prometheus-config")
	}
	dir := t.TempDir()
	cfg := strings.ReplaceAll(data["prometheus.yml"], "/etc/prometheus/recording-rules.yml", filepath.Join(dir, "recording-rules.yml"))
	// Debian builds Prometheus without Kubernetes discovery, so its promtool does not
	// know kubernetes_sd_configs: check the rest (global, rule files, the relabelling)
	// with the discovery swapped for a static target.
	const sd = "    kubernetes_sd_configs:\n      - role: pod\n"
	if !strings.Contains(cfg, sd) {
		t.Fatalf("prometheus.yml has no kubernetes_sd_configs role pod:\n%s", cfg)
	}
	cfg = strings.Replace(cfg, sd, "    static_configs:\n      - targets: [\"127.0.0.1:4191\"]\n", 1)
	for name, body := range map[string]string{"prometheus.yml": cfg, "recording-rules.yml": data["recording-rules.yml"]} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, err := exec.Command(promtool, "check", "config", filepath.Join(dir, "prometheus.yml")).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check config: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "15 rules found") {
		t.Errorf("promtool did not read the 15 recording rules:\n%s", out)
	}
}
