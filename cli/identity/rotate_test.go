package identity

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	clicheck "github.com/meshplane/mesh/cli/check"
	"github.com/meshplane/mesh/cli/exitcode"
	cliinstall "github.com/meshplane/mesh/cli/install"
	"github.com/meshplane/mesh/cli/iostreams"
	"github.com/meshplane/mesh/render/identity"
)

// argv -> options.
func TestNewCmdRotateBundleOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		want    RotateBundleOptions
		wantErr string
	}{
		{"add", []string{"--from", "b.crt", "--add", "n.crt", "--add", "m.crt"}, RotateBundleOptions{From: "b.crt", Add: []string{"n.crt", "m.crt"}}, ""},
		{"remove with the guard", []string{"--from", "b.crt", "--remove", "o.crt", "--remove", "ab:cd", "--issuer-cert", "i.crt"},
			RotateBundleOptions{From: "b.crt", Remove: []string{"o.crt", "ab:cd"}, IssuerCert: "i.crt"}, ""},
		{"add from nothing", []string{"--add", "n.crt"}, RotateBundleOptions{Add: []string{"n.crt"}}, ""},
		{"nothing to do", []string{"--from", "b.crt"}, RotateBundleOptions{}, "nothing to do"},
		{"remove from nothing", []string{"--remove", "o.crt"}, RotateBundleOptions{}, "pass --from"},
		{"argument", []string{"b.crt"}, RotateBundleOptions{}, "unknown command"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			io, _, _, _ := iostreams.Test()
			var got *RotateBundleOptions
			cmd := NewCmdRotateBundle(io, func(o *RotateBundleOptions) error { got = o; return nil })
			cmd.SetArgs(tc.args)
			cmd.SetOut(io.ErrOut)
			cmd.SetErr(io.ErrOut)
			cmd.SilenceErrors, cmd.SilenceUsage = true, true
			err := cmd.Execute()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*got, tc.want) {
				t.Errorf("options\n got %+v\nwant %+v", *got, tc.want)
			}
		})
	}
}

// run runs a command of the CLI built by mk on fresh streams.
func run(t *testing.T, mk func(*iostreams.IOStreams) *cobra.Command, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	io, in, out, errOut := iostreams.Test()
	in.WriteString(stdin)
	cmd := mk(io)
	cmd.SetArgs(args)
	cmd.SetOut(errOut)
	cmd.SetErr(errOut)
	cmd.SilenceErrors, cmd.SilenceUsage = true, true
	err := cmd.ExecuteContext(context.Background())
	if err != nil && !exitcode.Silent(err) {
		errOut.WriteString("Error: " + err.Error() + "\n")
	}
	return exitcode.For(err), out.String(), errOut.String()
}

// options -> output: the bundle on stdout, notes on stderr, refusals exit 1, bad
// usage 2.
func TestRunRotateBundle(t *testing.T) {
	t.Parallel()
	bundle := func(args ...string) (int, string, string) {
		return run(t, func(io *iostreams.IOStreams) *cobra.Command { return NewCmdRotateBundle(io, nil) }, "", args...)
	}
	old, _ := os.ReadFile(pki + "old/ca.crt")
	next, _ := os.ReadFile(pki + "new/ca.crt")
	certs, _ := identity.ParseCertificates("old", old)
	oldFP := identity.Fingerprint(certs[0])
	both := filepath.Join(t.TempDir(), "both.crt")
	if err := os.WriteFile(both, append(append([]byte(nil), old...), next...), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name           string
		args           []string
		code           int
		stdout, stderr string
	}{
		{"add", []string{"--from", pki + "old/ca.crt", "--add", pki + "new/ca.crt"}, 0, string(old) + string(next), ""},
		{"add again", []string{"--from", both, "--add", pki + "new/ca.crt"}, 0, string(old) + string(next), "Note: " + pki + "new/ca.crt: CN=root.cluster.local (sha256 31ebe8bb) is in the bundle already\n"},
		{"remove by file", []string{"--from", both, "--remove", pki + "old/ca.crt", "--issuer-cert", pki + "new/issuer.crt"}, 0, string(next), ""},
		{"remove by fingerprint", []string{"--from", both, "--remove", oldFP}, 0, string(next), ""},
		{"remove the issuer's anchor", []string{"--from", both, "--remove", oldFP, "--issuer-cert", pki + "old/issuer.crt"}, 1, "", "the new bundle would not trust the issuer"},
		{"remove what is not there", []string{"--from", pki + "new/ca.crt", "--remove", oldFP}, 1, "", "no anchor of the bundle has this SHA-256 fingerprint"},
		{"not a fingerprint", []string{"--from", both, "--remove", "old"}, 2, "", "neither a readable PEM file nor a SHA-256 fingerprint"},
		{"missing file", []string{"--from", "missing.crt", "--add", pki + "new/ca.crt"}, 2, "", "--from: open missing.crt"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			code, out, errOut := bundle(tc.args...)
			if code != tc.code || out != tc.stdout || !strings.Contains(errOut, tc.stderr) {
				t.Errorf("exit %d, want %d\nstdout %q\nwant %q\nstderr %q, want %q", code, tc.code, out, tc.stdout, errOut, tc.stderr)
			}
		})
	}
}

// The procedure of docs/identity.md, offline: each step's files made with the helper
// commands, rendered with mesh install, and verified with mesh check -f and mesh
// identity inspect -f, as the document says.
func TestRotationProcedure(t *testing.T) {
	t.Parallel()
	repo := t.TempDir() // the GitOps repository: identity/ca.crt is the committed bundle
	file := func(p string) string { return filepath.Join(repo, p) }
	write := func(p, data string) {
		if err := os.MkdirAll(filepath.Dir(file(p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file(p), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Before: installed with the old anchor and issuer.
	for _, f := range []string{"ca.crt", "issuer.crt", "issuer.key"} {
		b, err := os.ReadFile(pki + "old/" + f)
		if err != nil {
			t.Fatal(err)
		}
		write("pki-old/"+f, string(b))
	}
	write("identity/ca.crt", readFile(t, file("pki-old/ca.crt")))
	write("identity/issuer.crt", readFile(t, file("pki-old/issuer.crt")))
	write("identity/issuer.key", readFile(t, file("pki-old/issuer.key")))

	mesh := func(stdin string, args ...string) (int, string, string) {
		t.Helper()
		mk := map[string]func(*iostreams.IOStreams) *cobra.Command{
			"install": func(io *iostreams.IOStreams) *cobra.Command { return cliinstall.NewCmd(io, nil, june) },
			"check":   func(io *iostreams.IOStreams) *cobra.Command { return clicheck.NewCmd(io, nil, june) },
			"create":  func(io *iostreams.IOStreams) *cobra.Command { return NewCmdCreate(io, nil, june) },
			"inspect": func(io *iostreams.IOStreams) *cobra.Command { return NewCmdInspect(io, nil, june) },
			"bundle":  func(io *iostreams.IOStreams) *cobra.Command { return NewCmdRotateBundle(io, nil) },
		}[args[0]]
		return run(t, mk, stdin, args[1:]...)
	}
	// step renders the committed files and verifies the render as the document does;
	// it returns the render and inspect's table.
	step := func(name string, anchors int, chainsTo string) string {
		t.Helper()
		code, manifests, errOut := mesh("", "install", "--identity-trust-anchors-file", file("identity/ca.crt"),
			"--identity-issuer-certificate-file", file("identity/issuer.crt"), "--identity-issuer-key-file", file("identity/issuer.key"))
		if code != 0 || strings.Contains(errOut, "expire") {
			t.Fatalf("%s: mesh install: exit %d\n%s", name, code, errOut)
		}
		if code, out, _ := mesh(manifests, "check", "-f", "-"); code != 0 {
			t.Fatalf("%s: mesh check -f: exit %d\n%s", name, code, out)
		}
		code, out, _ := mesh(manifests, "inspect", "-f", "-")
		if code != 0 || strings.Count(out, "\n  CN=root.cluster.local ") != anchors || !strings.Contains(out, "chains to: CN=root.cluster.local (sha256 "+chainsTo+")") {
			t.Fatalf("%s: mesh identity inspect -f: exit %d, want %d anchors chaining to %s\n%s", name, code, anchors, chainsTo, out)
		}
		return out
	}
	fp := func(p string) string {
		c, err := identity.ParseCertificates(p, []byte(readFile(t, file(p))))
		if err != nil {
			t.Fatal(err)
		}
		return identity.Fingerprint(c[0])
	}
	step("before", 1, fp("pki-old/ca.crt"))

	// Step 1: the new anchor and issuer.
	if code, _, errOut := mesh("", "create", "--out", file("pki-new")); code != 0 {
		t.Fatalf("mesh identity create: %s", errOut)
	}
	// Step 2 (commit): trust both anchors; the issuer stays the old one.
	code, b, errOut := mesh("", "bundle", "--from", file("identity/ca.crt"), "--add", file("pki-new/ca.crt"), "--issuer-cert", file("identity/issuer.crt"))
	if code != 0 {
		t.Fatalf("step 2: %s", errOut)
	}
	write("identity/ca.crt", b)
	step("step 2", 2, fp("pki-old/ca.crt"))
	// Removing the old anchor now is refused: the issuer still chains to it.
	if code, _, errOut := mesh("", "bundle", "--from", file("identity/ca.crt"), "--remove", file("pki-old/ca.crt"), "--issuer-cert", file("identity/issuer.crt")); code != 1 {
		t.Errorf("early removal: exit %d, %s", code, errOut)
	}

	// Step 3 (commit): the issuer signed by the new anchor.
	write("identity/issuer.crt", readFile(t, file("pki-new/issuer.crt")))
	write("identity/issuer.key", readFile(t, file("pki-new/issuer.key")))
	step("step 3", 2, fp("pki-new/ca.crt"))

	// Step 4 (commit, after the proxies rolled): trust the new anchor only.
	code, b, errOut = mesh("", "bundle", "--from", file("identity/ca.crt"), "--remove", file("pki-old/ca.crt"), "--issuer-cert", file("identity/issuer.crt"))
	if code != 0 {
		t.Fatalf("step 4: %s", errOut)
	}
	write("identity/ca.crt", b)
	out := step("step 4", 1, fp("pki-new/ca.crt"))
	if strings.Contains(out, fp("pki-old/ca.crt")) {
		t.Errorf("the old anchor is still shown:\n%s", out)
	}
	// The old issuer cannot come back with the new bundle: mesh install refuses it.
	if code, _, errOut := mesh("", "install", "--identity-trust-anchors-file", file("identity/ca.crt"), "--identity-issuer-certificate-file", file("pki-old/issuer.crt")); code == 0 {
		t.Errorf("the old issuer rendered with the new bundle: %s", errOut)
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
