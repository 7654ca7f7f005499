package identity

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/meshplane/mesh/cli/exitcode"
	"github.com/meshplane/mesh/cli/iostreams"
	"github.com/meshplane/mesh/cli/kube"
	"github.com/meshplane/mesh/internal/testing/golden"
	"github.com/meshplane/mesh/internal/testing/testcluster"
	lcidentity "github.com/meshplane/mesh/lifecycle/identity"
	"github.com/meshplane/mesh/render/install"
	"github.com/meshplane/mesh/render/manifest"
)

// The fixtures: an old anchor (to 2026-12-31) and issuer (to 2026-10-27), a new
// anchor (to 2036) and issuer (to 2026-11-26).
const pki = "../../lifecycle/identity/testdata/pki/"

var june = func() time.Time { return time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC) }

// argv -> options.
func TestNewCmdInspectOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		want    InspectOptions
		wantErr string
	}{
		{"cluster", []string{}, InspectOptions{Namespace: "mesh-system", Output: "table", Now: june()}, ""},
		{"cluster flags", []string{"-n", "mesh", "--kubeconfig", "kc", "--context", "prod", "-o", "json"},
			InspectOptions{Namespace: "mesh", Output: "json", Kube: kube.Flags{Kubeconfig: "kc", Context: "prod"}, Now: june()}, ""},
		{"manifests: the namespace is theirs", []string{"-f", "a.yaml", "-f", "-", "-R", "-o", "yaml"},
			InspectOptions{Inputs: manifest.Inputs{Filenames: []string{"a.yaml", "-"}, Recursive: true}, Output: "yaml", Now: june()}, ""},
		{"files and -n", []string{"--trust-anchors-file", "b.crt", "--issuer-cert-file", "i.crt", "-n", "mesh"},
			InspectOptions{Files: lcidentity.Files{TrustAnchors: "b.crt", IssuerCert: "i.crt"}, Namespace: "mesh", Output: "table", Now: june()}, ""},
		{"kustomize", []string{"-k", "dir"}, InspectOptions{Inputs: manifest.Inputs{Kustomize: "dir"}, Output: "table", Now: june()}, ""},
		{"bad output", []string{"-o", "xml"}, InspectOptions{}, "--output must be table, json or yaml"},
		{"argument", []string{"x"}, InspectOptions{}, "unknown command"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			io, _, _, _ := iostreams.Test()
			var got *InspectOptions
			cmd := NewCmdInspect(io, func(o *InspectOptions) error { got = o; return nil }, june)
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

// inspect runs `mesh identity inspect ARGS` at the clock: exit code, stdout, stderr
// and the error's message.
func inspect(t *testing.T, stdin string, now func() time.Time, args ...string) (code int, stdout, stderr, msg string) {
	t.Helper()
	io, in, out, errOut := iostreams.Test()
	in.WriteString(stdin)
	cmd := NewCmdInspect(io, nil, now)
	cmd.SetArgs(args)
	cmd.SilenceErrors, cmd.SilenceUsage = true, true
	cmd.SetOut(errOut)
	cmd.SetErr(errOut)
	err := cmd.ExecuteContext(context.Background())
	if err != nil {
		msg = err.Error()
		if exitcode.Silent(err) != (exitcode.For(err) == lcidentity.ExitProblems) {
			t.Errorf("%v: only problems are silent: %v (exit %d)", args, err, exitcode.For(err))
		}
	}
	return exitcode.For(err), out.String(), errOut.String(), msg
}

func render(t *testing.T, o install.Options) string {
	t.Helper()
	o.Version = "v1.2.3"
	res, err := install.Render(o, osFiles{})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := manifest.WriteYAML(&b, res.Objects); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// options -> output: the report on stdout in each format, exit codes whatever -o.
func TestRunInspect(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bundle := filepath.Join(dir, "bundle.crt")
	old, _ := os.ReadFile(pki + "old/ca.crt")
	next, _ := os.ReadFile(pki + "new/ca.crt")
	if err := os.WriteFile(bundle, append(old, next...), 0o644); err != nil {
		t.Fatal(err)
	}
	step2 := render(t, install.Options{TrustAnchorsFile: bundle, IssuerCertFile: pki + "old/issuer.crt"})
	for _, f := range []string{"table", "json", "yaml"} {
		code, out, errOut, _ := inspect(t, step2, june, "-f", "-", "-o", f)
		if code != 0 || errOut != "" {
			t.Errorf("-o %s: exit %d, stderr %q", f, code, errOut)
		}
		golden.Assert(t, "inspect-step2."+f, []byte(out))
	}
	november := func() time.Time { return time.Date(2026, 11, 15, 0, 0, 0, 0, time.UTC) }
	cases := []struct {
		name, stdin string
		now         func() time.Time
		args        []string
		code        int
		stdout, msg string
	}{
		{"files alone", "", june, []string{"--trust-anchors-file", bundle, "--issuer-cert-file", pki + "new/issuer.crt"}, 0, "chains to: CN=root.cluster.local", ""},
		{"the old anchor removed too early", "", june, []string{"--trust-anchors-file", pki + "new/ca.crt", "--issuer-cert-file", pki + "old/issuer.crt"}, 1, "is not signed by any trust anchor", "identity problems found"},
		{"expired issuer", step2, november, []string{"-f", "-"}, 1, "expired on 2026-10-27T23:55:00Z", ""},
		{"expiring anchor only warns", "", november, []string{"--trust-anchors-file", bundle, "--issuer-cert-file", pki + "new/issuer.crt"}, 0, "within the 60d 0h warning window", ""},
		{"bootstrap render: nothing offline", render(t, install.Options{}), june, []string{"-f", "-"}, 2, "", "no identity material in standard input"},
		{"unreadable file", "", june, []string{"--trust-anchors-file", filepath.Join(dir, "missing.crt")}, 2, "", "--trust-anchors-file: open"},
		{"not YAML", "a: [", june, []string{"-f", "-"}, 2, "", "stdin: document 1"},
	}
	for _, tc := range cases {
		for _, f := range []string{"table", "json"} {
			code, out, _, msg := inspect(t, tc.stdin, tc.now, append(tc.args, "-o", f)...)
			if code != tc.code || f == "table" && !strings.Contains(out, tc.stdout) || !strings.Contains(msg, tc.msg) {
				t.Errorf("%s -o %s: exit %d, want %d; stdout %q, want %q; error %q, want %q", tc.name, f, code, tc.code, out, tc.stdout, msg, tc.msg)
			}
			if tc.code >= 2 && out != "" {
				t.Errorf("%s -o %s: stdout %q on a usage error", tc.name, f, out)
			}
		}
	}
}

// The cluster: unreachable is exit 3; the test cluster's control plane is read.
func TestRunInspectCluster(t *testing.T) {
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
	for _, f := range []string{"table", "json"} {
		code, out, _, msg := inspect(t, "", june, "--kubeconfig", unreachable, "-o", f)
		if code != exitcode.Cluster || out != "" || !strings.Contains(msg, "cannot reach the cluster at https://"+addr) {
			t.Errorf("unreachable -o %s: exit %d, stdout %q, error %q", f, code, out, msg)
		}
	}
	code, out, _, msg := inspect(t, "", june, "--kubeconfig", filepath.Join(t.TempDir(), "missing"))
	if code != exitcode.UsageCode || out != "" || !strings.Contains(msg, "kubeconfig") {
		t.Errorf("no kubeconfig: exit %d, stdout %q, error %q", code, out, msg)
	}

	cs := testcluster.Clientset(t)
	ns := testcluster.Namespace(t, cs)
	kc := testcluster.Kubeconfig(t)
	// Nothing installed: no anchors is a problem (1), reported.
	code, out, _, _ = inspect(t, "", june, "--kubeconfig", kc, "-n", ns)
	if code != 1 || !strings.Contains(out, "no trust anchors found") {
		t.Errorf("empty namespace: exit %d, stdout %q", code, out)
	}
	// The render of step 2 applied: read back as -f reads the render.
	rendered := render(t, install.Options{Namespace: ns, TrustAnchorsFile: pki + "old/ca.crt", IssuerCertFile: pki + "old/issuer.crt", IssuerKeyFile: pki + "old/issuer.key"})
	var keep []string
	for _, doc := range strings.Split(rendered, "\n---\n") {
		if strings.Contains(doc, "name: mesh-identity-issuer\n") && strings.Contains(doc, "kind: Secret") ||
			strings.Contains(doc, "name: mesh-identity-trust-roots\n") && strings.Contains(doc, "kind: ConfigMap") {
			keep = append(keep, strings.TrimPrefix(doc, "---\n"))
		}
	}
	if len(keep) != 2 {
		t.Fatalf("found %d of the 2 identity objects in the render", len(keep))
	}
	kubectl := testcluster.Kubectl(t)
	applyYAML(t, kubectl, kc, strings.Join(keep, "\n---\n"))
	code, live, _, _ := inspect(t, "", june, "--kubeconfig", kc, "-n", ns, "-o", "json")
	_, offline, _, _ := inspect(t, strings.Join(keep, "\n---\n"), june, "-f", "-", "-o", "json")
	var lr, or lcidentity.Report
	if err := json.Unmarshal([]byte(live), &lr); err != nil {
		t.Fatalf("%v\n%s", err, live)
	}
	if err := json.Unmarshal([]byte(offline), &or); err != nil {
		t.Fatal(err)
	}
	// Other tests share the cluster, and their namespaces publish other anchors: live
	// then reports their trust roots (errors, exit 1). Only errors about this
	// namespace count here.
	othersOnly := len(lr.Errors) > 0
	for _, e := range lr.Errors {
		othersOnly = othersOnly && strings.Contains(e, "the trust roots published in") && !strings.Contains(e, ns)
	}
	exitOK := code == 0 || code == 1 && othersOnly
	if !exitOK || lr.Issuer == nil || !lr.Issuer.ChainValid || !reflect.DeepEqual(lr.Anchors, or.Anchors) ||
		!reflect.DeepEqual(lr.Issuer, or.Issuer) || !reflect.DeepEqual(lr.IssuerAnchors, or.IssuerAnchors) {
		t.Errorf("live exit %d\n%s\nwant the offline report\n%s", code, live, offline)
	}
	// Other tests share the cluster: look for this namespace among the published.
	found := false
	for _, b := range lr.Published {
		found = found || slices.Contains(b.Namespaces, ns) && b.TrustsIssuer && b.MatchesIssuerAnchors
	}
	if !found {
		t.Errorf("published %+v: %s missing or not trusting the issuer", lr.Published, ns)
	}
}

type osFiles struct{}

func (osFiles) ReadFile(name string) ([]byte, error) { return os.ReadFile(name) }
func (osFiles) Stdin() io.Reader                     { return strings.NewReader("") }

func applyYAML(t *testing.T, kubectl, kubeconfig, doc string) {
	t.Helper()
	cmd := exec.Command(kubectl, "--kubeconfig", kubeconfig, "apply", "--server-side", "-f", "-")
	cmd.Stdin = strings.NewReader(doc)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kubectl apply: %v\n%s", err, out)
	}
}
