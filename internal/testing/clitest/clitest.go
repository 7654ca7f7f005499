// Package clitest holds checks the cli commands' tests share.
package clitest

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/meshplane/mesh/cli/exitcode"
	"github.com/meshplane/mesh/cli/iostreams"
)

// PrometheusURLFlag checks a command's --prometheus-url (cli/vizsource), whatever
// -o: a URL that is not http(s)://HOST[:PORT][/PATH] is bad usage (exit 2) naming the flag,
// said before the kubeconfig is read; a good one goes on to the cluster (here a
// kubeconfig that does not exist: exit 2 naming it). Nothing goes to stdout.
// newCmd builds the command; args are its arguments before the flags.
func PrometheusURLFlag(t *testing.T, newCmd func(*iostreams.IOStreams) *cobra.Command, args ...string) {
	t.Helper()
	missing := filepath.Join(t.TempDir(), "missing")
	for _, output := range []string{"table", "json"} {
		for _, tc := range []struct{ url, msg string }{
			{"ftp://prom", "--prometheus-url"},
			{"prom:9090", "--prometheus-url"},
			{"http://", "--prometheus-url"},
			{"http://prom:9090", "kubeconfig"},
		} {
			io, _, out, _ := iostreams.Test()
			cmd := newCmd(io)
			cmd.SetArgs(append(append([]string(nil), args...), "--prometheus-url", tc.url, "--kubeconfig", missing, "-o", output))
			cmd.SilenceErrors, cmd.SilenceUsage = true, true
			err := cmd.ExecuteContext(context.Background())
			if exitcode.For(err) != exitcode.UsageCode || err == nil || !strings.Contains(err.Error(), tc.msg) || out.Len() != 0 {
				t.Errorf("%v --prometheus-url %s -o %s: exit %d, error %v, stdout %q; want 2, %q", args, tc.url, output, exitcode.For(err), err, out, tc.msg)
			}
		}
	}
}
