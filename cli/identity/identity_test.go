package identity

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meshplane/mesh/cli/iostreams"
)

var clock = func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }

func TestNewCmdCreateOptions(t *testing.T) {
	io, _, _, _ := iostreams.Test()
	var got *CreateOptions
	cmd := NewCmdCreate(io, func(o *CreateOptions) error { got = o; return nil }, clock)
	cmd.SetArgs([]string{"--out", "pki", "--identity-trust-domain", "example.org", "-n", "mesh", "--issuer-lifetime", "720h", "--force"})
	cmd.SilenceErrors, cmd.SilenceUsage = true, true
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if got.OutDir != "pki" || !got.Force || got.Identity.TrustDomain != "example.org" || got.Identity.Namespace != "mesh" ||
		got.Identity.IssuerLifetime != 720*time.Hour || got.Identity.AnchorLifetime != 87600*time.Hour || !got.Identity.Now.Equal(clock()) {
		t.Errorf("options %+v", got)
	}
}

func TestRunCreate(t *testing.T) {
	io, _, out, errOut := iostreams.Test()
	dir := filepath.Join(t.TempDir(), "pki")
	cmd := NewCmdCreate(io, nil, clock)
	cmd.SetArgs([]string{"--out", dir})
	cmd.SilenceErrors, cmd.SilenceUsage = true, true
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if out.Len() != 0 || !strings.Contains(errOut.String(), "--identity-trust-anchors-file") {
		t.Errorf("stdout %q stderr %q", out, errOut)
	}
	for name, mode := range map[string]os.FileMode{"ca.crt": 0o644, "ca.key": 0o600, "issuer.crt": 0o644, "issuer.key": 0o600} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != mode {
			t.Errorf("%s mode %v, want %v", name, st.Mode().Perm(), mode)
		}
	}
	b, _ := os.ReadFile(filepath.Join(dir, "issuer.crt"))
	blk, _ := pem.Decode(b)
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject.CommonName != "identity.mesh-system.cluster.local" || !c.NotAfter.Equal(clock().Add(-5*time.Minute).Add(365*24*time.Hour)) {
		t.Errorf("issuer %s until %s", c.Subject.CommonName, c.NotAfter)
	}

	// A second run refuses to overwrite, and leaves the files as they were.
	before, _ := os.ReadFile(filepath.Join(dir, "ca.key"))
	cmd = NewCmdCreate(io, nil, clock)
	cmd.SetArgs([]string{"--out", dir})
	cmd.SilenceErrors, cmd.SilenceUsage = true, true
	if err := cmd.Execute(); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("overwrite: %v", err)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, "ca.key")); string(after) != string(before) {
		t.Error("ca.key changed")
	}
}
