package controller

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/meshplane/mesh/controlplane/api/version"
)

func run(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = Run(context.Background(), args, &out, &errb, time.Now)
	return code, out.String(), errb.String()
}

// Every component of the table Run dispatches from (so a new one is covered by
// itself): --help, -h and `help COMPONENT` print its flags on stdout, nothing on
// stderr, and exit 0, before anything is read or started. An unknown argument after
// the component is an unknown command: exit 2, said on stderr.
func TestHelpOfEveryComponent(t *testing.T) {
	t.Parallel()
	for _, c := range components() {
		for _, args := range [][]string{{c.name, "--help"}, {c.name, "-h"}, {"help", c.name}, {c.name, "--log-level=debug", "--help"}} {
			code, out, errOut := run(args...)
			if code != 0 || errOut != "" || !strings.HasPrefix(out, "Usage: mesh-controller "+c.name+" [flags]") || !strings.Contains(out, "-listen-addr") {
				t.Errorf("%v: exit %d, stderr %q, stdout %q", args, code, errOut, out)
			}
		}
		code, out, errOut := run(c.name, "rotate")
		if code != 2 || out != "" || !strings.Contains(errOut, `mesh-controller `+c.name+`: unknown command "rotate"`) || !strings.Contains(errOut, "--help' for usage") {
			t.Errorf("%s rotate: exit %d, stdout %q, stderr %q", c.name, code, out, errOut)
		}
	}
	// A component's own flags are in its help.
	if _, out, _ := run("injector", "--help"); !strings.Contains(out, "-mesh-version") {
		t.Errorf("injector --help lacks its own flags:\n%s", out)
	}
}

// The top level: help on stdout with exit 0; no component, an unknown one, bad flags
// or values are usage errors on stderr with exit 2 and nothing on stdout.
func TestRunUsage(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}} {
		code, out, errOut := run(args...)
		if code != 0 || errOut != "" || !strings.HasPrefix(out, "Usage: mesh-controller COMPONENT") {
			t.Errorf("%v: exit %d, stderr %q, stdout %q", args, code, errOut, out)
		}
		for _, c := range components() {
			if !strings.Contains(out, "\n  "+c.name+" ") {
				t.Errorf("%v: the usage does not list %s:\n%s", args, c.name, out)
			}
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "Usage: mesh-controller COMPONENT"},
		{[]string{"router"}, `mesh-controller: unknown command "router"`},
		{[]string{"help", "router"}, `mesh-controller: unknown command "router"`},
		{[]string{"identity", "--bogus"}, "mesh-controller identity: flag provided but not defined: -bogus"},
		{[]string{"destination", "--log-level", "loud"}, "--log-level"},
	} {
		code, out, errOut := run(tc.args...)
		if code != 2 || out != "" || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, want 2; stdout %q, stderr %q (want %q)", tc.args, code, out, errOut, tc.want)
		}
	}
}

// `mesh-controller version` prints what `mesh version` prints for the client, from
// the same source, with "controller" in place of "client": on stdout, exit 0; bad
// flags or arguments are usage errors (exit 2, on stderr).
func TestVersion(t *testing.T) {
	t.Parallel()
	v := version.Version()
	info := version.Current("controller")
	for args, want := range map[string]string{
		"":              "Controller version: " + v + "\n",
		"-o short":      v + "\n",
		"--output=yaml": "controllerVersion: " + v + "\ngoVersion: " + info.GoVersion + "\nplatform: " + info.Platform + "\n",
	} {
		code, out, errOut := run(append([]string{"version"}, strings.Fields(args)...)...)
		if code != 0 || errOut != "" || out != want {
			t.Errorf("version %s: exit %d, stdout %q (want %q), stderr %q", args, code, out, want, errOut)
		}
	}
	code, out, _ := run("version", "-o", "json")
	var got struct{ ControllerVersion, GoVersion, Platform string }
	if err := json.Unmarshal([]byte(out), &got); err != nil || code != 0 || got.ControllerVersion != v || got.Platform != info.Platform {
		t.Errorf("version -o json: exit %d, %q (%v)", code, out, err)
	}
	if code, out, errOut := run("version", "--help"); code != 0 || errOut != "" || !strings.HasPrefix(out, "Usage: mesh-controller version") {
		t.Errorf("version --help: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	for _, args := range [][]string{{"version", "-o", "toml"}, {"version", "extra"}, {"version", "--bogus"}} {
		if code, out, errOut := run(args...); code != 2 || out != "" || !strings.Contains(errOut, "mesh-controller version: ") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, out, errOut)
		}
	}
	if _, out, _ := run("--help"); !strings.Contains(out, "\n  version ") {
		t.Errorf("the usage does not list version:\n%s", out)
	}
}
