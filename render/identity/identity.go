// Package identity handles the identity material an install may carry: it parses and
// checks trust anchors and an issuer certificate and key given by the user, and creates
// a fresh trust anchor and issuer for `mesh identity create`. Checks made while
// rendering use no clock: they verify structure, signatures and key pairs only.
package identity

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
)

// ParseCertificates reads every PEM certificate in data. source names the input in
// errors. A private key in the data is an error: anchors and issuer certificates are
// public, and a key pasted into them would end up in Git.
func ParseCertificates(source string, data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	rest := data
	for n := 1; ; n++ {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		switch block.Type {
		case "CERTIFICATE":
		case "PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY":
			return nil, fmt.Errorf("%s: PEM block %d is a private key (%s); only certificates belong here", source, n, block.Type)
		default:
			return nil, fmt.Errorf("%s: PEM block %d is a %q, want CERTIFICATE", source, n, block.Type)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: certificate %d: %w", source, n, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("%s: no PEM certificate found", source)
	}
	return certs, nil
}

// ParsePrivateKey reads the first PEM private key (PKCS#8, SEC 1 EC or PKCS#1 RSA) in
// data, skipping "EC PARAMETERS" blocks such as `openssl ecparam -genkey` writes.
func ParsePrivateKey(source string, data []byte) (crypto.Signer, error) {
	var block *pem.Block
	for rest := data; ; {
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, fmt.Errorf("%s: no PEM private key found", source)
		}
		if block.Type != "EC PARAMETERS" {
			break
		}
	}
	var key any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("%s: PEM block is a %q, want a private key", source, block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	s, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%s: unsupported private key type %T", source, key)
	}
	return s, nil
}

// CheckAnchors verifies that every trust anchor is a CA certificate.
func CheckAnchors(source string, anchors []*x509.Certificate) error {
	for i, a := range anchors {
		if !a.BasicConstraintsValid || !a.IsCA {
			return fmt.Errorf("%s: certificate %d (%s) is not a CA certificate", source, i+1, a.Subject)
		}
	}
	return nil
}

// CheckKeyPair verifies that key is the private key of cert.
func CheckKeyPair(cert *x509.Certificate, key crypto.Signer) error {
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return fmt.Errorf("the key is not the private key of certificate %s", cert.Subject)
	}
	return nil
}

// CheckIssuer verifies that the first certificate of chain is a CA that chains, through
// the certificates after it, to one of the anchors. Validity periods are not checked:
// that needs a clock (`mesh check` does it).
func CheckIssuer(anchors, chain []*x509.Certificate) error {
	if len(chain) == 0 {
		return errors.New("no issuer certificate")
	}
	issuer := chain[0]
	if !issuer.BasicConstraintsValid || !issuer.IsCA {
		return fmt.Errorf("issuer certificate %s is not a CA certificate", issuer.Subject)
	}
	cur := issuer
	for depth := 0; depth <= len(chain); depth++ {
		for _, a := range anchors {
			if cur.Equal(a) || cur.CheckSignatureFrom(a) == nil {
				return nil
			}
		}
		next := signerOf(cur, chain[1:])
		if next == nil {
			break
		}
		cur = next
	}
	return fmt.Errorf("issuer certificate %s is not signed by any trust anchor (issued by %s)", issuer.Subject, cur.Issuer)
}

func signerOf(c *x509.Certificate, pool []*x509.Certificate) *x509.Certificate {
	for _, p := range pool {
		if p != c && c.CheckSignatureFrom(p) == nil {
			return p
		}
	}
	return nil
}
