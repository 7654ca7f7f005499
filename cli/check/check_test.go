package check

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/meshplane/mesh/cli/exitcode"
	"github.com/meshplane/mesh/cli/iostreams"
	"github.com/meshplane/mesh/render/install"
	"github.com/meshplane/mesh/render/manifest"
)

var clock = func() time.Time { return time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC) }

// argv -> options.
func TestNewCmdOptions(t *testing.T) {
	tests := []struct {
		args    []string
		check   func(*Options) bool
		wantErr string
	}{
		{[]string{"-f", "a.yaml", "-R"}, func(o *Options) bool {
			return o.Inputs.Filenames[0] == "a.yaml" && o.Inputs.Recursive && o.Output == "table" && o.FailOn == "error" && o.MinCertValidity == 60*24*time.Hour && o.KubernetesVersion == "1.36"
		}, ""},
		{[]string{"-k", "dir", "-o", "junit", "--fail-on", "warning", "--min-cert-validity", "720h", "--wait", "30s"}, func(o *Options) bool {
			return o.Inputs.Kustomize == "dir" && o.Output == "junit" && o.FailOn == "warning" && o.MinCertValidity == 720*time.Hour && o.Wait == 30*time.Second
		}, ""},
		{[]string{"b.yaml", "--min-cert-validity", "10d"}, func(o *Options) bool {
			return o.Inputs.Filenames[0] == "b.yaml" && o.MinCertValidity == 240*time.Hour
		}, ""},
		{[]string{"--proxy"}, func(o *Options) bool {
			return o.Proxy && o.PodNamespace == "" && o.ControlPlaneNamespace == "mesh-system"
		}, ""},
		{[]string{"--proxy", "-n", "shop", "--control-plane-namespace", "mesh"}, func(o *Options) bool {
			return o.Proxy && o.PodNamespace == "shop" && o.ControlPlaneNamespace == "mesh"
		}, ""},
		{[]string{"--proxy", "--pre"}, nil, "choose one"},
		{nil, func(o *Options) bool { return !o.Pre && len(o.Inputs.Filenames) == 0 }, ""},
		{[]string{"--pre", "--kubeconfig", "kc", "--context", "c", "-n", "mesh"}, func(o *Options) bool {
			return o.Pre && o.Kubeconfig == "kc" && o.Context == "c" && o.Namespace == "mesh"
		}, ""},
		{[]string{"--pre", "-f", "a"}, nil, "choose one"},
		{[]string{"--pre", "--upgrade", "--from", "v.yaml", "--from", "-", "--force", "-n", "mesh"}, func(o *Options) bool {
			return o.Pre && o.Upgrade && o.Force && len(o.From) == 2 && o.From[1] == "-" && o.Namespace == "mesh"
		}, ""},
		{[]string{"--upgrade"}, nil, "--upgrade goes with --pre"},
		{[]string{"--pre", "--from", "v.yaml"}, nil, "--from and --force go with --pre --upgrade"},
		{[]string{"--pre", "--force"}, nil, "--from and --force go with --pre --upgrade"},
		{[]string{"--metrics", "--prometheus-url", "http://localhost:9090", "-o", "json"}, func(o *Options) bool {
			return o.Metrics && o.PrometheusURL == "http://localhost:9090" && o.Output == "json"
		}, ""},
		{[]string{"--metrics"}, nil, "--metrics needs --prometheus-url"},
		{[]string{"--metrics", "--prometheus-url", "http://p", "--pre"}, nil, "choose one"},
		{[]string{"--metrics", "--prometheus-url", "http://p", "-f", "a"}, nil, "choose one"},
		{[]string{"--prometheus-url", "http://p"}, nil, "--prometheus-url is for --metrics"},
		{[]string{"-f", "a", "-o", "yaml"}, nil, "--output must be"},
		{[]string{"-f", "a", "--fail-on", "info"}, nil, "--fail-on"},
		{[]string{"-f", "a", "--min-cert-validity", "soon"}, nil, "--min-cert-validity"},
		{[]string{"-f", "a", "--kubernetes-version", "1.20"}, nil, "not supported"},
	}
	for _, tc := range tests {
		io, _, _, _ := iostreams.Test()
		var got *Options
		cmd := NewCmd(io, func(o *Options) error { got = o; return nil }, clock)
		cmd.SetArgs(append([]string{}, tc.args...))
		cmd.SilenceErrors, cmd.SilenceUsage = true, true
		err := cmd.Execute()
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || exitcode.For(err) != exitcode.UsageCode {
				t.Errorf("%v: error %v (exit %d), want usage error %q", tc.args, err, exitcode.For(err), tc.wantErr)
			}
			continue
		}
		if err != nil || !tc.check(got) {
			t.Errorf("%v: err %v, options %+v", tc.args, err, got)
		}
	}
}

func installed(t *testing.T, o install.Options) string {
	t.Helper()
	o.Version = "v1.2.3"
	res, err := install.Render(o, iostreams.System())
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	_ = manifest.WriteYAML(&b, res.Objects)
	return b.String()
}

// options -> output: the report in each format (data on stdout, reports on stderr), exit codes that do not depend on -o.
func TestRun(t *testing.T) {
	good := installed(t, install.Options{})
	bad := strings.Replace(good, "controller:v1.2.3", "controller:latest", 1)
	for _, output := range []string{"table", "json", "junit", "short"} {
		for _, tc := range []struct {
			name, input string
			code        int
		}{{"good", good, 0}, {"bad", bad, 1}} {
			io, in, out, errOut := iostreams.Test()
			in.WriteString(tc.input)
			o := &Options{Inputs: manifest.Inputs{Filenames: []string{"-"}}, KubernetesVersion: "1.36", MinCertValidity: 60 * 24 * time.Hour,
				Output: output, FailOn: "error", CLIVersion: "v1.2.3", Now: clock}
			cmd := &cobra.Command{}
			cmd.SetContext(t.Context())
			err := Run(cmd, io, o)
			if got := exitcode.For(err); got != tc.code {
				t.Errorf("%s -o %s: exit %d, want %d (%v)", tc.name, output, got, tc.code, err)
			}
			if err != nil && !exitcode.Silent(err) {
				t.Errorf("%s -o %s: a failed check must not add an error message", tc.name, output)
			}
			// Data (json, junit) on stdout; reports for people (table, short) on stderr.
			data, report := out, errOut
			if output == "table" || output == "short" {
				data, report = errOut, out
			}
			if data.Len() == 0 || report.Len() != 0 {
				t.Errorf("%s -o %s: stdout %q, stderr %q", tc.name, output, out.String(), errOut.String())
			}
			if output == "json" {
				var doc struct{ Success bool }
				if err := json.Unmarshal(out.Bytes(), &doc); err != nil || doc.Success != (tc.code == 0) {
					t.Errorf("%s -o json: %v success=%v", tc.name, err, doc.Success)
				}
			}
			if tc.name == "bad" && !strings.Contains(data.String(), "control-plane.images-pinned") && output != "table" {
				t.Errorf("%s -o %s: the failed check is not named:\n%s", tc.name, output, data.String())
			}
		}
	}
	// --metrics: a Prometheus that does not answer is a finding (exit 1, whatever -o),
	// a URL that is not one a usage error.
	for _, output := range []string{"table", "json"} {
		io, _, out, errOut := iostreams.Test()
		cmd := &cobra.Command{}
		cmd.SetContext(t.Context())
		err := Run(cmd, io, &Options{Metrics: true, PrometheusURL: "http://127.0.0.1:1", Output: output, FailOn: "error", Now: clock})
		report, other := out, errOut // json: data on stdout; table: a report on stderr
		if output == "table" {
			report, other = errOut, out
		}
		if exitcode.For(err) != 1 || !strings.Contains(report.String(), "metrics.prometheus") || other.Len() != 0 {
			t.Errorf("--metrics -o %s unreachable: exit %d, stdout %q, stderr %q", output, exitcode.For(err), out.String(), errOut.String())
		}
	}
	{
		io, _, _, _ := iostreams.Test()
		cmd := &cobra.Command{}
		cmd.SetContext(t.Context())
		err := Run(cmd, io, &Options{Metrics: true, PrometheusURL: "localhost:9090", Output: "table", FailOn: "error", Now: clock})
		if exitcode.For(err) != exitcode.UsageCode {
			t.Errorf("--metrics with a bad URL: exit %d (%v), want usage", exitcode.For(err), err)
		}
	}
	// A warning fails only with --fail-on warning.
	withKey := installed(t, install.Options{TrustAnchorsFile: "../../render/install/testdata/pki/ca.crt",
		IssuerCertFile: "../../render/install/testdata/pki/issuer.crt", IssuerKeyFile: "../../render/install/testdata/pki/issuer.key"})
	for failOn, code := range map[string]int{"error": 0, "warning": 1} {
		io, in, _, _ := iostreams.Test()
		in.WriteString(withKey)
		cmd := &cobra.Command{}
		cmd.SetContext(t.Context())
		err := Run(cmd, io, &Options{Inputs: manifest.Inputs{Filenames: []string{"-"}}, KubernetesVersion: "1.36", MinCertValidity: time.Hour,
			Output: "short", FailOn: failOn, CLIVersion: "v1.2.3", Now: clock})
		if exitcode.For(err) != code {
			t.Errorf("--fail-on %s: exit %d, want %d", failOn, exitcode.For(err), code)
		}
	}
}

// The GitOps renders pass the offline checks as the plain one does.
func TestGitOpsRendersPass(t *testing.T) {
	for name, o := range map[string]install.Options{
		"argocd sync waves":         {ArgoCDSyncWaves: true},
		"argocd sync waves, ha":     {ArgoCDSyncWaves: true, HA: true},
		"argocd sync waves, halves": {ArgoCDSyncWaves: true, Part: install.ControlPlane},
	} {
		io, in, _, errOut := iostreams.Test()
		in.WriteString(installed(t, o))
		opts := &Options{Inputs: manifest.Inputs{Filenames: []string{"-"}}, KubernetesVersion: "1.36", MinCertValidity: 60 * 24 * time.Hour,
			Output: "short", FailOn: "error", CLIVersion: "v1.2.3", Now: clock}
		cmd := &cobra.Command{}
		cmd.SetContext(t.Context())
		if err := Run(cmd, io, opts); err != nil {
			t.Errorf("%s: mesh check: %v\n%s", name, err, errOut)
		}
	}
}
