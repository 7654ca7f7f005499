package identity

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
)

// Certificate statuses, from a clock and a warning window.
const (
	StatusValid    = "valid"
	StatusExpiring = "expiring" // valid, but ends within the window
	StatusExpired  = "expired"
	StatusNotYet   = "not-yet-valid"
)

// CertInfo describes one certificate for `mesh identity inspect`.
type CertInfo struct {
	Subject   string    `json:"subject"`
	Issuer    string    `json:"issuer"`
	Serial    string    `json:"serial"` // hex
	SHA256    string    `json:"sha256"` // fingerprint of the DER, hex
	NotBefore time.Time `json:"notBefore"`
	NotAfter  time.Time `json:"notAfter"`
	TimeLeft  string    `json:"timeLeft"` // until NotAfter, "0s" once expired
	KeyType   string    `json:"keyType"`
	IsCA      bool      `json:"isCA"`
	Status    string    `json:"status"`
}

// Clock is the moment certificates are judged at and the warning window: a
// certificate that ends within Window of Now is expiring.
type Clock struct {
	Now    time.Time
	Window time.Duration
}

// Describe describes c at the clock.
func Describe(c *x509.Certificate, clk Clock) CertInfo {
	sum := sha256.Sum256(c.Raw)
	left := c.NotAfter.Sub(clk.Now)
	if left < 0 {
		left = 0
	}
	return CertInfo{
		Subject:   c.Subject.String(),
		Issuer:    c.Issuer.String(),
		Serial:    c.SerialNumber.Text(16),
		SHA256:    hex.EncodeToString(sum[:]),
		NotBefore: c.NotBefore.UTC(),
		NotAfter:  c.NotAfter.UTC(),
		TimeLeft:  HumanDuration(left),
		KeyType:   KeyType(c.PublicKey),
		IsCA:      c.BasicConstraintsValid && c.IsCA,
		Status:    status(c, clk),
	}
}

func status(c *x509.Certificate, clk Clock) string {
	switch {
	case clk.Now.Before(c.NotBefore):
		return StatusNotYet
	case !clk.Now.Before(c.NotAfter):
		return StatusExpired
	case c.NotAfter.Sub(clk.Now) < clk.Window:
		return StatusExpiring
	}
	return StatusValid
}

// Fingerprint is the SHA-256 of c's DER, hex.
func Fingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return hex.EncodeToString(sum[:])
}

// KeyType names a public key: "ECDSA P-256", "RSA 2048", "Ed25519".
func KeyType(pub any) string {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		return "ECDSA " + k.Curve.Params().Name
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA %d", k.N.BitLen())
	case ed25519.PublicKey:
		return "Ed25519"
	}
	return fmt.Sprintf("%T", pub)
}

// HumanDuration is d in days and hours ("364d 23h"), hours and minutes under a day,
// minutes and seconds under an hour.
func HumanDuration(d time.Duration) string {
	d = d.Truncate(time.Second)
	switch {
	case d >= 24*time.Hour:
		return fmt.Sprintf("%dd %dh", d/(24*time.Hour), d%(24*time.Hour)/time.Hour)
	case d >= time.Hour:
		return fmt.Sprintf("%dh %dm", d/time.Hour, d%time.Hour/time.Minute)
	}
	return d.String()
}

// ExpiryWarnings are the problems of certs at the clock, one line each: expired, not
// yet valid, or ending within the window. what names them ("trust anchor", "issuer").
func ExpiryWarnings(what string, certs []*x509.Certificate, clk Clock) []string {
	var out []string
	for _, c := range certs {
		end := c.NotAfter.UTC().Format(time.RFC3339)
		switch status(c, clk) {
		case StatusNotYet:
			out = append(out, fmt.Sprintf("%s %s is not valid before %s", what, c.Subject, c.NotBefore.UTC().Format(time.RFC3339)))
		case StatusExpired:
			out = append(out, fmt.Sprintf("%s %s expired on %s", what, c.Subject, end))
		case StatusExpiring:
			out = append(out, fmt.Sprintf("%s %s expires on %s, in %s, within the %s warning window", what, c.Subject, end,
				HumanDuration(c.NotAfter.Sub(clk.Now)), HumanDuration(clk.Window)))
		}
	}
	return out
}

// ChainsTo returns the anchor that chain (the issuer first, then intermediates)
// chains to, checked as CheckIssuer does (signatures, no clock), or the reason it
// chains to none.
func ChainsTo(anchors, chain []*x509.Certificate) (*x509.Certificate, error) {
	if err := CheckIssuer(anchors, chain); err != nil {
		return nil, err
	}
	cur := chain[0]
	for depth := 0; depth <= len(chain); depth++ {
		for _, a := range anchors {
			if cur.Equal(a) || cur.CheckSignatureFrom(a) == nil {
				return a, nil
			}
		}
		if cur = signerOf(cur, chain[1:]); cur == nil {
			break
		}
	}
	return nil, fmt.Errorf("issuer certificate %s is not signed by any trust anchor", chain[0].Subject)
}

// SameCertificates tells whether a and b hold the same certificates, in any order.
func SameCertificates(a, b []*x509.Certificate) bool {
	if len(a) != len(b) {
		return false
	}
	fa, fb := fingerprints(a), fingerprints(b)
	for f := range fa {
		if !fb[f] {
			return false
		}
	}
	return len(fa) == len(fb)
}

// Contains tells whether certs holds c.
func Contains(certs []*x509.Certificate, c *x509.Certificate) bool {
	for _, x := range certs {
		if x.Equal(c) {
			return true
		}
	}
	return false
}

func fingerprints(certs []*x509.Certificate) map[string]bool {
	m := map[string]bool{}
	for _, c := range certs {
		m[Fingerprint(c)] = true
	}
	return m
}

// ShortName is a certificate's subject and the start of its fingerprint, for
// messages: "CN=root.cluster.local (sha256 1a2b3c4d)".
func ShortName(c *x509.Certificate) string {
	return fmt.Sprintf("%s (sha256 %s)", c.Subject, strings.ToLower(Fingerprint(c)[:8]))
}
