package identity

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"strings"
)

// PEMFile is PEM data and the name of where it came from, for errors.
type PEMFile struct {
	Source string
	Data   []byte
}

// BundleEdit is one step of a trust-anchor rotation: a bundle, anchors to add and
// anchors to remove, and optionally the issuer the result must still trust.
type BundleEdit struct {
	From   *PEMFile  // the current bundle; nil starts from nothing
	Add    []PEMFile // anchors to add (each may hold several)
	Remove []string  // SHA-256 fingerprints (hex, any case, colons allowed) of anchors to remove
	// Issuer, when set, is the issuer chain (issuer first) the result must hold the
	// anchor of: the guard against removing the anchor still in use.
	Issuer *PEMFile
}

// EditBundle applies e: the From anchors not removed, in their order, then the added
// ones not already there. Every anchor must be a CA certificate; a fingerprint that
// matches no anchor, an empty result, or a result without the issuer's anchor is an
// error. notes say what was left alone (an anchor added twice).
func EditBundle(e BundleEdit) (out []byte, notes []string, err error) {
	var certs []*x509.Certificate
	read := func(f PEMFile) ([]*x509.Certificate, error) {
		cs, err := ParseCertificates(f.Source, f.Data)
		if err != nil {
			return nil, err
		}
		return cs, CheckAnchors(f.Source, cs)
	}
	if e.From != nil {
		if certs, err = read(*e.From); err != nil {
			return nil, nil, err
		}
	}
	for _, f := range e.Add {
		add, err := read(f)
		if err != nil {
			return nil, nil, err
		}
		for _, c := range add {
			if Contains(certs, c) {
				notes = append(notes, fmt.Sprintf("%s: %s is in the bundle already", f.Source, ShortName(c)))
				continue
			}
			certs = append(certs, c)
		}
	}
	for _, fp := range e.Remove {
		want := strings.ToLower(strings.ReplaceAll(fp, ":", ""))
		kept := certs[:0:0]
		for _, c := range certs {
			if Fingerprint(c) != want {
				kept = append(kept, c)
			}
		}
		if len(kept) == len(certs) {
			return nil, nil, fmt.Errorf("remove %s: no anchor of the bundle has this SHA-256 fingerprint", fp)
		}
		certs = kept
	}
	if len(certs) == 0 {
		return nil, nil, fmt.Errorf("the bundle would hold no trust anchor")
	}
	if e.Issuer != nil {
		chain, err := ParseCertificates(e.Issuer.Source, e.Issuer.Data)
		if err != nil {
			return nil, nil, err
		}
		if _, err := ChainsTo(certs, chain); err != nil {
			return nil, nil, fmt.Errorf("%s: the new bundle would not trust the issuer: %w (roll the issuer first)", e.Issuer.Source, err)
		}
	}
	var b bytes.Buffer
	for _, c := range certs {
		if err := pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}); err != nil {
			return nil, nil, err
		}
	}
	return b.Bytes(), notes, nil
}
