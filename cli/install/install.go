// Package install is `mesh install`: it renders the CRDs and the control plane to
// stdout (YAML or a JSON List) or into a kustomize-ready directory.
package install

import (
	"bytes"
	"encoding/json"
	"fmt"

	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/meshplane/mesh/checks"
	"github.com/meshplane/mesh/cli/exitcode"
	"github.com/meshplane/mesh/cli/iostreams"
	"github.com/meshplane/mesh/cli/version"
	"github.com/meshplane/mesh/render/identity"
	"github.com/meshplane/mesh/render/install"
	"github.com/meshplane/mesh/render/manifest"
	"github.com/meshplane/mesh/render/values"
)

// Options of `mesh install`: the render options, which the flags bind onto, and how
// to write the result.
type Options struct {
	Render      install.Options
	Output      string // yaml or json
	OutputDir   string
	PrintValues bool
	// IncludePrivateKey: --print-values prints the issuer's private key too.
	IncludePrivateKey bool
	// Now is the clock's time when the command ran: trust anchors and an issuer that
	// end within checks.DefaultMinCertValidity of it are warned about. Zero: no
	// expiry warnings.
	Now time.Time
}

// NewCmd builds `mesh install` and its `crds` and `control-plane` subcommands. now is
// the clock; runF replaces the run function in tests.
func NewCmd(io *iostreams.IOStreams, runF func(*Options) error, now func() time.Time) *cobra.Command {
	opts := &Options{Render: install.Options{Version: version.Version(), Namespace: install.DefaultNamespace}, Output: "yaml"}
	run := func(part install.Part) func(*cobra.Command, []string) error {
		return func(cmd *cobra.Command, args []string) error {
			opts.Render.Part = part
			if !cmd.Flags().Changed("namespace") {
				opts.Render.Namespace = "" // the one the values record, else mesh-system
			}
			if err := opts.validate(); err != nil {
				return exitcode.Usage(err)
			}
			opts.Now = now()
			if runF != nil {
				return runF(opts)
			}
			return Run(io, opts)
		}
	}
	cmd := &cobra.Command{
		Use:   "install",
		Short: "Render the mesh CRDs and control plane as Kubernetes manifests",
		Long: `Render the mesh CRDs and control plane as Kubernetes manifests on stdout, for
kubectl apply or for committing to Git (Argo CD, Flux). The output depends only on
this CLI's version, the flags and the files they name: the same input gives the
same bytes. No private key is rendered unless you pass one in.

Use 'mesh install crds' and 'mesh install control-plane' to render the two halves
separately, for GitOps setups that sync the CRDs first.

Each half is an ApplySet (KEP-3659): its objects are labelled
applyset.kubernetes.io/part-of, and a parent ConfigMap lists the set, so that
'mesh prune' deletes what a later render drops (see 'mesh prune --help').`,
		Example: `  mesh install > mesh.yaml
  mesh install --ha --set proxy.logLevel=debug | kubectl apply -f -
  mesh install --identity-trust-anchors-file ca.crt --output-dir deploy/mesh`,
		Args: cobra.NoArgs,
		RunE: run(install.All),
	}
	crds := &cobra.Command{
		Use:   "crds",
		Short: "Render only the CustomResourceDefinitions",
		Args:  cobra.NoArgs,
		RunE:  run(install.CRDs),
	}
	cp := &cobra.Command{
		Use:   "control-plane",
		Short: "Render only the control plane (install the CRDs first)",
		Args:  cobra.NoArgs,
		RunE:  run(install.ControlPlane),
	}
	cmd.AddCommand(crds, cp)

	f := cmd.PersistentFlags()
	BindRenderFlags(f, &opts.Render)
	f.StringVarP(&opts.Output, "output", "o", opts.Output, "output format: yaml or json (a v1 List)")
	f.StringVar(&opts.OutputDir, "output-dir", "", "write one file per object and a kustomization.yaml into this directory instead of stdout")
	f.BoolVar(&opts.PrintValues, "print-values", false, "print the effective control-plane values (with the namespace) instead of the manifests; never the issuer's private key unless --include-private-key")
	f.BoolVar(&opts.IncludePrivateKey, "include-private-key", false, "with --print-values: print the issuer's private key (identity.issuer.tls.keyPEM) too")
	return cmd
}

// BindRenderFlags binds the render flags of `mesh install` (-n, --ha, -f/--values,
// --set*, images, identity) onto o, for every command that renders an install (mesh
// diff install too): one definition of each flag.
func BindRenderFlags(f *pflag.FlagSet, o *install.Options) {
	f.StringVarP(&o.Namespace, "namespace", "n", o.Namespace, "namespace of the control plane")
	f.BoolVar(&o.HA, "ha", false, "high availability: 3 replicas, anti-affinity, PodDisruptionBudgets, webhook failurePolicy Fail")
	f.BoolVar(&o.ArgoCDSyncWaves, "argocd-sync-waves", false, "annotate every object with its Argo CD sync wave: CRDs, configuration, workloads, then webhooks (docs/gitops.md)")
	f.StringArrayVarP(&o.Values.ValueFiles, "values", "f", nil, "values file (YAML), or - for stdin; repeatable, later wins")
	f.StringArrayVar(&o.Values.Values, "set", nil, "set values (a.b=c,d=e); repeatable")
	f.StringArrayVar(&o.Values.StringValues, "set-string", nil, "set string values (a.b=c); repeatable")
	f.StringArrayVar(&o.Values.FileValues, "set-file", nil, "set values from files (a.b=path); repeatable")
	f.StringVar(&o.Registry, "registry", "", "registry of the controller and proxy images (image.registry)")
	f.StringVar(&o.ImageTag, "image-tag", "", "tag of the controller and proxy images (image.tag; default: this CLI's version)")
	f.StringVar(&o.TrustDomain, "identity-trust-domain", "", "trust domain of workload identities (identity.trustDomain; default cluster.local)")
	f.StringVar(&o.IssuerMode, "identity-issuer", "", "issuer mode: bootstrap (default), external or cert-manager")
	f.StringVar(&o.TrustAnchorsFile, "identity-trust-anchors-file", "", "PEM trust anchors (public); implies --identity-issuer external")
	f.StringVar(&o.IssuerCertFile, "identity-issuer-certificate-file", "", "PEM issuer certificate, checked against the trust anchors")
	f.StringVar(&o.IssuerKeyFile, "identity-issuer-key-file", "", "PEM issuer key: renders the issuer Secret WITH this private key")
}

// ValidateRender checks the render options the flags cannot check themselves.
func ValidateRender(o install.Options) error {
	switch o.IssuerMode {
	case "", install.IssuerBootstrap, install.IssuerExternal, install.IssuerCertManager:
	default:
		return fmt.Errorf("--identity-issuer must be %s, %s or %s, not %q", install.IssuerBootstrap, install.IssuerExternal, install.IssuerCertManager, o.IssuerMode)
	}
	return nil
}

func (o *Options) validate() error {
	if o.Output != "yaml" && o.Output != "json" {
		return fmt.Errorf("--output must be yaml or json, not %q", o.Output)
	}
	if o.OutputDir != "" && o.Output == "json" {
		return fmt.Errorf("--output-dir writes YAML files; it does not take --output json")
	}
	if o.OutputDir != "" && o.PrintValues {
		return fmt.Errorf("--print-values writes to stdout; it does not take --output-dir")
	}
	if o.IncludePrivateKey && !o.PrintValues {
		return fmt.Errorf("--include-private-key goes with --print-values")
	}
	if o.PrintValues && o.Render.Part == install.CRDs {
		return fmt.Errorf("--print-values prints the control plane's values; mesh install crds has none")
	}
	return ValidateRender(o.Render)
}

// Run renders and writes. Nothing reaches stdout or the directory unless the whole
// render succeeded.
func Run(io *iostreams.IOStreams, o *Options) error {
	if o.PrintValues {
		v, err := install.EffectiveValues(o.Render, io)
		if err != nil {
			return err
		}
		warnExpiry(io, o, v)
		if !o.IncludePrivateKey {
			var had bool
			if v, had = install.WithoutPrivateKey(v); had {
				fmt.Fprintf(io.ErrOut, "Note: %s (the issuer's private key) is left out; pass --include-private-key to print it\n", install.PrivateKeyPath)
			}
		}
		var b []byte
		if o.Output == "json" {
			if b, err = json.MarshalIndent(v, "", "  "); err == nil {
				b = append(b, '\n')
			}
		} else {
			b, err = values.YAML(v)
		}
		if err != nil {
			return err
		}
		_, err = io.Out.Write(b)
		return err
	}
	res, err := install.Render(o.Render, io)
	if err != nil {
		return err
	}
	for _, w := range res.Warnings {
		fmt.Fprintf(io.ErrOut, "Warning: %s\n", w)
	}
	warnExpiry(io, o, res.Values)
	if o.OutputDir != "" {
		if err := manifest.WriteDir(o.OutputDir, res.Objects); err != nil {
			return err
		}
		fmt.Fprintf(io.ErrOut, "Wrote %d objects and kustomization.yaml to %s\n", len(res.Objects), o.OutputDir)
		return nil
	}
	var buf bytes.Buffer
	if o.Output == "json" {
		err = manifest.WriteJSONList(&buf, res.Objects)
	} else {
		err = manifest.WriteYAML(&buf, res.Objects)
	}
	if err != nil {
		return err
	}
	_, err = io.Out.Write(buf.Bytes())
	return err
}

// warnExpiry warns on stderr about anchors and an issuer that end within mesh check's
// window (checks.DefaultMinCertValidity): the output and the exit code stay as they are.
func warnExpiry(io *iostreams.IOStreams, o *Options, v map[string]any) {
	if o.Now.IsZero() || v == nil {
		return
	}
	for _, w := range install.ExpiryWarnings(v, identity.Clock{Now: o.Now, Window: checks.DefaultMinCertValidity}) {
		fmt.Fprintf(io.ErrOut, "Warning: %s (mesh check fails within this window; rotate: docs/identity.md)\n", w)
	}
}
