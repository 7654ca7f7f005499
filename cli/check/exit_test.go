package check

import (
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/meshplane/mesh/checks"
	"github.com/meshplane/mesh/cli/exitcode"
	"github.com/meshplane/mesh/cli/iostreams"
	"github.com/meshplane/mesh/internal/testing/testcluster"
)

var outputs = []string{"table", "json", "junit", "short"}

// execute runs `mesh check ARGS` through its command as the CLI does, and returns the
// exit code the CLI would exit with, stdout, and the error's message.
func execute(t *testing.T, stdin string, args ...string) (code int, stdout, errMsg string) {
	t.Helper()
	io, in, out, errOut := iostreams.Test()
	in.WriteString(stdin)
	cmd := NewCmd(io, nil, time.Now)
	cmd.SetArgs(args)
	cmd.SilenceErrors, cmd.SilenceUsage = true, true
	cmd.SetOut(errOut)
	cmd.SetErr(errOut)
	err := cmd.ExecuteContext(context.Background())
	if err != nil {
		errMsg = err.Error()
	}
	return exitcode.For(err), out.String(), errMsg
}

// The exit codes are typed, and the CLI's are the framework's.
func TestExitCodesAgree(t *testing.T) {
	for _, c := range []struct{ cli, checks int }{
		{exitcode.OK, checks.ExitPassed}, {exitcode.Error, checks.ExitFindings},
		{exitcode.UsageCode, checks.ExitUsage}, {exitcode.Cluster, checks.ExitCluster},
	} {
		if c.cli != c.checks {
			t.Errorf("cli/exitcode %d, checks %d", c.cli, c.checks)
		}
	}
	if got := exitcode.For(&checks.ClusterError{Host: "h"}); got != checks.ExitCluster {
		t.Errorf("a ClusterError exits %d", got)
	}
}

// Offline input with no object in it is bad input, exit 2 with a message naming it,
// whatever -o; nothing goes to stdout.
func TestNoObjectsIsBadInput(t *testing.T) {
	t.Parallel()
	emptyDir := t.TempDir()
	for _, tc := range []struct {
		name, stdin string
		args        []string
		names       string
	}{
		{"empty stdin", "", []string{"-f", "-"}, "standard input"},
		{"comments only", "# nothing here\n---\n# nor here\n---\n", []string{"-f", "-"}, "standard input"},
		{"empty List", `{"apiVersion": "v1", "kind": "List", "items": []}`, []string{"-f", "-"}, "standard input"},
		{"directory without manifests", "", []string{"-f", emptyDir, "-R"}, emptyDir},
	} {
		for _, o := range outputs {
			code, out, msg := execute(t, tc.stdin, append(tc.args, "-o", o)...)
			if code != checks.ExitUsage || out != "" || !strings.Contains(msg, "no Kubernetes objects to check in "+tc.names) {
				t.Errorf("%s -o %s: exit %d, stdout %q, error %q", tc.name, o, code, out, msg)
			}
		}
	}
}

// writeKubeconfig writes a kubeconfig for server, with the CA of ca (if any) and a
// bearer token.
func writeKubeconfig(t *testing.T, server string, ca []byte, token string) string {
	t.Helper()
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["c"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: ca}
	cfg.AuthInfos["u"] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts["c"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "u"}
	cfg.CurrentContext = "c"
	p := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, p); err != nil {
		t.Fatal(err)
	}
	return p
}

// closedPort is a loopback address nothing listens on (it did a moment ago).
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

// A cluster that does not answer is exit 3 for every cluster suite and every -o, with
// the server named and no report; a kubeconfig that cannot be loaded stays exit 2.
func TestUnreachableClusterIsExit3(t *testing.T) {
	t.Parallel()
	addr := closedPort(t)
	kc := writeKubeconfig(t, "https://"+addr, nil, "token")
	for _, suite := range [][]string{{"--pre"}, {}, {"--proxy"}} {
		for _, o := range outputs {
			code, out, msg := execute(t, "", append(suite, "--kubeconfig", kc, "-o", o)...)
			if code != checks.ExitCluster || out != "" || !strings.Contains(msg, "cannot reach the cluster at https://"+addr) {
				t.Errorf("%v -o %s: exit %d, stdout %q, error %q", suite, o, code, out, msg)
			}
		}
	}
	code, out, msg := execute(t, "", "--pre", "--kubeconfig", filepath.Join(t.TempDir(), "missing"))
	if code != checks.ExitUsage || out != "" || !strings.Contains(msg, "kubeconfig") {
		t.Errorf("missing kubeconfig: exit %d, stdout %q, error %q", code, out, msg)
	}
}

// Against the real test cluster: credentials it refuses are exit 3; its admin gets 0
// when every check passes and 1 for a finding; a user that may not create what the
// install holds is a finding (1), not an unauthorized cluster. The codes do not
// depend on -o.
func TestClusterExitCodes(t *testing.T) {
	admin := testcluster.Kubeconfig(t)
	cs := testcluster.Clientset(t)
	raw, err := clientcmd.LoadFromFile(admin)
	if err != nil {
		t.Fatal(err)
	}
	cluster := raw.Clusters[raw.Contexts[raw.CurrentContext].Cluster]
	badToken := writeKubeconfig(t, cluster.Server, cluster.CertificateAuthorityData, "not-a-valid-token")

	ns := testcluster.Namespace(t, cs)
	viewer := writeKubeconfig(t, cluster.Server, cluster.CertificateAuthorityData, testcluster.ViewerToken(t, cs, ns))

	for _, tc := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"bad token, pre", []string{"--pre", "--kubeconfig", badToken}, checks.ExitCluster, "the cluster at " + cluster.Server + " refused the credentials"},
		{"bad token, health", []string{"--kubeconfig", badToken}, checks.ExitCluster, "refused the credentials"},
		{"bad token, proxy", []string{"--proxy", "--kubeconfig", badToken}, checks.ExitCluster, "refused the credentials"},
		{"admin, pre, all pass", []string{"--pre", "--kubeconfig", admin, "-n", "mesh-cli-check-absent"}, checks.ExitPassed, ""},
		{"admin, pre, the namespace exists", []string{"--pre", "--kubeconfig", admin, "-n", ns}, checks.ExitFindings, ""},
		{"admin, health, nothing installed", []string{"--kubeconfig", admin, "-n", ns}, checks.ExitFindings, ""},
		{"viewer, pre, may not create", []string{"--pre", "--kubeconfig", viewer, "-n", ns}, checks.ExitFindings, ""},
	} {
		for _, o := range outputs {
			code, out, msg := execute(t, "", append(tc.args, "-o", o)...)
			if code != tc.code || !strings.Contains(msg, tc.msg) {
				t.Errorf("%s -o %s: exit %d, want %d; error %q (want %q)", tc.name, o, code, tc.code, msg, tc.msg)
			}
			// Data formats write a report on stdout whenever checks ran; table and
			// short are reports for people, on stderr: stdout stays empty.
			data := o == "json" || o == "junit"
			if (out != "") != (data && tc.code < checks.ExitUsage) {
				t.Errorf("%s -o %s: stdout %d bytes", tc.name, o, len(out))
			}
		}
	}
}
