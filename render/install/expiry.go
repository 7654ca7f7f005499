package install

import (
	"github.com/meshplane/mesh/render/identity"
	"github.com/meshplane/mesh/render/values"
)

// ExpiryWarnings are the warnings `mesh install` gives about the trust anchors
// (identity.trustAnchorsPEM) and issuer certificate (identity.issuer.tls.crtPEM) of
// effective values v: expired, not yet valid, or ending within the clock's window.
// The render itself has no clock; the caller brings one. Certificates that do not
// parse give no warning here (the render refuses them).
func ExpiryWarnings(v map[string]any, clk identity.Clock) []string {
	var out []string
	for _, x := range []struct{ path, what string }{
		{"identity.trustAnchorsPEM", "trust anchor"},
		{"identity.issuer.tls.crtPEM", "issuer"},
	} {
		s, _ := values.Lookup(v, x.path)
		pem, _ := s.(string)
		if pem == "" {
			continue
		}
		certs, err := identity.ParseCertificates(x.path, []byte(pem))
		if err != nil {
			continue
		}
		if x.what == "issuer" {
			certs = certs[:1] // the issuer, not its intermediates
		}
		for _, w := range identity.ExpiryWarnings(x.what, certs, clk) {
			out = append(out, x.path+": "+w)
		}
	}
	return out
}
