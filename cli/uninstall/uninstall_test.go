package uninstall

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/meshplane/mesh/cli/exitcode"
	"github.com/meshplane/mesh/cli/iostreams"
	"github.com/meshplane/mesh/cli/kube"
	"github.com/meshplane/mesh/cli/version"
	"github.com/meshplane/mesh/internal/testing/testcluster"
	"github.com/meshplane/mesh/lifecycle/uninstall"
	"github.com/meshplane/mesh/render/applyset"
	"github.com/meshplane/mesh/render/install"
	"github.com/meshplane/mesh/render/manifest"
	"github.com/meshplane/mesh/render/values"
)

// argv -> options: no input is mesh install's default render, -f/-k as mesh prune's,
// mesh install's flags under `mesh uninstall install`, the uninstall's own flags on
// both.
func TestNewCmdOptions(t *testing.T) {
	t.Parallel()
	render := func(mod func(*install.Options)) *install.Options {
		o := &install.Options{Version: version.Version(), Part: install.All}
		mod(o)
		return o
	}
	def := uninstall.DefaultTimeout
	tests := []struct {
		name    string
		args    []string
		want    Options
		wantErr string
	}{
		{"nothing: mesh install's render", nil, Options{Install: render(func(*install.Options) {}), Timeout: def, Output: "yaml"}, ""},
		{"files", []string{"-f", "a.yaml", "-f", "-", "-R", "-o", "name"},
			Options{Inputs: manifest.Inputs{Filenames: []string{"a.yaml", "-"}, Recursive: true}, Timeout: def, Output: "name"}, ""},
		{"delete, crds, force, timeout, kubeconfig", []string{"-k", "dir", "--delete", "--crds", "--force", "--timeout", "10m", "-o", "json", "--kubeconfig", "kc", "--context", "prod"},
			Options{Inputs: manifest.Inputs{Kustomize: "dir"}, CRDs: true, Force: true, Delete: true, Timeout: 10 * time.Minute, Output: "json", Kube: kube.Flags{Kubeconfig: "kc", Context: "prod"}}, ""},
		{"install with its flags", []string{"install", "-n", "mesh", "--ha", "-f", "v.yaml", "--set", "a=1", "--delete", "--context", "c"},
			Options{Install: render(func(o *install.Options) {
				o.Namespace, o.HA = "mesh", true
				o.Values = values.Options{ValueFiles: []string{"v.yaml"}, Values: []string{"a=1"}}
			}), Delete: true, Timeout: def, Output: "yaml", Kube: kube.Flags{Context: "c"}}, ""},
		{"install crds --crds", []string{"install", "crds", "--crds"}, Options{Install: render(func(o *install.Options) { o.Part = install.CRDs }), CRDs: true, Timeout: def, Output: "yaml"}, ""},
		{"install control-plane", []string{"install", "control-plane"}, Options{Install: render(func(o *install.Options) { o.Part = install.ControlPlane }), Timeout: def, Output: "yaml"}, ""},
		{"bad output", []string{"-o", "table"}, Options{}, "--output must be yaml, json or name"},
		{"bad timeout", []string{"--timeout", "0s"}, Options{}, "--timeout must be positive"},
		{"unparsable timeout", []string{"--timeout", "soon"}, Options{}, `invalid argument "soon"`},
		{"bad issuer", []string{"install", "--identity-issuer", "vault"}, Options{}, "--identity-issuer must be"},
		{"file argument", []string{"a.yaml"}, Options{}, `unknown command "a.yaml" for "uninstall"`},
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

// execute runs `mesh uninstall ARGS` as the CLI does: the exit code, stdout, stderr
// and the error's message.
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
// after ns (the one cluster-scoped name without the namespace), to a file.
func writeRender(t *testing.T, dir string, o install.Options) (string, []manifest.Object) {
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
	path := filepath.Join(dir, "mesh.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	objs, err := manifest.SplitYAML(path, []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return path, objs
}

// kubeconfigs writes two broken kubeconfigs: one whose server does not answer (a port
// just closed), one whose current context does not exist.
func kubeconfigs(t *testing.T) (unreachable, noContext, addr string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr = l.Addr().String()
	l.Close()
	cfg, err := clientcmd.LoadFromFile(testcluster.Kubeconfig(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cfg.Clusters {
		c.Server = "https://" + addr
	}
	dir := t.TempDir()
	unreachable = filepath.Join(dir, "unreachable")
	if err := clientcmd.WriteToFile(*cfg, unreachable); err != nil {
		t.Fatal(err)
	}
	cfg.CurrentContext = "gone"
	noContext = filepath.Join(dir, "no-context")
	if err := clientcmd.WriteToFile(*cfg, noContext); err != nil {
		t.Fatal(err)
	}
	return unreachable, noContext, addr
}

// options -> output, against the real test cluster: a control plane applied with
// kubectl apply --server-side and a meshed pod in another namespace. Bad input and a
// broken kubeconfig exit 2 or 3 before anything; the meshed pod refuses (4, nothing on
// stdout); with --force the objects are listed in deletion order (yaml, json, name),
// then deleted with --delete; the namespace is gone; a second run finds nothing.
func TestRun(t *testing.T) {
	t.Parallel()
	kc := testcluster.Kubeconfig(t)
	cs := testcluster.Clientset(t)
	ns := testcluster.Namespace(t, cs)
	app := testcluster.Namespace(t, cs)
	ctx := context.Background()
	dir := t.TempDir()
	file, objs := writeRender(t, dir, install.Options{Namespace: ns})
	empty := filepath.Join(dir, "empty.yaml")
	if err := os.WriteFile(empty, []byte("# nothing\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(testcluster.Kubectl(t), "--kubeconfig", kc, "apply", "--server-side", "-f", file)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kubectl apply: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		cmd := exec.Command(testcluster.Kubectl(t), "--kubeconfig", kc, "delete", "--ignore-not-found", "--wait=false", "-f", file)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Logf("cleanup: %v\n%s", err, out)
		}
	})
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: app, Annotations: map[string]string{"meshplane.io/inject": "enabled", "meshplane.io/proxy-version": "v1.2.3"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "web"}, {Name: "mesh-proxy", Image: "proxy"}}},
	}
	if _, err := cs.CoreV1().Pods(app).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	want, err := uninstall.Order(objs)
	if err != nil {
		t.Fatal(err)
	}
	var wantYAML, wantNames bytes.Buffer
	if err := uninstall.Write(&wantYAML, uninstall.FormatYAML, want); err != nil {
		t.Fatal(err)
	}
	if err := uninstall.Write(&wantNames, uninstall.FormatName, want); err != nil {
		t.Fatal(err)
	}
	// Another namespace, created by someone else: the render's Namespace object is
	// foreign there (listed, not deleted); then a parent that kubectl manages is refused.
	other := testcluster.Namespace(t, cs)
	otherFile, _ := writeRender(t, t.TempDir(), install.Options{Namespace: other})
	unreachable, noContext, addr := kubeconfigs(t)
	where := "the cluster at "

	tests := []struct {
		name         string
		args         []string
		code         int
		stdout, want string // want: in stderr or the error
	}{
		{"empty input", []string{"-f", empty}, 2, "", "no Kubernetes objects to uninstall in " + empty},
		{"unreachable", []string{"-f", file, "--kubeconfig", unreachable}, 3, "", "cannot reach the cluster at https://" + addr},
		{"unknown context", []string{"-f", file, "--kubeconfig", noContext}, 2, "", `context "gone" does not exist`},
		{"unknown --context", []string{"-f", file, "--context", "prod"}, 2, "", `context "prod" does not exist`},
		{"refused: a meshed pod", []string{"-f", file}, 4, "", "Meshed Pod/" + app + "/web: its mesh-proxy sidecar"},
		{"listed in order", []string{"-f", file, "--force"}, 0, wantYAML.String(), "objects to delete from " + where},
		{"names", []string{"-f", file, "--force", "-o", "name"}, 0, wantNames.String(), "pipe to kubectl delete -f -"},
		{"deleted", []string{"-f", file, "--force", "--delete", "-o", "name"}, 0, wantNames.String(), "Gone: namespaces\nDeleted " + strconv.Itoa(len(want)) + " objects from " + where},
		{"again: nothing", []string{"-f", file, "--force"}, 0, "", "Nothing of mesh to delete in " + where + "https://"},
		{"foreign namespace", []string{"-f", otherFile, "--force"}, 0, "", "Foreign Namespace/" + other + " (not deleted): no applyset.kubernetes.io/part-of label"},
		{"kubectl's parent", []string{"-f", otherFile, "--force"}, 1, "", `ApplySet parent ConfigMap/` + other + `/mesh-control-plane-applyset in the cluster: the ApplySet is managed by "kubectl"`},
		{"another namespace: nothing, and why", []string{"install", "control-plane", "-n", ns + "-other", "--force"}, 0, "", "for namespace " + ns + "-other: the wrong context, or installed elsewhere"},
	}
	for _, tc := range tests {
		args := tc.args
		if !strings.Contains(strings.Join(args, " "), "--kubeconfig") {
			args = append(args, "--kubeconfig", kc)
		}
		if tc.name == "kubectl's parent" {
			parent := install.ControlPlaneApplySet(other)
			cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: parent.Name, Namespace: other,
				Labels: map[string]string{applyset.IDLabel: parent.ID()}, Annotations: map[string]string{applyset.ToolingAnnotation: "kubectl/v1.36.3"}}}
			if _, err := cs.CoreV1().ConfigMaps(other).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		code, stdout, stderr, msg := execute(t, args...)
		if code != tc.code || stdout != tc.stdout || !strings.Contains(stderr+msg, tc.want) {
			t.Errorf("%s: exit %d, stdout:\n%s\nstderr: %s\nerror: %s\nwant exit %d, stdout:\n%s\nand %q", tc.name, code, stdout, stderr, msg, tc.code, tc.stdout, tc.want)
		}
		if tc.name == "names" {
			// -o json: the same objects as a List; exit codes do not depend on it.
			code, stdout, _, _ := execute(t, "-f", file, "--force", "-o", "json", "--kubeconfig", kc)
			var list struct {
				Kind  string `json:"kind"`
				Items []any  `json:"items"`
			}
			if err := json.Unmarshal([]byte(stdout), &list); err != nil || code != 0 || list.Kind != "List" || len(list.Items) != len(want) {
				t.Errorf("-o json: exit %d, %v, %d items of %d", code, err, len(list.Items), len(want))
			}
		}
	}
	if _, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("namespace %s: %v, want gone", ns, err)
	}
	if _, err := cs.CoreV1().Pods(app).Get(ctx, "web", metav1.GetOptions{}); err != nil {
		t.Errorf("the meshed pod: %v, want kept", err)
	}
}
