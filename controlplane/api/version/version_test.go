package version

import (
	"bytes"
	"encoding/json"
	"testing"
)

func TestWrite(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		component, output, want string
	}{
		{"client", "", "Client version: v1.0.0\n"},
		{"controller", "", "Controller version: v1.0.0\n"},
		{"client", "short", "v1.0.0\n"},
		{"client", "json", "{\n  \"clientVersion\": \"v1.0.0\",\n  \"goVersion\": \"go1.26.8\",\n  \"platform\": \"linux/amd64\"\n}\n"},
		{"controller", "yaml", "controllerVersion: v1.0.0\ngoVersion: go1.26.8\nplatform: linux/amd64\n"},
	} {
		var b bytes.Buffer
		if err := Write(&b, Info{Component: tc.component, Version: "v1.0.0", GoVersion: "go1.26.8", Platform: "linux/amd64"}, tc.output); err != nil {
			t.Fatal(err)
		}
		if b.String() != tc.want {
			t.Errorf("%s -o %q: got %q, want %q", tc.component, tc.output, b.String(), tc.want)
		}
		if tc.output == "json" && !json.Valid(b.Bytes()) {
			t.Errorf("not JSON: %s", b.String())
		}
	}
	if err := Write(&bytes.Buffer{}, Current("client"), "toml"); err == nil {
		t.Error("-o toml: no error")
	}
	if Current("client").Version != Version() {
		t.Error("Current does not report Version")
	}
}
