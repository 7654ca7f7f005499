package inject

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	cliinstall "github.com/meshplane/mesh/cli/install"
	"github.com/meshplane/mesh/cli/iostreams"
	"github.com/meshplane/mesh/proxy/config"
)

// Install-wide tap settings, end to end on the CLI: `mesh install --set proxy.tap.*
// --print-values` records them, `mesh inject --manual --install-values` writes them
// into the proxy's environment, which proxy/config loads as the tap's cap and
// redacted headers; a workload's annotation, or inject's flag, overrides them.
func TestTapInstallValues(t *testing.T) {
	t.Parallel()
	io, _, out, errOut := iostreams.Test()
	cmd := cliinstall.NewCmd(io, nil, time.Now)
	cmd.SetArgs([]string{"--print-values", "--set", "proxy.tap.maxEventsPerSecond=250", "--set", "proxy.tap.redactHeaders={X-Api-Key,X-Session}"})
	cmd.SilenceErrors, cmd.SilenceUsage = true, true
	if err := cmd.Execute(); err != nil {
		t.Fatalf("mesh install --print-values: %v\n%s", err, errOut)
	}
	valuesFile := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(valuesFile, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	annotated := strings.Replace(deployment, "metadata: {labels: {app: web}}",
		"metadata: {labels: {app: web}, annotations: {config.meshplane.io/tap-max-events-per-second: \"5\"}}", 1)
	for _, tc := range []struct {
		name, input string
		flags       []string
		rate        float64
		redact      []string
	}{
		{"install-wide", deployment, nil, 250, []string{"X-Api-Key", "X-Session"}},
		{"annotation", annotated, nil, 5, []string{"X-Api-Key", "X-Session"}},
		{"flag", deployment, []string{"--tap-redact-headers", "X-Token"}, 250, []string{"X-Token"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := parse(t, NewCmd, append([]string{"-f", "-", "--manual", "--install-values", valuesFile}, tc.flags...))
			if err != nil {
				t.Fatal(err)
			}
			io, in, out, errOut := iostreams.Test()
			in.WriteString(tc.input)
			c := &cobra.Command{}
			c.SetContext(t.Context())
			if err := Run(c, io, o); err != nil {
				t.Fatalf("mesh inject: %v\n%s", err, errOut)
			}
			var pod struct {
				Spec struct{ Template struct{ Spec corev1.PodSpec } }
			}
			if err := yaml.Unmarshal(out.Bytes(), &pod); err != nil {
				t.Fatal(err)
			}
			spec := pod.Spec.Template.Spec
			env := kubeletEnv(t, container(t, spec, "mesh-proxy").Env, map[string]string{
				"metadata.namespace": "shop", "metadata.name": "web-1", "spec.serviceAccountName": "default"})
			cfg, err := config.FromEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
			if err != nil {
				t.Fatalf("proxy/config refuses the injected environment: %v", err)
			}
			if cfg.TapMaxEventsPerSecond != tc.rate || !reflect.DeepEqual(cfg.TapRedactHeaders, tc.redact) {
				t.Errorf("the proxy taps at %v/s, redacting %q; want %v/s, %q", cfg.TapMaxEventsPerSecond, cfg.TapRedactHeaders, tc.rate, tc.redact)
			}
		})
	}
}
