package install

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/meshplane/mesh/cli/exitcode"
	cliinject "github.com/meshplane/mesh/cli/inject"
	"github.com/meshplane/mesh/cli/iostreams"
	"github.com/meshplane/mesh/internal/testing/golden"
	"github.com/meshplane/mesh/render/install"
	"github.com/meshplane/mesh/render/values"
)

var clock = func() time.Time { return time.Date(2026, 11, 15, 0, 0, 0, 0, time.UTC) }

// argv -> options: flags bind onto the render library's options.
func TestNewCmdOptions(t *testing.T) {
	base := func(mod func(*Options)) Options {
		// Namespace "" without -n: the values' namespace, else mesh-system.
		o := Options{Render: install.Options{Version: "dev", Part: install.All}, Output: "yaml", Now: clock()}
		mod(&o)
		return o
	}
	tests := []struct {
		name    string
		args    []string
		want    Options
		wantErr string
	}{
		{"defaults", nil, base(func(*Options) {}), ""},
		{"crds", []string{"crds"}, base(func(o *Options) { o.Render.Part = install.CRDs }), ""},
		{"control-plane with flags after", []string{"control-plane", "--ha", "-n", "mesh"}, base(func(o *Options) {
			o.Render.Part, o.Render.HA, o.Render.Namespace = install.ControlPlane, true, "mesh"
		}), ""},
		{"values", []string{"-f", "a.yaml", "--values", "b.yaml", "--set", "a=1,b=2", "--set", "c=3", "--set-string", "d=4", "--set-file", "e=f.pem"},
			base(func(o *Options) {
				o.Render.Values = values.Options{ValueFiles: []string{"a.yaml", "b.yaml"}, Values: []string{"a=1,b=2", "c=3"}, StringValues: []string{"d=4"}, FileValues: []string{"e=f.pem"}}
			}), ""},
		{"images and identity", []string{"--registry", "r", "--image-tag", "t", "--identity-trust-domain", "td", "--identity-issuer", "external",
			"--identity-trust-anchors-file", "ca.crt", "--identity-issuer-certificate-file", "i.crt", "--identity-issuer-key-file", "i.key"},
			base(func(o *Options) {
				o.Render.Registry, o.Render.ImageTag, o.Render.TrustDomain, o.Render.IssuerMode = "r", "t", "td", "external"
				o.Render.TrustAnchorsFile, o.Render.IssuerCertFile, o.Render.IssuerKeyFile = "ca.crt", "i.crt", "i.key"
			}), ""},
		{"output", []string{"-o", "json", "--print-values"}, base(func(o *Options) { o.Output, o.PrintValues = "json", true }), ""},
		{"print-values with the key", []string{"--print-values", "--include-private-key"}, base(func(o *Options) { o.PrintValues, o.IncludePrivateKey = true, true }), ""},
		{"include-private-key alone", []string{"--include-private-key"}, Options{}, "--include-private-key goes with --print-values"},
		{"crds print-values", []string{"crds", "--print-values"}, Options{}, "mesh install crds has none"},
		{"output dir", []string{"--output-dir", "out"}, base(func(o *Options) { o.OutputDir = "out" }), ""},
		{"bad output", []string{"-o", "xml"}, Options{}, "--output must be yaml or json"},
		{"dir and json", []string{"--output-dir", "d", "-o", "json"}, Options{}, "--output-dir writes YAML"},
		{"dir and print-values", []string{"--output-dir", "d", "--print-values"}, Options{}, "--print-values"},
		{"bad issuer", []string{"--identity-issuer", "vault"}, Options{}, "--identity-issuer must be"},
		{"argument", []string{"extra"}, Options{}, "unknown command"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			io, _, _, _ := iostreams.Test()
			var got *Options
			cmd := NewCmd(io, func(o *Options) error { got = o; return nil }, clock)
			cmd.SetArgs(append([]string{}, tc.args...))
			cmd.SetOut(io.ErrOut)
			cmd.SetErr(io.ErrOut)
			cmd.SilenceUsage, cmd.SilenceErrors = true, true
			err := cmd.Execute()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				if tc.wantErr != "unknown command" && exitcode.For(err) != exitcode.UsageCode {
					t.Errorf("exit code %d, want usage", exitcode.For(err))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.want.Render.Version = got.Render.Version // the build's version
			if !reflect.DeepEqual(*got, tc.want) {
				t.Errorf("options\n got %+v\nwant %+v", *got, tc.want)
			}
		})
	}
}

// options -> output: stdout carries only data, messages go to stderr.
func TestRun(t *testing.T) {
	opts := func(mod func(*Options)) *Options {
		o := &Options{Render: install.Options{Version: "v9.9.9", Namespace: install.DefaultNamespace}, Output: "yaml"}
		mod(o)
		return o
	}
	t.Run("yaml", func(t *testing.T) {
		io, _, out, errOut := iostreams.Test()
		if err := Run(io, opts(func(*Options) {})); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(out.String(), "---\napiVersion: v1\nkind: Namespace\n") || errOut.Len() != 0 {
			t.Errorf("stdout starts %q, stderr %q", out.String()[:40], errOut.String())
		}
	})
	t.Run("json", func(t *testing.T) {
		io, _, out, errOut := iostreams.Test()
		if err := Run(io, opts(func(o *Options) { o.Output = "json" })); err != nil {
			t.Fatal(err)
		}
		golden.Assert(t, "install-default.json", out.Bytes())
		var list struct {
			APIVersion, Kind string
			Items            []map[string]any
		}
		if err := json.Unmarshal(out.Bytes(), &list); err != nil {
			t.Fatal(err)
		}
		if list.APIVersion != "v1" || list.Kind != "List" || len(list.Items) == 0 || errOut.Len() != 0 {
			t.Errorf("got %s %s with %d items; stderr %q", list.APIVersion, list.Kind, len(list.Items), errOut.String())
		}
	})
	t.Run("print-values", func(t *testing.T) {
		io, _, out, _ := iostreams.Test()
		if err := Run(io, opts(func(o *Options) { o.PrintValues, o.Render.HA = true, true })); err != nil {
			t.Fatal(err)
		}
		golden.Assert(t, "print-values-ha.yaml", out.Bytes())
	})
	pki := "../../render/install/testdata/pki/"
	withKey := func(o *Options) {
		o.PrintValues = true
		o.Render.TrustAnchorsFile, o.Render.IssuerCertFile, o.Render.IssuerKeyFile = pki+"ca.crt", pki+"issuer.crt", pki+"issuer.key"
	}
	printTests := []struct {
		name              string
		mod               func(*Options)
		stdout, notStdout []string
		stderr            string
	}{
		{"print-values records -n", func(o *Options) { o.PrintValues, o.Render.Namespace = true, "shop-mesh" }, []string{"\nnamespace: shop-mesh\n"}, nil, ""},
		{"print-values records the default", func(o *Options) { o.PrintValues, o.Render.Namespace = true, "" }, []string{"\nnamespace: mesh-system\n"}, nil, ""},
		{"print-values -o json records -n", func(o *Options) { o.PrintValues, o.Output, o.Render.Namespace = true, "json", "m2" }, []string{`"namespace": "m2"`}, nil, ""},
		{"print-values leaves the key out", withKey, []string{"crtPEM: |", "\nnamespace: mesh-system\n"}, []string{"PRIVATE KEY", "keyPEM"},
			"Note: identity.issuer.tls.keyPEM (the issuer's private key) is left out; pass --include-private-key to print it\n"},
		{"print-values -o json leaves the key out", func(o *Options) { withKey(o); o.Output = "json" }, []string{`"crtPEM"`}, []string{"PRIVATE KEY", "keyPEM"}, "Note: identity.issuer.tls.keyPEM"},
		{"--include-private-key prints it", func(o *Options) { withKey(o); o.IncludePrivateKey = true }, []string{"keyPEM: |", "PRIVATE KEY-----"}, nil, ""},
	}
	for _, tc := range printTests {
		t.Run(tc.name, func(t *testing.T) {
			io, _, out, errOut := iostreams.Test()
			if err := Run(io, opts(tc.mod)); err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.stdout {
				if !strings.Contains(out.String(), w) {
					t.Errorf("stdout lacks %q:\n%s", w, out.String())
				}
			}
			for _, w := range tc.notStdout {
				if strings.Contains(out.String(), w) {
					t.Errorf("stdout holds %q", w)
				}
			}
			if !strings.HasPrefix(errOut.String(), tc.stderr) || (tc.stderr == "" && errOut.Len() != 0) {
				t.Errorf("stderr %q, want %q", errOut.String(), tc.stderr)
			}
		})
	}
	errTests := []struct {
		name string
		mod  func(*Options)
		want string
	}{
		{"-n Bad_NS", func(o *Options) { o.Render.Namespace = "Bad_NS" }, `--namespace (-n) "Bad_NS" is not a valid namespace name`},
		{"crds --set", func(o *Options) { o.Render.Part, o.Render.Values.Values = install.CRDs, []string{"anything=1"} }, "mesh install crds takes no values (the CRDs have no settings): --set anything=1: anything: unknown key"},
		{"--set 2.5 for an integer", func(o *Options) { o.Render.Values.Values = []string{"controller.replicas=2.5"} }, `controller.replicas: needs an integer, not "2.5"`},
		{"cpu: lots", func(o *Options) { o.Render.Values.Values = []string{"proxy.resources.requests.cpu=lots"} }, `proxy.resources.requests.cpu: "lots" is not a Kubernetes quantity`},
	}
	for _, tc := range errTests {
		t.Run(tc.name, func(t *testing.T) {
			io, _, out, _ := iostreams.Test()
			err := Run(io, opts(tc.mod))
			if err == nil || !strings.Contains(err.Error(), tc.want) || out.Len() != 0 {
				t.Errorf("err %v, want %q; stdout %d bytes", err, tc.want, out.Len())
			}
		})
	}
	t.Run("output-dir", func(t *testing.T) {
		io, _, out, errOut := iostreams.Test()
		dir := filepath.Join(t.TempDir(), "mesh")
		if err := Run(io, opts(func(o *Options) { o.OutputDir = dir })); err != nil {
			t.Fatal(err)
		}
		entries, _ := os.ReadDir(dir)
		if out.Len() != 0 || len(entries) < 10 || !strings.Contains(errOut.String(), "kustomization.yaml") {
			t.Errorf("stdout %q, %d files, stderr %q", out.String(), len(entries), errOut.String())
		}
	})
	t.Run("warning on stderr", func(t *testing.T) {
		io, _, out, errOut := iostreams.Test()
		err := Run(io, opts(func(o *Options) {
			o.Render.TrustAnchorsFile, o.Render.IssuerCertFile, o.Render.IssuerKeyFile = pki+"ca.crt", pki+"issuer.crt", pki+"issuer.key"
		}))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(errOut.String(), "Warning: the output holds the identity issuer's private key") || strings.Contains(out.String(), "Warning") {
			t.Errorf("stderr %q", errOut.String())
		}
	})
	t.Run("error writes nothing", func(t *testing.T) {
		io, _, out, _ := iostreams.Test()
		err := Run(io, opts(func(o *Options) { o.Render.Values.Values = []string{"proxy.nope=1"} }))
		if err == nil || out.Len() != 0 {
			t.Errorf("err %v, stdout %d bytes", err, out.Len())
		}
	})
}

// mesh install -n X --print-values > v.yaml; mesh inject --manual --install-values
// v.yaml: the proxies point at the control plane in X, not at mesh-system.
func TestPrintValuesFeedInject(t *testing.T) {
	io, _, out, _ := iostreams.Test()
	cmd := NewCmd(io, nil, clock)
	cmd.SetArgs([]string{"-n", "shop-mesh", "--print-values"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	vf := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(vf, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	deployment := "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec: {containers: [{name: web, image: nginx}]}\n"
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--manual", "--install-values", vf, "-f", "-"}, "mesh-destination.shop-mesh.svc"},
		{[]string{"--manual", "--install-values", vf, "--control-plane-namespace", "shop-mesh", "-f", "-"}, "mesh-destination.shop-mesh.svc"},
	} {
		io, in, out, errOut := iostreams.Test()
		in.WriteString(deployment)
		c := cliinject.NewCmd(io, nil)
		c.SetArgs(tc.args)
		if err := c.Execute(); err != nil {
			t.Fatalf("%v: %v: %s", tc.args, err, errOut)
		}
		if !strings.Contains(out.String(), tc.want) || strings.Contains(out.String(), "mesh-system") {
			t.Errorf("%v: output lacks %s or names mesh-system:\n%s", tc.args, tc.want, out)
		}
	}
	// A -n that disagrees with the recorded namespace is an error, not a guess.
	io2, in2, _, _ := iostreams.Test()
	in2.WriteString(deployment)
	c := cliinject.NewCmd(io2, nil)
	c.SetArgs([]string{"--manual", "--install-values", vf, "--control-plane-namespace", "other", "-f", "-"})
	if err := c.Execute(); err == nil || !strings.Contains(err.Error(), "sets namespace to shop-mesh") {
		t.Errorf("disagreeing namespaces: %v", err)
	}
}
