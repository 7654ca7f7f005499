// Package version is `mesh version`, and the CLI's version (set at build time in
// controlplane/api/version, which mesh-controller and mesh-proxy report too). With
// access to a cluster it also shows the control plane's version and every meshed
// workload's proxy versions (lifecycle/versions).
package version

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/meshplane/mesh/cli/exitcode"
	"github.com/meshplane/mesh/cli/iostreams"
	"github.com/meshplane/mesh/cli/kube"
	shared "github.com/meshplane/mesh/controlplane/api/version"
	"github.com/meshplane/mesh/lifecycle/versions"
	"github.com/meshplane/mesh/render/install"
)

// Version is the CLI's version.
func Version() string { return shared.Version() }

// Info is what `mesh version` reports of the client.
type Info = shared.Info

// Options of `mesh version`.
type Options struct {
	Output string
	Info   Info
	// Client prints the client's version alone, without reaching a cluster.
	Client bool
	// Namespace is the control plane's; the pods are read in all namespaces.
	Namespace string
	Kube      kube.Flags
}

const long = `Print the CLI's version and, from the cluster of the kubeconfig, the control plane's
version and the proxy versions of every meshed workload (NAMESPACE, KIND, NAME, one
row per proxy version with its pod count), from one list of the pods. A pod's workload
is its controller; a ReplicaSet named <deployment>-<pod-template-hash> is shown as its
Deployment.

--client prints the client's version alone. When the cluster cannot be reached the
client's version is printed, then the error on stderr, and the exit code is not 0
(as kubectl version): 2 for a kubeconfig that cannot be loaded, 3 for a cluster that
does not answer or refuses the credentials.`

// NewCmd builds `mesh version`. runF replaces the run function in tests.
func NewCmd(io *iostreams.IOStreams, runF func(*Options) error) *cobra.Command {
	opts := &Options{Info: shared.Current("client"), Namespace: install.DefaultNamespace}
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the CLI's, the control plane's and the proxies' versions",
		Long:  long,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := shared.CheckOutput(opts.Output); err != nil {
				return exitcode.Usage(err)
			}
			if runF != nil {
				return runF(opts)
			}
			return Run(cmd, io, opts)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&opts.Output, "output", "o", "", "output format: json, yaml or short")
	f.BoolVar(&opts.Client, "client", false, "the client's version only; do not contact the cluster")
	f.StringVarP(&opts.Namespace, "namespace", "n", opts.Namespace, "namespace of the control plane")
	opts.Kube.Bind(f)
	return cmd
}

// Run prints the client's version, then, unless --client, reads the cluster and
// prints the whole view instead. A cluster that cannot be reached leaves the client's
// version printed and returns the error.
func Run(cmd *cobra.Command, io *iostreams.IOStreams, o *Options) error {
	if o.Client {
		return shared.Write(io.Out, o.Info, o.Output)
	}
	c, err := o.Kube.Connect(cmd.Context())
	if err == nil {
		var r *versions.Report
		if r, err = versions.Read(cmd.Context(), c.Clientset, c.Config.Host, versions.Options{Namespace: o.Namespace}); err == nil {
			return versions.Write(io.Out, versions.View{ClientVersion: o.Info.Version, GoVersion: o.Info.GoVersion, Platform: o.Info.Platform, Report: *r}, o.Output)
		}
	}
	if werr := shared.Write(io.Out, o.Info, o.Output); werr != nil {
		return werr
	}
	return fmt.Errorf("the cluster's versions: %w", err)
}
