package prune

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/meshplane/mesh/cli/exitcode"
	"github.com/meshplane/mesh/cli/iostreams"
	"github.com/meshplane/mesh/cli/kube"
	"github.com/meshplane/mesh/cli/version"
	"github.com/meshplane/mesh/internal/testing/testcluster"
	"github.com/meshplane/mesh/lifecycle/prune"
	"github.com/meshplane/mesh/render/install"
	"github.com/meshplane/mesh/render/manifest"
	"github.com/meshplane/mesh/render/values"
)

// argv -> options: the input flags as mesh check -f's, mesh install's flags bound onto
// install.Options under `mesh prune install`, --dry-run as kubectl's.
func TestNewCmdOptions(t *testing.T) {
	t.Parallel()
	render := func(mod func(*install.Options)) *install.Options {
		o := &install.Options{Version: version.Version(), Part: install.All}
		mod(o)
		return o
	}
	none, client, server := prune.DryRunNone, prune.DryRunClient, prune.DryRunServer
	tests := []struct {
		name    string
		args    []string
		want    Options
		wantErr string
	}{
		{"file", []string{"-f", "a.yaml", "-f", "-", "-R"},
			Options{Inputs: manifest.Inputs{Filenames: []string{"a.yaml", "-"}, Recursive: true}, DryRun: none, Output: "name"}, ""},
		{"dry run alone is client", []string{"-f", "a.yaml", "--dry-run"},
			Options{Inputs: manifest.Inputs{Filenames: []string{"a.yaml"}}, DryRun: client, Output: "name"}, ""},
		{"server dry run, json, kubeconfig", []string{"-k", "dir", "--dry-run=server", "-o", "json", "--kubeconfig", "kc", "--context", "prod"},
			Options{Inputs: manifest.Inputs{Kustomize: "dir"}, DryRun: server, Output: "json", Kube: kube.Flags{Kubeconfig: "kc", Context: "prod"}}, ""},
		{"install", []string{"install"}, Options{Install: render(func(*install.Options) {}), DryRun: none, Output: "name"}, ""},
		{"install with its flags", []string{"install", "-n", "mesh", "--ha", "-f", "v.yaml", "--set", "a=1", "--identity-issuer", "external", "--dry-run", "-o", "json", "--context", "c"},
			Options{Install: render(func(o *install.Options) {
				o.Namespace, o.HA, o.IssuerMode = "mesh", true, "external"
				o.Values = values.Options{ValueFiles: []string{"v.yaml"}, Values: []string{"a=1"}}
			}), DryRun: client, Output: "json", Kube: kube.Flags{Context: "c"}}, ""},
		{"install crds", []string{"install", "crds"}, Options{Install: render(func(o *install.Options) { o.Part = install.CRDs }), DryRun: none, Output: "name"}, ""},
		{"install control-plane", []string{"install", "control-plane", "--registry", "r"},
			Options{Install: render(func(o *install.Options) { o.Part, o.Registry = install.ControlPlane, "r" }), DryRun: none, Output: "name"}, ""},
		{"no input", nil, Options{}, "no input: pass -f"},
		{"bad dry run", []string{"-f", "a", "--dry-run=yes"}, Options{}, "--dry-run must be none, client or server"},
		{"bad output", []string{"-f", "a", "-o", "yaml"}, Options{}, "--output must be name or json"},
		{"bad issuer", []string{"install", "--identity-issuer", "vault"}, Options{}, "--identity-issuer must be"},
		{"file argument", []string{"a.yaml"}, Options{}, `unknown command "a.yaml" for "prune"`},
		{"install takes no -k", []string{"install", "-k", "dir"}, Options{}, "unknown shorthand flag: 'k'"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			io, _, _, _ := iostreams.Test()
			var got *Options
			cmd := NewCmd(io, func(o *Options) error { got = o; return nil })
			cmd.SetArgs(tc.args)
			cmd.SetOut(io.ErrOut)
			cmd.SetErr(io.ErrOut)
			cmd.SilenceUsage, cmd.SilenceErrors = true, true
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
				t.Errorf("options\n got %+v (install %+v)\nwant %+v (install %+v)", *got, got.Install, tc.want, tc.want.Install)
			}
		})
	}
}

// execute runs `mesh prune ARGS` as the CLI does: the exit code, stdout, stderr and the
// error's message.
func execute(t *testing.T, args ...string) (code int, stdout, stderr, msg string) {
	t.Helper()
	io, _, out, errOut := iostreams.Test()
	cmd := NewCmd(io, nil)
	cmd.SetArgs(args)
	cmd.SilenceErrors, cmd.SilenceUsage = true, true
	cmd.SetOut(errOut)
	cmd.SetErr(errOut)
	err := cmd.ExecuteContext(context.Background())
	if err != nil {
		msg = err.Error()
	}
	return exitcode.For(err), out.String(), errOut.String(), msg
}

// writeRender renders the control plane into ns, the webhook configuration renamed
// after ns (its name is the one cluster-scoped name without the namespace), to a file.
func writeRender(t *testing.T, dir, name string, o install.Options) string {
	t.Helper()
	io, _, _, _ := iostreams.Test()
	o.Version, o.Part = "v1.2.3", install.ControlPlane
	res, err := install.Render(o, io)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := manifest.WriteYAML(&b, res.Objects); err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(b.String(), "  name: mesh-proxy-injector\n", "  name: mesh-proxy-injector-"+o.Namespace+"\n", 1)
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// unreachable is a kubeconfig whose server does not answer: a port just closed.
func unreachable(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cfg, err := clientcmd.LoadFromFile(testcluster.Kubeconfig(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cfg.Clusters {
		c.Server = "https://" + addr
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// options -> output, against the real test cluster: a control plane applied with
// kubectl apply --server-side and PodDisruptionBudgets, then pruned to a render without
// them, through every output and dry-run mode, with the exit codes of bad input and an
// unreachable cluster.
func TestRun(t *testing.T) {
	kc := testcluster.Kubeconfig(t)
	cs := testcluster.Clientset(t)
	ns := testcluster.Namespace(t, cs)
	dir := t.TempDir()
	old := writeRender(t, dir, "old.yaml", install.Options{Namespace: ns, Values: values.Options{Values: []string{"controller.podDisruptionBudget=true"}}})
	next := writeRender(t, dir, "new.yaml", install.Options{Namespace: ns})
	bare := writeRender(t, dir, "bare.yaml", install.Options{Namespace: ns, WithoutApplySet: true})
	empty := filepath.Join(dir, "empty.yaml")
	if err := os.WriteFile(empty, []byte("# nothing\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(testcluster.Kubectl(t), "--kubeconfig", kc, "apply", "--server-side", "-f", old)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kubectl apply: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		cmd := exec.Command(testcluster.Kubectl(t), "--kubeconfig", kc, "delete", "--ignore-not-found", "--wait=false", "-f", old)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Logf("cleanup: %v\n%s", err, out)
		}
	})
	pdbs := "PodDisruptionBudget/" + ns + "/mesh-injector\nPodDisruptionBudget/" + ns + "/mesh-identity\nPodDisruptionBudget/" + ns + "/mesh-destination\n"
	webhook := "MutatingWebhookConfiguration/mesh-proxy-injector-" + ns + "\n"
	sets := "ApplySets ConfigMap/" + ns + "/mesh-control-plane-applyset"
	bad := unreachable(t)

	tests := []struct {
		name         string
		args         []string
		code         int
		stdout, want string // want: in stderr or the error
		pdbsLeft     bool
	}{
		{"dry run", []string{"-f", next, "--dry-run"}, 0, pdbs, "3 objects would be pruned (dry run) from " + sets, true},
		{"server dry run", []string{"-f", next, "--dry-run=server"}, 0, pdbs, "3 objects would be pruned (server dry run)", true},
		{"mesh prune install: its render names the webhook otherwise", []string{"install", "control-plane", "-n", ns, "--dry-run"}, 0, webhook + pdbs, "4 objects would be pruned (dry run)", true},
		{"empty input", []string{"-f", empty}, 2, "", "no Kubernetes objects in " + empty, true},
		{"no ApplySet", []string{"-f", bare}, 2, "", "holds no ApplySet parent", true},
		{"unreachable", []string{"-f", next, "--kubeconfig", bad}, 3, "", "", true},
		{"prune", []string{"-f", next}, 0, pdbs, "Pruned 3 objects from " + sets, false},
		{"again: nothing", []string{"-f", next}, 0, "", "Pruned 0 objects", false},
	}
	for _, tc := range tests {
		args := append(tc.args, "--kubeconfig", kc)
		if tc.name == "unreachable" {
			args = tc.args
		}
		code, stdout, stderr, msg := execute(t, args...)
		if code != tc.code || stdout != tc.stdout || !strings.Contains(stderr+msg, tc.want) {
			t.Errorf("%s: exit %d, stdout:\n%s\nstderr: %s\nerror: %s\nwant exit %d, stdout:\n%s\nand %q", tc.name, code, stdout, stderr, msg, tc.code, tc.stdout, tc.want)
		}
		_, err := cs.PolicyV1().PodDisruptionBudgets(ns).Get(context.Background(), "mesh-identity", metav1.GetOptions{})
		if left := err == nil; left != tc.pdbsLeft {
			t.Fatalf("%s: PodDisruptionBudget left: %v, want %v", tc.name, left, tc.pdbsLeft)
		}
	}

	// -o json: the same objects, as data; exit codes do not depend on it.
	code, stdout, _, _ := execute(t, "install", "control-plane", "-n", ns, "--dry-run", "-o", "json", "--kubeconfig", kc)
	var got struct {
		DryRun  string      `json:"dryRun"`
		Objects []prune.Ref `json:"objects"`
		Kept    []any       `json:"kept"`
	}
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatalf("-o json: %v\n%s", err, stdout)
	}
	if code != 0 || got.DryRun != "client" || len(got.Objects) != 1 || got.Objects[0].Kind != "MutatingWebhookConfiguration" || got.Kept == nil {
		t.Errorf("-o json: exit %d, %+v", code, got)
	}
}
