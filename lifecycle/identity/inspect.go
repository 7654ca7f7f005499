// Package identity is `mesh identity inspect`: it gathers the trust anchors, the
// issuer and the trust roots published to proxies, from the live cluster or from
// manifests and files, and describes them: each certificate, which anchor the issuer
// chains to, whether what proxies are given trusts the issuer, and what expires within
// the warning window of `mesh check`.
package identity

import (
	"crypto/x509"
	"fmt"
	"strings"
	"time"

	"github.com/meshplane/mesh/render/identity"
)

// Exit codes of `mesh identity inspect` (docs/identity.md).
const (
	ExitOK       = 0 // everything chains and is valid (warnings allowed)
	ExitProblems = 1 // a chain is invalid, a certificate expired or is not valid yet, or proxies do not trust the issuer
	ExitInput    = 2 // bad flags or input: nothing to inspect, an unreadable file
	ExitCluster  = 3 // the cluster is unreachable or refused the credentials
)

// PEM is PEM data and where it came from ("Secret/mesh-system/mesh-identity-issuer
// tls.crt", a file name).
type PEM struct {
	Source string
	Data   []byte
}

// Published is one trust-roots ConfigMap, as proxies of its namespace mount it.
type Published struct {
	Namespace string
	PEM
}

// Material is what an inspection looks at. Any part may be missing.
type Material struct {
	// Anchors are the install's trust anchors: the control plane's trust-roots
	// ConfigMap, the values' identity.trustAnchorsPEM, or a file.
	Anchors *PEM
	// Issuer is the issuer's chain: the issuer Secret's tls.crt, the values'
	// identity.issuer.tls.crtPEM, or a file.
	Issuer *PEM
	// IssuerAnchors are the issuer Secret's ca.crt: the anchors the identity
	// controller loads with the issuer and publishes to the meshed namespaces.
	IssuerAnchors *PEM
	// Published are the trust-roots ConfigMaps proxies mount.
	Published []Published
	// Notes are said as warnings (a ConfigMap list that was refused, say).
	Notes []string
}

// Report is an inspection. Table, JSON and YAML show the same fields.
type Report struct {
	Now           time.Time         `json:"now"`
	WarningWindow string            `json:"warningWindow"`
	Anchors       *Bundle           `json:"anchors,omitempty"`
	Issuer        *Issuer           `json:"issuer,omitempty"`
	IssuerAnchors *Bundle           `json:"issuerAnchors,omitempty"`
	Published     []PublishedBundle `json:"published,omitempty"`
	Warnings      []string          `json:"warnings"`
	Errors        []string          `json:"errors"`
}

// Bundle is a set of trust anchors.
type Bundle struct {
	Source       string              `json:"source"`
	Certificates []identity.CertInfo `json:"certificates"`
}

// Issuer is the issuer certificate, its intermediates, and the anchor it chains to.
type Issuer struct {
	Source        string              `json:"source"`
	Certificate   identity.CertInfo   `json:"certificate"`
	Intermediates []identity.CertInfo `json:"intermediates,omitempty"`
	// ChainsTo is the SHA-256 fingerprint of the anchor the chain ends in, "" if none.
	ChainsTo        string `json:"chainsTo,omitempty"`
	ChainsToSubject string `json:"chainsToSubject,omitempty"`
	ChainValid      bool   `json:"chainValid"`
	ChainError      string `json:"chainError,omitempty"`
}

// PublishedBundle is one distinct published bundle and the namespaces that have it.
type PublishedBundle struct {
	Namespaces   []string `json:"namespaces"`
	Sources      []string `json:"sources"`
	Fingerprints []string `json:"fingerprints"`
	// TrustsIssuer: the bundle holds the anchor the issuer chains to.
	TrustsIssuer bool `json:"trustsIssuer"`
	// MatchesIssuerAnchors: the bundle is the issuer Secret's ca.crt (what the
	// controller publishes); false while it has not caught up, or for a bundle the
	// install renders itself.
	MatchesIssuerAnchors bool `json:"matchesIssuerAnchors"`
}

// ExitCode is ExitProblems when the report has errors, else ExitOK.
func (r *Report) ExitCode() int {
	if len(r.Errors) > 0 {
		return ExitProblems
	}
	return ExitOK
}

// Inspect describes m at the clock. It never fails: what does not parse or chain is an
// error of the report.
func Inspect(m Material, clk identity.Clock) *Report {
	r := &Report{Now: clk.Now.UTC().Truncate(time.Second), WarningWindow: identity.HumanDuration(clk.Window), Warnings: []string{}, Errors: []string{}}
	r.Warnings = append(r.Warnings, m.Notes...)
	anchors := r.bundle(m.Anchors, clk, "trust anchor", func(b *Bundle) { r.Anchors = b })
	issuerAnchors := r.bundle(m.IssuerAnchors, clk, "trust anchor", func(b *Bundle) { r.IssuerAnchors = b })
	if m.Anchors == nil && m.IssuerAnchors != nil {
		// The issuer Secret's ca.crt is all there is (bootstrap mode): it is the bundle.
		anchors, r.Anchors, r.IssuerAnchors = issuerAnchors, r.IssuerAnchors, nil
		issuerAnchors = nil
	}
	if m.Anchors == nil && m.IssuerAnchors == nil {
		r.Errors = append(r.Errors, "no trust anchors found")
	}
	if anchors != nil && issuerAnchors != nil && !identity.SameCertificates(anchors, issuerAnchors) {
		r.Warnings = append(r.Warnings, fmt.Sprintf("%s and %s hold different anchors: proxies in the control plane's namespace and in the meshed namespaces trust different bundles", m.Anchors.Source, m.IssuerAnchors.Source))
	}

	var chainsTo *x509.Certificate
	if m.Issuer != nil {
		chainsTo = r.issuer(m, anchors, issuerAnchors, clk)
	}
	r.published(m, chainsTo, issuerAnchors, anchors)
	return r
}

// bundle parses and describes one set of anchors; nil if there is none or it does
// not parse (an error of the report).
func (r *Report) bundle(p *PEM, clk identity.Clock, what string, set func(*Bundle)) []*x509.Certificate {
	if p == nil {
		return nil
	}
	certs, err := identity.ParseCertificates(p.Source, p.Data)
	if err != nil {
		r.Errors = append(r.Errors, err.Error())
		return nil
	}
	b := &Bundle{Source: p.Source}
	for _, c := range certs {
		b.Certificates = append(b.Certificates, identity.Describe(c, clk))
	}
	set(b)
	if err := identity.CheckAnchors(p.Source, certs); err != nil {
		r.Errors = append(r.Errors, err.Error())
	}
	r.expiry(p.Source+": "+what, certs, clk)
	return certs
}

// expiry files expired and not-yet-valid certificates as errors, expiring ones as
// warnings.
func (r *Report) expiry(what string, certs []*x509.Certificate, clk identity.Clock) {
	for _, c := range certs {
		msgs := identity.ExpiryWarnings(what, []*x509.Certificate{c}, clk)
		if len(msgs) == 0 {
			continue
		}
		if identity.Describe(c, clk).Status == identity.StatusExpiring {
			r.Warnings = append(r.Warnings, msgs...)
		} else {
			r.Errors = append(r.Errors, msgs...)
		}
	}
}

func (r *Report) issuer(m Material, anchors, issuerAnchors []*x509.Certificate, clk identity.Clock) *x509.Certificate {
	chain, err := identity.ParseCertificates(m.Issuer.Source, m.Issuer.Data)
	if err != nil {
		r.Errors = append(r.Errors, err.Error())
		return nil
	}
	is := &Issuer{Source: m.Issuer.Source, Certificate: identity.Describe(chain[0], clk)}
	for _, c := range chain[1:] {
		is.Intermediates = append(is.Intermediates, identity.Describe(c, clk))
	}
	r.Issuer = is
	r.expiry(m.Issuer.Source+": issuer", chain[:1], clk)
	against := anchors
	if against == nil {
		against = issuerAnchors
	}
	if against == nil {
		is.ChainError = "no trust anchors to check the issuer against"
		r.Errors = append(r.Errors, m.Issuer.Source+": "+is.ChainError)
		return nil
	}
	a, err := identity.ChainsTo(against, chain)
	if err != nil {
		is.ChainError = err.Error()
		r.Errors = append(r.Errors, fmt.Sprintf("%s: %v", m.Issuer.Source, err))
		return nil
	}
	is.ChainValid, is.ChainsTo, is.ChainsToSubject = true, identity.Fingerprint(a), a.Subject.String()
	if issuerAnchors != nil && !identity.Contains(issuerAnchors, a) {
		r.Errors = append(r.Errors, fmt.Sprintf("%s does not hold %s, the anchor the issuer chains to: the identity controller refuses this issuer", m.IssuerAnchors.Source, identity.ShortName(a)))
	}
	return a
}

// published groups the trust-roots ConfigMaps by content, in the order they come, and
// says whether each trusts the issuer.
func (r *Report) published(m Material, chainsTo *x509.Certificate, issuerAnchors, anchors []*x509.Certificate) {
	byKey := map[string]*PublishedBundle{}
	var keys []string
	for _, p := range m.Published {
		certs, err := identity.ParseCertificates(p.Source, p.Data)
		if err != nil {
			r.Errors = append(r.Errors, err.Error())
			continue
		}
		var fps []string
		for _, c := range certs {
			fps = append(fps, identity.Fingerprint(c))
		}
		key := strings.Join(fps, ",")
		b, ok := byKey[key]
		if !ok {
			b = &PublishedBundle{Fingerprints: fps, TrustsIssuer: chainsTo != nil && identity.Contains(certs, chainsTo)}
			want := issuerAnchors
			if want == nil {
				want = anchors
			}
			b.MatchesIssuerAnchors = want != nil && identity.SameCertificates(certs, want)
			byKey[key] = b
			keys = append(keys, key)
		}
		b.Namespaces = append(b.Namespaces, p.Namespace)
		b.Sources = append(b.Sources, p.Source)
	}
	for _, k := range keys {
		b := byKey[k]
		r.Published = append(r.Published, *b)
		ns := strings.Join(b.Namespaces, ", ")
		if chainsTo != nil && !b.TrustsIssuer {
			r.Errors = append(r.Errors, fmt.Sprintf("the trust roots published in %s do not hold %s, the anchor the issuer chains to: proxies there refuse peers with new certificates", ns, identity.ShortName(chainsTo)))
		}
		if !b.MatchesIssuerAnchors {
			r.Warnings = append(r.Warnings, fmt.Sprintf("the trust roots published in %s differ from the issuer's anchors (the identity controller updates its ConfigMaps within a minute; a rendered one changes with the manifests)", ns))
		}
	}
}
