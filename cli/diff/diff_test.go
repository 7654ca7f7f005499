package diff

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/meshplane/mesh/cli/exitcode"
	"github.com/meshplane/mesh/cli/iostreams"
	"github.com/meshplane/mesh/cli/kube"
	"github.com/meshplane/mesh/cli/version"
	"github.com/meshplane/mesh/internal/testing/testcluster"
	"github.com/meshplane/mesh/lifecycle/diff"
	"github.com/meshplane/mesh/render/install"
	"github.com/meshplane/mesh/render/manifest"
	"github.com/meshplane/mesh/render/values"
)

// argv -> options: the input flags as mesh check -f's, mesh install's flags bound onto
// install.Options under `mesh diff install`.
func TestNewCmdOptions(t *testing.T) {
	t.Parallel()
	render := func(mod func(*install.Options)) *install.Options {
		o := &install.Options{Version: version.Version(), Part: install.All}
		mod(o)
		return o
	}
	tests := []struct {
		name    string
		args    []string
		want    Options
		wantErr string
	}{
		{"file", []string{"-f", "a.yaml", "-f", "-", "-R", "-n", "shop"},
			Options{Inputs: manifest.Inputs{Filenames: []string{"a.yaml", "-"}, Recursive: true}, Namespace: "shop", Output: "diff"}, ""},
		{"kustomize, json, kubeconfig", []string{"-k", "dir", "-o", "json", "--kubeconfig", "kc", "--context", "prod"},
			Options{Inputs: manifest.Inputs{Kustomize: "dir"}, Output: "json", Kube: kube.Flags{Kubeconfig: "kc", Context: "prod"}}, ""},
		{"install", []string{"install"}, Options{Install: render(func(*install.Options) {}), Output: "diff"}, ""},
		{"install with its flags", []string{"install", "-n", "mesh", "--ha", "-f", "v.yaml", "--set", "a=1", "--identity-issuer", "external", "-o", "json", "--context", "c"},
			Options{Install: render(func(o *install.Options) {
				o.Namespace, o.HA, o.IssuerMode = "mesh", true, "external"
				o.Values = values.Options{ValueFiles: []string{"v.yaml"}, Values: []string{"a=1"}}
			}), Output: "json", Kube: kube.Flags{Context: "c"}}, ""},
		{"install crds", []string{"install", "crds"}, Options{Install: render(func(o *install.Options) { o.Part = install.CRDs }), Output: "diff"}, ""},
		{"install control-plane", []string{"install", "control-plane", "--registry", "r"},
			Options{Install: render(func(o *install.Options) { o.Part, o.Registry = install.ControlPlane, "r" }), Output: "diff"}, ""},
		{"no input", nil, Options{}, "no input: pass -f"},
		{"bad output", []string{"-f", "a", "-o", "yaml"}, Options{}, "--output must be diff or json"},
		{"bad issuer", []string{"install", "--identity-issuer", "vault"}, Options{}, "--identity-issuer must be"},
		{"file argument", []string{"a.yaml"}, Options{}, `unknown command "a.yaml" for "diff"`},
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

// execute runs `mesh diff ARGS` as the CLI does: the exit code, stdout, stderr and the
// error's message.
func execute(t *testing.T, stdin string, args ...string) (code int, stdout, stderr, msg string) {
	t.Helper()
	io, in, out, errOut := iostreams.Test()
	in.WriteString(stdin)
	cmd := NewCmd(io, nil)
	cmd.SetArgs(args)
	cmd.SilenceErrors, cmd.SilenceUsage = true, true
	cmd.SetOut(errOut)
	cmd.SetErr(errOut)
	err := cmd.ExecuteContext(context.Background())
	if err != nil {
		msg = err.Error()
		if exitcode.Silent(err) != (exitcode.For(err) == diff.ExitDiffers) {
			t.Errorf("%v: only differences are silent: %v (exit %d)", args, err, exitcode.For(err))
		}
	}
	return exitcode.For(err), out.String(), errOut.String(), msg
}

// kubectlApply applies YAML to the test cluster with server-side apply as mesh.
func kubectlApply(t *testing.T, kubeconfig, yaml string) {
	t.Helper()
	cmd := exec.Command(testcluster.Kubectl(t), "--kubeconfig", kubeconfig, "apply", "--server-side", "--field-manager", diff.FieldManager, "-f", "-")
	cmd.Stdin = strings.NewReader(yaml)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kubectl apply: %v\n%s", err, out)
	}
}

const app = `apiVersion: v1
kind: ConfigMap
metadata: {name: app}
data: {level: info}
---
apiVersion: v1
kind: Secret
metadata: {name: app}
stringData: {token: hunter2}
`

// options -> output, against the real test cluster: for each -o, the exit code, what
// stdout holds (diffs, or JSON with the same statuses) and the summary on stderr.
func TestRun(t *testing.T) {
	t.Parallel()
	kc := testcluster.Kubeconfig(t)
	ns := testcluster.Namespace(t, testcluster.Clientset(t))
	kubectlApply(t, kc, strings.ReplaceAll(app, "metadata: {name: app}", "metadata: {name: app, namespace: "+ns+"}"))
	changed := strings.Replace(strings.Replace(app, "level: info", "level: debug", 1), "hunter2", "hunter3", 1)
	pending := app + "---\napiVersion: nowhere.example.com/v1\nkind: Thing\nmetadata: {name: t}\n"

	for _, tc := range []struct {
		name, stdin string
		code        int
		statuses    []diff.Status
		diffHas     []string
		summary     string
	}{
		{"unchanged", app, 0, []diff.Status{diff.Unchanged, diff.Unchanged}, nil, "2 objects: 0 changed, 0 added, 0 pending, 0 conflicting, 2 unchanged\n"},
		{"changed", changed, 1, []diff.Status{diff.Changed, diff.Changed}, []string{
			"--- live/ConfigMap/" + ns + "/app\n+++ merged/ConfigMap/" + ns + "/app\n", "-  level: info\n+  level: debug\n",
			"-  token: " + diff.Hash([]byte("hunter2")) + "\n+  token: " + diff.Hash([]byte("hunter3")) + "\n",
		}, "2 changed"},
		{"pending", pending, 1, []diff.Status{diff.Unchanged, diff.Unchanged, diff.Pending}, nil, "Pending: Thing/t: the cluster serves no kind Thing"},
	} {
		for _, output := range []string{"diff", "json"} {
			code, out, stderr, msg := execute(t, tc.stdin, "-f", "-", "-n", ns, "--kubeconfig", kc, "-o", output)
			if code != tc.code {
				t.Errorf("%s -o %s: exit %d, want %d (%s)", tc.name, output, code, tc.code, msg)
			}
			if !strings.Contains(stderr, tc.summary) {
				t.Errorf("%s -o %s: stderr %q, want %q", tc.name, output, stderr, tc.summary)
			}
			if strings.Contains(out+stderr, "hunter") {
				t.Errorf("%s -o %s: a Secret's value in the output", tc.name, output)
			}
			if output == "json" {
				var rep diff.Report
				if err := json.Unmarshal([]byte(out), &rep); err != nil {
					t.Fatalf("%s -o json: %v\n%s", tc.name, err, out)
				}
				var got []diff.Status
				for _, o := range rep.Objects {
					got = append(got, o.Status)
				}
				if !reflect.DeepEqual(got, tc.statuses) {
					t.Errorf("%s -o json: statuses %v, want %v", tc.name, got, tc.statuses)
				}
				continue
			}
			if (out == "") != (len(tc.diffHas) == 0) {
				t.Errorf("%s: stdout %q", tc.name, out)
			}
			for _, s := range tc.diffHas {
				if !strings.Contains(out, s) {
					t.Errorf("%s: no %q in\n%s", tc.name, s, out)
				}
			}
		}
	}
}

// mesh diff install against the test cluster: the control plane applied by kubectl
// with server-side apply as mesh, except its webhook configuration (cluster-wide: it
// would reach other tests' pods), is unchanged but for that one addition; a value
// given to mesh diff install shows.
func TestDiffInstall(t *testing.T) {
	t.Parallel()
	kc := testcluster.Kubeconfig(t)
	ns := testcluster.Namespace(t, testcluster.Clientset(t))
	res, err := install.Render(install.Options{Version: version.Version(), Namespace: ns, Part: install.ControlPlane}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	var applied []manifest.Object
	for _, o := range res.Objects {
		if o.Kind != "MutatingWebhookConfiguration" {
			applied = append(applied, o)
		}
	}
	if err := manifest.WriteYAML(&b, applied); err != nil {
		t.Fatal(err)
	}
	kubectlApply(t, kc, b.String())
	t.Cleanup(func() {
		for _, o := range applied {
			if o.Namespace == "" && o.Kind != "Namespace" {
				_ = exec.Command(testcluster.Kubectl(t), "--kubeconfig", kc, "delete", "--ignore-not-found", strings.ToLower(o.Kind), o.Name).Run()
			}
		}
	})

	for _, output := range []string{"diff", "json"} {
		code, out, stderr, msg := execute(t, "", "install", "control-plane", "-n", ns, "--kubeconfig", kc, "-o", output)
		want := "objects: 0 changed, 1 added, 0 pending, 0 conflicting, "
		if code != 1 || !strings.Contains(stderr, want) {
			t.Errorf("-o %s: exit %d (%s), stderr %q, want %q", output, code, msg, stderr, want)
		}
		if output == "diff" && (strings.Count(out, "\n+++ merged/") != 1 || !strings.Contains(out, "\n+++ merged/MutatingWebhookConfiguration/mesh-proxy-injector\n")) {
			t.Errorf("diff: want only the webhook, added:\n%s", out)
		}
	}
	code, out, _, _ := execute(t, "", "install", "control-plane", "-n", ns, "--kubeconfig", kc, "--set", "controller.logLevel=debug")
	if code != 1 || !strings.Contains(out, "+++ merged/ConfigMap/"+ns+"/mesh-config\n") || !strings.Contains(out, "+++ merged/Deployment/"+ns+"/mesh-identity\n") {
		t.Errorf("--set: exit %d\n%s", code, out)
	}
}

// Errors exit 2 or 3 whatever -o, with nothing on stdout: bad input, no objects, a
// kubeconfig that cannot be loaded, an object the server rejects, a cluster that does
// not answer.
func TestErrorExitCodes(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["c"] = &clientcmdapi.Cluster{Server: "https://" + addr}
	cfg.AuthInfos["u"] = &clientcmdapi.AuthInfo{Token: "t"}
	cfg.Contexts["c"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "u"}
	cfg.CurrentContext = "c"
	unreachable := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, unreachable); err != nil {
		t.Fatal(err)
	}
	empty := t.TempDir()
	cm := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n"
	cases := []struct {
		name, stdin string
		args        []string
		code        int
		msg         string
	}{
		{"not YAML", "a: [", []string{"-f", "-", "--kubeconfig", unreachable}, 2, "stdin: document 1"},
		{"no objects", "# nothing\n", []string{"-f", "-", "--kubeconfig", unreachable}, 2, "no Kubernetes objects to diff in standard input"},
		{"empty directory", "", []string{"-f", empty, "--kubeconfig", unreachable}, 2, "no Kubernetes objects to diff in " + empty},
		{"bad values", "", []string{"install", "--set", "nope", "--kubeconfig", unreachable}, 2, "nope"},
		{"no kubeconfig", cm, []string{"-f", "-", "--kubeconfig", filepath.Join(empty, "missing")}, 2, "kubeconfig"},
		{"unreachable", cm, []string{"-f", "-", "--kubeconfig", unreachable}, 3, "cannot reach the cluster at https://" + addr},
	}
	if kc := os.Getenv(testcluster.EnvKubeconfig); kc != "" {
		cases = append(cases, struct {
			name, stdin string
			args        []string
			code        int
			msg         string
		}{"rejected by the server", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: Bad_Name}\n", []string{"-f", "-", "--kubeconfig", testcluster.Kubeconfig(t)}, 2, "ConfigMap/Bad_Name"})
	}
	for _, tc := range cases {
		for _, output := range []string{"diff", "json"} {
			code, out, _, msg := execute(t, tc.stdin, append(tc.args, "-o", output)...)
			if code != tc.code || out != "" || !strings.Contains(msg, tc.msg) {
				t.Errorf("%s -o %s: exit %d, want %d; stdout %q; error %q, want %q", tc.name, output, code, tc.code, out, msg, tc.msg)
			}
		}
	}
}
