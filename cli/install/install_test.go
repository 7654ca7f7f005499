package install

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/meshplane/mesh/cli/exitcode"
	"github.com/meshplane/mesh/cli/iostreams"
	"github.com/meshplane/mesh/internal/testing/golden"
	"github.com/meshplane/mesh/render/install"
	"github.com/meshplane/mesh/render/values"
)

// argv -> options: flags bind onto the render library's options.
func TestNewCmdOptions(t *testing.T) {
	base := func(mod func(*Options)) Options {
		o := Options{Render: install.Options{Version: "dev", Namespace: install.DefaultNamespace, Part: install.All}, Output: "yaml"}
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
			cmd := NewCmd(io, func(o *Options) error { got = o; return nil })
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
		pki := "../../render/install/testdata/pki/"
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
