package inject

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/meshplane/mesh/cli/exitcode"
	"github.com/meshplane/mesh/cli/iostreams"
	"github.com/meshplane/mesh/render/install"
	"github.com/meshplane/mesh/render/manifest"
)

func parse(t *testing.T, newCmd func(*iostreams.IOStreams, func(*Options) error) *cobra.Command, args []string) (*Options, error) {
	t.Helper()
	io, _, _, _ := iostreams.Test()
	var got *Options
	cmd := newCmd(io, func(o *Options) error { got = o; return nil })
	cmd.SetArgs(append([]string{}, args...))
	cmd.SilenceErrors, cmd.SilenceUsage = true, true
	cmd.SetOut(io.ErrOut)
	cmd.SetErr(io.ErrOut)
	err := cmd.Execute()
	return got, err
}

// argv -> options.
func TestNewCmdOptions(t *testing.T) {
	base := func(mod func(*Options)) Options {
		o := Options{Config: map[string]string{}, Version: "dev", ControlPlaneNS: install.DefaultNamespace}
		mod(&o)
		return o
	}
	tests := []struct {
		name    string
		args    []string
		want    Options
		wantErr string
	}{
		{"files and args", []string{"-f", "a.yaml", "--filename", "dir", "-R", "b.yaml"}, base(func(o *Options) {
			o.Inputs = manifest.Inputs{Filenames: []string{"a.yaml", "dir", "b.yaml"}, Recursive: true}
		}), ""},
		{"kustomize and output", []string{"-k", "overlay", "-o", "json", "-q", "--namespaces"}, base(func(o *Options) {
			o.Inputs.Kustomize, o.Output, o.Quiet, o.Namespaces = "overlay", "json", true, true
		}), ""},
		{"config flags", []string{"-f", "-", "--proxy-cpu-request", "100m", "--proxy-memory-limit", "1Gi", "--opaque-ports", "3306,5432-5434",
			"--skip-subnets", "10.0.0.0/8,fd00::/8", "--proxy-log-level", "debug", "--proxy-image", "r/p:t", "--skip-inbound-ports", "9090", "--skip-outbound-ports", "443"},
			base(func(o *Options) {
				o.Inputs.Filenames = []string{"-"}
				o.Config = map[string]string{
					"config.meshplane.io/proxy-cpu-request": "100m", "config.meshplane.io/proxy-memory-limit": "1Gi",
					"config.meshplane.io/opaque-ports": "3306,5432-5434", "config.meshplane.io/skip-subnets": "10.0.0.0/8,fd00::/8",
					"config.meshplane.io/proxy-log-level": "debug", "config.meshplane.io/proxy-image": "r/p:t",
					"config.meshplane.io/skip-inbound-ports": "9090", "config.meshplane.io/skip-outbound-ports": "443",
				}
			}), ""},
		{"manual", []string{"-f", "a.yaml", "--manual", "--control-plane-namespace", "mesh", "--install-values", "v.yaml", "--identity-trust-anchors-file", "ca.crt"},
			base(func(o *Options) {
				o.Inputs.Filenames, o.Manual, o.ControlPlaneNS, o.ControlPlaneNSSet = []string{"a.yaml"}, true, "mesh", true
				o.InstallValues, o.TrustAnchorsFile = []string{"v.yaml"}, "ca.crt"
			}), ""},
		{"krm", []string{"--krm"}, base(func(o *Options) { o.KRM = true }), ""},
		{"no input", nil, Options{}, "no input"},
		{"krm with files", []string{"--krm", "-f", "a.yaml"}, Options{}, "--krm reads a ResourceList"},
		{"bad output", []string{"-f", "a", "-o", "xml"}, Options{}, "--output must be yaml or json"},
		{"bad ports", []string{"-f", "a", "--opaque-ports", "mysql"}, Options{}, "--opaque-ports"},
		{"bad cidr", []string{"-f", "a", "--skip-subnets", "10.0.0.0"}, Options{}, "--skip-subnets"},
		{"bad quantity", []string{"-f", "a", "--proxy-cpu-limit", "lots"}, Options{}, "--proxy-cpu-limit"},
		{"manual flags without manual", []string{"-f", "a", "--install-values", "v.yaml"}, Options{}, "go with --manual"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parse(t, NewCmd, tc.args)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				if exitcode.For(err) != exitcode.UsageCode {
					t.Errorf("exit code %d, want usage (2)", exitcode.For(err))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.want.Version = got.Version
			if !reflect.DeepEqual(*got, tc.want) {
				t.Errorf("options\n got %+v\nwant %+v", *got, tc.want)
			}
		})
	}
	t.Run("uninject", func(t *testing.T) {
		got, err := parse(t, NewCmdUninject, []string{"-f", "a.yaml", "--namespaces", "-o", "yaml"})
		if err != nil || !got.Uninject || !got.Namespaces || got.Output != "yaml" || got.Inputs.Filenames[0] != "a.yaml" {
			t.Errorf("%+v %v", got, err)
		}
		if _, err := parse(t, NewCmdUninject, []string{"--proxy-log-level", "x", "-f", "a"}); err == nil {
			t.Error("uninject took an inject-only flag")
		}
	})
}

const deployment = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers: [{name: web, image: nginx}]\n"

// options -> output: manifests on stdout, report on stderr, nothing on stdout on error.
func TestRun(t *testing.T) {
	run := func(o *Options, stdin string) (string, string, error) {
		io, in, out, errOut := iostreams.Test()
		in.WriteString(stdin)
		if o.Config == nil {
			o.Config = map[string]string{}
		}
		cmd := &cobra.Command{}
		cmd.SetContext(t.Context())
		err := Run(cmd, io, o)
		return out.String(), errOut.String(), err
	}
	stdin := func(o Options) *Options { o.Inputs.Filenames = []string{"-"}; return &o }

	out, report, err := run(stdin(Options{}), deployment+"---\napiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {ports: [{port: 80}]}\n")
	if err != nil || !strings.Contains(out, "meshplane.io/inject: enabled") || report != "deployment/web injected\nservice/web skipped\n" {
		t.Errorf("annotation: err %v\nstdout %s\nstderr %q", err, out, report)
	}
	out, report, err = run(stdin(Options{Quiet: true}), deployment)
	if err != nil || out == "" || report != "" {
		t.Errorf("quiet: stderr %q", report)
	}
	out, _, err = run(stdin(Options{Manual: true, Version: "v9.9.9", ControlPlaneNS: "mesh", ControlPlaneNSSet: true}), deployment)
	if err != nil || !strings.Contains(out, "image: ghcr.io/meshplane/proxy:v9.9.9") || !strings.Contains(out, "mesh-destination.mesh.svc.cluster.local.:8086") {
		t.Errorf("manual: err %v\n%s", err, out)
	}
	injected := out
	out, report, err = run(stdin(Options{Uninject: true}), injected)
	if err != nil || out != deployment || report != "deployment/web uninjected\n" {
		t.Errorf("uninject: err %v, report %q\n%s", err, report, out)
	}
	// The round-trip marker: null annotations come back; an edited marker is not
	// written back, with a warning on stderr only, and no error.
	nullAnn := strings.Replace(deployment, "metadata: {labels: {app: web}}", "metadata:\n      labels: {app: web}\n      annotations: ~", 1)
	injected, _, err = run(stdin(Options{}), nullAnn)
	if err != nil || !strings.Contains(injected, `meshplane.io/original-annotations: "~"`) {
		t.Errorf("null annotations: err %v\n%s", err, injected)
	}
	out, report, err = run(stdin(Options{Uninject: true}), injected)
	if err != nil || out != nullAnn || report != "deployment/web uninjected\n" {
		t.Errorf("uninject of null annotations: err %v, report %q\n%s", err, report, out)
	}
	edited := strings.Replace(injected, `"~"`, `"x: y"`, 1)
	out, report, err = run(stdin(Options{Uninject: true}), edited)
	want := strings.Replace(nullAnn, "\n      annotations: ~", "", 1)
	if err != nil || out != want || report != "Warning: deployment/web: meshplane.io/original-annotations \"x: y\" is not a form uninject writes back; the annotations key was removed instead\ndeployment/web uninjected\n" {
		t.Errorf("uninject of an edited marker: err %v, report %q\n%s", err, report, out)
	}
	out, _, err = run(stdin(Options{}), deployment+"---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {replicas: many}\n")
	if err == nil || out != "" || !strings.Contains(err.Error(), "stdin: document 2") {
		t.Errorf("invalid input: err %v, stdout %q", err, out)
	}
	out, _, err = run(stdin(Options{Manual: true, Version: "v1", ControlPlaneNS: "mesh", InstallValues: []string{"/nonexistent.yaml"}}), deployment)
	if err == nil || out != "" || !strings.Contains(err.Error(), "/nonexistent.yaml") {
		t.Errorf("missing install values: err %v", err)
	}
	out, _, err = run(&Options{KRM: true}, "apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nfunctionConfig: {apiVersion: v1, kind: ConfigMap, metadata: {name: c}, data: {namespaces: maybe}}\nitems: []\n")
	if err == nil || out != "" || !strings.Contains(err.Error(), "namespaces") {
		t.Errorf("krm with a bad setting: err %v, stdout %q", err, out)
	}
}

// Values with commas, as flags and as --krm settings, read back as themselves from the
// output, in block and flow mappings; a re-inject reports what it updated on stderr.
func TestRunValuesWithCommas(t *testing.T) {
	want := map[string]string{
		"config.meshplane.io/opaque-ports":    "3306,5432",
		"config.meshplane.io/skip-subnets":    "10.0.0.0/8,192.168.0.0/16",
		"config.meshplane.io/proxy-log-level": "warn,mesh=debug",
	}
	flowPod := "apiVersion: v1\nkind: Pod\nmetadata: {name: p, annotations: {a: b}}\nspec: {containers: [{name: app, image: app:1}]}\n"
	check := func(name, doc string) {
		t.Helper()
		var obj struct {
			Metadata struct{ Annotations map[string]string }
			Spec     struct{ InitContainers []struct{ Name string } }
		}
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
			t.Fatalf("%s: %v\n%s", name, err, doc)
		}
		for k, v := range want {
			if got := obj.Metadata.Annotations[k]; got != v {
				t.Errorf("%s: %s = %q, want %q\n%s", name, k, got, v, doc)
			}
		}
	}
	for _, input := range []string{flowPod, deployment} {
		o, err := parse(t, NewCmd, []string{"-f", "-", "--manual", "--opaque-ports", "3306,5432", "--skip-subnets", "10.0.0.0/8,192.168.0.0/16", "--proxy-log-level", "warn,mesh=debug"})
		if err != nil {
			t.Fatal(err)
		}
		o.Version = "v1.2.3"
		io, in, out, errOut := iostreams.Test()
		in.WriteString(input)
		c := &cobra.Command{}
		c.SetContext(t.Context())
		if err := Run(c, io, o); err != nil {
			t.Fatal(err)
		}
		if input == flowPod {
			check("flags", out.String())
		}
		// A re-inject with another version updates the proxy and says so.
		re := *o
		re.Version = "v1.2.4"
		io2, in2, out2, errOut2 := iostreams.Test()
		in2.WriteString(out.String())
		if err := Run(c, io2, &re); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(errOut2.String(), "updated (proxy version v1.2.3 → v1.2.4; mesh-init: image; mesh-proxy: image)") || !strings.Contains(out2.String(), "proxy:v1.2.4") {
			t.Errorf("re-inject: stderr %q (first run %q)", errOut2, errOut)
		}
	}
	rl := "apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nfunctionConfig: {apiVersion: v1, kind: ConfigMap, metadata: {name: c}, data: {opaque-ports: \"3306,5432\", skip-subnets: \"10.0.0.0/8,192.168.0.0/16\", proxy-log-level: \"warn,mesh=debug\"}}\nitems:\n- " +
		strings.ReplaceAll(strings.TrimSuffix(flowPod, "\n"), "\n", "\n  ") + "\n"
	io, in, out, _ := iostreams.Test()
	in.WriteString(rl)
	c := &cobra.Command{}
	c.SetContext(t.Context())
	if err := Run(c, io, &Options{KRM: true, Config: map[string]string{}}); err != nil {
		t.Fatal(err)
	}
	var list struct{ Items []json.RawMessage }
	if err := yaml.Unmarshal(out.Bytes(), &list); err != nil || len(list.Items) != 1 {
		t.Fatalf("krm output: %v\n%s", err, out)
	}
	check("krm", string(list.Items[0]))
}
