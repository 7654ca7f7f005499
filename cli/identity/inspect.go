package identity

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/meshplane/mesh/checks"
	"github.com/meshplane/mesh/cli/exitcode"
	"github.com/meshplane/mesh/cli/iostreams"
	"github.com/meshplane/mesh/cli/kube"
	"github.com/meshplane/mesh/lifecycle/diff"
	lcidentity "github.com/meshplane/mesh/lifecycle/identity"
	"github.com/meshplane/mesh/render/identity"
	"github.com/meshplane/mesh/render/install"
	"github.com/meshplane/mesh/render/manifest"
)

// InspectOptions of `mesh identity inspect`.
type InspectOptions struct {
	Inputs manifest.Inputs  // -f: rendered manifests, offline
	Files  lcidentity.Files // PEM files, offline; they replace what -f gives
	// Namespace (-n) is the control plane's; offline, empty means the one the
	// manifests' mesh-config or issuer Secret is in.
	Namespace string
	Output    string // table, json or yaml
	Kube      kube.Flags
	Now       time.Time
}

// Offline tells whether the inspection reads manifests or files rather than the cluster.
func (o *InspectOptions) Offline() bool {
	return len(o.Inputs.Filenames) > 0 || o.Inputs.Kustomize != "" || o.Files.TrustAnchors != "" || o.Files.IssuerCert != ""
}

const inspectLong = `Show the identity material of a mesh: each trust anchor (subject, serial, SHA-256
fingerprint, validity, time left, key type), the issuer (the same, and which anchor
it chains to, or why it chains to none), the issuer Secret's ca.crt (the anchors the
identity controller publishes), and the trust roots proxies are given: every
mesh-identity-trust-roots ConfigMap, grouped by content, and whether each holds the
issuer's anchor.

Without -f or files it reads the cluster of the kubeconfig (the control plane in -n).
With -f it reads rendered manifests (mesh install's output); --trust-anchors-file and
--issuer-cert-file replace the anchors and the issuer they give, or stand alone.

Certificates that end within mesh check's --min-cert-validity default (%s) are
warnings. The report goes to stdout; -o json and -o yaml carry the same content.

Exit codes, whatever -o:
  0  the issuer chains to a trust anchor, nothing expired (warnings allowed)
  1  problems: a chain that reaches no anchor, an expired or not yet valid
     certificate, published trust roots that lack the issuer's anchor
  2  bad input or usage: bad flags, unreadable files, nothing to inspect, no kubeconfig
  3  the cluster is unreachable, or refused the kubeconfig's credentials`

// NewCmdInspect builds `mesh identity inspect`. now is the clock; runF replaces the
// run function in tests.
func NewCmdInspect(io *iostreams.IOStreams, runF func(*InspectOptions) error, now func() time.Time) *cobra.Command {
	opts := &InspectOptions{Namespace: install.DefaultNamespace, Output: lcidentity.FormatTable}
	cmd := &cobra.Command{
		Use:   "inspect [-f FILE|DIR|-] [--trust-anchors-file F] [--issuer-cert-file F]",
		Short: "Show trust anchors, issuer, chain, validity and what proxies trust",
		Long:  fmt.Sprintf(inspectLong, identity.HumanDuration(checks.DefaultMinCertValidity)),
		Example: `  mesh identity inspect                       # the cluster's mesh-system
  mesh install ... | mesh identity inspect -f -
  mesh identity inspect --trust-anchors-file bundle.crt --issuer-cert-file issuer.crt -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch opts.Output {
			case lcidentity.FormatTable, lcidentity.FormatJSON, lcidentity.FormatYAML:
			default:
				return exitcode.Usage(fmt.Errorf("--output must be table, json or yaml, not %q", opts.Output))
			}
			if opts.Offline() && !cmd.Flags().Changed("namespace") {
				opts.Namespace = ""
			}
			opts.Now = now()
			if runF != nil {
				return runF(opts)
			}
			return RunInspect(cmd, io, opts)
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&opts.Inputs.Filenames, "filename", "f", nil, "rendered manifests: file, directory, https URL or - (stdin); repeatable")
	f.BoolVarP(&opts.Inputs.Recursive, "recursive", "R", false, "read directories recursively")
	f.StringVarP(&opts.Inputs.Kustomize, "kustomize", "k", "", "build this kustomization directory first")
	f.StringVar(&opts.Files.TrustAnchors, "trust-anchors-file", "", "PEM trust anchors (a bundle of one or more)")
	f.StringVar(&opts.Files.IssuerCert, "issuer-cert-file", "", "PEM issuer certificate, then any intermediates")
	f.StringVarP(&opts.Namespace, "namespace", "n", opts.Namespace, "namespace of the control plane")
	f.StringVarP(&opts.Output, "output", "o", opts.Output, "output: table, json or yaml")
	opts.Kube.Bind(f)
	return cmd
}

// RunInspect gathers the material, inspects it at o.Now and writes the report to
// stdout. Problems are an error with exit code 1 and no message (the report says them).
func RunInspect(cmd *cobra.Command, io *iostreams.IOStreams, o *InspectOptions) error {
	var m lcidentity.Material
	if o.Offline() {
		if len(o.Inputs.Filenames) > 0 || o.Inputs.Kustomize != "" {
			objs, err := diff.Read(cmd.Context(), o.Inputs, manifest.Env{Stdin: io.In})
			if err != nil {
				return exitcode.Usage(err)
			}
			if m, err = lcidentity.FromObjects(objs, o.Namespace); err != nil {
				return exitcode.Usage(err)
			}
		}
		if err := o.Files.Apply(&m); err != nil {
			return exitcode.Usage(err)
		}
		if m.Anchors == nil && m.Issuer == nil && m.IssuerAnchors == nil {
			return exitcode.Usage(fmt.Errorf("no identity material in %s: no trust anchors, issuer Secret or mesh-config values (bootstrap mode keeps them in the cluster only)", o.Inputs.Describe()))
		}
	} else {
		c, err := o.Kube.Connect(cmd.Context())
		if err != nil {
			return err
		}
		if m, err = lcidentity.FromCluster(cmd.Context(), c.Clientset, o.Namespace); err != nil {
			return err
		}
	}
	r := lcidentity.Inspect(m, identity.Clock{Now: o.Now, Window: checks.DefaultMinCertValidity})
	if err := lcidentity.Write(io.Out, o.Output, r); err != nil {
		return err
	}
	if r.ExitCode() != lcidentity.ExitOK {
		return problems{}
	}
	return nil
}

// problems is an inspection that found errors: exit 1, no "Error:" line.
type problems struct{}

func (problems) Error() string { return "identity problems found" }
func (problems) ExitCode() int { return lcidentity.ExitProblems }
func (problems) Silent() bool  { return true }
