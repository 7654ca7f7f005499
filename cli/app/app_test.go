package app

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"

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
		{[]string{"version", "--client", "-o", "short"}, 0, true, ""},
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

// Every command of the tree, so that a new command is covered without a new line here:
// --help and -h print its help on stdout (`mesh install --help | less`), nothing on
// stderr, and exit 0; so does `mesh help PATH`.
func TestHelpOfEveryCommand(t *testing.T) {
	t.Parallel()
	io, _, _, _ := iostreams.Test()
	var paths [][]string
	walk(NewRootCmd(io), nil, func(path []string, _ *cobra.Command) { paths = append(paths, path) })
	if len(paths) < 12 {
		t.Fatalf("walked only %v", paths)
	}
	for _, path := range paths {
		for _, args := range [][]string{append(slices.Clone(path), "--help"), append(slices.Clone(path), "-h"), append([]string{"help"}, path...)} {
			t.Run(strings.Join(args, " "), func(t *testing.T) {
				t.Parallel()
				io, _, out, errOut := iostreams.Test()
				if code := Run(context.Background(), args, io); code != 0 {
					t.Errorf("exit %d, want 0; stderr %q", code, errOut)
				}
				cmdPath := strings.Join(append([]string{"mesh"}, path...), " ")
				if !strings.Contains(out.String(), "Usage:\n  "+cmdPath) {
					t.Errorf("stdout lacks the usage of %q:\n%s", cmdPath, out)
				}
				if errOut.Len() != 0 {
					t.Errorf("stderr %q", errOut)
				}
			})
		}
	}
}

// At every level that has subcommands an unknown one is an error naming it, on
// stderr, with exit 2 and nothing on stdout (`mesh identity rotate` used to print the
// help and exit 0). So is an unknown help topic.
func TestUnknownSubcommands(t *testing.T) {
	t.Parallel()
	io, _, _, _ := iostreams.Test()
	var groups [][]string
	walk(NewRootCmd(io), nil, func(path []string, c *cobra.Command) {
		if c.HasSubCommands() {
			groups = append(groups, path)
		}
	})
	if len(groups) < 4 { // mesh, identity, install, completion
		t.Fatalf("walked only %v", groups)
	}
	var cases [][]string
	for _, g := range groups {
		cases = append(cases, append(slices.Clone(g), "frobnicate"))
	}
	cases = append(cases, []string{"help", "frobnicate"}, []string{"help", "identity", "frobnicate"}, []string{"identity", "rekey"})
	for _, args := range cases {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			t.Parallel()
			io, _, out, errOut := iostreams.Test()
			if code := Run(context.Background(), args, io); code != 2 {
				t.Errorf("exit %d, want 2; stderr %q", code, errOut)
			}
			if out.Len() != 0 {
				t.Errorf("stdout %q", out)
			}
			name := args[len(args)-1]
			if !strings.Contains(errOut.String(), "Error: unknown command \""+name+"\"") || !strings.Contains(errOut.String(), "--help' for usage.") {
				t.Errorf("stderr %q does not name %q", errOut, name)
			}
		})
	}
	// A group called alone prints its help, as --help does.
	io, _, out, errOut := iostreams.Test()
	if code := Run(context.Background(), []string{"identity"}, io); code != 0 || !strings.Contains(out.String(), "mesh identity [command]") || errOut.Len() != 0 {
		t.Errorf("mesh identity: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

// Completion scripts and the version are data: stdout, and completion is listed.
func TestCompletionAndVersionOnStdout(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"completion", "bash"}, "# bash completion V2 for mesh"},
		{[]string{"completion", "zsh"}, "#compdef mesh"},
		{[]string{"completion", "fish"}, "# fish completion for mesh"},
		{[]string{"completion", "powershell"}, "# powershell completion for mesh"},
		{[]string{"version", "--client"}, "Client version: "},
		{[]string{"--version"}, "mesh version "},
		{[]string{"--help"}, "  completion  Generate the autocompletion script"},
	} {
		io, _, out, errOut := iostreams.Test()
		if code := Run(context.Background(), tc.args, io); code != 0 || !strings.Contains(out.String(), tc.want) || errOut.Len() != 0 {
			t.Errorf("%v: exit %d, stderr %q, stdout lacks %q:\n%.300s", tc.args, code, errOut, tc.want, out)
		}
	}
}

// walk calls fn for c and every command under it, with its path under the root.
func walk(c *cobra.Command, path []string, fn func([]string, *cobra.Command)) {
	fn(path, c)
	for _, sub := range c.Commands() {
		walk(sub, append(slices.Clone(path), sub.Name()), fn)
	}
}

// mesh check's exit 3: a cluster that does not answer, said on stderr with no pointer
// to --help (the command line was fine) and nothing on stdout.
func TestCheckUnreachableExit3(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	kc := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kc, []byte("apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: \"https://"+addr+"\"}}]\n"+
		"users: [{name: u, user: {token: t}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\ncurrent-context: c\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	io, _, out, errOut := iostreams.Test()
	if code := Run(context.Background(), []string{"check", "--pre", "--kubeconfig", kc, "-o", "json"}, io); code != 3 {
		t.Errorf("exit %d, want 3; stderr %q", code, errOut)
	}
	if out.Len() != 0 || !strings.HasPrefix(errOut.String(), "Error: cannot reach the cluster at https://"+addr) || strings.Contains(errOut.String(), "--help") {
		t.Errorf("stdout %q, stderr %q", out, errOut)
	}
}
