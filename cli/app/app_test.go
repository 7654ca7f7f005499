package app

import (
	"context"
	"strings"
	"testing"

	"github.com/meshplane/mesh/cli/iostreams"
)

// Exit codes: 0 success, 1 a failed command, 2 a command that could not run. They do
// not depend on -o, and errors go to stderr only.
func TestRunExitCodes(t *testing.T) {
	tests := []struct {
		args      []string
		code      int
		stdout    bool   // expect data on stdout
		stderrHas string // expect this on stderr
	}{
		{[]string{"version", "-o", "short"}, 0, true, ""},
		{[]string{"install", "crds"}, 0, true, ""},
		{[]string{"install", "--set", "proxy.nope=1"}, 1, false, "Error: --set proxy.nope=1: proxy.nope: unknown key"},
		{[]string{"install", "--set", "proxy.nope=1", "-o", "json"}, 1, false, "proxy.nope"},
		{[]string{"install", "-f", "/nonexistent/values.yaml"}, 1, false, "/nonexistent/values.yaml"},
		{[]string{"install", "--bogus"}, 2, false, "unknown flag: --bogus"},
		{[]string{"install", "-o", "xml"}, 2, false, "--output must be yaml or json"},
		{[]string{"install", "extra"}, 2, false, "unknown command"},
		{[]string{"nope"}, 2, false, "unknown command \"nope\""},
		{[]string{"identity", "create"}, 2, false, "--out is required"},
		{[]string{"version", "-o", "xml"}, 2, false, "--output must be"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			io, _, out, errOut := iostreams.Test()
			if code := Run(context.Background(), tc.args, io); code != tc.code {
				t.Errorf("exit %d, want %d; stderr %s", code, tc.code, errOut)
			}
			if (out.Len() > 0) != tc.stdout {
				t.Errorf("stdout %q", out.String())
			}
			if !strings.Contains(errOut.String(), tc.stderrHas) {
				t.Errorf("stderr %q lacks %q", errOut.String(), tc.stderrHas)
			}
		})
	}
}

func TestHelpGoesToStderr(t *testing.T) {
	io, _, out, errOut := iostreams.Test()
	if code := Run(context.Background(), []string{"install", "--help"}, io); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if out.Len() != 0 || !strings.Contains(errOut.String(), "--identity-trust-anchors-file") {
		t.Errorf("stdout %d bytes; stderr lacks the flags", out.Len())
	}
}
