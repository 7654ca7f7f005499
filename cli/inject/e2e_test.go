package inject

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/meshplane/mesh/cli/iostreams"
	"github.com/meshplane/mesh/internal/testing/testcluster"
)

// `mesh inject --manual` output of every workload kind is accepted by a real API
// server: kubectl apply --dry-run=server --validate=strict against the project's test
// cluster. So are the annotation-mode output and uninject's output.
func TestInjectedOutputIsAcceptedByAPIServer(t *testing.T) {
	kubeconfig := testcluster.Kubeconfig(t)
	kubectl := testcluster.Kubectl(t)
	ns := testcluster.Namespace(t, testcluster.Clientset(t))
	fixtures := []string{
		"../../render/inject/testdata/in/comments.yaml",
		"../../render/inject/testdata/in/kinds.yaml",
		"../../render/inject/testdata/in/lists.yaml",
		"../../render/inject/testdata/in/concatenated.json",
		"../../render/inject/testdata/in/crlf.yaml",
		"../../render/inject/testdata/in/volumes-last.yaml",
		"../../render/inject/testdata/in/layout.yaml",
	}
	for _, tc := range []struct {
		name string
		opts Options
	}{
		{"manual", Options{Manual: true, Version: "v1.2.3", ControlPlaneNS: "mesh-system"}},
		{"manual with anchors and overrides", Options{Manual: true, Version: "v1.2.3", ControlPlaneNS: "mesh-system",
			TrustAnchorsFile: "../../render/install/testdata/pki/ca.crt",
			Config:           map[string]string{"config.meshplane.io/proxy-cpu-limit": "500m", "config.meshplane.io/skip-outbound-ports": "5432"}}},
		{"annotation", Options{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, f := range fixtures {
				o := tc.opts
				if o.Config == nil {
					o.Config = map[string]string{}
				}
				o.Inputs.Filenames = []string{f}
				o.Quiet = true
				io, _, out, _ := iostreams.Test()
				cmd := &cobra.Command{}
				cmd.SetContext(t.Context())
				if err := Run(cmd, io, &o); err != nil {
					t.Fatalf("%s: %v", f, err)
				}
				apply(t, kubectl, kubeconfig, ns, f, out.Bytes())

				// uninject's output is valid too.
				un := Options{Uninject: true, Quiet: true, Config: map[string]string{}}
				un.Inputs.Filenames = []string{"-"}
				io2, in2, out2, _ := iostreams.Test()
				in2.Write(out.Bytes())
				if err := Run(cmd, io2, &un); err != nil {
					t.Fatalf("uninject %s: %v", f, err)
				}
				apply(t, kubectl, kubeconfig, ns, f+" (uninjected)", out2.Bytes())
			}
		})
	}
}

func apply(t *testing.T, kubectl, kubeconfig, ns, what string, manifests []byte) {
	t.Helper()
	cmd := exec.Command(kubectl, "--kubeconfig", kubeconfig, "-n", ns, "apply", "--dry-run=server", "--validate=strict", "-f", "-")
	cmd.Stdin = bytes.NewReader(manifests)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	// The Widget custom resource has no CRD in the test cluster: that one rejection is expected.
	rest := strings.ReplaceAll(stderr.String(), `error: resource mapping not found for name: "untouched" namespace: "" from "STDIN": no matches for kind "Widget" in version "example.com/v1"`, "")
	rest = strings.ReplaceAll(rest, "ensure CRDs are installed first", "")
	if strings.TrimSpace(rest) != "" || (err != nil && !strings.Contains(stderr.String(), `kind "Widget"`)) {
		t.Errorf("%s: the API server rejected the output: %v\n%s\n%s", what, err, stderr.String(), manifests)
	}
	if !bytes.Contains(out, []byte("(server dry run)")) {
		t.Errorf("%s: kubectl applied nothing:\n%s", what, out)
	}
}
