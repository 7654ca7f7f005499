package identity

import (
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/meshplane/mesh/cli/exitcode"
	"github.com/meshplane/mesh/cli/iostreams"
	"github.com/meshplane/mesh/render/identity"
)

// RotateBundleOptions of `mesh identity rotate bundle`.
type RotateBundleOptions struct {
	From       string   // --from: the current bundle
	Add        []string // --add: PEM files of anchors to add
	Remove     []string // --remove: PEM files or SHA-256 fingerprints of anchors to remove
	IssuerCert string   // --issuer-cert: the result must trust this issuer
}

// NewCmdRotate builds `mesh identity rotate`, the helpers of the rotation procedure
// of docs/identity.md.
func NewCmdRotate(io *iostreams.IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rotate",
		Short: "Helpers for rotating the trust anchor (see docs/identity.md)",
		Long: `Helpers for the trust-anchor rotation, a GitOps procedure of four commits
(docs/identity.md): create the new anchor and issuer (mesh identity create), trust
both anchors (rotate bundle --add), roll the issuer and the proxies, trust only the
new anchor (rotate bundle --remove). Each step is a file edit, verified by mesh check.`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(NewCmdRotateBundle(io, nil))
	return cmd
}

// NewCmdRotateBundle builds `mesh identity rotate bundle`. runF replaces the run
// function in tests.
func NewCmdRotateBundle(io *iostreams.IOStreams, runF func(*RotateBundleOptions) error) *cobra.Command {
	opts := &RotateBundleOptions{}
	cmd := &cobra.Command{
		Use:   "bundle [--from BUNDLE] [--add FILE]... [--remove FILE|SHA256]... [--issuer-cert FILE]",
		Short: "Print a trust-anchor bundle with anchors added or removed",
		Long: `Print the PEM bundle of --from with the anchors of each --add appended (those it
holds already are left, with a note on stderr) and each --remove taken out (a PEM
file, or an anchor's SHA-256 fingerprint as mesh identity inspect shows it). With
--issuer-cert the result must hold the anchor that issuer chains to: the guard
against removing the anchor in use before the issuer is rolled.

The bundle goes to stdout; write it to a new file, then move it over the old one.

Exit codes:
  0  the bundle is printed
  1  refused: an anchor to remove is not in the bundle, the result would be empty
     or would not trust --issuer-cert, a certificate is not a CA or does not parse
  2  bad usage: no --add or --remove, a file that cannot be read`,
		Example: `  mesh identity rotate bundle --from identity/ca.crt --add pki-next/ca.crt > bundle.tmp && mv bundle.tmp identity/ca.crt
  mesh identity rotate bundle --from identity/ca.crt --remove pki-old/ca.crt --issuer-cert pki-next/issuer.crt > bundle.tmp`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if len(opts.Add) == 0 && len(opts.Remove) == 0 {
				return exitcode.Usage(errors.New("nothing to do: pass --add FILE or --remove FILE|SHA256"))
			}
			if opts.From == "" && len(opts.Remove) > 0 {
				return exitcode.Usage(errors.New("--remove needs the bundle to remove from: pass --from"))
			}
			if runF != nil {
				return runF(opts)
			}
			return RunRotateBundle(io, opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.From, "from", "", "the current bundle (PEM)")
	f.StringArrayVar(&opts.Add, "add", nil, "PEM file of anchors to add; repeatable")
	f.StringArrayVar(&opts.Remove, "remove", nil, "PEM file, or SHA-256 fingerprint, of an anchor to remove; repeatable")
	f.StringVar(&opts.IssuerCert, "issuer-cert", "", "PEM issuer certificate the result must trust")
	return cmd
}

// RunRotateBundle reads the files, edits the bundle and prints it.
func RunRotateBundle(io *iostreams.IOStreams, o *RotateBundleOptions) error {
	read := func(flag, path string) (*identity.PEMFile, error) {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, exitcode.Usage(fmt.Errorf("%s: %w", flag, err))
		}
		return &identity.PEMFile{Source: path, Data: b}, nil
	}
	var e identity.BundleEdit
	var err error
	if o.From != "" {
		if e.From, err = read("--from", o.From); err != nil {
			return err
		}
	}
	for _, p := range o.Add {
		f, err := read("--add", p)
		if err != nil {
			return err
		}
		e.Add = append(e.Add, *f)
	}
	for _, r := range o.Remove {
		fps, err := fingerprints(r)
		if err != nil {
			return err
		}
		e.Remove = append(e.Remove, fps...)
	}
	if o.IssuerCert != "" {
		if e.Issuer, err = read("--issuer-cert", o.IssuerCert); err != nil {
			return err
		}
	}
	out, notes, err := identity.EditBundle(e)
	if err != nil {
		return err
	}
	for _, n := range notes {
		fmt.Fprintf(io.ErrOut, "Note: %s\n", n)
	}
	_, err = io.Out.Write(out)
	return err
}

// fingerprints of --remove's value: the anchors of a PEM file, or a fingerprint.
func fingerprints(v string) ([]string, error) {
	if b, err := os.ReadFile(v); err == nil {
		certs, err := identity.ParseCertificates("--remove "+v, b)
		if err != nil {
			return nil, err
		}
		var out []string
		for _, c := range certs {
			out = append(out, identity.Fingerprint(c))
		}
		return out, nil
	}
	h := strings.ReplaceAll(v, ":", "")
	if b, err := hex.DecodeString(h); err == nil && len(b) == 32 {
		return []string{h}, nil
	}
	return nil, exitcode.Usage(fmt.Errorf("--remove %s: neither a readable PEM file nor a SHA-256 fingerprint (64 hex digits)", v))
}
