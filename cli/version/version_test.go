package version

import (
	"testing"

	"github.com/meshplane/mesh/cli/iostreams"
)

func TestNewCmdOptions(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		output  string
		wantErr bool
	}{
		{[]string{}, "", false},
		{[]string{"-o", "json"}, "json", false},
		{[]string{"--output", "short"}, "short", false},
		{[]string{"-o", "toml"}, "", true},
	} {
		io, _, _, _ := iostreams.Test()
		var got *Options
		cmd := NewCmd(io, func(o *Options) error { got = o; return nil })
		cmd.SetArgs(tc.args)
		cmd.SilenceErrors, cmd.SilenceUsage = true, true
		err := cmd.Execute()
		if (err != nil) != tc.wantErr {
			t.Fatalf("%v: err %v", tc.args, err)
		}
		if err == nil && (got.Output != tc.output || got.Info.Version != Version()) {
			t.Errorf("%v: got %+v", tc.args, got)
		}
	}
}

func TestRun(t *testing.T) {
	info := Info{Component: "client", Version: "v1.0.0", GoVersion: "go1.26.8", Platform: "linux/amd64"}
	for output, want := range map[string]string{
		"":      "Client version: v1.0.0\n",
		"short": "v1.0.0\n",
		"json":  "{\n  \"clientVersion\": \"v1.0.0\",\n  \"goVersion\": \"go1.26.8\",\n  \"platform\": \"linux/amd64\"\n}\n",
		"yaml":  "clientVersion: v1.0.0\ngoVersion: go1.26.8\nplatform: linux/amd64\n",
	} {
		io, _, out, errOut := iostreams.Test()
		if err := Run(io, &Options{Output: output, Info: info}); err != nil {
			t.Fatal(err)
		}
		if out.String() != want || errOut.Len() != 0 {
			t.Errorf("-o %q: got %q, stderr %q", output, out.String(), errOut.String())
		}
	}
}
