package identity

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/meshplane/mesh/render/identity"
)

// Output formats.
const (
	FormatTable = "table"
	FormatJSON  = "json"
	FormatYAML  = "yaml"
)

// Write writes r in format (table, json or yaml): the same content in each.
func Write(w io.Writer, format string, r *Report) error {
	switch format {
	case FormatJSON:
		b, err := json.MarshalIndent(r, "", "  ")
		if err != nil {
			return err
		}
		_, err = w.Write(append(b, '\n'))
		return err
	case FormatYAML:
		b, err := yaml.Marshal(r)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	case FormatTable:
		return writeTable(w, r)
	}
	return fmt.Errorf("unknown output format %q (want %s, %s or %s)", format, FormatTable, FormatJSON, FormatYAML)
}

func writeTable(w io.Writer, r *Report) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	p := func(format string, a ...any) { fmt.Fprintf(tw, format, a...) }
	p("Inspected at %s; warning window %s.\n", r.Now.Format(time.RFC3339), r.WarningWindow)
	certs := func(title, source string, cs []identity.CertInfo) {
		p("\n%s: %s\n", title, source)
		p("  SUBJECT\tSERIAL\tSHA-256\tNOT BEFORE\tNOT AFTER\tLEFT\tKEY\tSTATUS\n")
		for _, c := range cs {
			p("  %s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.Subject, c.Serial, c.SHA256, c.NotBefore.Format(time.RFC3339),
				c.NotAfter.Format(time.RFC3339), c.TimeLeft, c.KeyType, c.Status)
		}
	}
	if r.Anchors != nil {
		certs("TRUST ANCHORS", r.Anchors.Source, r.Anchors.Certificates)
	}
	if r.Issuer != nil {
		certs("ISSUER", r.Issuer.Source, append([]identity.CertInfo{r.Issuer.Certificate}, r.Issuer.Intermediates...))
		if r.Issuer.ChainValid {
			p("  chains to: %s (sha256 %s)\n", r.Issuer.ChainsToSubject, r.Issuer.ChainsTo)
		} else {
			p("  chain invalid: %s\n", r.Issuer.ChainError)
		}
	}
	if r.IssuerAnchors != nil && r.Anchors != nil && sameInfos(r.IssuerAnchors.Certificates, r.Anchors.Certificates) {
		p("\nISSUER SECRET ANCHORS (published to meshed namespaces): %s\n  the same %d trust anchors\n", r.IssuerAnchors.Source, len(r.IssuerAnchors.Certificates))
	} else if r.IssuerAnchors != nil {
		certs("ISSUER SECRET ANCHORS (published to meshed namespaces)", r.IssuerAnchors.Source, r.IssuerAnchors.Certificates)
	}
	if len(r.Published) > 0 {
		p("\nPUBLISHED TRUST ROOTS (what proxies trust)\n")
		p("  NAMESPACES\tANCHORS (SHA-256)\tTRUSTS ISSUER\tMATCHES ISSUER ANCHORS\n")
		for _, b := range r.Published {
			short := make([]string, len(b.Fingerprints))
			for i, f := range b.Fingerprints {
				short[i] = f[:16]
			}
			p("  %s\t%s\t%s\t%s\n", strings.Join(b.Namespaces, ","), strings.Join(short, ","), yesNo(b.TrustsIssuer), yesNo(b.MatchesIssuerAnchors))
		}
	}
	list := func(title string, items []string) {
		if len(items) == 0 {
			return
		}
		p("\n%s\n", title)
		for _, s := range items {
			p("  - %s\n", s)
		}
	}
	list("WARNINGS", r.Warnings)
	list("ERRORS", r.Errors)
	if len(r.Errors) == 0 {
		p("\nOK: the issuer chains to a trust anchor and nothing has expired.\n")
	}
	return tw.Flush()
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func sameInfos(a, b []identity.CertInfo) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].SHA256 != b[i].SHA256 {
			return false
		}
	}
	return true
}
