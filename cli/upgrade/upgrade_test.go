package upgrade

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshplane/mesh/checks/preinstall"
	"github.com/meshplane/mesh/cli/exitcode"
	"github.com/meshplane/mesh/cli/iostreams"
	"github.com/meshplane/mesh/cli/kube"
	"github.com/meshplane/mesh/cli/version"
	"github.com/meshplane/mesh/internal/testing/testcluster"
	"github.com/meshplane/mesh/lifecycle/diff"
	"github.com/meshplane/mesh/lifecycle/upgrade"
	"github.com/meshplane/mesh/render/install"
	"github.com/meshplane/mesh/render/manifest"
	"github.com/meshplane/mesh/render/values"
)

var clock = func() time.Time { return time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC) }

// argv -> options: --from first among the values files, mesh install's flags on the
// render options, the apply flags on lifecycle/upgrade's options.
func TestNewCmdOptions(t *testing.T) {
	t.Parallel()
	base := func(mod func(*Options)) Options {
		o := Options{
			Render: install.Options{Version: version.Version(), Values: values.Options{ValueFiles: []string{"v.yaml"}}},
			From:   []string{"v.yaml"},
			Apply:  upgrade.Options{DryRun: upgrade.DryRunNone, Wait: true, Timeout: upgrade.DefaultTimeout},
		}
		if mod != nil {
			mod(&o)
		}
		return o
	}
	for _, tc := range []struct {
		name    string
		args    []string
		want    Options
		wantErr string
	}{
		{"from", []string{"--from", "v.yaml"}, base(nil), ""},
		{"install flags", []string{"--from", "v.yaml", "-f", "over.yaml", "--set", "a=1", "-n", "mesh", "--ha", "--registry", "r"}, base(func(o *Options) {
			o.Render.Values = values.Options{ValueFiles: []string{"v.yaml", "over.yaml"}, Values: []string{"a=1"}}
			o.Render.Namespace, o.Render.HA, o.Render.Registry = "mesh", true, "r"
		}), ""},
		{"apply flags", []string{"--from", "v.yaml", "--force-conflicts", "--force", "--dry-run=server", "--wait=false", "--timeout", "90s", "--kubeconfig", "kc", "--context", "c"}, base(func(o *Options) {
			o.Apply = upgrade.Options{ForceConflicts: true, DryRun: upgrade.DryRunServer, Timeout: 90 * time.Second}
			o.Force, o.Kube = true, kube.Flags{Kubeconfig: "kc", Context: "c"}
		}), ""},
		{"dry run alone is client", []string{"--from", "v.yaml", "--dry-run"}, base(func(o *Options) { o.Apply.DryRun = upgrade.DryRunClient }), ""},
		{"yaml", []string{"--from", "v.yaml", "-o", "yaml"}, base(func(o *Options) { o.Output = OutputYAML }), ""},
		{"no --from", []string{"-f", "v.yaml"}, Options{}, "--from is required"},
		{"bad dry run", []string{"--from", "v.yaml", "--dry-run=all"}, Options{}, "--dry-run must be none, client or server"},
		{"bad output", []string{"--from", "v.yaml", "-o", "json"}, Options{}, "--output must be yaml"},
		{"yaml and dry run", []string{"--from", "v.yaml", "-o", "yaml", "--dry-run"}, Options{}, "does not take --dry-run"},
		{"bad timeout", []string{"--from", "v.yaml", "--timeout", "0s"}, Options{}, "--timeout must be positive"},
		{"bad issuer", []string{"--from", "v.yaml", "--identity-issuer", "vault"}, Options{}, "--identity-issuer must be"},
		{"arguments", []string{"--from", "v.yaml", "extra"}, Options{}, "unknown command"},
	} {
		io, _, _, _ := iostreams.Test()
		var got *Options
		cmd := NewCmd(io, func(o *Options) error { got = o; return nil }, clock)
		cmd.SetArgs(tc.args)
		cmd.SilenceErrors, cmd.SilenceUsage = true, true
		cmd.SetOut(&bytes.Buffer{})
		err := cmd.Execute()
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s: error %v, want %q", tc.name, err, tc.wantErr)
			} else if !strings.Contains(tc.wantErr, "unknown command") && exitcode.For(err) != exitcode.UsageCode {
				t.Errorf("%s: exit %d, want a usage error", tc.name, exitcode.For(err))
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		got.Now = nil
		if !reflect.DeepEqual(*got, tc.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", tc.name, *got, tc.want)
		}
	}
}

func execute(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	io, _, out, errOut := iostreams.Test()
	cmd := NewCmd(io, nil, time.Now)
	cmd.SetArgs(args)
	cmd.SilenceErrors, cmd.SilenceUsage = true, true
	cmd.SetOut(errOut)
	cmd.SetErr(errOut)
	err := cmd.ExecuteContext(context.Background())
	if err != nil {
		errOut.WriteString("Error: " + err.Error() + "\n")
	}
	return exitcode.For(err), out.String(), errOut.String()
}

// olderInstall applies the control plane of an older render (other values) to ns,
// but for the webhook configuration, which is cluster-wide.
func olderInstall(t *testing.T, ns string) {
	t.Helper()
	res, err := install.Render(install.Options{Version: "0.9.0", Namespace: ns, Part: install.ControlPlane,
		Values: values.Options{Values: []string{"controller.logLevel=debug"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var objs []manifest.Object
	for _, o := range res.Objects {
		if o.Kind != "MutatingWebhookConfiguration" {
			objs = append(objs, o)
		}
	}
	pc, err := preinstall.NewCluster(testcluster.RESTConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	dc := diff.NewCluster(pc.Dynamic, pc.Clientset.Discovery(), pc.Config.Host)
	if _, err := upgrade.Apply(context.Background(), dc, []upgrade.Phase{{Name: "older", Objects: objs}}, upgrade.Options{}); err != nil {
		t.Fatal(err)
	}
}

// Against the real API server. A live control plane with other values (an older
// render): mesh upgrade -o yaml prints exactly mesh install's two halves of the --from
// values, none of the live settings; a server dry run changes nothing. A failed check
// (no control plane) exits 1 and applies nothing. These are dev builds: the skew is a
// warning.
func TestRun(t *testing.T) {
	t.Parallel()
	kc := testcluster.Kubeconfig(t)
	cs := testcluster.Clientset(t)
	ns := testcluster.Namespace(t, cs)
	olderInstall(t, ns)
	from := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(from, []byte("controller:\n  logLevel: warn\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	code, out, stderr := execute(t, "--from", from, "-n", ns, "--kubeconfig", kc, "-o", "yaml")
	if code != 0 {
		t.Fatalf("-o yaml: exit %d\n%s", code, stderr)
	}
	var want bytes.Buffer
	for _, part := range []install.Part{install.CRDs, install.ControlPlane} {
		o := install.Options{Version: version.Version(), Namespace: ns, Part: part}
		if part == install.ControlPlane {
			o.Values.ValueFiles = []string{from}
		}
		res, err := install.Render(o, iostreams.System())
		if err != nil {
			t.Fatal(err)
		}
		if err := manifest.WriteYAML(&want, res.Objects); err != nil {
			t.Fatal(err)
		}
	}
	if out != want.String() {
		t.Errorf("-o yaml is not mesh install crds + control-plane of the --from values")
	}
	if strings.Contains(out, "logLevel: debug") || !strings.Contains(out, "logLevel: warn") {
		t.Errorf("-o yaml took the live values")
	}
	for _, part := range []string{"the control plane (Deployment/" + ns + "/mesh-identity) runs 0.9.0", "every version the cluster stores", "nothing was applied"} {
		if !strings.Contains(stderr, part) {
			t.Errorf("-o yaml: stderr lacks %q:\n%s", part, stderr)
		}
	}

	// The CRD is cluster-wide: other tests may have applied it with other managers
	// (kubectl) at other versions, so the dry run takes their fields.
	code, out, stderr = execute(t, "--from", from, "-n", ns, "--kubeconfig", kc, "--dry-run=server", "--force-conflicts")
	if code != 0 || out != "" || !strings.Contains(stderr, "Dry run (server): nothing was changed") || !strings.Contains(stderr, "mesh prune install") {
		t.Errorf("--dry-run=server: exit %d, stdout %q\n%s", code, out, stderr)
	}
	cm, err := cs.CoreV1().ConfigMaps(ns).Get(context.Background(), "mesh-config", metav1.GetOptions{})
	if err != nil || !strings.Contains(cm.Data["values.yaml"], "logLevel: debug") {
		t.Errorf("the server dry run changed mesh-config: %v %v", err, cm.Data)
	}

	empty := testcluster.Namespace(t, cs)
	code, out, stderr = execute(t, "--from", from, "-n", empty, "--kubeconfig", kc)
	if code != exitcode.Error || out != "" || !strings.Contains(stderr, "nothing to upgrade") || !strings.Contains(stderr, "nothing was applied") {
		t.Errorf("no control plane: exit %d, stdout %q\n%s", code, out, stderr)
	}
	cms, err := cs.CoreV1().ConfigMaps(empty).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cms.Items {
		if c.Name == "mesh-config" {
			t.Error("a failed check applied the control plane")
		}
	}

	code, _, stderr = execute(t, "--from", from+".missing", "-n", ns, "--kubeconfig", kc)
	if code != exitcode.UsageCode {
		t.Errorf("unreadable values: exit %d\n%s", code, stderr)
	}
}

// A cluster that does not answer is exit 3, before anything is rendered or applied.
func TestUnreachableCluster(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	kc := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kc, []byte("apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: \"https://"+addr+"\"}\n"+
		"users:\n- name: u\n  user: {token: t}\ncontexts:\n- name: c\n  context: {cluster: c, user: u}\ncurrent-context: c\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, stderr := execute(t, "--from", "/dev/null", "--kubeconfig", kc)
	if code != exitcode.Cluster || out != "" || !strings.Contains(stderr, "cannot reach the cluster at https://"+addr) {
		t.Errorf("exit %d, stdout %q\n%s", code, out, stderr)
	}
}
