package install

import (
	"strings"
	"testing"
	"time"

	"github.com/meshplane/mesh/cli/iostreams"
	"github.com/meshplane/mesh/render/install"
)

// Anchors or an issuer ending within mesh check's window are warned about on stderr;
// stdout and the result are those of a run without a clock.
func TestExpiryWarnings(t *testing.T) {
	t.Parallel()
	const pki = "../../lifecycle/identity/testdata/pki/"
	june := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	november := time.Date(2026, 11, 15, 0, 0, 0, 0, time.UTC) // old anchor: 46 days left; old issuer: expired
	tests := []struct {
		name   string
		now    time.Time
		render install.Options
		print  bool
		want   []string // stderr lines, in order
	}{
		{"valid", june, install.Options{TrustAnchorsFile: pki + "old/ca.crt", IssuerCertFile: pki + "old/issuer.crt"}, false, nil},
		{"expiring anchor, expired issuer", november, install.Options{TrustAnchorsFile: pki + "old/ca.crt", IssuerCertFile: pki + "old/issuer.crt"}, false, []string{
			"Warning: identity.trustAnchorsPEM: trust anchor CN=root.cluster.local expires on 2026-12-31T23:55:00Z, in 46d 23h, within the 60d 0h warning window (mesh check fails within this window; rotate: docs/identity.md)",
			"Warning: identity.issuer.tls.crtPEM: issuer CN=identity.mesh-system.cluster.local expired on 2026-10-27T23:55:00Z (mesh check fails within this window; rotate: docs/identity.md)",
		}},
		{"the new anchor is fine", november, install.Options{TrustAnchorsFile: pki + "new/ca.crt"}, false, nil},
		{"print-values warns too", november, install.Options{TrustAnchorsFile: pki + "old/ca.crt"}, true, []string{"Warning: identity.trustAnchorsPEM: trust anchor CN=root.cluster.local expires on"}},
		{"no clock, no warning", time.Time{}, install.Options{TrustAnchorsFile: pki + "old/ca.crt"}, false, nil},
		{"bootstrap: nothing to check", november, install.Options{}, false, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			run := func(now time.Time) (string, string) {
				io, _, out, errOut := iostreams.Test()
				tc.render.Version = "v9.9.9"
				if err := Run(io, &Options{Render: tc.render, Output: "yaml", PrintValues: tc.print, Now: now}); err != nil {
					t.Fatal(err)
				}
				return out.String(), errOut.String()
			}
			out, errOut := run(tc.now)
			plain, _ := run(time.Time{})
			if out != plain {
				t.Error("stdout changed with the clock")
			}
			var lines []string
			for _, l := range strings.Split(strings.TrimSpace(errOut), "\n") {
				if strings.Contains(l, "expire") || strings.Contains(l, "not valid before") {
					lines = append(lines, l)
				}
			}
			if len(lines) != len(tc.want) {
				t.Fatalf("stderr %q, want %d expiry lines", errOut, len(tc.want))
			}
			for i, w := range tc.want {
				if !strings.HasPrefix(lines[i], w) {
					t.Errorf("line %d %q, want %q", i, lines[i], w)
				}
			}
		})
	}
}
