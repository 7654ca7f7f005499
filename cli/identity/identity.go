// Package identity is `mesh identity`: it creates the trust anchor and issuer a user
// brings to an install in external issuer mode (create), shows what an install or
// the cluster holds and trusts (inspect), and edits trust-anchor bundles for a
// rotation (rotate).
package identity

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/meshplane/mesh/cli/exitcode"
	"github.com/meshplane/mesh/cli/iostreams"
	"github.com/meshplane/mesh/render/identity"
	"github.com/meshplane/mesh/render/install"
)

// CreateOptions of `mesh identity create`.
type CreateOptions struct {
	Identity identity.CreateOptions
	OutDir   string
	Force    bool
}

// Files that `mesh identity create` writes, and their modes.
var files = []struct {
	name string
	mode fs.FileMode
}{{"ca.crt", 0o644}, {"ca.key", 0o600}, {"issuer.crt", 0o644}, {"issuer.key", 0o600}}

// NewCmd builds `mesh identity`.
func NewCmd(io *iostreams.IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "identity",
		Short: "Manage the identity trust anchor and issuer",
	}
	cmd.AddCommand(NewCmdCreate(io, nil, time.Now), NewCmdInspect(io, nil, time.Now), NewCmdRotate(io))
	return cmd
}

// NewCmdCreate builds `mesh identity create`. now is the clock; runF replaces the run
// function in tests.
func NewCmdCreate(io *iostreams.IOStreams, runF func(*CreateOptions) error, now func() time.Time) *cobra.Command {
	opts := &CreateOptions{Identity: identity.CreateOptions{TrustDomain: "cluster.local", Namespace: install.DefaultNamespace}}
	cmd := &cobra.Command{
		Use:   "create --out DIR",
		Short: "Create an ECDSA P-256 trust anchor and issuer for --identity-issuer external",
		Long: `Create a trust anchor (ca.crt, ca.key) and an issuer signed by it (issuer.crt,
issuer.key) in DIR, for 'mesh install --identity-trust-anchors-file DIR/ca.crt'.
Store issuer.crt and issuer.key as the issuer Secret with your secrets tool
(kubernetes.io/tls with ca.crt), and keep ca.key offline.`,
		Example: `  mesh identity create --out ./pki
  kubectl -n mesh-system create secret generic mesh-identity-issuer --type=kubernetes.io/tls \
    --from-file=tls.crt=pki/issuer.crt --from-file=tls.key=pki/issuer.key --from-file=ca.crt=pki/ca.crt`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.OutDir == "" {
				return exitcode.Usage(errors.New("--out is required"))
			}
			opts.Identity.Now = now()
			if runF != nil {
				return runF(opts)
			}
			return RunCreate(io, opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.OutDir, "out", "", "directory to write ca.crt, ca.key, issuer.crt and issuer.key into")
	f.StringVar(&opts.Identity.TrustDomain, "identity-trust-domain", opts.Identity.TrustDomain, "trust domain")
	f.StringVarP(&opts.Identity.Namespace, "namespace", "n", opts.Identity.Namespace, "namespace of the control plane (part of the issuer's name)")
	f.DurationVar(&opts.Identity.AnchorLifetime, "anchor-lifetime", 10*365*24*time.Hour, "lifetime of the trust anchor")
	f.DurationVar(&opts.Identity.IssuerLifetime, "issuer-lifetime", 365*24*time.Hour, "lifetime of the issuer")
	f.BoolVar(&opts.Force, "force", false, "overwrite existing files")
	return cmd
}

// RunCreate creates the files. It writes none unless it can write all.
func RunCreate(io *iostreams.IOStreams, o *CreateOptions) error {
	b, err := identity.Create(o.Identity)
	if err != nil {
		return err
	}
	data := map[string][]byte{"ca.crt": b.AnchorCert, "ca.key": b.AnchorKey, "issuer.crt": b.IssuerCert, "issuer.key": b.IssuerKey}
	if err := os.MkdirAll(o.OutDir, 0o755); err != nil {
		return err
	}
	if !o.Force {
		for _, f := range files {
			if _, err := os.Stat(filepath.Join(o.OutDir, f.name)); err == nil {
				return fmt.Errorf("%s already exists; pass --force to overwrite", filepath.Join(o.OutDir, f.name))
			}
		}
	}
	for _, f := range files {
		p := filepath.Join(o.OutDir, f.name)
		tmp := p + ".tmp"
		if err := os.WriteFile(tmp, data[f.name], f.mode); err != nil {
			return err
		}
		if err := os.Rename(tmp, p); err != nil {
			return err
		}
	}
	fmt.Fprintf(io.ErrOut, "Wrote trust anchor %s/ca.crt (key ca.key) and issuer %s/issuer.crt (key issuer.key).\nKeep ca.key offline. Install with: mesh install --identity-trust-anchors-file %s/ca.crt\n", o.OutDir, o.OutDir, o.OutDir)
	return nil
}
